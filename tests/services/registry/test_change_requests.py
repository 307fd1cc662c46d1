"""Change requests: states, who may take each step (worker of community A vs B, officer of
street X vs Y, district officer), atomic application, conflicts, events and audit."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.registry import Registry, new_phone
from tests.services.registry.helpers import pointers, register

A, B = "110101/002/007", "110101/002/008"  # communities of street X = 110101/002
OTHER_STREET = "110101/001/003"  # street Y = 110101/001


def _events(registry: Registry, after: int = 0) -> list[dict[str, Any]]:
    with registry.service_client() as s:
        r = s.get("/events", params={"after": after, "limit": 1000})
    assert r.status_code == 200, r.text
    events: list[dict[str, Any]] = r.json()["events"]
    return events


def _head(registry: Registry) -> int:
    with registry.service_client() as s:
        return int(s.get("/events", params={"after": 0, "limit": 1000}).json()["next"])


def _draft(c: httpx.Client, kind: str, resident: str, changes: dict[str, Any]) -> Any:
    r = c.post("/change-requests", json={"kind": kind, "resident": resident, "changes": changes})
    assert r.status_code == 201, r.text
    assert r.headers["location"] == f"/change-requests/{r.json()['id']}"
    return r.json()


def _submitted(c: httpx.Client, kind: str, resident: str, changes: dict[str, Any]) -> Any:
    cr = _draft(c, kind, resident, changes)
    r = c.post(f"/change-requests/{cr['id']}/submit")
    assert r.status_code == 200, r.text
    return r.json()


def district(registry: Registry, name: str = "district") -> httpx.Client:
    return registry.as_("district-officer", jurisdiction="110101", username=name)


def test_correction_from_draft_to_applied_by_the_street_officer(registry: Registry) -> None:
    with registry.client("worker") as w:
        person = register(w)
        rid = person["id"]
        direct = w.patch(f"/residents/{rid}", json={"name": {"latin": "Other Name"}})
        assert direct.status_code == 403  # identity facts need a request
        assert "#/name" in pointers(direct)
        cr = _draft(w, "correction", rid, {"name": {"latin": "Corrected Name"}})
        assert cr["state"] == "draft"
        assert [d["role"] for d in cr["deciders"]] == ["street-officer", "district-officer"]
        with registry.client("officer") as x:
            assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 409  # a draft
        cr = w.post(f"/change-requests/{cr['id']}/submit").json()
        assert cr["state"] == "submitted"
        assert w.patch(f"/change-requests/{cr['id']}", json={"note": "x"}).status_code == 409
        assert w.post(f"/change-requests/{cr['id']}/approve").status_code == 403  # own level
    with registry.as_("community-worker", jurisdiction=B) as other_community:
        assert other_community.post(f"/change-requests/{cr['id']}/approve").status_code == 404
    with registry.as_("street-officer", jurisdiction="110101/001") as other_street:
        assert other_street.get(f"/change-requests/{cr['id']}").status_code == 404
        assert other_street.post(f"/change-requests/{cr['id']}/approve").status_code == 404
    start = _head(registry)
    with registry.client("officer") as x:
        r = x.post(f"/change-requests/{cr['id']}/approve", json={"reason": "ID card seen"})
        assert r.status_code == 200, r.text
        done = r.json()
        again = x.post(f"/change-requests/{cr['id']}/approve")
        assert again.status_code == 409
        assert again.headers["content-type"].startswith("application/problem+json")
        now = x.get(f"/residents/{rid}").json()
    assert done["state"] == "applied"
    steps = [(t["state"], t["actor"]["username"], t["reason"]) for t in done["transitions"]]
    assert steps == [
        ("draft", "worker", None),
        ("submitted", "worker", None),
        ("approved", "officer", "ID card seen"),
        ("applied", "officer", None),
    ]
    assert all(t["at"] for t in done["transitions"])
    assert now["name"]["latin"] == "Corrected Name"
    assert now["version"] == 2
    mine = [e for e in _events(registry, start) if e["key"] == rid]
    assert [(e["type"], e["payload"]["version"]) for e in mine] == [("resident.updated", 2)]
    with registry.client("auditor") as au:
        trail = au.get("/audit", params={"resident": rid, "limit": 100}).json()["items"]
    actions = [i["action"] for i in trail if i["action"].startswith("change-request.")]
    # Approve and apply are entries of one batch (often the same millisecond): any order.
    assert sorted(actions[:2]) == ["change-request.apply", "change-request.approve"]
    assert actions[2:] == ["change-request.submit", "change-request.create"]


def test_reject_needs_a_reason_and_is_final(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        cr = _submitted(w, "correction", rid, {"sex": "unknown"})
    with registry.client("officer") as x:
        missing = x.post(f"/change-requests/{cr['id']}/reject", json={})
        assert missing.status_code == 422
        assert "#/reason" in pointers(missing)
        r = x.post(f"/change-requests/{cr['id']}/reject", json={"reason": "no document"})
        assert r.status_code == 200
        assert r.json()["state"] == "rejected"
        assert r.json()["transitions"][-1]["reason"] == "no document"
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 409
        assert x.get(f"/residents/{rid}").json()["version"] == 1


def test_only_the_submitter_edits_or_withdraws_and_only_a_draft(registry: Registry) -> None:
    with registry.as_("community-worker", jurisdiction=A, username="wa1") as w:
        rid = register(w)["id"]
        cr = _draft(w, "correction", rid, {"sex": "unknown"})
        with registry.as_("community-worker", jurisdiction=A, username="wa2") as colleague:
            assert colleague.get(f"/change-requests/{cr['id']}").status_code == 200
            edit = colleague.patch(f"/change-requests/{cr['id']}", json={"note": "mine"})
            assert edit.status_code == 403
            assert colleague.post(f"/change-requests/{cr['id']}/withdraw").status_code == 403
        edited = w.patch(
            f"/change-requests/{cr['id']}",
            json={"changes": {"phone": new_phone()}},
            headers={"If-Match": f'W/"{cr["version"]}"'},
        )
        assert edited.status_code == 200, edited.text
        assert set(edited.json()["changes"]) == {"phone"}
        gone = w.post(f"/change-requests/{cr['id']}/withdraw", json={"reason": "not needed"})
        assert gone.json()["state"] == "withdrawn"
        assert w.post(f"/change-requests/{cr['id']}/submit").status_code == 409
        assert w.patch(f"/change-requests/{cr['id']}", json={"note": "x"}).status_code == 409


def test_street_officer_request_is_decided_by_the_district_officer(registry: Registry) -> None:
    with registry.client("officer") as x:
        rid = register(x, community=B)["id"]
        cr = _submitted(x, "correction", rid, {"name": {"latin": "Street Fixed"}})
        assert [d["role"] for d in cr["deciders"]] == ["district-officer"]
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 403
    with registry.as_("street-officer", jurisdiction="110101/002") as same_street:
        assert same_street.post(f"/change-requests/{cr['id']}/approve").status_code == 403
    with district(registry) as d:
        r = d.post(f"/change-requests/{cr['id']}/approve")
        assert r.status_code == 200, r.text
        assert r.json()["state"] == "applied"
        assert d.get(f"/residents/{rid}").json()["name"]["latin"] == "Street Fixed"


def test_district_officer_edits_directly_and_makes_no_requests(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
    with district(registry) as d:
        r = d.patch(f"/residents/{rid}", json={"name": {"latin": "Direct Fix"}})
        assert r.status_code == 200, r.text
        refused = d.post(
            "/change-requests",
            json={"kind": "correction", "resident": rid, "changes": {"sex": "unknown"}},
        )
        assert refused.status_code == 403
    with registry.client("auditor") as au:
        assert au.get("/change-requests").status_code == 200
        assert au.post(f"/change-requests/{'CR-00000001'}/approve").status_code in (403, 404)
    with registry.client("citizen") as me:
        assert me.get("/change-requests").status_code == 403


def test_move_to_another_street_needs_the_district_officer(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        cr = _submitted(
            w, "move", rid, {"address": {"line": "5 Far Lane", "community": OTHER_STREET}}
        )
    assert [d["role"] for d in cr["deciders"]] == ["district-officer"]
    with registry.client("officer") as x:
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 403
    start = _head(registry)
    with district(registry) as d:
        assert d.post(f"/change-requests/{cr['id']}/approve").json()["state"] == "applied"
    mine = [e for e in _events(registry, start) if e["key"] == rid]
    assert [e["type"] for e in mine] == ["resident.moved"]
    assert mine[0]["payload"]["from_community"] == A
    assert mine[0]["payload"]["community"] == OTHER_STREET
    with registry.client("worker") as w:
        assert w.get(f"/residents/{rid}").status_code == 404  # out of the worker's reach now
        # The submitter still sees their request (it belongs to community A).
        assert w.get(f"/change-requests/{cr['id']}").json()["state"] == "applied"


def test_status_move_deceased(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        bad = w.post(
            "/change-requests",
            json={"kind": "move", "resident": rid, "changes": {"status": "deceased"}},
        )
        assert bad.status_code == 422
        assert "#/changes/deceased_date" in pointers(bad)
        cr = _submitted(w, "move", rid, {"status": "deceased", "deceased_date": "2024-02-03"})
    with registry.client("officer") as x:
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 200
        now = x.get(f"/residents/{rid}").json()
    assert (now["status"], now["deceased_date"]) == ("deceased", "2024-02-03")


def test_bad_requests_are_refused_clearly(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        r = w.post("/change-requests", json={"kind": "swap", "resident": rid, "changes": {}})
        assert r.status_code == 422
        r = w.post(
            "/change-requests",
            json={"kind": "correction", "resident": rid, "changes": {"sex": "robot"}},
        )
        assert r.status_code == 422
        assert "#/changes/sex" in pointers(r)
        far = w.post(
            "/change-requests",
            json={
                "kind": "move",
                "resident": rid,
                "changes": {"address": {"line": "x", "community": "110102/001/001"}},
            },
        )
        assert far.status_code == 422  # another district
        same = w.post(
            "/change-requests",
            json={
                "kind": "correction",
                "resident": rid,
                "changes": {"sex": w.get(f"/residents/{rid}").json()["sex"]},
            },
        )
        assert same.status_code == 422  # changes nothing
        out_of_reach = w.post(
            "/change-requests",
            json={"kind": "correction", "resident": "R-00000003", "changes": {"sex": "unknown"}},
        )
        assert out_of_reach.status_code == 404  # R-00000003 lives in community B
        assert w.get("/change-requests/CR-99999999").status_code == 404


def test_conflict_leaves_the_request_approved_and_writes_nothing_of_it(
    registry: Registry,
) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        cr = _submitted(w, "correction", rid, {"name": {"latin": "Late Fix"}})
        phone = new_phone()
        assert w.patch(f"/residents/{rid}", json={"phone": phone}).status_code == 200
    start = _head(registry)
    with registry.client("officer") as x:
        r = x.post(f"/change-requests/{cr['id']}/approve")
        assert r.status_code == 409, r.text
        assert r.json()["state"] == "approved"
        kept = x.get(f"/change-requests/{cr['id']}").json()
        assert kept["state"] == "approved"
        assert "changed since the request was made" in kept["conflict"]["detail"]
        person = x.get(f"/residents/{rid}").json()
        assert (person["version"], person["phone"]) == (2, phone)
        assert person["name"]["latin"] != "Late Fix"
        assert [e for e in _events(registry, start) if e["key"] == rid] == []
        # Retrying as it was conflicts again; rebased on the record as it is now, it applies.
        assert x.post(f"/change-requests/{cr['id']}/apply").status_code == 409
        done = x.post(f"/change-requests/{cr['id']}/apply", json={"rebase": True})
        assert done.status_code == 200, done.text
        assert done.json()["state"] == "applied"
        assert x.get(f"/residents/{rid}").json()["name"]["latin"] == "Late Fix"
    with registry.client("auditor") as au:
        trail = au.get("/audit", params={"resident": rid, "limit": 100}).json()["items"]
    failed = [i for i in trail if i["action"] == "change-request.apply"]
    assert [i["outcome"] for i in failed] == ["success", "failure", "failure"]


def _household(c: httpx.Client, *members: tuple[str, str], community: str = A) -> Any:
    r = c.post(
        "/households",
        json={
            "community": community,
            "address": "7 Courtyard",
            "members": [{"resident_id": m, "relationship": rel} for m, rel in members],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_new_head_of_household(registry: Registry) -> None:
    with registry.client("worker") as w:
        head, spouse = register(w)["id"], register(w)["id"]
        hh = _household(w, (head, "head"), (spouse, "spouse"))
        cr = _submitted(
            w, "household", spouse, {"action": "new-head", "former_head_relationship": "spouse"}
        )
        assert cr["residents"] == [spouse, head]
    start = _head(registry)
    with registry.client("officer") as x:
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 200
        now = x.get(f"/households/{hh['id']}").json()
    assert now["head"] == spouse
    assert {m["resident_id"]: m["relationship"] for m in now["members"]} == {
        spouse: "head",
        head: "spouse",
    }
    kinds = sorted((e["key"], e["type"]) for e in _events(registry, start))
    assert kinds == sorted([(spouse, "resident.updated"), (head, "resident.updated")])


def test_member_moves_to_a_household_of_another_community(registry: Registry) -> None:
    with registry.client("officer") as x:
        there = register(x, community=B)["id"]
        target = _household(x, (there, "head"), community=B)
    with registry.client("worker") as w:
        head, child = register(w)["id"], register(w)["id"]
        source = _household(w, (head, "head"), (child, "child"))
        cr = _submitted(
            w,
            "household",
            child,
            {"action": "move-member", "to": target["id"], "relationship": "child"},
        )
    with registry.client("officer") as x:
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 200
        moved = x.get(f"/residents/{child}").json()
        assert moved["address"]["community"] == B
        assert moved["household"] == {"id": target["id"], "relationship": "child"}
        assert [
            m["resident_id"] for m in x.get(f"/households/{source['id']}").json()["members"]
        ] == [head]


def test_household_conflict_writes_nothing(registry: Registry) -> None:
    with registry.client("worker") as w:
        a, b, c = (register(w)["id"] for _ in range(3))
        source = _household(w, (a, "head"), (b, "child"))
        target = _household(w, (c, "head"))
        cr = _submitted(
            w,
            "household",
            b,
            {"action": "move-member", "to": target["id"], "relationship": "child"},
        )
        # The target household changes meanwhile (its address): the request is stale.
        assert w.patch(f"/households/{target['id']}", json={"address": "new"}).status_code == 200
    with registry.client("officer") as x:
        assert x.post(f"/change-requests/{cr['id']}/approve").status_code == 409
        assert x.get(f"/residents/{b}").json()["household"]["id"] == source["id"]
        assert x.get(f"/households/{source['id']}").json()["version"] == source["version"]


def test_listing_within_reach_and_awaiting_me(registry: Registry) -> None:
    with registry.client("worker") as w:
        rid = register(w)["id"]
        first = _submitted(w, "correction", rid, {"sex": "unknown"})
        second = _draft(w, "correction", rid, {"phone": new_phone()})
        page = w.get("/change-requests", params={"resident": rid, "limit": 1}).json()
        assert [i["id"] for i in page["items"]] == [second["id"]]  # newest first
        rest = w.get(page["next"]).json()
        assert [i["id"] for i in rest["items"]] == [first["id"]]
        drafts = w.get("/change-requests", params={"resident": rid, "state": "draft"}).json()
        assert [i["id"] for i in drafts["items"]] == [second["id"]]
        assert w.get("/change-requests", params={"awaiting": "me"}).status_code == 422
    with registry.client("officer") as x:
        awaiting = x.get("/change-requests", params={"awaiting": "me", "limit": 100}).json()
        assert first["id"] in [i["id"] for i in awaiting["items"]]
        assert second["id"] not in [i["id"] for i in awaiting["items"]]
        assert all(i["state"] == "submitted" for i in awaiting["items"])
        in_a = x.get("/change-requests", params={"community": A, "resident": rid}).json()
        assert len(in_a["items"]) == 2
        in_b = x.get("/change-requests", params={"community": B, "resident": rid}).json()
        assert in_b["items"] == []
    for outsider in (
        registry.as_("community-worker", jurisdiction=B),
        registry.as_("street-officer", jurisdiction="110101/001"),
    ):
        with outsider as o:
            seen = o.get("/change-requests", params={"resident": rid}).json()
            assert seen["items"] == []
    with district(registry) as d:
        assert len(d.get("/change-requests", params={"resident": rid}).json()["items"]) == 2
    with registry.client("auditor") as au:
        items = au.get("/change-requests", params={"resident": rid}).json()["items"]
        phone = next(i for i in items if i["id"] == second["id"])["changes"]["phone"]
        assert "*" in phone  # masked for auditors
