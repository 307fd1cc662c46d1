"""Import of places from a GeoJSON FeatureCollection (RFC 7946), all or nothing.

Every feature is checked before anything is written: a Feature with a Point geometry
(`[longitude, latitude]`, an optional altitude ignored) and `properties` that make a valid
place (the members of `POST /places`, without `geo`). Any problem refuses the whole file
with one error per problem, its pointer into the file (`#/features/3/properties/name`).
A valid file is written as one atomic store batch, so it is imported whole or not at all.
"""

from __future__ import annotations

import math
from typing import Any

from pydantic import ValidationError

from services.tourism.access import Viewer
from services.tourism.repository import PLACES
from services.tourism.schemas import PlaceIn, problems
from services.tourism.service import PlaceService, require_active_places
from shared.errors import Unprocessable
from shared.storage import Create, Record

MAX_FEATURES = 500


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _position(geometry: Any, at: str) -> tuple[dict[str, float] | None, list[dict[str, Any]]]:
    """The place's geo point of a Point geometry, or the problems with it."""
    if not isinstance(geometry, dict) or geometry.get("type") != "Point":
        return None, [{"pointer": at, "message": "must be a GeoJSON Point"}]
    coords = geometry.get("coordinates")
    if not isinstance(coords, list) or len(coords) not in (2, 3) or not all(map(_number, coords)):
        message = "must be [longitude, latitude] (numbers, optional altitude)"
        return None, [{"pointer": f"{at}/coordinates", "message": message}]
    lon, lat = float(coords[0]), float(coords[1])
    errors = []
    if not -180 <= lon <= 180:
        errors.append({"pointer": f"{at}/coordinates/0", "message": "longitude is -180 to 180"})
    if not -90 <= lat <= 90:
        errors.append({"pointer": f"{at}/coordinates/1", "message": "latitude is -90 to 90"})
    return (None, errors) if errors else ({"latitude": lat, "longitude": lon}, [])


def parse_collection(data: Any) -> list[PlaceIn]:
    """The places of a FeatureCollection; 422 listing every problem of the file."""
    if not isinstance(data, dict) or data.get("type") != "FeatureCollection":
        raise Unprocessable(
            "The body is not a GeoJSON FeatureCollection; nothing was imported.",
            errors=[{"pointer": "#/type", "message": "must be FeatureCollection"}],
        )
    features = data.get("features")
    if not isinstance(features, list) or not 1 <= len(features) <= MAX_FEATURES:
        raise Unprocessable(
            "The FeatureCollection has no features to import; nothing was imported.",
            errors=[
                {"pointer": "#/features", "message": f"must list 1 to {MAX_FEATURES} features"}
            ],
        )
    places: list[PlaceIn] = []
    errors: list[dict[str, Any]] = []
    for n, item in enumerate(features):
        at = f"#/features/{n}"
        if not isinstance(item, dict) or item.get("type") != "Feature":
            errors.append({"pointer": at, "message": "must be a GeoJSON Feature", "index": n})
            continue
        geo, problems_ = _position(item.get("geometry"), f"{at}/geometry")
        properties = item.get("properties")
        if not isinstance(properties, dict):
            problems_.append({"pointer": f"{at}/properties", "message": "must be an object"})
        elif "geo" in properties:
            problems_.append(
                {"pointer": f"{at}/properties/geo", "message": "the geometry gives the position"}
            )
        elif geo is not None:
            try:
                places.append(PlaceIn.model_validate({**properties, "geo": geo}))
            except ValidationError as exc:
                problems_ += problems(exc, ("features", n, "properties"))
        errors += [{**p, "index": n} for p in problems_]
    if errors:
        raise Unprocessable(
            f"The GeoJSON has {len(errors)} problem(s); nothing was imported.", errors=errors
        )
    return places


async def import_places(service: PlaceService, viewer: Viewer, data: Any) -> list[Record]:
    """Create every place of a valid FeatureCollection, in one atomic write."""
    viewer.require_editor()
    places = parse_collection(data)
    bodies = [service.new_body(viewer, place) for place in places]
    linked = sorted({i for b in bodies for i in b.get("includes_attraction") or []})
    if linked:
        await require_active_places(service.repo, linked, "#/features")
    return await service.repo.write([Create(PLACES, b, b["id"]) for b in bodies])
