"""All data access of the tourism service: collections, the index keys extracted from each
document at write time, and the reads and writes the services need.

Collections: `places`, `events`, `reviews` (one per citizen and place, its id derived from
the pair) and `ratings` (each place's review count and average, its id the place's). Every
query is predicates on index keys; nothing reads a collection to filter it in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.tourism import hours
from services.tourism.geo import place_cells
from shared.storage import KeyType, KeyValues, Predicate, Record, Store, WriteOp, open_store
from shared.storage.documents import DESCRIPTION_INDEXED_CHARS, DocumentRepository, index_terms
from shared.storage.documents import derived_id as derived_id
from shared.storage.schema import CollectionSpec, Keys

PLACES = "places"
EVENTS = "events"
REVIEWS = "reviews"
RATINGS = "ratings"


def search_terms(body: Mapping[str, Any]) -> list[str]:
    """Search terms of a place or event: words and CJK bigrams of names, descriptions and
    tags, and the single CJK characters of names and tags (a one-character query)."""
    name = body.get("name") or {}
    desc = body.get("description") or {}
    short = [v for v in (name.get("zh"), name.get("en")) if v] + list(body.get("tags") or [])
    long = [v[:DESCRIPTION_INDEXED_CHARS] for v in (desc.get("zh"), desc.get("en")) if v]
    return index_terms(short, long)


def place_keys(body: Mapping[str, Any]) -> Keys:
    """Index keys of a place (geo cells and coordinates, facets, text, opening spans)."""
    geo = body["geo"]
    lat, lon = float(geo["latitude"]), float(geo["longitude"])
    opening = body.get("opening_hours")
    return {
        "_id": body["id"],
        "state": body["state"],
        "type": body["type"],
        "category": body["category"],
        # The same value under a key that may drive a search (see SPECS).
        "kind": body["category"],
        "free": "yes" if body["is_accessible_for_free"] else "no",
        "wheelchair": body["accessibility"]["wheelchair"],
        "term": search_terms(body),
        "cell": place_cells(lat, lon),
        "lat": lat,
        "lon": lon,
        "open_week": hours.week_spans(opening),
        "open_dates": hours.special_spans(opening),
    }


def event_keys(body: Mapping[str, Any]) -> Keys:
    """Index keys of an event: its time span, location, status and text."""
    start = datetime.fromisoformat(body["start_date"])
    end = datetime.fromisoformat(body["end_date"])
    return {
        "_id": body["id"],
        "state": body["state"],
        "location": body["location"],
        "status": body["event_status"],
        "start": start,
        "when": (start, end),
        "term": search_terms(body),
    }


def review_keys(body: Mapping[str, Any]) -> Keys:
    """Index keys of a review: the place, its author and rating (counted per value)."""
    return {
        "place": body["place"],
        "author": body["author"],
        "rating": str(body["rating"]),
        "date": datetime.fromisoformat(body["date_modified"]),
    }


def _rating_keys(body: Mapping[str, Any]) -> Keys:
    return {"_id": body["place"]}


SPECS = [
    CollectionSpec(
        PLACES,
        keys={
            "_id": KeyType.TEXT,
            "state": KeyType.TEXT,
            "type": KeyType.TEXT,
            "category": KeyType.TEXT,
            "kind": KeyType.TEXT,
            "free": KeyType.TEXT,
            "wheelchair": KeyType.TEXT,
            "term": KeyType.TEXT,
            "cell": KeyType.TEXT,
            "lat": KeyType.NUMBER,
            "lon": KeyType.NUMBER,
            "open_week": KeyType.SPAN,
            "open_dates": KeyType.SPAN,
        },
        extract=place_keys,
        # Few values each, shared by many places: checked, never the driving index while
        # the geo cells or the text can drive. `kind` holds the category again, not coarse:
        # a search with neither area nor text asks for it, so that the category (a few
        # percent of the places) drives rather than the opening spans (most of them).
        coarse=frozenset({"state", "type", "category", "free", "wheelchair"}),
        max_doc_bytes=256 * 1024,
        # A listing driven by one category reads it in id order and stops at a page.
        stream=True,
    ),
    CollectionSpec(
        EVENTS,
        keys={
            "_id": KeyType.TEXT,
            "state": KeyType.TEXT,
            "location": KeyType.TEXT,
            "status": KeyType.TEXT,
            "start": KeyType.INSTANT,
            "when": KeyType.SPAN,
            "term": KeyType.TEXT,
        },
        extract=event_keys,
        coarse=frozenset({"state", "status"}),
        max_doc_bytes=128 * 1024,
    ),
    CollectionSpec(
        REVIEWS,
        keys={
            "place": KeyType.TEXT,
            "author": KeyType.TEXT,
            "rating": KeyType.TEXT,
            "date": KeyType.INSTANT,
        },
        extract=review_keys,
    ),
    CollectionSpec(RATINGS, keys={"_id": KeyType.TEXT}, extract=_rating_keys),
]


def make_store(url: str) -> Store:
    """An unopened store for the tourism service (the `store=` factory of `create_app`)."""
    return open_store(url, SPECS)


class TourismRepository(DocumentRepository):
    """Reads and writes tourism documents through the storage port."""

    async def key_values(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str], limit: int
    ) -> KeyValues:
        """Index key values of the first `limit` matches, without reading their bodies."""
        return await self.store.key_values(collection, where, keys, limit)

    async def write(self, ops: Sequence[WriteOp]) -> list[Record]:
        """Apply operations atomically (all or nothing)."""
        return await self.store.write(ops)
