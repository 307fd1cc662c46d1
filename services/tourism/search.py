"""Place search: near a point (by distance), inside a box, full text in Chinese and English,
filters (type, category, free, wheelchair access, open at an instant), cursor paging — every
part answered from the storage indexes (docs/tourism.md has the method and its limits).

- **Near**: a circle's bounding box is covered by at most 128 geohash cells of one
  precision (`geo.cover`), asked as `In(cell, ...)` with the box's latitudes and
  longitudes as `Range`s; those candidates (at most `MAX_CANDIDATES`) get their exact
  haversine distance, those within the radius (edge included) are sorted by (distance,
  id). The circle widens in
  steps up to the radius asked and stops once a page is found. The cursor is the last
  (distance, id) given, so a page never repeats or skips a place.
- **Box**: covering cells plus exact `Range`s on latitude and longitude (two longitude
  ranges when the box crosses the 180th meridian): the index alone decides.
- **Text**: the query is cut like the indexed names (`shared.storage.keys.terms`): CJK
  bigrams and short words must all be held (`AllOf`), longer Latin words are prefixes.
- **Open at**: the weekly and special opening spans (hours.py) give a superset of the
  places open then; `hours.is_open` decides each one exactly.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from services.tourism import hours
from services.tourism.geo import Box, circle_box, cover, haversine_m
from services.tourism.repository import PLACES, TourismRepository
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Unprocessable
from shared.storage import (
    AllOf,
    AnyOf,
    Bounds,
    Eq,
    In,
    Predicate,
    Prefix,
    Query,
    Range,
    Record,
    Span,
)
from shared.storage.keys import terms

MAX_RADIUS_M = 50_000
MAX_CANDIDATES = 5_000
# A near search starts with a circle of a sixteenth of the radius (at least MIN_STEP_M
# metres) and widens it until it holds a page or reaches the radius.
MIN_STEP_M = 50.0
MAX_QUERY_TERMS = 16
PREFIX_MIN = 3
# Rounds of store reads a page filtered by opening hours may take before it is returned
# short (its cursor still goes on): bounds the work of one request.
MAX_ROUNDS = 8


@dataclass(frozen=True, slots=True)
class Near:
    """A circle: centre (degrees) and radius (metres)."""

    lat: float
    lon: float
    radius_m: float


@dataclass(frozen=True, slots=True)
class Criteria:
    """The parameters of `GET /places` (all optional, AND-combined)."""

    q: str | None = None
    types: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    free: bool | None = None
    wheelchair: bool | None = None
    open_at: datetime | None = None
    # `open_at` is "now": the later pages keep the first page's instant (in the cursor).
    open_now: bool = False
    near: Near | None = None
    box: Box | None = None
    state: str = "active"


@dataclass
class Found:
    """One page of places, with each one's distance (metres) in a near search."""

    items: list[tuple[Record, float | None]]
    next_cursor: str | None


def text_predicates(q: str) -> list[Predicate]:
    """Index predicates a text query needs; 422 for one with no terms or too many."""
    found = terms(q)
    if not found or len(found) > MAX_QUERY_TERMS:
        message = "has no searchable words" if not found else f"has over {MAX_QUERY_TERMS} terms"
        raise Unprocessable(
            "The search text cannot be used.",
            errors=[{"field": "q", "in": "query", "message": message}],
        )
    exact = [t for t in found if not (t.isascii() and len(t) >= PREFIX_MIN)]
    where: list[Predicate] = [AllOf("term", exact)] if exact else []
    where.extend(Prefix("term", t) for t in found if t.isascii() and len(t) >= PREFIX_MIN)
    return where


def box_predicates(box: Box) -> list[Predicate]:
    """Exact index predicates of a box: its covering cells, latitudes and longitudes."""
    lon: Predicate
    if box.crosses_antimeridian:
        lon = AnyOf([Range("lon", ge=box.west), Range("lon", le=box.east)])
    else:
        lon = Range("lon", ge=box.west, le=box.east)
    return [In("cell", cover(box)), Range("lat", ge=box.south, le=box.north), lon]


def open_predicate(at: datetime) -> Predicate:
    """Places whose weekly or special spans hold the instant (a superset of the open ones)."""
    week = hours.week_point(at)
    return AnyOf(
        [
            Span("open_week", low=Bounds(le=week), high=Bounds(gt=week)),
            Span("open_dates", low=Bounds(le=at), high=Bounds(gt=at)),
        ]
    )


class PlaceSearch:
    """Searches places."""

    def __init__(self, repo: TourismRepository) -> None:
        self.repo = repo

    def where(self, c: Criteria) -> list[Predicate]:
        """The index predicates of a search. Order matters among predicates of equal rank
        (the store drives by the first): the area and the text first, facets after."""
        where: list[Predicate] = []
        if c.box is not None:
            where += box_predicates(c.box)
        if c.q:
            where += text_predicates(c.q)
        if c.types:
            where.append(In("type", list(c.types)))
        if c.categories:
            drives = c.near is None and c.box is None and not c.q
            where.append(In("kind" if drives else "category", list(c.categories)))
        if c.free is not None:
            where.append(Eq("free", "yes" if c.free else "no"))
        if c.wheelchair is not None:
            where.append(Eq("wheelchair", "yes" if c.wheelchair else "no"))
        if c.open_at is not None:
            where.append(open_predicate(c.open_at))
        where.append(Eq("state", c.state))
        return where

    async def search(self, c: Criteria, *, limit: int, cursor: str | None) -> Found:
        """One page of matching places."""
        stable = replace(c, open_at=None) if c.open_now else c
        fingerprint = hashlib.sha256(repr((stable, limit)).encode()).hexdigest()[:16]
        state = decode_cursor(cursor, fingerprint) if cursor else {}
        if c.open_now and "t" in state:
            c = replace(c, open_at=datetime.fromisoformat(str(state["t"])))
        # What every cursor of this search carries: the search, and the instant of "now".
        mark: dict[str, Any] = {"h": fingerprint}
        if c.open_now and c.open_at is not None:
            mark["t"] = c.open_at.isoformat()
        where = self.where(c)
        if c.near is not None:
            return await self._near(c, c.near, where, limit, state, mark)
        return await self._listed(c, where, limit, state, mark)

    def _open(self, c: Criteria, record: Record) -> bool:
        return c.open_at is None or bool(hours.is_open(record.body.get("opening_hours"), c.open_at))

    async def _near(
        self,
        c: Criteria,
        near: Near,
        where: list[Predicate],
        limit: int,
        state: dict[str, Any],
        mark: dict[str, Any],
    ) -> Found:
        after = (float(state["d"]), str(state["i"])) if "d" in state else (-1.0, "")
        # Widening circles: every place within a step's radius is among that step's
        # candidates, and nearer than any place outside it, so once a step holds a page
        # (and one more, to know a next page exists) past the cursor, the page is final.
        # Dense areas stop at a small circle; only a sparse one reads the whole radius.
        radius = min(near.radius_m, max(MIN_STEP_M, near.radius_m / 16, after[0] * 1.25))
        bodies: dict[str, Record | None] = {}  # read once per request, kept across steps
        while True:
            # Distances come from the coordinates in the index; bodies are read nearest
            # first, only as far as the page (and the opening hours, when asked) needs.
            points = await self._candidates(near, radius, where)
            ranked = sorted(p for p in points if p[0] <= radius and p > after)
            # The index's candidates hold every match (opening hours: a superset), so a
            # step with no page among them needs no body read.
            found = len(ranked)
            if found > limit or radius >= near.radius_m:
                scored = await self._accepted(c, ranked, limit + 1, bodies)
                found = len(scored)
                if found > limit or radius >= near.radius_m:
                    break
            # The radius that holds a page, guessed from the density found so far (places
            # grow with the area): at least half as wide again, at most four times.
            grow = 1.2 * math.sqrt((limit + 1) / found) if found else 4.0
            radius = min(near.radius_m, radius * min(4.0, max(1.5, grow)))
        page_items = scored[:limit]
        nxt = None
        if len(scored) > limit:
            last = page_items[-1]
            nxt = encode_cursor({**mark, "d": last[0], "i": last[1]})
        return Found([(r, d) for d, _, r in page_items], nxt)

    async def _accepted(
        self,
        c: Criteria,
        ranked: list[tuple[float, str]],
        need: int,
        bodies: dict[str, Record | None],
    ) -> list[tuple[float, str, Record]]:
        """The first `need` places of `ranked` (distance, id) that are open when asked (all
        of them when fewer are), reading the bodies of those it looks at."""
        out: list[tuple[float, str, Record]] = []
        start = 0
        while len(out) < need and start < len(ranked):
            # Opening hours reject few of the index's candidates: a little more than the
            # page still needs is read at once.
            wanted = need - len(out)
            stop = start + (wanted + wanted // 4 + 2 if c.open_at is not None else wanted)
            batch = ranked[start:stop]
            missing = [i for _, i in batch if i not in bodies]
            if missing:
                found = await self.repo.many(PLACES, missing)
                bodies.update({i: found.get(i) for i in missing})
            for d, i in batch:
                record = bodies[i]
                # None: retired or deleted since its keys were read.
                if record is not None and self._open(c, record) and len(out) < need:
                    out.append((d, i, record))
            start = stop
        return out

    async def _candidates(
        self, near: Near, radius: float, where: list[Predicate]
    ) -> list[tuple[float, str]]:
        """(distance, id) of the places in the cells covering a circle (and its latitudes)
        that match the other predicates: at most MAX_CANDIDATES (422 beyond)."""
        # The cells drive; the box's exact latitudes and longitudes are index checks per
        # candidate; the coordinates are read from the index, no body.
        area = box_predicates(circle_box(near.lat, near.lon, radius))
        found = await self.repo.key_values(PLACES, area + where, ["lat", "lon"], MAX_CANDIDATES)
        if found.more:
            raise Unprocessable(
                f"Over {MAX_CANDIDATES} places lie in the area searched; "
                "search a smaller radius or add a filter.",
                errors=[{"field": "radius", "in": "query", "message": "too many places"}],
            )
        return [
            (haversine_m(near.lat, near.lon, v["lat"][0], v["lon"][0]), i)
            for i, v in found.values.items()
        ]

    async def _listed(
        self,
        c: Criteria,
        where: list[Predicate],
        limit: int,
        state: dict[str, Any],
        mark: dict[str, Any],
    ) -> Found:
        # Each round asks for exactly what the page still needs, so every record read is
        # either given or rejected, and the store's cursor is where the next page starts.
        items: list[tuple[Record, float | None]] = []
        store_cursor = state.get("c")
        for _ in range(MAX_ROUNDS):
            page = await self.repo.search(
                PLACES, Query(where=where, limit=limit - len(items), cursor=store_cursor)
            )
            items += [(r, None) for r in page.items if self._open(c, r)]
            store_cursor = page.next_cursor
            if store_cursor is None or len(items) >= limit:
                break
        nxt = encode_cursor({**mark, "c": store_cursor}) if store_cursor else None
        return Found(items, nxt)
