"""Bad input gets a problem+json with field errors, and nothing is written."""

from __future__ import annotations

from typing import Any

import pytest

from services.registry.national_id import check_char
from tests.fixtures.registry import Registry, new_resident
from tests.services.registry.helpers import PROBLEM, pointers


def _bad_check_digit(number: str) -> str:
    wrong = next(c for c in "0123456789X" if c != check_char(number[:17]))
    return number[:17] + wrong


def _feed_position(registry: Registry) -> int:
    with registry.service_client() as s:
        return int(s.get("/events", params={"after": 0, "limit": 1000}).json()["next"])


CASES: list[tuple[str, Any, set[str]]] = [
    (
        "bad check digit",
        lambda b: {**b, "national_id": _bad_check_digit(b["national_id"])},
        {"#/national_id"},
    ),
    ("impossible date", lambda b: {**b, "birth_date": "1980-02-30"}, {"#/birth_date"}),
    ("future birth", lambda b: {**b, "birth_date": "2999-01-01"}, {"#/birth_date"}),
    ("id disagrees with birth date", lambda b: {**b, "birth_date": "1949-01-01"}, {"#/birth_date"}),
    (
        "unknown community",
        lambda b: {**b, "address": {"line": "x", "community": "110101/002/099"}},
        {"#/address/community"},
    ),
    (
        "malformed community",
        lambda b: {**b, "address": {"line": "x", "community": "110101-002"}},
        {"#/address/community"},
    ),
    ("phone", lambda b: {**b, "phone": "12345"}, {"#/phone"}),
    ("sex", lambda b: {**b, "sex": "m"}, {"#/sex"}),
    (
        "wrong type",
        lambda b: {**b, "birth_date": 19800503, "name": "Zhang"},
        {"#/birth_date", "#/name"},
    ),
    ("no name", lambda b: {**b, "name": {}}, {"#/name"}),
    ("long name", lambda b: {**b, "name": {"zh": "张" * 40}}, {"#/name/zh"}),
    ("unknown member", lambda b: {**b, "status": "deceased"}, {"#/status"}),
    ("missing address", lambda b: {k: v for k, v in b.items() if k != "address"}, {"#/address"}),
]


@pytest.mark.parametrize(("label", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_field_errors_and_nothing_written(
    registry: Registry, label: str, change: Any, expected: set[str]
) -> None:
    body = change(new_resident())
    before = _feed_position(registry)
    with registry.client("worker") as c:
        r = c.post("/residents", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert expected <= pointers(r), r.json()
        if isinstance(body.get("name"), dict) and body["name"].get("latin"):
            found = c.get("/residents", params={"name": body["name"]["latin"]}).json()
            assert found["items"] == []
    assert _feed_position(registry) == before


def test_sex_disagreeing_with_the_id_is_422(registry: Registry) -> None:
    body = new_resident()
    body["sex"] = "female" if body["sex"] == "male" else "male"
    with registry.client("worker") as c:
        r = c.post("/residents", json=body)
    assert r.status_code == 422
    assert pointers(r) == {"#/sex"}


def test_invalid_json_and_oversized_bodies(registry: Registry) -> None:
    with registry.client("worker") as c:
        r = c.post("/residents", content=b"{not json", headers={"content-type": "application/json"})
        assert r.status_code == 422
        assert r.headers["content-type"].startswith(PROBLEM)
        huge = c.post("/residents", json={**new_resident(), "pad": "x" * 2_000_000})
        assert huge.status_code == 413
        assert huge.headers["content-type"].startswith(PROBLEM)


def test_bad_path_and_query_parameters(registry: Registry) -> None:
    with registry.client("worker") as c:
        assert c.get("/residents/42").status_code == 422
        r = c.get("/residents", params={"limit": 0, "age_min": -1, "place": "nope"})
        assert r.status_code == 422
        assert {"limit", "age_min"} <= pointers(r)
        assert c.get("/residents", params={"place": "nope"}).status_code == 422
        assert c.get("/residents", params={"cursor": "garbage"}).status_code == 400
        assert (
            c.patch("/residents/R-00000001", json={"birth_date": "1980-13-01"}).status_code == 422
        )
        assert c.get("/residents/R-00000001").json()["birth_date"] == "1980-05-03"


def test_bad_if_match_is_412(registry: Registry) -> None:
    with registry.client("worker") as c:
        r = c.patch("/residents/R-00000001", json={"sex": "male"}, headers={"If-Match": "nonsense"})
    assert r.status_code == 412
