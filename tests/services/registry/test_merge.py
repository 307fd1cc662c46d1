"""Merging duplicates: who may, what happens to both records, households, reads of the
retired id, events and the audit trail; the cases that cannot be merged."""

from __future__ import annotations

from typing import Any

import httpx

from shared.events.residents import parse_resident_event
from tests.fixtures.registry import Registry, new_resident, unique_word
from tests.services.registry.helpers import register

A, B = "110101/002/007", "110101/002/008"


def _head(registry: Registry) -> int:
    with registry.service_client() as s:
        return int(s.get("/events", params={"after": 0, "limit": 1000}).json()["next"])


def _events(registry: Registry, after: int) -> list[dict[str, Any]]:
    with registry.service_client() as s:
        events: list[dict[str, Any]] = s.get(
            "/events", params={"after": after, "limit": 1000}
        ).json()["events"]
    return events


def _pair(c: httpx.Client, community: str = A, other: str | None = None) -> tuple[Any, Any]:
    """A resident with a national ID and a probable duplicate of them without one."""
    first = register(c, community=community)
    again = new_resident(
        community=other or community,
        name=first["name"],
        birth_date=first["birth_date"],
        sex=first["sex"],
        national_id=None,
        phone=None,
    )
    return first, register(c, again)


def test_street_officer_merges_a_flagged_duplicate(registry: Registry) -> None:
    with registry.client("worker") as w:
        keep, dup = _pair(w)
    assert dup["review"]["status"] == "pending"
    start = _head(registry)
    with registry.client("officer") as x:
        r = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 200, r.text
        survivor = r.json()
        assert survivor["id"] == keep["id"]
        assert survivor["version"] == keep["version"] + 1
        assert survivor["status"] == "active"
        # The retired id answers with a redirect to the survivor.
        moved = x.get(f"/residents/{dup['id']}")
        assert moved.status_code == 301
        assert moved.headers["location"] == f"/residents/{keep['id']}"
        assert moved.json()["merged_into"] == keep["id"]
        # Both histories are kept: the retired one ends with its merged version.
        history = x.get(f"/residents/{dup['id']}/history").json()["items"]
        assert [(v["version"], v["status"]) for v in history] == [(2, "merged"), (1, "active")]
        assert history[0]["merged_into"] == keep["id"]
        assert history[0]["review"]["status"] == "resolved"
        assert len(x.get(f"/residents/{keep['id']}/history").json()["items"]) == 2
        # No longer awaiting review, and not changeable any more.
        pending = x.get("/residents", params={"review": "pending", "limit": 100}).json()
        assert dup["id"] not in [i["id"] for i in pending["items"]]
        # Listed once: the survivor; the retired record only when asked for.
        same_name = {"name": keep["name"]["latin"], "limit": 100}
        listed = [i["id"] for i in x.get("/residents", params=same_name).json()["items"]]
        assert keep["id"] in listed
        assert dup["id"] not in listed
        r = x.get("/residents", params={**same_name, "status": "merged"})
        assert r.status_code == 200, r.text
        merged = r.json()["items"]
        assert [i["id"] for i in merged] == [dup["id"]]
        assert x.patch(f"/residents/{dup['id']}", json={"phone": None}).status_code == 409
    events = [e for e in _events(registry, start) if e["key"] in (keep["id"], dup["id"])]
    assert [(e["type"], e["key"]) for e in events] == [
        ("resident.merged", dup["id"]),
        ("resident.updated", keep["id"]),
    ]
    assert events[0]["payload"] == {"resident_id": dup["id"], "into": keep["id"], "version": 2}
    assert events[1]["payload"]["version"] == survivor["version"]
    for e in events:
        assert parse_resident_event(e["type"], e["payload"]) is not None
    with registry.client("auditor") as au:
        trail = au.get("/audit", params={"resident": dup["id"]}).json()["items"]
    merge = [i for i in trail if i["action"] == "resident.merge"]
    assert len(merge) == 1
    assert merge[0]["actor"]["username"] == "officer"
    assert set(merge[0]["residents"]) == {dup["id"], keep["id"]}


def test_household_place_moves_to_the_survivor(registry: Registry) -> None:
    with registry.client("worker") as w:
        keep, dup = _pair(w)
        child = register(w)["id"]
        hh = w.post(
            "/households",
            json={
                "community": A,
                "address": "3 Courtyard",
                "members": [
                    {"resident_id": dup["id"], "relationship": "head"},
                    {"resident_id": child, "relationship": "child"},
                ],
            },
        ).json()
    with registry.client("officer") as x:
        r = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 200, r.text
        assert r.json()["household"] == {"id": hh["id"], "relationship": "head"}
        now = x.get(f"/households/{hh['id']}").json()
    assert now["head"] == keep["id"]
    assert sorted(m["resident_id"] for m in now["members"]) == sorted([keep["id"], child])


def test_head_whose_place_cannot_move_is_refused_and_nothing_changes(registry: Registry) -> None:
    with registry.client("officer") as x:
        keep, dup = _pair(x, community=B, other=A)  # the survivor lives elsewhere
        child = register(x)["id"]
        hh = x.post(
            "/households",
            json={
                "community": A,
                "address": "4 Courtyard",
                "members": [
                    {"resident_id": dup["id"], "relationship": "head"},
                    {"resident_id": child, "relationship": "child"},
                ],
            },
        ).json()
        r = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 409
        assert x.get(f"/residents/{dup['id']}").json()["status"] == "active"
        assert x.get(f"/households/{hh['id']}").json()["version"] == hh["version"]


def test_who_may_merge(registry: Registry) -> None:
    with registry.client("worker") as w:
        keep, dup = _pair(w)
        r = w.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 403  # they read both records: no secret to keep
    with registry.as_("street-officer", jurisdiction="110101/001") as other_street:
        r = other_street.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 404
    with registry.client("auditor") as au:
        r = au.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 403
    with registry.as_("district-officer", jurisdiction="110101") as d:
        r = d.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert r.status_code == 200, r.text


def test_what_cannot_be_merged(registry: Registry) -> None:
    with registry.client("officer") as x:
        keep, dup = _pair(x)
        same = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": keep["id"]})
        assert same.status_code == 422
        assert (
            x.post(f"/residents/{keep['id']}/merge", json={"duplicate": "R-99999999"}).status_code
            == 404
        )
        # Only the duplicate holds the national ID: merge the other way round.
        inverse = x.post(f"/residents/{dup['id']}/merge", json={"duplicate": keep["id"]})
        assert inverse.status_code == 409
        assert inverse.json()["merge_instead"] == f"/residents/{keep['id']}/merge"
        other = register(x, name={"latin": f"{unique_word()} X"})
        different = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": other["id"]})
        assert different.status_code == 409  # two national IDs: two people
        assert (
            x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]}).status_code
            == 200
        )
        again = x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]})
        assert again.status_code == 409
        into_retired = x.post(f"/residents/{dup['id']}/merge", json={"duplicate": keep["id"]})
        assert into_retired.status_code == 409
        gone, dup2 = _pair(x)
        assert x.patch(f"/residents/{gone['id']}", json={"status": "moved-out"}).status_code == 200
        r = x.post(f"/residents/{gone['id']}/merge", json={"duplicate": dup2["id"]})
        assert r.status_code == 409  # the record that stays must be active
        stale = x.post(
            f"/residents/{dup2['id']}/merge",
            json={"duplicate": gone["id"]},
            headers={"If-Match": 'W/"9"'},
        )
        assert stale.status_code == 412


def test_a_retired_record_joins_no_household(registry: Registry) -> None:
    with registry.client("officer") as x:
        keep, dup = _pair(x)
        assert (
            x.post(f"/residents/{keep['id']}/merge", json={"duplicate": dup["id"]}).status_code
            == 200
        )
        r = x.post(
            "/households",
            json={
                "community": A,
                "address": "5 Courtyard",
                "members": [{"resident_id": dup["id"], "relationship": "head"}],
            },
        )
        assert r.status_code == 422
        assert keep["id"] in r.text
