"""The tourism benchmark's places: valid, deterministic, around Beijing, stored as the
service stores them; its loader and its request targets."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.tourism import load
from bench.tourism_data import CENTRE, Places, fingerprint, targets
from services.tourism.geo import haversine_m
from services.tourism.repository import PLACES, make_store
from services.tourism.schemas import PlaceIn
from shared.storage import Create, Eq

DATA = Places(size=5_000)


def test_places_are_valid_deterministic_and_around_beijing() -> None:
    sample = [DATA.document(i) for i in range(0, DATA.size, 25)]
    for doc in sample:
        PlaceIn.model_validate({k: v for k, v in doc.items() if k in PlaceIn.model_fields})
    assert DATA.document(7) == Places(5_000).document(7)
    assert DATA.document(7) != Places(5_000, seed=12).document(7)
    distances = sorted(
        haversine_m(*CENTRE, d["geo"]["latitude"], d["geo"]["longitude"]) for d in sample
    )
    assert distances[len(distances) // 4] < 10_000  # crowded near the centre
    assert distances[-1] < 60_000
    kinds = Counter(d["type"] for d in sample)
    assert kinds.most_common(1)[0][0] == "Restaurant"
    assert sum(d["opening_hours"] is None for d in sample) < len(sample) / 4


async def test_load_writes_every_place_once_and_resumes(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 't.db'}"
    data = Places(size=300)
    store = make_store(url)
    await store.open()
    try:  # as an interrupted load leaves it: the first 120 written
        await store.write([Create(PLACES, data.document(i), data.id(i)) for i in range(120)])
    finally:
        await store.close()
    await load(data, url, batch=100)
    await load(data, url, batch=100)  # nothing left: nothing written twice
    store = make_store(url)
    await store.open()
    try:
        assert await store.count(PLACES, [Eq("state", "active")]) == 300
        last = await store.get(PLACES, data.id(299))
        assert last.version == 1
        assert last.body == data.document(299)
    finally:
        await store.close()


def test_fingerprint_follows_the_documents() -> None:
    assert fingerprint(Places(500)) == fingerprint(Places(500))
    assert fingerprint(Places(500)) != fingerprint(Places(500, seed=3))


@pytest.mark.parametrize("name", ["read", "near-1km", "near-5km", "near-open", "open-category"])
def test_targets_are_varied_requests_some_as_a_citizen(name: str) -> None:
    found = list(targets(name, DATA, "http://x", 400, "TOKEN"))
    # Open-now by category has one request per category; the others a point each.
    assert len({t.url for t in found}) > (10 if name == "open-category" else 300)
    with_token = sum(1 for t in found if t.headers)
    assert 50 < with_token < 150
    for t in found[:50]:
        query = parse_qs(urlsplit(t.url).query)
        if name.startswith("near"):
            assert {"lat", "lon", "radius"} <= set(query)
        if name.endswith("open") or name == "open-category":
            assert query["open_now"] == ["true"]
