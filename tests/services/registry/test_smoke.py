"""The registry starts with its demo data and answers the dev users."""

from __future__ import annotations

from tests.fixtures.registry import Registry


def test_demo_citizen_reads_own_record(registry: Registry) -> None:
    with registry.client("citizen") as c:
        r = c.get("/residents/R-00000001")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["name"] == {"zh": "张伟", "latin": "Zhang Wei"}
    assert body["birth_date"] == "1980-05-03"
    assert body["masked"] is False
    assert r.headers["etag"] == f'W/"{body["version"]}"'


def test_places_tree(registry: Registry) -> None:
    with registry.client("worker") as c:
        districts = c.get("/places").json()["items"]
        streets = c.get("/places", params={"parent": "110101"}).json()["items"]
        community = c.get("/places/110101/002/007")
    assert {d["code"] for d in districts} >= {"110101", "110102"}
    assert {s["code"] for s in streets} == {"110101/001", "110101/002"}
    assert community.status_code == 200
    assert community.json()["level"] == "community"
    assert community.json()["parent"] == "110101/002"
