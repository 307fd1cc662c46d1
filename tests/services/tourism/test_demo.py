"""The dev stack's demo data: places around Beijing and events at them, loaded once, on
both stores; and the dev stack starts the service with it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from services.tourism.demo import EVENTS_DATA, PLACES_DATA
from tests.fixtures.ferretdb import database
from tests.fixtures.identity import dev_idp
from tests.fixtures.tourism import Tourism, serve
from tests.services.tourism.helpers import ids, ok
from tools.devstack import PROCESSES


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def demo(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, dev_issuer: Any
) -> Iterator[Tourism]:
    tmp = tmp_path_factory.mktemp("tourism-demo")
    idp = dev_idp(dev_issuer)
    if request.param == "sqlite":
        yield from serve(f"sqlite:///{tmp}/tourism.db", idp, tmp, HUIMIN_DEMO_DATA="1")
    else:
        with database(request.getfixturevalue("ferretdb"), "tourismdemo") as url:
            yield from serve(url, idp, tmp, HUIMIN_DEMO_DATA="1")


def test_demo_places_and_events_loaded_once(demo: Tourism) -> None:
    places = len(PLACES_DATA) + 1  # and the Central Axis destination
    with demo.anonymous() as public:
        everything = ok(public.get("/places", params={"limit": 100}))
        assert len(everything["items"]) == places
        near = ok(public.get("/places", params={"lat": 39.9163, "lon": 116.3972, "radius": 1500}))
        assert near["items"][0]["name"] == "故宫博物院"
        assert near["items"][0]["distance_m"] == 0
        axis = ok(public.get("/places", params={"q": "中轴线", "type": "TouristDestination"}))
        assert len(axis["items"][0]["includes_attraction"]) == 4
        events = ok(public.get("/events", params={"from": "2026-11-01", "to": "2027-03-31"}))
        assert len(events["items"]) == len(EVENTS_DATA)
        assert {e["event_status"] for e in events["items"]} == {
            "scheduled",
            "postponed",
            "cancelled",
        }
        first = ids(everything)
    demo.server.stop()  # a second start loads nothing again
    demo.server.start()
    with demo.anonymous() as public:
        assert ids(ok(public.get("/places", params={"limit": 100}))) == first


def test_the_dev_stack_runs_the_service_with_demo_data() -> None:
    spec = next(p for p in PROCESSES if p.name == "tourism")
    assert spec.module == "services.tourism"
    assert spec.port == 8004
    assert spec.env["HUIMIN_DEMO_DATA"] == "true"
