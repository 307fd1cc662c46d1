"""The audit trail: reads and changes recorded; residents see who looked; auditors search."""

from __future__ import annotations

from tests.fixtures.registry import Registry, new_phone
from tests.services.registry.helpers import register, wait_for


def test_reads_and_changes_are_in_the_access_log(registry: Registry) -> None:
    with registry.client("worker") as a:
        rid = register(a)["id"]
        a.patch(f"/residents/{rid}", json={"phone": new_phone()})
        a.get(f"/residents/{rid}")

        def log() -> list:  # type: ignore[type-arg]
            items = a.get(f"/residents/{rid}/access-log").json()["items"]
            return items if any(i["action"] == "resident.read" for i in items) else []

        items = wait_for(log)
    actions = [i["action"] for i in items]
    assert actions[-2:] == ["resident.updated", "resident.register"]
    assert actions[0] == "resident.read"
    assert all(i["actor"]["username"] == "worker" for i in items)
    assert all(i["outcome"] == "success" for i in items)


def test_citizen_sees_who_looked_at_their_record(registry: Registry) -> None:
    with registry.client("officer") as x:
        assert x.get("/residents/R-00000001").status_code == 200
    with registry.client("citizen") as me:

        def officer_entries() -> list:  # type: ignore[type-arg]
            items = me.get("/residents/R-00000001/access-log", params={"limit": 100}).json()[
                "items"
            ]
            return [i for i in items if i["actor"]["username"] == "officer"]

        seen = wait_for(officer_entries)
        assert seen
        assert seen[0]["action"] == "resident.read"
        # Citizens see who (name, roles), not staff account ids or addresses.
        assert set(seen[0]["actor"]) == {"username", "roles", "jurisdiction"}
        assert me.get("/residents/R-00000004/access-log").status_code == 404
    with registry.as_("citizen", resident_id="R-00000002") as other:
        assert other.get("/residents/R-00000001/access-log").status_code == 404


def test_denied_reads_are_recorded(registry: Registry) -> None:
    with registry.as_("community-worker", jurisdiction="110101/002/008", username="nosy") as b:
        assert b.get("/residents/R-00000002").status_code == 404
    with registry.client("auditor") as au:

        def denied() -> list:  # type: ignore[type-arg]
            return list(au.get("/audit", params={"actor": "nosy"}).json()["items"])

        items = wait_for(denied)
    assert [(i["action"], i["outcome"], i["residents"]) for i in items] == [
        ("resident.read", "denied", ["R-00000002"])
    ]


def test_audit_search_is_for_auditors_and_pages(registry: Registry) -> None:
    with registry.client("worker") as a:
        rid = register(a)["id"]
        for _ in range(3):
            a.get(f"/residents/{rid}")
    with registry.client("auditor") as au:
        wait_for(lambda: len(au.get("/audit", params={"resident": rid}).json()["items"]) >= 4)
        page = au.get("/audit", params={"resident": rid, "limit": 2}).json()
        got = page["items"]
        while page["next"]:
            page = au.get(page["next"]).json()
            got += page["items"]
        assert len(got) == 4
        times = [i["at"] for i in got]
        assert times == sorted(times, reverse=True)
        since = au.get("/audit", params={"resident": rid, "since": got[0]["at"]}).json()
        assert [i["id"] for i in since["items"]] == [got[0]["id"]]
        assert au.get("/audit", params={"since": "2026-01-01T00:00:00"}).status_code == 422
    for user in ("worker", "officer", "citizen"):
        with registry.client(user) as c:
            assert c.get("/audit").status_code == 403


def test_searches_are_recorded_with_the_residents_found(registry: Registry) -> None:
    with registry.client("worker") as a:
        person = register(a)
        a.get("/residents", params={"national_id": person["national_id"]})
    with registry.client("auditor") as au:

        def searches() -> list:  # type: ignore[type-arg]
            items = au.get("/audit", params={"resident": person["id"]}).json()["items"]
            return [i for i in items if i["action"] == "resident.search"]

        found = wait_for(searches)
    assert found
    assert "national_id=" in found[0]["detail"]
