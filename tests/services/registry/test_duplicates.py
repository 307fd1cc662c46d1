"""Duplicate detection at registration: same national ID (409) and probable duplicates."""

from __future__ import annotations

from datetime import date

from tests.fixtures.registry import Registry, new_national_id, new_phone, new_resident, unique_word
from tests.services.registry.helpers import register


def test_same_national_id_is_409_naming_the_resident_to_those_who_may_see_it(
    registry: Registry,
) -> None:
    with registry.client("worker") as a:
        first = register(a)
        again = new_resident(national_id=first["national_id"], birth_date=first["birth_date"])
        again["sex"] = first["sex"]
        r = a.post("/residents", json=again)
    assert r.status_code == 409
    assert r.json()["resident_id"] == first["id"]
    assert {e["pointer"] for e in r.json()["errors"]} == {"#/national_id"}


def test_same_national_id_from_outside_the_jurisdiction_is_a_neutral_409(
    registry: Registry,
) -> None:
    with registry.client("worker") as a:
        first = register(a)
    body = new_resident(community="110101/002/008", national_id=first["national_id"])
    body["birth_date"], body["sex"] = first["birth_date"], first["sex"]
    with registry.as_("community-worker", jurisdiction="110101/002/008") as b:
        r = b.post("/residents", json=body)
    assert r.status_code == 409
    assert "resident_id" not in r.json()
    assert first["id"] not in r.text


def test_x_and_lower_case_x_are_the_same_number(registry: Registry) -> None:
    born = date(1970, 1, 1)
    number = next(n for n in (new_national_id(born) for _ in range(200)) if n.endswith("X"))
    with registry.client("worker") as a:
        register(a, national_id=number, birth_date=born.isoformat(), sex="female")
        r = a.post(
            "/residents",
            json=new_resident(
                national_id=number.lower(), birth_date=born.isoformat(), sex="female"
            ),
        )
    assert r.status_code == 409


def test_same_name_and_birth_date_is_flagged_for_review(registry: Registry) -> None:
    family, given = unique_word().capitalize(), unique_word().capitalize()
    with registry.client("worker") as a:
        first = register(
            a,
            name={"latin": f"{family} {given}"},
            birth_date="1985-06-01",
            sex="male",
            national_id=None,
        )
        # Word order and case differ; still the same person, probably.
        second = register(
            a,
            name={"latin": f"{given.upper()} {family}"},
            birth_date="1985-06-01",
            sex="male",
            national_id=None,
        )
        other_day = register(
            a,
            name={"latin": f"{family} {given}"},
            birth_date="1985-06-02",
            sex="male",
            national_id=None,
        )
    assert first["review"] is None
    assert second["review"]["status"] == "pending"
    assert second["review"]["candidates"] == [
        {"resident_id": first["id"], "reasons": ["name+birth_date"]}
    ]
    assert other_day["review"] is None


def test_chinese_name_matches_its_pinyin(registry: Registry) -> None:
    with registry.client("worker") as a:
        r = register(
            a, name={"latin": "Zhang Wei"}, birth_date="1980-05-03", sex="male", national_id=None
        )
    assert {"resident_id": "R-00000001", "reasons": ["name+birth_date"]} in r["review"][
        "candidates"
    ]


def test_same_phone_is_flagged(registry: Registry) -> None:
    phone = new_phone()
    with registry.client("worker") as a:
        first = register(a, phone=phone)
        second = register(a, phone=phone)
        pending = a.get("/residents", params={"review": "pending", "phone": phone}).json()
    assert second["review"]["candidates"] == [{"resident_id": first["id"], "reasons": ["phone"]}]
    assert [i["id"] for i in pending["items"]] == [second["id"]]


def test_candidates_out_of_reach_are_not_shown(registry: Registry) -> None:
    phone = new_phone()
    with registry.as_("community-worker", jurisdiction="110101/002/008") as b:
        elsewhere = register(b, community="110101/002/008", phone=phone)
    with registry.client("worker") as a:
        here = register(a, phone=phone)
    assert here["review"] == {"status": "pending", "candidates": []}
    with registry.client("officer") as x:
        seen = x.get(f"/residents/{here['id']}").json()
    assert seen["review"]["candidates"] == [{"resident_id": elsewhere["id"], "reasons": ["phone"]}]
