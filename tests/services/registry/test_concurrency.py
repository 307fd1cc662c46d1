"""Concurrent registrations: unique ids, one winner per national ID; demo loads once."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fixtures.identity import dev_idp
from tests.fixtures.registry import Registry, new_resident
from tools.service_server import ServiceServer


def test_concurrent_registrations_get_distinct_ids(registry: Registry) -> None:
    bodies = [new_resident() for _ in range(8)]
    with registry.client("worker") as c, ThreadPoolExecutor(8) as pool:
        responses = list(pool.map(lambda b: c.post("/residents", json=b), bodies))
    assert [r.status_code for r in responses] == [201] * 8
    assert len({r.json()["id"] for r in responses}) == 8


def test_one_winner_for_one_national_id(registry: Registry) -> None:
    body = new_resident()
    with registry.client("worker") as c, ThreadPoolExecutor(4) as pool:
        responses = list(pool.map(lambda _: c.post("/residents", json=body), range(4)))
        found = c.get("/residents", params={"national_id": body["national_id"]}).json()
    assert sorted(r.status_code for r in responses) == [201, 409, 409, 409]
    assert len(found["items"]) == 1


@pytest.fixture
def restartable(tmp_path: Path, dev_issuer: Any) -> Any:
    idp = dev_idp(dev_issuer)
    env = {
        "HUIMIN_STORE_URL": f"sqlite:///{tmp_path}/registry.db",
        "HUIMIN_OIDC_ISSUER": idp.issuer,
        "HUIMIN_DEMO_DATA": "1",
    }
    return idp, lambda: ServiceServer("services.registry", tmp_path, env).start()


def test_demo_data_loads_once(restartable: Any) -> None:
    idp, start = restartable
    counts = []
    for _ in range(2):
        server = start()
        try:
            token = idp.password_token("auditor")
            r = httpx.get(
                f"{server.url}/residents",
                params={"limit": 100},
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200, r.text
            counts.append(len(r.json()["items"]))
        finally:
            server.stop()
    assert counts == [30, 30]
