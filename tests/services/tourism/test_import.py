"""GeoJSON import of places: a valid FeatureCollection is imported whole; any problem
refuses the whole file with an error per problem (its feature's index and pointer)."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.fixtures.tourism import Tourism, new_place, unique_word
from tests.services.tourism.helpers import PROBLEM, ok


def feature(lon: float, lat: float, **changes: Any) -> dict[str, Any]:
    properties = new_place(**changes)
    del properties["geo"]
    return {
        "type": "Feature",
        "geometry": {"type": "Point", "coordinates": [lon, lat]},
        "properties": properties,
    }


def collection(word: str, n: int = 3) -> dict[str, Any]:
    return {
        "type": "FeatureCollection",
        "features": [feature(116.39 + n_ * 0.01, 39.91, tags=[word]) for n_ in range(n)],
    }


def _count(tourism: Tourism, word: str) -> int:
    with tourism.anonymous() as public:
        return len(ok(public.get("/places", params={"q": word, "limit": 100}))["items"])


def test_a_valid_collection_is_imported_whole(tourism: Tourism) -> None:
    word = unique_word()
    doc = collection(word, 4)
    doc["features"][0]["geometry"]["coordinates"].append(43.5)  # an altitude is allowed
    with tourism.client("editor") as editor:
        r = editor.post(
            "/places/import", json=doc, headers={"Content-Type": "application/geo+json"}
        )
        assert r.status_code == 201, r.text
        assert r.json()["imported"] == 4
        first = ok(editor.get(f"/places/{r.json()['ids'][0]}"))
    assert first["geo"] == {"latitude": 39.91, "longitude": 116.39}  # [lon, lat] read right
    assert _count(tourism, word) == 4


def _break(doc: dict[str, Any], where: str) -> tuple[dict[str, Any], set[str]]:
    doc = copy.deepcopy(doc)
    f = doc["features"]
    if where == "latitude 91":
        f[1]["geometry"]["coordinates"] = [116.4, 91]
        return doc, {"#/features/1/geometry/coordinates/1"}
    if where == "lat lon swapped out of range":
        f[2]["geometry"]["coordinates"] = [39.9, 216.4]
        return doc, {"#/features/2/geometry/coordinates/1"}
    if where == "not a point":
        f[0]["geometry"] = {"type": "LineString", "coordinates": [[0, 0], [1, 1]]}
        return doc, {"#/features/0/geometry"}
    if where == "bad coordinates":
        f[0]["geometry"]["coordinates"] = ["116", 39.9]
        return doc, {"#/features/0/geometry/coordinates"}
    if where == "bad properties":
        f[1]["properties"]["category"] = "casino"
        f[2]["properties"]["name"] = {}
        return doc, {"#/features/1/properties/category", "#/features/2/properties/name"}
    if where == "not a feature":
        f[1] = {"type": "Point", "coordinates": [0, 0]}
        return doc, {"#/features/1"}
    if where == "geo in properties":
        f[0]["properties"]["geo"] = {"latitude": 1, "longitude": 2}
        return doc, {"#/features/0/properties/geo"}
    if where == "not a collection":
        return {"type": "Feature", "features": f}, {"#/type"}
    if where == "no features":
        return {"type": "FeatureCollection", "features": []}, {"#/features"}
    raise AssertionError(where)


CASES = [
    "latitude 91",
    "lat lon swapped out of range",
    "not a point",
    "bad coordinates",
    "bad properties",
    "not a feature",
    "geo in properties",
    "not a collection",
    "no features",
]


@pytest.mark.parametrize("where", CASES)
def test_a_bad_collection_writes_nothing(tourism: Tourism, where: str) -> None:
    word = unique_word()
    doc, expected = _break(collection(word), where)
    with tourism.client("editor") as editor:
        r = editor.post("/places/import", json=doc)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    problem = r.json()
    assert "nothing was imported" in problem["detail"]
    assert {e["pointer"] for e in problem["errors"]} >= expected
    for error in problem["errors"]:
        if error["pointer"].startswith("#/features/"):
            assert error["index"] == int(error["pointer"].split("/")[2])
    assert _count(tourism, word) == 0


def test_import_needs_an_editor_and_json(tourism: Tourism) -> None:
    word = unique_word()
    with tourism.client("citizen") as citizen:
        assert citizen.post("/places/import", json=collection(word)).status_code == 403
    with tourism.anonymous() as public:
        assert public.post("/places/import", json=collection(word)).status_code == 401
    with tourism.client("editor") as editor:
        r = editor.post(
            "/places/import",
            content=b'{"type": "FeatureCollection", "features": [',
            headers={"Content-Type": "application/geo+json"},
        )
        assert r.status_code == 422
        assert r.headers["content-type"].startswith(PROBLEM)
    assert _count(tourism, word) == 0
