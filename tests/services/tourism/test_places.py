"""Places: every schema.org field kept, languages, roles, versions, retirement, and bad
input refused whole."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.tourism import Tourism, new_place, unique_word
from tests.services.tourism.helpers import PROBLEM, create, ok, pointers


def _found(tourism: Tourism, word: str) -> list[Any]:
    with tourism.client("editor") as editor:
        page = ok(editor.get("/places", params={"q": word}))
        retired = ok(editor.get("/places", params={"q": word, "state": "retired"}))
    found: list[Any] = page["items"] + retired["items"]
    return found


def test_a_place_keeps_every_field(tourism: Tourism) -> None:
    body = new_place(
        type="LodgingBusiness",
        category="hotel",
        name={"zh": "北京饭店", "en": f"Beijing Hotel {unique_word()}"},
        address={"street_address": "东长安街33号", "locality": "北京市", "postal_code": "100004"},
        opening_hours={
            "time_zone": "Asia/Shanghai",
            "regular": [{"day_of_week": ["Monday"], "opens": "18:00", "closes": "02:00"}],
            "special": [{"valid_from": "2026-12-25"}],
        },
        is_accessible_for_free=False,
        contact={
            "telephone": "+86 10 6513 7766",
            "email": "info@hotel.example",
            "url": "https://hotel.example/",
        },
        images=["https://img.example/a.jpg"],
        accessibility={"wheelchair": "limited", "features": ["elevator", "accessible-toilet"]},
    )
    with tourism.client("editor") as editor:
        r = editor.post("/places", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert r.headers["ETag"] == 'W/"1"'
        assert r.headers["Location"] == f"/places/{made['id']}"
    with tourism.anonymous() as public:
        again = ok(public.get(f"/places/{made['id']}"))
    for key in ("address", "opening_hours", "contact", "accessibility", "type", "category", "tags"):
        assert again[key] == made[key]
    assert again["geo"] == body["geo"]
    assert again["contact"]["email"] == "info@hotel.example"
    assert again["opening_hours"]["special"] == [
        {"valid_from": "2026-12-25", "valid_through": None, "opens": None, "closes": None}
    ]
    assert again["state"] == "active"
    assert again["aggregate_rating"] == {"count": 0, "average": None}
    assert again["translations"]["name"] == body["name"]
    # The public is not told who at the city edited it; editors are.
    assert "editor" not in again
    assert made["editor"]["username"] == "editor"
    assert isinstance(again["open_now"], bool)


def test_language_negotiation_and_fallback(tourism: Tourism) -> None:
    word = unique_word()
    with tourism.client("editor") as editor:
        both = create(editor, name={"zh": "故宫博物院", "en": f"Palace Museum {word}"})
        zh_only = create(editor, name={"zh": f"景山公园 {word}"}, description={"zh": "俯瞰故宫"})
    with tourism.anonymous() as public:
        r = public.get(f"/places/{both['id']}", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert r.headers["Content-Language"] == "en"
        assert r.json()["name"] == f"Palace Museum {word}"
        assert r.json()["category_label"] == "Museum"
        r = public.get(f"/places/{both['id']}", headers={"Accept-Language": "zh-CN"})
        assert r.headers["Content-Language"] == "zh"
        assert r.json()["name"] == "故宫博物院"
        assert r.json()["category_label"] == "博物馆"
        # Nothing offered, or a malformed header: the default, Chinese.
        for header in ("fr-FR, de;q=0.5", ";;;q=x", "x" * 2000):
            r = public.get(f"/places/{both['id']}", headers={"Accept-Language": header})
            assert r.status_code == 200
            assert r.headers["Content-Language"] == "zh"
        # English asked for, only Chinese there: the Chinese text, translations intact.
        r = public.get(f"/places/{zh_only['id']}", params={"lang": "en"})
        assert r.json()["name"] == f"景山公园 {word}"
        assert r.json()["description"] == "俯瞰故宫"
        assert r.json()["translations"]["name"] == {"zh": f"景山公园 {word}", "en": None}
        # lang= overrides Accept-Language; an unknown lang= is the caller's error.
        r = public.get(
            f"/places/{both['id']}", params={"lang": "en"}, headers={"Accept-Language": "zh"}
        )
        assert r.headers["Content-Language"] == "en"
        bad = public.get(f"/places/{both['id']}", params={"lang": "xx"})
        assert bad.status_code == 422
        assert pointers(bad) == {"lang"}
        bad = public.get("/places", params={"lang": "klingon", "q": word})
        assert bad.status_code == 422
        page = public.get("/places", params={"q": word}, headers={"Accept-Language": "en"})
        assert page.headers["Content-Language"] == "en"
        names = {i["name"] for i in page.json()["items"]}
    assert names == {f"Palace Museum {word}", f"景山公园 {word}"}


CASES: list[tuple[str, Any, set[str]]] = [
    ("latitude 91", lambda b: {**b, "geo": {"latitude": 91, "longitude": 116}}, {"#/geo/latitude"}),
    (
        "longitude 181",
        lambda b: {**b, "geo": {"latitude": 39, "longitude": 181}},
        {"#/geo/longitude"},
    ),
    ("no geo", lambda b: {k: v for k, v in b.items() if k != "geo"}, {"#/geo"}),
    ("no name", lambda b: {**b, "name": {}}, {"#/name"}),
    ("unknown type", lambda b: {**b, "type": "Castle"}, {"#/type"}),
    ("unknown category", lambda b: {**b, "category": "casino"}, {"#/category"}),
    ("category of another type", lambda b: {**b, "category": "hotel"}, {"#"}),
    (
        "bad time",
        lambda b: {
            **b,
            "opening_hours": {
                "regular": [{"day_of_week": ["Monday"], "opens": "25:00", "closes": "10:00"}]
            },
        },
        {"#/opening_hours/regular/0/opens"},
    ),
    (
        "bad day",
        lambda b: {
            **b,
            "opening_hours": {
                "regular": [{"day_of_week": ["Funday"], "opens": "09:00", "closes": "10:00"}]
            },
        },
        {"#/opening_hours/regular/0/day_of_week/0"},
    ),
    (
        "bad zone",
        lambda b: {**b, "opening_hours": {"time_zone": "Mars/Olympus", "regular": []}},
        {"#/opening_hours/time_zone"},
    ),
    ("free with a price", lambda b: {**b, "is_accessible_for_free": True}, {"#"}),
    ("negative price", lambda b: {**b, "admission": [{"price": -1}]}, {"#/admission/0/price"}),
    (
        "bad wheelchair",
        lambda b: {**b, "accessibility": {"wheelchair": "maybe"}},
        {"#/accessibility/wheelchair"},
    ),
    ("bad image", lambda b: {**b, "images": ["not a url"]}, {"#/images/0"}),
    ("unknown member", lambda b: {**b, "stars": 5}, {"#/stars"}),
    ("attractions of an attraction", lambda b: {**b, "includes_attraction": ["0" * 32]}, {"#"}),
]


@pytest.mark.parametrize(("label", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_bad_places_get_field_errors_and_nothing_is_written(
    tourism: Tourism, label: str, change: Any, expected: set[str]
) -> None:
    word = unique_word()
    body = change(new_place(tags=[word]))
    with tourism.client("editor") as editor:
        r = editor.post("/places", json=body)
    assert r.status_code == 422, r.text
    assert pointers(r) >= expected, r.json()
    assert _found(tourism, word) == []


def test_a_destination_includes_existing_attractions(tourism: Tourism) -> None:
    with tourism.client("editor") as editor:
        a = create(editor)
        dest = new_place(
            type="TouristDestination", category="scenic-area", includes_attraction=[a["id"]]
        )
        made = ok(editor.post("/places", json=dest), 201)
        assert made["includes_attraction"] == [a["id"]]
        missing = new_place(
            type="TouristDestination", category="district", includes_attraction=["f" * 32]
        )
        r = editor.post("/places", json=missing)
        assert r.status_code == 422
        assert pointers(r) == {"#/includes_attraction"}


def test_who_may_write(tourism: Tourism) -> None:
    body = new_place()
    with tourism.anonymous() as public:
        r = public.post("/places", json=body)
        assert r.status_code == 401
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.headers["WWW-Authenticate"].startswith("Bearer")
    with tourism.client("citizen") as citizen:
        r = citizen.post("/places", json=body)
        assert r.status_code == 403
        assert r.headers["content-type"].startswith(PROBLEM)
    with tourism.client("editor") as editor:
        made = create(editor)
    for client in (tourism.client("citizen"), tourism.as_("educator"), tourism.as_("service")):
        with client:
            assert client.patch(f"/places/{made['id']}", json={"tags": ["x"]}).status_code == 403
            assert client.post(f"/places/{made['id']}/retire").status_code == 403
            assert client.get(f"/places/{made['id']}").status_code == 200  # reading is public
    with tourism.client("admin") as admin:
        assert ok(admin.patch(f"/places/{made['id']}", json={"tags": ["checked"]}))["tags"] == [
            "checked"
        ]
    with tourism.anonymous() as public:
        r = public.get("/places", headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401


def test_changes_are_versioned_with_if_match(tourism: Tourism) -> None:
    with tourism.client("editor") as editor:
        made = create(editor)
        pid = made["id"]
        r = editor.patch(f"/places/{pid}", json={"tags": ["a", "b"]}, headers={"If-Match": 'W/"1"'})
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == 'W/"2"'
        stale = editor.patch(f"/places/{pid}", json={"tags": ["c"]}, headers={"If-Match": 'W/"1"'})
        assert stale.status_code == 412
        assert stale.headers["content-type"].startswith(PROBLEM)
        assert stale.json()["current_version"] == 2
        same = editor.patch(f"/places/{pid}", json={"tags": ["a", "b"]})
        assert same.json()["version"] == 2  # nothing changed, nothing written
        bad = editor.patch(
            f"/places/{pid}", json={"geo": {"latitude": 91, "longitude": 0}, "category": "hotel"}
        )
        assert bad.status_code == 422
        assert "#/geo/latitude" in pointers(bad)
        retired = editor.post(f"/places/{pid}/retire", headers={"If-Match": 'W/"1"'})
        assert retired.status_code == 412
        after = ok(editor.get(f"/places/{pid}"))
    assert after["version"] == 2
    assert after["tags"] == ["a", "b"]
    assert after["geo"] == made["geo"]


def test_retired_places_are_hidden_from_the_public(tourism: Tourism) -> None:
    word = unique_word()
    with tourism.client("editor") as editor:
        made = create(editor, tags=[word])
        retired = ok(editor.post(f"/places/{made['id']}/retire", headers={"If-Match": 'W/"1"'}))
        assert retired["state"] == "retired"
        assert retired["date_retired"]
        again = ok(editor.post(f"/places/{made['id']}/retire"))
        assert again["version"] == retired["version"]  # a retried request changes nothing
        assert editor.patch(f"/places/{made['id']}", json={"tags": ["x"]}).status_code == 409
        assert ok(editor.get(f"/places/{made['id']}"))["state"] == "retired"
        listed = ok(editor.get("/places", params={"q": word, "state": "retired"}))
        assert [i["id"] for i in listed["items"]] == [made["id"]]
    with tourism.anonymous() as public:
        r = public.get(f"/places/{made['id']}")
        assert r.status_code == 404
        assert r.headers["content-type"].startswith(PROBLEM)
        assert ok(public.get("/places", params={"q": word}))["items"] == []
        assert public.get("/places", params={"q": word, "state": "retired"}).status_code == 403
