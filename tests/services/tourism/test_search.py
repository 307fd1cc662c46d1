"""Place search on both stores: distance order and radius edges (near the 180th meridian and
the poles too), bounding boxes, text in Chinese and English, filters, opening hours,
paging, GeoJSON, and bad parameters.

Each test tags its places with a word of its own and searches with it (`q`), so tests that
share a server never see each other's places; the geo predicates apply all the same.
"""

from __future__ import annotations

import math
from typing import Any

import httpx
import pytest

from services.tourism.geo import EARTH_RADIUS_M, haversine_m
from tests.fixtures.tourism import Tourism, unique_word
from tests.services.tourism.helpers import create, ids, ok, pointers


def meridian_m(degrees: float) -> float:
    """The distance along a meridian on the service's sphere (docs/tourism.md)."""
    return EARTH_RADIUS_M * math.radians(degrees)


def near(
    client: httpx.Client, word: str, lat: float, lon: float, radius: float, **more: Any
) -> Any:
    params = {"q": word, "lat": lat, "lon": lon, "radius": radius, **more}
    return ok(client.get("/places", params=params))


def places(
    tourism: Tourism, word: str, points: list[tuple[float, float]], **changes: Any
) -> list[str]:
    with tourism.client("editor") as editor:
        return [create(editor, at=p, tags=[word], **changes)["id"] for p in points]


def test_near_is_sorted_by_distance_with_exact_edges(tourism: Tourism) -> None:
    word = unique_word()
    lat, lon = 31.2304, 121.4737
    offsets = [0.005, 0.001, 0.02, 0.003]  # north of the centre, in degrees
    made = places(tourism, word, [(lat + d, lon) for d in offsets])
    by_offset = dict(zip(offsets, made, strict=True))
    with tourism.anonymous() as public:
        page = near(public, word, lat, lon, 1000)
        assert ids(page) == [by_offset[0.001], by_offset[0.003], by_offset[0.005]]
        for item, d in zip(page["items"], [0.001, 0.003, 0.005], strict=True):
            assert item["distance_m"] == pytest.approx(meridian_m(d), abs=0.1)
        edge = meridian_m(0.005)
        inside = near(public, word, lat, lon, edge + 0.01)
        assert by_offset[0.005] in ids(inside)
        outside = near(public, word, lat, lon, edge - 0.01)
        assert by_offset[0.005] not in ids(outside)
        assert ids(near(public, word, lat, lon, 50_000))[-1] == by_offset[0.02]


def test_the_radius_is_a_circle_not_a_box(tourism: Tourism) -> None:
    # A place to the north-east: inside the circle's bounding box for radii well below
    # its distance, so only the exact distance can leave it out.
    word = unique_word()
    lat, lon = 22.5431, 114.0579
    corner = (lat + 0.004, lon + 0.004 / math.cos(math.radians(lat)))
    [pid] = places(tourism, word, [corner])
    d = haversine_m(lat, lon, *corner)
    assert d > meridian_m(0.0055)  # the box of a circle of radius d / 1.4 holds the corner
    with tourism.anonymous() as public:
        assert ids(near(public, word, lat, lon, d + 0.01)) == [pid]
        assert ids(near(public, word, lat, lon, d - 0.01)) == []
        assert ids(near(public, word, lat, lon, d / 1.4)) == []


def test_near_the_antimeridian(tourism: Tourism) -> None:
    word = unique_word()
    lat = -16.5  # Fiji
    east, west, far = places(tourism, word, [(lat, 179.998), (lat, -179.9995), (lat, -179.99)])
    with tourism.anonymous() as public:
        page = near(public, word, lat, 179.9995, 500)
        assert ids(page) == [west, east]
        assert page["items"][0]["distance_m"] < page["items"][1]["distance_m"] < 500
        assert ids(near(public, word, lat, 180, 2000)) == [west, east, far]
        assert ids(near(public, word, lat, -180, 2000)) == [west, east, far]
        assert ids(near(public, word, lat, -179.99, 100)) == [far]


def test_near_the_poles(tourism: Tourism) -> None:
    word = unique_word()
    a, b, c = places(tourism, word, [(89.995, 0), (89.996, 120), (89.99, -90)])
    s = places(tourism, word, [(-89.9995, 10)])[0]
    with tourism.anonymous() as public:
        page = near(public, word, 90, 0, 1000)
        assert ids(page) == [b, a]
        assert page["items"][0]["distance_m"] == pytest.approx(meridian_m(0.004), abs=0.1)
        assert ids(near(public, word, 90, 0, 1200)) == [b, a, c]
        # Across the pole: 0.0005 degrees to the pole, then 0.004 down the other side.
        over = near(public, word, 89.9995, -60, 600)
        assert ids(over) == [b, a]
        assert over["items"][0]["distance_m"] == pytest.approx(meridian_m(0.0045), abs=0.1)
        assert ids(near(public, word, -90, 0, 100)) == [s]
        assert ids(near(public, word, -90, 123, 50)) == []


def test_bounding_boxes(tourism: Tourism) -> None:
    word = unique_word()
    inside, edge, outside = places(tourism, word, [(40.0, 116.0), (40.5, 116.5), (41.0, 116.0)])
    e, w, centre = places(tourism, word, [(0.5, 175.0), (-0.5, -175.0), (0, 0)])
    with tourism.anonymous() as public:
        box = ok(public.get("/places", params={"q": word, "bbox": "115.5,39.5,116.5,40.5"}))
        assert set(ids(box)) == {inside, edge}  # edges included
        crossing = ok(public.get("/places", params={"q": word, "bbox": "170,-10,-170,10"}))
        assert set(ids(crossing)) == {e, w}
        assert centre not in ids(crossing)
        assert outside not in ids(box)
        world = ok(public.get("/places", params={"q": word, "bbox": "-180,-90,180,90"}))
        assert len(world["items"]) == 6
        assert not any("editor" in item for item in world["items"])  # staff not named
    with tourism.client("editor") as editor:
        staff = ok(editor.get("/places", params={"q": word, "bbox": "-180,-90,180,90"}))
        assert all(item["editor"]["username"] == "editor" for item in staff["items"])


def test_text_in_chinese_and_english(tourism: Tourism) -> None:
    word = unique_word()
    with tourism.client("editor") as editor:
        palace = create(editor, name={"zh": "颐和园", "en": "Summer Palace"}, tags=[word])["id"]
        temple = create(
            editor,
            name={"zh": "雍和宫", "en": "Lama Temple"},
            description={"zh": "藏传佛教寺院", "en": "A Tibetan Buddhist temple."},
            tags=[word],
        )["id"]
    with tourism.anonymous() as public:

        def q(text: str) -> set[str]:
            return set(ids(ok(public.get("/places", params={"q": f"{text} {word}"}))))

        assert q("颐和园") == {palace}
        assert q("和") == {palace, temple}  # one character: names
        assert q("佛教") == {temple}  # description
        assert q("summer") == {palace}
        assert q("PALA") == {palace}  # a word's start, any case
        assert q("tibetan") == {temple}
        assert q("palace temple") == set()
        r = public.get("/places", params={"q": "!!!"})
        assert r.status_code == 422
        assert pointers(r) == {"q"}


def test_filters(tourism: Tourism) -> None:
    word = unique_word()
    with tourism.client("editor") as editor:
        museum = create(editor, tags=[word])["id"]  # not free, wheelchair yes
        park = create(
            editor,
            category="park",
            is_accessible_for_free=True,
            admission=[],
            accessibility={"wheelchair": "no"},
            tags=[word],
        )["id"]
        hotel = create(editor, type="LodgingBusiness", category="hotel", tags=[word])["id"]
    with tourism.anonymous() as public:

        def f(**params: Any) -> set[str]:
            return set(ids(ok(public.get("/places", params={"q": word, **params}))))

        assert f() == {museum, park, hotel}
        assert f(category="park") == {park}
        assert f(category=["park", "museum"]) == {park, museum}
        assert f(type="LodgingBusiness") == {hotel}
        assert f(free="true") == {park}
        assert f(free="false") == {museum, hotel}
        assert f(wheelchair="true") == {museum, hotel}
        assert f(wheelchair="true", free="true") == set()
        assert f(lat=39.9163, lon=116.3972, radius=10, category="park") == {park}
        # Without area or text the category drives the search (another index key).
        with tourism.client("editor") as editor:
            zoo = create(editor, category="zoo", tags=[word])["id"]
        assert set(ids(ok(public.get("/places", params={"category": "zoo"})))) == {zoo}
        tuesday = {"category": "zoo", "open_at": "2026-12-01T10:00:00+08:00"}
        assert set(ids(ok(public.get("/places", params=tuesday)))) == {zoo}
        monday = {"category": "zoo", "open_at": "2026-11-30T10:00:00+08:00"}
        assert ids(ok(public.get("/places", params=monday))) == []
        r = public.get("/places", params={"category": "casino"})
        assert r.status_code == 422
        assert pointers(r) == {"category"}


def test_open_at_a_given_time(tourism: Tourism) -> None:
    word = unique_word()
    week = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
    with tourism.client("editor") as editor:
        day = create(editor, tags=[word])["id"]  # Tuesday and Wednesday 09:00-17:00
        bar = create(
            editor,
            category="theatre",
            tags=[word],
            opening_hours={"regular": [{"day_of_week": week, "opens": "18:00", "closes": "02:00"}]},
        )["id"]
        closed_today = create(
            editor,
            tags=[word],
            opening_hours={
                "regular": [{"day_of_week": week, "opens": "08:00", "closes": "20:00"}],
                "special": [{"valid_from": "2026-12-01"}],
            },
        )["id"]
        create(editor, tags=[word], opening_hours=None)  # hours unknown: never "open"
        # Monday 06:00 in Beijing is Sunday 22:00 UTC: its index span wraps the week.
        breakfast = create(
            editor,
            category="theatre",
            tags=[word],
            opening_hours={
                "regular": [{"day_of_week": ["Monday"], "opens": "06:00", "closes": "09:00"}]
            },
        )["id"]
    with tourism.anonymous() as public:

        def open_at(when: str, **more: Any) -> set[str]:
            params = {"q": word, "open_at": when, **more}
            return set(ids(ok(public.get("/places", params=params))))

        assert open_at("2026-12-01T10:00:00+08:00") == {day}  # a Tuesday
        assert open_at("2026-12-02T10:00:00+08:00") == {day, closed_today}
        assert open_at("2026-12-02T02:00:00Z") == {day, closed_today}  # 10:00 in Beijing
        assert open_at("2026-12-02T10:00:00") == {day, closed_today}  # no zone: Beijing
        assert open_at("2026-12-02T01:30:00+08:00") == {bar}  # after midnight
        assert open_at("2026-12-01T23:00:00+08:00", lat=39.9163, lon=116.3972) == {bar}
        assert open_at("2026-12-03T10:00:00+08:00") == {closed_today}
        assert open_at("2026-11-30T07:00:00+08:00") == {breakfast}  # a Monday
        assert open_at("2026-11-29T23:30:00Z") == {breakfast}
        r = public.get("/places", params={"q": word, "open_at": "tomorrow"})
        assert r.status_code == 422
        assert pointers(r) == {"open_at"}
        listed = ok(public.get("/places", params={"q": word, "open_now": "true"}))
        assert all(item["open_now"] for item in listed["items"])
        # Paging "open now" keeps the first page's instant: the cursor stays valid.
        week = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
        always = {"regular": [{"day_of_week": week, "opens": "00:00", "closes": "24:00"}]}
        other = unique_word()
        with tourism.client("editor") as editor:
            for _ in range(3):
                create(editor, tags=[other], opening_hours=always)
        seen: list[str] = []
        r = public.get("/places", params={"q": other, "open_now": "true", "limit": 2})
        while True:
            page = ok(r)
            seen += ids(page)
            if not page["next"]:
                break
            r = public.get(page["next"])
        assert len(set(seen)) == len(seen) == 3


def test_cursor_paging(tourism: Tourism) -> None:
    word = unique_word()
    made = places(tourism, word, [(-33.8688 + 0.001 * n, 151.2093) for n in range(7)])
    with tourism.anonymous() as public:
        for params in ({"lat": -33.8688, "lon": 151.2093, "radius": 5000}, {}):
            seen: list[str] = []
            r = public.get("/places", params={"q": word, "limit": 3, **params})
            while True:
                page = ok(r)
                assert len(page["items"]) <= 3
                seen += ids(page)
                if not page["next"]:
                    break
                r = public.get(page["next"])
            assert sorted(seen) == sorted(made)
            assert len(seen) == len(set(seen))
            if params:
                assert seen == made  # by distance
        first = ok(public.get("/places", params={"q": word, "limit": 3}))
        other = public.get(first["next"].replace(f"q={word}", "q=other"))
        assert other.status_code == 400
        assert public.get("/places", params={"q": word, "cursor": "%%%"}).status_code == 400


def _valid_feature_collection(doc: dict[str, Any]) -> None:
    """RFC 7946 structure checks of a FeatureCollection of Points."""
    assert doc["type"] == "FeatureCollection"
    assert isinstance(doc["features"], list)
    for feature in doc["features"]:
        assert feature["type"] == "Feature"
        assert isinstance(feature["id"], str)
        assert isinstance(feature["properties"], dict)
        geometry = feature["geometry"]
        assert geometry["type"] == "Point"
        lon, lat = geometry["coordinates"]
        assert -180 <= lon <= 180
        assert -90 <= lat <= 90
        assert "geo" not in feature["properties"]


def test_geojson_output(tourism: Tourism) -> None:
    word = unique_word()
    [pid] = places(tourism, word, [(39.9163, 116.3972)])
    with tourism.anonymous() as public:
        r = public.get(
            "/places",
            params={"q": word, "format": "geojson", "lat": 39.9, "lon": 116.4, "radius": 5000},
        )
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("application/geo+json")
        doc = r.json()
        _valid_feature_collection(doc)
        [feature] = doc["features"]
        assert feature["id"] == pid
        assert feature["geometry"]["coordinates"] == [116.3972, 39.9163]  # [lon, lat]
        assert feature["properties"]["distance_m"] > 0
        by_accept = public.get(
            "/places", params={"q": word}, headers={"Accept": "application/geo+json"}
        )
        assert by_accept.headers["content-type"].startswith("application/geo+json")
        _valid_feature_collection(by_accept.json())
        one = public.get(f"/places/{pid}", params={"format": "geojson"})
        assert one.headers["content-type"].startswith("application/geo+json")
        assert one.json()["type"] == "Feature"
        assert one.json()["geometry"]["coordinates"] == [116.3972, 39.9163]


BAD: list[tuple[dict[str, Any], str]] = [
    ({"lat": 91, "lon": 0}, "lat"),
    ({"lat": -90.5, "lon": 0}, "lat"),
    ({"lat": 0, "lon": 181}, "lon"),
    ({"lat": 0, "lon": 0, "radius": -5}, "radius"),
    ({"lat": 0, "lon": 0, "radius": 0}, "radius"),
    ({"lat": 0, "lon": 0, "radius": 50_001}, "radius"),
    ({"lat": 0, "lon": 0, "radius": "far"}, "radius"),
    ({"lat": 0}, "lon"),
    ({"bbox": "1,2,3"}, "bbox"),
    ({"bbox": "0,10,10,0"}, "bbox"),
    ({"bbox": "0,0,200,10"}, "bbox"),
    ({"format": "kml"}, "format"),
    ({"type": "Castle"}, "type"),
]


@pytest.mark.parametrize(("params", "field"), BAD, ids=[str(p) for p, _ in BAD])
def test_bad_parameters_are_problems(tourism: Tourism, params: dict[str, Any], field: str) -> None:
    with tourism.anonymous() as public:
        r = public.get("/places", params=params)
    assert r.status_code == 422, r.text
    assert field in pointers(r)
