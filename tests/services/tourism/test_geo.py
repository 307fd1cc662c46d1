"""Geo helpers of place search (pure functions): distances, the box of a circle, the cells
that cover it — near the 180th meridian and the poles too."""

from __future__ import annotations

import math
import random

import pytest

from services.tourism.geo import (
    EARTH_RADIUS_M,
    MAX_CELLS,
    Box,
    cell_hash,
    circle_box,
    cover,
    haversine_m,
    place_cells,
)
from shared.storage.keys import geohash


def test_haversine_matches_known_distances() -> None:
    # One degree along a meridian is R * pi / 180 on the sphere.
    assert haversine_m(0, 0, 1, 0) == pytest.approx(EARTH_RADIUS_M * math.pi / 180, rel=1e-12)
    # Across the 180th meridian the short way round.
    assert haversine_m(0, 179.5, 0, -179.5) == pytest.approx(haversine_m(0, 0, 0, 1))
    # Pole to pole, and over a pole.
    assert haversine_m(90, 0, -90, 0) == pytest.approx(math.pi * EARTH_RADIUS_M)
    assert haversine_m(89, 0, 89, 180) == pytest.approx(haversine_m(0, 0, 2, 0))
    # Forbidden City to Temple of Heaven: about 3.9 km.
    assert 3_700 < haversine_m(39.9163, 116.3972, 39.8822, 116.4066) < 4_000
    assert haversine_m(12.5, 45.25, 12.5, 45.25) == 0


def test_circle_box_wraps_the_antimeridian_and_opens_at_the_poles() -> None:
    box = circle_box(10, 179.99, 5_000)
    assert box.crosses_antimeridian
    assert box.contains(10, -179.99)
    assert box.contains(10, 179.95)
    assert not box.contains(10, 0)
    west = circle_box(-20, -179.995, 2_000)
    assert west.crosses_antimeridian
    assert west.contains(-20, 179.999)
    polar = circle_box(89.99, 30, 5_000)
    assert (polar.west, polar.east, polar.north) == (-180, 180, 90)
    south = circle_box(-90, 0, 1_000)
    assert (south.west, south.east, south.south) == (-180, 180, -90)
    plain = circle_box(39.9, 116.4, 1_000)
    assert not plain.crosses_antimeridian
    assert plain.contains(39.9, 116.4)


def _random_point_within(
    lat: float, lon: float, radius: float, rng: random.Random
) -> tuple[float, float]:
    """A point at a random bearing and distance within `radius` (spherical destination)."""
    d = radius * rng.random() / EARTH_RADIUS_M
    bearing = rng.random() * 2 * math.pi
    p1, l1 = math.radians(lat), math.radians(lon)
    p2 = math.asin(math.sin(p1) * math.cos(d) + math.cos(p1) * math.sin(d) * math.cos(bearing))
    l2 = l1 + math.atan2(
        math.sin(bearing) * math.sin(d) * math.cos(p1), math.cos(d) - math.sin(p1) * math.sin(p2)
    )
    lon2 = (math.degrees(l2) + 540) % 360 - 180
    return max(-90.0, min(90.0, math.degrees(p2))), lon2


CENTRES = [
    (39.9163, 116.3972),
    (0, 179.999),
    (0, -179.999),
    (-45, 180),
    (89.999, 10),
    (90, 0),
    (-89.99, -120),
    (60, -179.5),
]


@pytest.mark.parametrize(("lat", "lon"), CENTRES)
@pytest.mark.parametrize("radius", [1, 150, 1_000, 5_000, 50_000])
def test_the_cover_holds_every_point_within_the_radius(
    lat: float, lon: float, radius: float
) -> None:
    rng = random.Random(f"{lat},{lon},{radius}")
    cells = cover(circle_box(lat, lon, radius))
    assert 1 <= len(cells) <= MAX_CELLS
    assert len({len(c) for c in cells}) == 1  # one precision
    for _ in range(300):
        plat, plon = _random_point_within(lat, lon, radius, rng)
        if haversine_m(lat, lon, plat, plon) > radius:
            continue  # rounding at the edge: not a point of the circle
        assert any(c in place_cells(plat, plon) for c in cells), (plat, plon, cells)


def test_cell_hashes_are_the_geohashes_of_their_cells() -> None:
    rng = random.Random(5)
    for precision in range(1, 10):
        rows, cols = 2 ** (5 * precision // 2), 2 ** ((5 * precision + 1) // 2)
        for _ in range(50):
            i, j = rng.randrange(rows), rng.randrange(cols)
            lat = -90 + (i + rng.random()) * 180 / rows
            lon = -180 + (j + rng.random()) * 360 / cols
            assert cell_hash(i, j, precision) == geohash(lat, lon, precision)


def test_a_small_circle_uses_fine_cells() -> None:
    cells = cover(circle_box(39.9163, 116.3972, 1_000))
    assert len(cells[0]) >= 5  # cells of at most about 5 km, not a whole province
    assert geohash(39.9163, 116.3972, len(cells[0])) in cells


def test_a_box_across_the_antimeridian_is_covered_on_both_sides() -> None:
    box = Box(south=-10, west=170, north=10, east=-170)
    cells = cover(box)
    for lat, lon in [(0, 175), (0, -175), (9.9, 179.99), (-9.9, -179.99)]:
        assert any(c in place_cells(lat, lon) for c in cells)
    assert not any(c in place_cells(0, 0) for c in cells)
