"""The dev stack's demo data: published resources in both languages, a class taught by the
dev user `teacher` with the dev user `citizen` (R-00000001) enrolled; loaded once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.education.demo import RESOURCES
from tests.fixtures.identity import dev_idp
from tools.service_server import ServiceServer


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory, dev_issuer: Any) -> Iterator[ServiceServer]:
    tmp = tmp_path_factory.mktemp("education-demo")
    env = {
        "HUIMIN_STORE_URL": f"sqlite:///{tmp}/education.db",
        "HUIMIN_OIDC_ISSUER": dev_idp(dev_issuer).issuer,
        "HUIMIN_DEMO_DATA": "1",
    }
    server = ServiceServer("services.education", Path(tmp), env, start_timeout=120.0).start()
    yield server
    server.stop()


def test_demo_catalogue_class_and_enrolled_citizen(demo: ServiceServer, dev_issuer: Any) -> None:
    idp = dev_idp(dev_issuer)
    with httpx.Client(base_url=demo.url, timeout=60) as public:
        everything = public.get("/resources", params={"limit": 100}).json()
        assert everything["total"] == len(RESOURCES)
        languages = {v["value"] for v in everything["facets"]["language"]}
        assert {"zh", "en"} <= languages
        assert public.get("/resources", params={"q": "太极"}).json()["total"] == 1
        assert public.get("/resources", params={"q": "smartphone"}).json()["total"] == 1

    def client(user: str) -> httpx.Client:
        token = idp.password_token(user)
        return httpx.Client(
            base_url=demo.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    with client("citizen") as citizen:
        mine = citizen.get("/me/enrollments").json()["items"]
        assert [(e["user"], e["status"]) for e in mine] == [("R-00000001", "active")]
        class_id = mine[0]["class"]
    with client("teacher") as teacher:
        taught = teacher.get("/classes", params={"teaching": "true"}).json()["items"]
        assert [c["id"] for c in taught] == [class_id]
        roster = teacher.get(f"/classes/{class_id}/enrollments").json()["items"]
        assert {e["user"] for e in roster if e["role"] == "learner"} == {"R-00000001"}
    demo.stop()  # a second start loads nothing again
    demo.start()
    with httpx.Client(base_url=demo.url, timeout=60) as public:
        assert public.get("/resources", params={"facets": "false"}).json()["total"] == len(
            RESOURCES
        )
