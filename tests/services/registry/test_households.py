"""Households: exactly one head, one household per resident, add/remove/move, reach."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.registry import Registry
from tests.services.registry.helpers import pointers, register

A = "110101/002/007"


def _household(c: httpx.Client, *members: tuple[str, str], community: str = A) -> Any:
    r = c.post(
        "/households",
        json={
            "community": community,
            "address": "9 Courtyard",
            "members": [{"resident_id": m, "relationship": rel} for m, rel in members],
        },
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_create_and_read(registry: Registry) -> None:
    with registry.client("worker") as c:
        head, spouse = register(c)["id"], register(c)["id"]
        hh = _household(c, (spouse, "spouse"), (head, "head"))
        assert hh["head"] == head
        assert [m["resident_id"] for m in hh["members"]] == [head, spouse]  # head first
        assert c.get(f"/residents/{spouse}").json()["household"] == {
            "id": hh["id"],
            "relationship": "spouse",
        }
        assert c.get(f"/residents/{head}/household").json()["id"] == hh["id"]
        assert c.get(f"/households/{hh['id']}").headers["etag"] == f'W/"{hh["version"]}"'


def test_exactly_one_head(registry: Registry) -> None:
    with registry.client("worker") as c:
        a, b = register(c)["id"], register(c)["id"]
        for members in ([(a, "spouse"), (b, "child")], [(a, "head"), (b, "head")]):
            r = c.post(
                "/households",
                json={
                    "community": A,
                    "address": "x",
                    "members": [{"resident_id": m, "relationship": rel} for m, rel in members],
                },
            )
            assert r.status_code == 422, r.text
        assert c.get(f"/residents/{a}").json()["household"] is None


def test_a_resident_is_in_at_most_one_household(registry: Registry) -> None:
    with registry.client("worker") as c:
        a, b = register(c)["id"], register(c)["id"]
        first = _household(c, (a, "head"))
        r = c.post(
            "/households",
            json={
                "community": A,
                "address": "x",
                "members": [
                    {"resident_id": b, "relationship": "head"},
                    {"resident_id": a, "relationship": "spouse"},
                ],
            },
        )
        assert r.status_code == 409
        assert r.json()["household"] == first["id"]
        assert pointers(r) == {"#/members/1/resident_id"}
        # Nothing partial: b was not put anywhere.
        assert c.get(f"/residents/{b}").json()["household"] is None
        added = c.post(
            f"/households/{first['id']}/members", json={"resident_id": a, "relationship": "child"}
        )
        assert added.status_code == 409


def test_add_remove_and_head_rules(registry: Registry) -> None:
    with registry.client("worker") as c:
        head, kid = register(c)["id"], register(c)["id"]
        hh = _household(c, (head, "head"))
        hid = hh["id"]
        second_head = c.post(
            f"/households/{hid}/members", json={"resident_id": kid, "relationship": "head"}
        )
        assert second_head.status_code == 422
        added = c.post(
            f"/households/{hid}/members",
            json={"resident_id": kid, "relationship": "child"},
            headers={"If-Match": f'W/"{hh["version"]}"'},
        )
        assert added.status_code == 200, added.text
        assert len(added.json()["members"]) == 2
        stale = c.delete(
            f"/households/{hid}/members/{kid}", headers={"If-Match": f'W/"{hh["version"]}"'}
        )
        assert stale.status_code == 412
        assert c.delete(f"/households/{hid}/members/{head}").status_code == 409
        # Hand over the head, then the old head may leave.
        swapped = c.patch(
            f"/households/{hid}", json={"relationships": {kid: "head", head: "parent"}}
        )
        assert swapped.status_code == 200, swapped.text
        assert swapped.json()["head"] == kid
        left = c.delete(f"/households/{hid}/members/{head}")
        assert left.status_code == 200
        assert [m["resident_id"] for m in left.json()["members"]] == [kid]
        assert c.get(f"/residents/{head}").json()["household"] is None
        # The last member leaving dissolves the household.
        assert c.delete(f"/households/{hid}/members/{kid}").status_code == 204
        assert c.get(f"/households/{hid}").status_code == 404


def test_move_member_between_households(registry: Registry) -> None:
    with registry.client("worker") as c:
        h1, h2, kid = register(c)["id"], register(c)["id"], register(c)["id"]
        one = _household(c, (h1, "head"), (kid, "child"))
        two = _household(c, (h2, "head"))
        moved = c.post(
            f"/households/{one['id']}/members/{kid}/move",
            json={"to": two["id"], "relationship": "grandchild"},
        )
        assert moved.status_code == 200, moved.text
        assert moved.json()["id"] == two["id"]
        assert {m["resident_id"] for m in moved.json()["members"]} == {h2, kid}
        assert [m["resident_id"] for m in c.get(f"/households/{one['id']}").json()["members"]] == [
            h1
        ]
        assert c.get(f"/residents/{kid}").json()["household"] == {
            "id": two["id"],
            "relationship": "grandchild",
        }


def test_household_reach(registry: Registry) -> None:
    with registry.client("worker") as c:
        head = register(c)["id"]
        hh = _household(c, (head, "head"))
    with registry.as_("community-worker", jurisdiction="110101/002/008") as b:
        assert b.get(f"/households/{hh['id']}").status_code == 404
        r = b.post(
            f"/households/{hh['id']}/members",
            json={"resident_id": "R-00000003", "relationship": "other"},
        )
        assert r.status_code == 404
    with registry.client("officer") as x:
        assert x.get(f"/households/{hh['id']}").status_code == 200
    with registry.client("citizen") as me:
        own = me.get("/residents/R-00000001/household")
        assert own.status_code == 200
        assert {m["resident_id"] for m in own.json()["members"]} == {
            "R-00000001",
            "R-00000004",
            "R-00000005",
            "R-00000006",
        }
        assert me.get(f"/households/{hh['id']}").status_code == 404
        assert (
            me.post(
                f"/households/{own.json()['id']}/members",
                json={"resident_id": head, "relationship": "other"},
            ).status_code
            == 403
        )


def test_members_must_be_in_reach_and_in_the_community(registry: Registry) -> None:
    with registry.client("officer") as x:
        here = register(x)["id"]
        there = register(x, community="110101/002/008")["id"]
        r = x.post(
            "/households",
            json={
                "community": A,
                "address": "x",
                "members": [
                    {"resident_id": here, "relationship": "head"},
                    {"resident_id": there, "relationship": "spouse"},
                    {"resident_id": "R-99999998", "relationship": "child"},
                ],
            },
        )
    assert r.status_code == 422
    assert pointers(r) == {"#/members/1/resident_id", "#/members/2/resident_id"}


def test_a_member_moves_community_only_after_leaving(registry: Registry) -> None:
    with registry.client("officer") as x:
        head = register(x)["id"]
        _household(x, (head, "head"))
        r = x.patch(
            f"/residents/{head}", json={"address": {"line": "y", "community": "110101/002/008"}}
        )
    assert r.status_code == 409
