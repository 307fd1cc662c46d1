"""Jurisdiction rules: who reads and writes which residents, and 403 versus 404.

Demo data: community A = 110101/002/007 (dev `worker`), community B = 110101/002/008 (same
street X = 110101/002, dev `officer`), street Y = 110101/001 with community 110101/001/003,
district 110102 elsewhere. R-00000001 (张伟, dev `citizen`) heads household 1 in A with
R-00000004..6; R-00000002 (王芳) is in A too, another household; R-00000003 lives in B.
"""

from __future__ import annotations

import re

import httpx
import pytest

from tests.fixtures.registry import Registry, new_resident
from tests.services.registry.helpers import register

A, B = "110101/002/007", "110101/002/008"
OTHER_STREET_COMMUNITY = "110101/001/003"
OTHER_DISTRICT_COMMUNITY = "110102/001/001"


def test_worker_reads_own_community_not_the_neighbouring_one(registry: Registry) -> None:
    with registry.client("worker") as a, registry.as_("community-worker", jurisdiction=B) as b:
        assert a.get("/residents/R-00000002").status_code == 200
        assert b.get("/residents/R-00000003").status_code == 200
        hidden = b.get("/residents/R-00000002")
        missing = b.get("/residents/R-99999999")
    # Outside the jurisdiction looks exactly like a resident who does not exist.
    assert hidden.status_code == missing.status_code == 404
    assert hidden.json()["title"] == missing.json()["title"]
    with registry.client("worker") as a:
        assert a.get("/residents/R-00000003").status_code == 404


def test_worker_registers_only_in_own_community(registry: Registry) -> None:
    with registry.client("worker") as a:
        register(a, community=A)
        r = a.post("/residents", json=new_resident(community=B))
    assert r.status_code == 403
    assert r.headers["content-type"].startswith("application/problem+json")


def test_write_to_a_resident_out_of_reach_is_404_not_403(registry: Registry) -> None:
    with registry.as_("community-worker", jurisdiction=B) as b:
        r = b.patch("/residents/R-00000002", json={"phone": "13911112222"})
    assert r.status_code == 404


def test_street_officers_see_their_street_only(registry: Registry) -> None:
    with registry.client("worker") as a:
        in_a = register(a)
    with registry.client("officer") as x:
        assert x.get(f"/residents/{in_a['id']}").status_code == 200
        assert x.get("/residents/R-00000003").status_code == 200
        created = x.post("/residents", json=new_resident(community=B))
        assert created.status_code == 201
        refused = x.post("/residents", json=new_resident(community=OTHER_STREET_COMMUNITY))
        assert refused.status_code == 403
    with registry.as_("street-officer", jurisdiction="110101/001") as y:
        assert y.get(f"/residents/{in_a['id']}").status_code == 404
        assert (
            y.post("/residents", json=new_resident(community=OTHER_STREET_COMMUNITY)).status_code
            == 201
        )


def test_district_officers_see_their_district_only(registry: Registry) -> None:
    with registry.as_("district-officer", jurisdiction="110101") as d1:
        assert d1.get("/residents/R-00000001").status_code == 200
        assert d1.get("/residents/R-00000027").status_code == 404  # lives in 110102
    with registry.as_("district-officer", jurisdiction="110102") as d2:
        assert d2.get("/residents/R-00000027").status_code == 200
        assert d2.get("/residents/R-00000001").status_code == 404


def test_citizen_reads_own_record_and_household_only(registry: Registry) -> None:
    with registry.client("citizen") as me:
        assert me.get("/residents/R-00000001").status_code == 200
        member = me.get("/residents/R-00000004")  # spouse, same household
        assert member.status_code == 200
        assert member.json()["masked"] is True
        assert me.get("/residents/R-00000002").status_code == 404
        assert me.get("/residents/R-00000001/household").status_code == 200
        # Citizens read; changes go through the community.
        assert me.patch("/residents/R-00000001", json={"phone": "13900000000"}).status_code == 403
        assert me.post("/residents", json=new_resident()).status_code == 403
    with registry.as_("citizen", resident_id="R-00000002") as other:
        assert other.get("/residents/R-00000001").status_code == 404
        assert other.get("/residents/R-00000002").status_code == 200


def test_auditor_reads_everything_and_changes_nothing(registry: Registry) -> None:
    with registry.client("auditor") as au:
        for rid in ("R-00000001", "R-00000003", "R-00000027"):
            assert au.get(f"/residents/{rid}").status_code == 200
        assert au.post("/residents", json=new_resident()).status_code == 403
        assert au.patch("/residents/R-00000001", json={"phone": "13900000000"}).status_code == 403


@pytest.mark.parametrize("user", ["doctor", "teacher", "editor"])
def test_roles_without_registry_business_get_403(registry: Registry, user: str) -> None:
    with registry.client(user) as c:
        assert c.get("/residents/R-00000001").status_code == 403
        assert c.get("/residents").status_code == 403


def test_staff_role_with_mismatched_jurisdiction_reaches_nothing(registry: Registry) -> None:
    # A community worker whose claim names a street is misconfigured: refused, not widened.
    with registry.as_("community-worker", jurisdiction="110101/002") as c:
        assert c.get("/residents/R-00000001").status_code == 403
    with registry.as_("community-worker") as c:
        assert c.get("/residents").status_code == 403


def test_unauthenticated_is_401(registry: Registry) -> None:
    r = httpx.get(f"{registry.base}/residents/R-00000001")
    assert r.status_code == 401


MASKED_NID = r"^\d{6}\*{8}[\dX]{4}$"


def test_masking_per_role(registry: Registry) -> None:
    with registry.client("worker") as a:
        full = a.get("/residents/R-00000001").json()
    assert full["masked"] is False
    assert full["phone"] == "13800138000"
    assert len(full["national_id"]) == 18
    in_reach = [registry.client("officer"), registry.client("citizen")]
    in_reach.append(registry.as_("district-officer", jurisdiction="110101"))
    for client in in_reach:
        with client as c:
            body = c.get("/residents/R-00000001").json()
        assert body["masked"] is False
        assert (body["phone"], body["national_id"]) == (full["phone"], full["national_id"])
    masked = [registry.client("auditor"), registry.client("admin")]
    masked.append(registry.service_client())
    for client in masked:
        with client as c:
            body = c.get("/residents/R-00000001").json()
        assert body["masked"] is True
        assert body["phone"] == "138****8000"
        assert re.match(MASKED_NID, body["national_id"])
        assert body["national_id"][:6] + body["national_id"][-4:] == (
            full["national_id"][:6] + full["national_id"][-4:]
        )
    # A household member reads the head's record, masked: it is not their own.
    with registry.as_("citizen", resident_id="R-00000004") as spouse:
        assert spouse.get("/residents/R-00000001").json()["masked"] is True
