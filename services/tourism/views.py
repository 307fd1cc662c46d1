"""Places and events as served: texts in the negotiated language (the other language as
fallback), labels of codes, the rating aggregate, distances, and GeoJSON (RFC 7946)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from services.tourism import hours
from services.tourism.language import Lang, pick
from services.tourism.vocab import CATEGORIES, PLACE_TYPES
from shared.storage import Record

GEOJSON = "application/geo+json"


def _named(items: Sequence[Mapping[str, Any]] | None, lang: Lang) -> list[dict[str, Any]]:
    return [{**item, "name": pick(item.get("name"), lang)} for item in items or ()]


def place_view(
    record: Record,
    lang: Lang,
    *,
    rating: Mapping[str, Any] | None = None,
    distance_m: float | None = None,
    now: datetime | None = None,
    staff: bool = False,
) -> dict[str, Any]:
    """A place as served in `lang`; `translations` keeps every language of its texts.
    Who last edited it (an account id and username) is shown to editors only: the public
    catalogue has no business naming the city's staff."""
    body = dict(record.body)
    if not staff:
        body.pop("editor", None)
    zh_en = 0 if lang == "zh" else 1
    out: dict[str, Any] = {
        "id": record.id,
        "version": record.version,
        **body,
        "name": pick(body["name"], lang),
        "description": pick(body.get("description"), lang),
        "type_label": PLACE_TYPES[body["type"]][zh_en],
        "category_label": CATEGORIES[body["category"]][zh_en],
        "admission": _named(body.get("admission"), lang),
        "translations": {"name": body["name"], "description": body.get("description")},
        "aggregate_rating": rating or {"count": 0, "average": None},
    }
    if now is not None:
        out["open_now"] = hours.is_open(body.get("opening_hours"), now)
    if distance_m is not None:
        out["distance_m"] = round(distance_m, 1)
    return out


def event_view(record: Record, lang: Lang, place: Record | None = None) -> dict[str, Any]:
    """An event as served in `lang`, with its place's name when known."""
    body = dict(record.body)
    return {
        "id": record.id,
        "version": record.version,
        **body,
        "name": pick(body["name"], lang),
        "description": pick(body.get("description"), lang),
        "offers": _named(body.get("offers"), lang),
        "location_name": pick(place.body["name"], lang) if place is not None else None,
        "translations": {"name": body["name"], "description": body.get("description")},
    }


def feature(place: Mapping[str, Any]) -> dict[str, Any]:
    """A served place as a GeoJSON Feature: a Point at [longitude, latitude]."""
    geo = place["geo"]
    properties = {k: v for k, v in place.items() if k not in ("id", "geo")}
    return {
        "type": "Feature",
        "id": place["id"],
        "geometry": {"type": "Point", "coordinates": [geo["longitude"], geo["latitude"]]},
        "properties": properties,
    }


def feature_collection(places: Sequence[Mapping[str, Any]], next_url: str | None) -> dict[str, Any]:
    """Served places as a GeoJSON FeatureCollection (`next` is a foreign member)."""
    return {"type": "FeatureCollection", "features": [feature(p) for p in places], "next": next_url}
