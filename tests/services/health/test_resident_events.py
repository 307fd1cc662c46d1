"""The health service consuming the registry's events: a real feed (the shared `GET /events`
router over a store these tests write resident events into, on a loopback port), the health
service as a real process on each store, tokens from the embedded dev issuer.

Each test uses its own resident ids. "Nothing happened" is observed through a later
sentinel event: the feed is applied in order, so once the sentinel's Patient exists every
earlier event has been handled.
"""

from __future__ import annotations

import asyncio
import random
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pymongo import MongoClient

from services.health.residents import COMMUNITY_URL, registry_version
from shared.events.residents import (
    RESIDENT_MERGED,
    RESIDENT_REGISTERED,
    RESIDENT_UPDATED,
)
from tests.fixtures.health import RESIDENT_SYSTEM
from tests.fixtures.identity import IdP, dev_idp
from tests.shared.events.feedserver import (
    ENTITIES,
    Publisher,
    ThreadServer,
    feed_app,
    opened,
    serving,
)
from tools.ferretdb import FerretDB
from tools.service_server import ServiceServer


@dataclass
class Feed:
    """The registry's feed and the store it serves."""

    server: ThreadServer
    store_url: str


@dataclass
class Setup:
    """The feed's publisher, the health server consuming it, and a clinician's client."""

    publisher: Publisher
    health: ServiceServer
    idp: IdP

    def doctor(self) -> httpx.AsyncClient:
        token = self.idp.password_token("doctor", scope="user/*.cruds")
        return httpx.AsyncClient(
            base_url=self.health.url, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )


@pytest.fixture(scope="module")
def feed(tmp_path_factory: pytest.TempPathFactory, dev_issuer: Any) -> Iterator[Feed]:
    """The registry's feed, reduced to the shared router over a SQLite store."""
    url = f"sqlite:///{tmp_path_factory.mktemp('registry')}/registry.db"
    with serving(feed_app(url, dev_idp(dev_issuer).issuer)) as server:
        yield Feed(server, url)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def setup(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    dev_issuer: Any,
    feed: Feed,
) -> AsyncIterator[Setup]:
    idp = dev_idp(dev_issuer)
    tmp = tmp_path_factory.mktemp(f"health-events-{request.param}")
    database = f"healthev{uuid.uuid4().hex[:8]}"
    ferretdb: FerretDB | None = None
    if request.param == "sqlite":
        store_url = f"sqlite:///{tmp}/health.db"
    else:
        ferretdb = request.getfixturevalue("ferretdb")
        store_url = ferretdb.uri.rstrip("/") + f"/{database}"
    env = {
        "HUIMIN_STORE_URL": store_url,
        "HUIMIN_OIDC_ISSUER": idp.issuer,
        "HUIMIN_CLIENT_ID": "huimin-health",
        "HUIMIN_CLIENT_SECRET": idp.secrets["huimin-health"],
        "HUIMIN_REGISTRY_EVENTS_URL": feed.server.url + "/events",
        "HUIMIN_REGISTRY_EVENTS_POLL_SECONDS": "0.1",
    }
    health = ServiceServer("services.health", Path(tmp), env).start()
    async with opened(feed.store_url, [ENTITIES]) as store:
        yield Setup(Publisher(store), health, idp)
    health.stop()
    if ferretdb is not None:
        client: MongoClient[dict[str, Any]] = MongoClient(ferretdb.uri)
        try:
            client.drop_database(database)
        finally:
            client.close()


def resident_id() -> str:
    return f"R-{random.randrange(10**9, 10**10)}"


def snapshot(rid: str, version: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resident_id": rid,
        "version": version,
        "name": {"zh": "张伟", "latin": "Zhang Wei"},
        "sex": "male",
        "birth_date": "1980-01-02",
        "status": "active",
        "deceased_date": None,
        "community": "110101/002/007",
        "phone": "13800138000",
        "address": "东城区景山前街4号",
    }
    body.update(changes)
    return body


async def publish(s: Setup, *events: tuple[str, dict[str, Any]]) -> None:
    await s.publisher.publish([(t, str(p["resident_id"]), p) for t, p in events])


async def patients(s: Setup, rid: str) -> list[dict[str, Any]]:
    async with s.doctor() as doctor:
        r = await doctor.get("/Patient", params={"identifier": f"{RESIDENT_SYSTEM}|{rid}"})
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


async def eventually(
    probe: Callable[[], Awaitable[Any]], accept: Callable[[Any], bool], within: float = 40
) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = await probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"not reached in time; last value {value!r}"
        await asyncio.sleep(0.1)


async def patient_at(s: Setup, rid: str, version: int) -> dict[str, Any]:
    """The one Patient of `rid` once it reflects registry `version`."""
    found = await eventually(
        lambda: patients(s, rid),
        lambda ps: len(ps) == 1 and registry_version(ps[0]) >= version,
    )
    patient: dict[str, Any] = found[0]
    return patient


async def sentinel(s: Setup) -> None:
    """Publish an event and wait until it is applied: everything before it was handled."""
    rid = resident_id()
    await publish(s, (RESIDENT_REGISTERED, snapshot(rid, 1)))
    await patient_at(s, rid, 1)


async def test_a_registered_resident_gets_a_linked_patient(setup: Setup) -> None:
    rid = resident_id()
    await publish(setup, (RESIDENT_REGISTERED, snapshot(rid, 1)))
    patient = await patient_at(setup, rid, 1)
    assert patient["meta"]["versionId"] == "1"
    assert {"system": RESIDENT_SYSTEM, "value": rid} in patient["identifier"]
    assert patient["name"] == [
        {"use": "official", "text": "张伟", "family": "张", "given": ["伟"]},
        {"use": "official", "text": "Zhang Wei"},
    ]
    assert patient["gender"] == "male"
    assert patient["birthDate"] == "1980-01-02"
    assert patient["active"] is True
    assert [t["value"] for t in patient["telecom"]] == ["13800138000"]
    assert [a["text"] for a in patient["address"]] == ["东城区景山前街4号"]
    assert {"url": COMMUNITY_URL, "valueString": "110101/002/007"} in patient["extension"]
    assert "deceasedBoolean" not in patient
    # Written as the health service's own account, with an audit record like any write.
    async with setup.doctor() as doctor:
        audit = await doctor.get("/AuditEvent", params={"patient": f"Patient/{patient['id']}"})
    assert audit.status_code == 200
    clients = [
        agent.get("altId")
        for entry in audit.json().get("entry", [])
        for agent in entry["resource"].get("agent", [])
    ]
    assert "huimin-health" in clients, clients


async def test_updates_link_a_clinic_patient_and_keep_clinical_data(setup: Setup) -> None:
    rid = resident_id()
    async with setup.doctor() as doctor:
        made = await doctor.post(
            "/Patient",
            json={
                "resourceType": "Patient",
                "identifier": [{"system": RESIDENT_SYSTEM, "value": rid}],
                "name": [
                    {"use": "official", "text": "张卫", "family": "张", "given": ["卫"]},
                    {"use": "nickname", "text": "小张"},
                ],
                "telecom": [{"system": "email", "value": "zhang@example.cn"}],
                "maritalStatus": {"text": "married"},
            },
        )
        assert made.status_code == 201, made.text
        pid = made.json()["id"]
        obs = await doctor.post(
            "/Observation",
            json={
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "body weight"},
                "subject": {"reference": f"Patient/{pid}"},
                "valueQuantity": {"value": 70, "unit": "kg"},
            },
        )
        assert obs.status_code == 201, obs.text
    await publish(
        setup,
        (RESIDENT_REGISTERED, snapshot(rid, 1)),
        (RESIDENT_UPDATED, snapshot(rid, 2, phone="13900139000", address="西城区1号")),
    )
    patient = await patient_at(setup, rid, 2)
    assert patient["id"] == pid  # linked, not a second Patient
    assert patient["meta"]["versionId"] == "3"  # the clinic's, then one per event
    assert [n["text"] for n in patient["name"]] == ["张伟", "Zhang Wei", "小张"]
    assert [t["value"] for t in patient["telecom"]] == ["13900139000", "zhang@example.cn"]
    assert [a["text"] for a in patient["address"]] == ["西城区1号"]
    assert patient["maritalStatus"] == {"text": "married"}
    async with setup.doctor() as doctor:
        kept = (await doctor.get(f"/Observation/{obs.json()['id']}")).json()
    assert kept["meta"]["versionId"] == "1"
    assert kept["subject"] == {"reference": f"Patient/{pid}"}


async def test_replayed_events_change_nothing(setup: Setup) -> None:
    rid = resident_id()
    first = [
        (RESIDENT_REGISTERED, snapshot(rid, 1)),
        (RESIDENT_UPDATED, snapshot(rid, 2, sex="unknown")),
    ]
    await publish(setup, *first)
    patient = await patient_at(setup, rid, 2)
    # At-least-once: the same events again, and an older one after a newer one.
    await publish(setup, *first, *first)
    await sentinel(setup)
    again = await patients(setup, rid)
    assert len(again) == 1
    assert again[0]["meta"]["versionId"] == patient["meta"]["versionId"] == "2"
    assert again[0]["gender"] == "unknown"


async def test_death_is_recorded(setup: Setup) -> None:
    rid, other = resident_id(), resident_id()
    await publish(
        setup,
        (RESIDENT_REGISTERED, snapshot(rid, 1)),
        (RESIDENT_UPDATED, snapshot(rid, 2, status="deceased", deceased_date="2024-03-05")),
        (RESIDENT_REGISTERED, snapshot(other, 4, status="deceased")),
    )
    dead = await patient_at(setup, rid, 2)
    assert dead["deceasedDateTime"] == "2024-03-05"
    assert "deceasedBoolean" not in dead
    unknown_date = await patient_at(setup, other, 4)
    assert unknown_date["deceasedBoolean"] is True


async def test_a_merge_retires_one_patient_into_another(setup: Setup) -> None:
    retired, survivor = resident_id(), resident_id()
    merge = {"resident_id": retired, "into": survivor, "version": 2}
    await publish(setup, (RESIDENT_REGISTERED, snapshot(retired, 1)), (RESIDENT_MERGED, merge))
    old = await patient_at(setup, retired, 2)
    (new,) = await eventually(lambda: patients(setup, survivor), lambda ps: len(ps) == 1)
    assert old["active"] is False
    assert old["link"] == [{"other": {"reference": f"Patient/{new['id']}"}, "type": "replaced-by"}]
    assert new["link"] == [{"other": {"reference": f"Patient/{old['id']}"}, "type": "replaces"}]
    assert new["active"] is True
    assert old["name"][0]["text"] == "张伟"  # the retired record keeps its data
    # Replayed, the merge changes nothing; the survivor's own events fill it in.
    await publish(
        setup,
        (RESIDENT_MERGED, merge),
        (RESIDENT_REGISTERED, snapshot(retired, 1)),
        (RESIDENT_REGISTERED, snapshot(survivor, 1, name={"zh": "欧阳修", "latin": None})),
    )
    filled = await patient_at(setup, survivor, 1)
    assert filled["id"] == new["id"]
    assert filled["name"] == [
        {"use": "official", "text": "欧阳修", "family": "欧阳", "given": ["修"]}
    ]
    assert filled["link"] == new["link"]
    (still,) = await patients(setup, retired)
    assert still["meta"]["versionId"] == old["meta"]["versionId"]
    assert still["active"] is False


async def test_a_malformed_event_is_skipped_and_the_feed_goes_on(setup: Setup) -> None:
    rid = resident_id()
    await setup.publisher.publish(
        [
            (RESIDENT_REGISTERED, rid, snapshot(rid, 1, sex="m")),
            ("household.created", "H-1", {"household_id": "H-1"}),
            (RESIDENT_UPDATED, rid, snapshot(rid, 2)),
        ]
    )
    patient = await patient_at(setup, rid, 2)
    assert patient["meta"]["versionId"] == "1"  # the invalid v1 never made a version


async def test_the_health_service_catches_up_after_being_down(setup: Setup) -> None:
    rid = resident_id()
    await publish(setup, (RESIDENT_REGISTERED, snapshot(rid, 1)))
    before = await patient_at(setup, rid, 1)
    setup.health.stop()
    later = resident_id()
    await publish(
        setup, (RESIDENT_REGISTERED, snapshot(later, 1)), (RESIDENT_UPDATED, snapshot(rid, 2))
    )
    setup.health.start()
    await patient_at(setup, later, 1)
    after = await patient_at(setup, rid, 2)
    # The cursor survived the restart: the events applied before were not applied again.
    assert after["meta"]["versionId"] == "2"
    assert after["id"] == before["id"]
