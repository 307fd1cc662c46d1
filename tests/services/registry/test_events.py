"""Resident events: written with the change, served on the feed to service accounts."""

from __future__ import annotations

from typing import Any

from shared.events.residents import parse_resident_event
from tests.fixtures.registry import Registry, new_phone
from tests.services.registry.helpers import register


def _events_after(registry: Registry, after: int) -> list[dict[str, Any]]:
    with registry.service_client() as s:
        r = s.get("/events", params={"after": after, "limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _head(registry: Registry) -> int:
    with registry.service_client() as s:
        return int(s.get("/events", params={"after": 0, "limit": 1000}).json()["next"])


def test_registration_update_and_move_publish_events(registry: Registry) -> None:
    start = _head(registry)
    phone = new_phone()
    with registry.client("officer") as x:
        created = register(x, name={"zh": "事件人"})
        rid = created["id"]
        x.patch(f"/residents/{rid}", json={"phone": phone})
        x.patch(
            f"/residents/{rid}", json={"address": {"line": "2 Lane", "community": "110101/002/008"}}
        )
    mine = [e for e in _events_after(registry, start) if e["key"] == rid]
    assert [e["type"] for e in mine] == [
        "resident.registered",
        "resident.updated",
        "resident.moved",
    ]
    assert [e["payload"]["version"] for e in mine] == [1, 2, 3]
    for e in mine:
        assert parse_resident_event(e["type"], e["payload"]) is not None  # the shared contract
    registered = mine[0]["payload"]
    assert registered["name"] == {"zh": "事件人", "latin": "Shi Jianren"}
    assert registered["community"] == "110101/002/007"
    assert registered["address"] == created["address"]["line"]
    assert "national_id" not in registered
    assert mine[1]["payload"]["phone"] == phone
    assert mine[2]["payload"]["from_community"] == "110101/002/007"
    assert mine[2]["payload"]["community"] == "110101/002/008"


def test_household_changes_publish_resident_updates_with_the_new_version(
    registry: Registry,
) -> None:
    with registry.client("worker") as c:
        rid = register(c)["id"]
        start = _head(registry)
        r = c.post(
            "/households",
            json={
                "community": "110101/002/007",
                "address": "x",
                "members": [{"resident_id": rid, "relationship": "head"}],
            },
        )
        assert r.status_code == 201
        version = c.get(f"/residents/{rid}").json()["version"]
    mine = [e for e in _events_after(registry, start) if e["key"] == rid]
    assert [(e["type"], e["payload"]["version"]) for e in mine] == [("resident.updated", version)]


def test_refused_change_publishes_nothing(registry: Registry) -> None:
    with registry.client("worker") as c:
        rid = register(c)["id"]
        start = _head(registry)
        assert c.patch(f"/residents/{rid}", json={"status": "deceased"}).status_code == 422
        stale = c.patch(
            f"/residents/{rid}", json={"phone": new_phone()}, headers={"If-Match": 'W/"9"'}
        )
        assert stale.status_code == 412
    assert [e for e in _events_after(registry, start) if e["key"] == rid] == []


def test_feed_is_for_service_accounts_only(registry: Registry) -> None:
    for user in ("worker", "auditor", "admin", "citizen"):
        with registry.client(user) as c:
            assert c.get("/events").status_code == 403
