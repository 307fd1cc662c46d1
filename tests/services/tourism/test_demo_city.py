"""The generated tourism demo: real-looking places near real neighbourhoods, loaded once."""

from __future__ import annotations

import math
from pathlib import Path

from services.tourism.demo import EVENTS_DATA, PLACES_DATA, load_demo
from services.tourism.demo_city import AREAS, city_events, city_places, load_city
from services.tourism.repository import EVENTS, PLACES, TourismRepository, make_store
from services.tourism.service import EventService, PlaceService


def test_places_are_the_same_on_every_call_distinct_and_near_their_neighbourhood():
    places = city_places(100)
    assert places == city_places(100)
    assert len({key for key, _, _ in places}) == 100
    centres = {f"city-{key}-": (lat, lon) for key, _, _, lat, lon in AREAS}
    for key, _, body in places:
        assert body.geo is not None
        lat, lon = next(c for prefix, c in centres.items() if key.startswith(prefix))
        north = (body.geo.latitude - lat) * 111_000
        east = (body.geo.longitude - lon) * 111_000 * math.cos(math.radians(lat))
        assert math.hypot(north, east) < 600, key


def test_events_happen_this_winter_at_generated_places():
    events = city_events(city_places(100))
    assert len(events) >= 30
    assert all("2026-12-01" <= e.start_date.isoformat() < "2027-04" for _, e in events)


async def test_loading_twice_writes_everything_once(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path}/tourism.db")
    await store.open()
    try:
        repo = TourismRepository(store)
        places, events = PlaceService(repo), EventService(repo)
        await load_demo(places, events)
        first = await load_city(places, events, 100)
        counts = (await store.count(PLACES), await store.count(EVENTS))
        assert await load_city(places, events, 100) == first
        assert (await store.count(PLACES), await store.count(EVENTS)) == counts
        # The hand-written places (and the Central Axis) and events, and the generated ones.
        assert first[0] == 100
        assert counts == (len(PLACES_DATA) + 1 + 100, len(EVENTS_DATA) + first[1])
    finally:
        await store.close()
