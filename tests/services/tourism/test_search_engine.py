"""Place search in-process on both stores, against a brute-force answer: near searches read
distances from the index and bodies for the page only, a listing by category streams on
SQLite; every page, followed cursor by cursor, must be what measuring every place gives."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bench.tourism_data import Places
from services.tourism import hours, search
from services.tourism.geo import haversine_m
from services.tourism.repository import PLACES, TourismRepository, make_store
from services.tourism.search import Criteria, Near, PlaceSearch
from shared.errors import Unprocessable
from shared.storage import Create, Update

COUNT = 600
# FerretDB v1 evaluates every filter itself over the whole collection (docs/storage.md):
# fewer places there keep the test's hundreds of searches within a minute.
MONGO_COUNT = 150
# 02:30 in Beijing (few places open) and 10:30 (most open).
NIGHT = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)
DAY = datetime(2026, 12, 2, 2, 30, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
async def engine(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[PlaceSearch, list[dict[str, Any]]]]:
    """A store holding deterministic places (one retired), and a search on it."""
    count = COUNT
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/tourism.db"
    else:
        count = MONGO_COUNT
        server = request.getfixturevalue("ferretdb")
        url = server.uri.rstrip("/") + f"/t{uuid.uuid4().hex[:12]}"
    store = make_store(url)
    await store.open()
    try:
        data = Places(count)
        bodies = [data.document(i) for i in range(count)]
        for start in range(0, count, 500):
            await store.write([Create(PLACES, b, b["id"]) for b in bodies[start : start + 500]])
        bodies[7] = {**bodies[7], "state": "retired"}
        await store.write([Update(PLACES, bodies[7]["id"], bodies[7])])
        yield PlaceSearch(TourismRepository(store)), bodies
    finally:
        await store.close()


async def every_page(s: PlaceSearch, c: Criteria, limit: int) -> list[tuple[str, float | None]]:
    """The (id, distance) of every page of a search, following its cursors."""
    out: list[tuple[str, float | None]] = []
    cursor: str | None = None
    for _ in range(COUNT + 1):
        found = await s.search(c, limit=limit, cursor=cursor)
        out += [(r.id, d) for r, d in found.items]
        cursor = found.next_cursor
        if cursor is None:
            return out
    raise AssertionError("the cursors never end")


def brute_near(bodies: list[dict[str, Any]], near: Near, at: datetime | None) -> list[str]:
    """Active places within the radius (open at `at`), by distance then id."""
    scored = []
    for b in bodies:
        d = haversine_m(near.lat, near.lon, b["geo"]["latitude"], b["geo"]["longitude"])
        if b["state"] != "active" or d > near.radius_m:
            continue
        if at is not None and not hours.is_open(b.get("opening_hours"), at):
            continue
        scored.append((d, b["id"]))
    return [i for _, i in sorted(scored)]


@pytest.mark.parametrize("at", [None, NIGHT, DAY], ids=["any time", "night", "day"])
@pytest.mark.parametrize(("radius", "limit"), [(1500, 1), (5000, 7), (20_000, 40)])
async def test_near_pages_are_every_place_by_distance(engine, at, radius, limit) -> None:
    """Dense and sparse centres (up to 400 places within 20 km), many pages each."""
    s, bodies = engine
    for lat, lon in [(39.9087, 116.3975), (39.95, 116.35), (40.1, 116.7)]:
        near = Near(lat, lon, radius)
        got = await every_page(s, Criteria(near=near, open_at=at), limit)
        assert [i for i, _ in got] == brute_near(bodies, near, at)
        by_id = {b["id"]: b["geo"] for b in bodies}
        for i, d in got:
            geo = by_id[i]
            assert d == haversine_m(lat, lon, geo["latitude"], geo["longitude"])


@pytest.mark.parametrize("at", [NIGHT, DAY], ids=["night", "day"])
@pytest.mark.parametrize("limit", [1, 7, 20])
async def test_open_listing_by_category_is_every_open_place_in_id_order(engine, at, limit) -> None:
    s, bodies = engine
    for category in ("chinese-cuisine", "museum", "landmark"):
        c = Criteria(categories=(category,), wheelchair=True, open_at=at)
        got = [i for i, _ in await every_page(s, c, limit)]
        expected = sorted(
            b["id"]
            for b in bodies
            if b["category"] == category
            and b["state"] == "active"
            and b["accessibility"]["wheelchair"] == "yes"
            and hours.is_open(b.get("opening_hours"), at)
        )
        assert got == expected


async def test_a_near_search_over_too_many_candidates_is_refused(engine, monkeypatch) -> None:
    s, _ = engine
    monkeypatch.setattr(search, "MAX_CANDIDATES", 5)
    with pytest.raises(Unprocessable) as refused:
        await s.search(Criteria(near=Near(39.9087, 116.3975, 20_000)), limit=20, cursor=None)
    assert refused.value.errors == [
        {"field": "radius", "in": "query", "message": "too many places"}
    ]
