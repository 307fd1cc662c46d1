"""HTTP routes of places, their search, the GeoJSON import and reviews: thin handlers that
parse HTTP and call the services.

Reading is public (`public` router: a token is optional and, when sent, must be valid);
every other route needs a token (`router`, authenticated at router level).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request
from starlette.responses import JSONResponse, Response

from services.tourism.access import SignedInDep, ViewerDep
from services.tourism.geo import Box
from services.tourism.hours import DEFAULT_ZONE, zone
from services.tourism.imports import import_places
from services.tourism.language import Lang, negotiate
from services.tourism.reviews import ReviewService, review_view
from services.tourism.schemas import ID, Page, PlaceIn, PlacePatch, ReviewIn, State
from services.tourism.search import MAX_RADIUS_M, Criteria, Near, PlaceSearch
from services.tourism.service import PlaceService
from services.tourism.views import GEOJSON, feature, feature_collection, place_view
from services.tourism.vocab import CATEGORIES, PLACE_TYPES
from shared.auth.deps import Authenticated
from shared.auth.errors import InsufficientScope
from shared.errors import BadRequest, Unprocessable, problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, next_link, page_limit
from shared.storage import Record


def _places(request: Request) -> PlaceService:
    service: PlaceService = request.app.state.places
    return service


def _search(request: Request) -> PlaceSearch:
    search: PlaceSearch = request.app.state.place_search
    return search


def _reviews(request: Request) -> ReviewService:
    service: ReviewService = request.app.state.reviews
    return service


PlacesDep = Annotated[PlaceService, Depends(_places)]
SearchDep = Annotated[PlaceSearch, Depends(_search)]
ReviewsDep = Annotated[ReviewService, Depends(_reviews)]
DocId = Annotated[str, Path(pattern=ID)]
LangParam = Annotated[Lang | None, Query(description="zh or en; overrides Accept-Language")]
# No length limit: a header that cannot be used falls back to Chinese, never an error.
AcceptLanguage = Annotated[str | None, Header(alias="Accept-Language")]

public = APIRouter(tags=["places"], responses=problem_responses(400, 401, 404, 422))
router = APIRouter(
    tags=["places"],
    dependencies=[Authenticated],
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422),
)


def language(lang: Lang | None, accept: str | None) -> Lang:
    """The answer's language: `lang=` when given, else negotiated from Accept-Language."""
    return lang or negotiate(accept)


def answer(
    content: Any, lang: Lang | None, *, status: int = 200, media: str | None = None, **headers: str
) -> JSONResponse:
    """A JSON answer with its language headers."""
    extra = {"Content-Language": lang, "Vary": "Accept-Language"} if lang else {}
    return JSONResponse(content, status_code=status, headers={**extra, **headers}, media_type=media)


async def place_content(
    request: Request, record: Record, lang: Lang, *, staff: bool
) -> dict[str, Any]:
    """A single place as served, with its rating and whether it is open now."""
    ratings = await _reviews(request).ratings([record.id])
    return place_view(record, lang, rating=ratings[record.id], now=datetime.now(UTC), staff=staff)


async def one_place(
    request: Request, record: Record, lang: Lang, status: int = 200, *, staff: bool
) -> JSONResponse:
    """A single place with its ETag and (when created) Location."""
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"/places/{record.id}"
    content = await place_content(request, record, lang, staff=staff)
    return answer(content, lang, status=status, **headers)


def parse_bbox(text: str) -> Box:
    """`west,south,east,north` in degrees (west > east crosses the 180th meridian)."""

    def bad(message: str) -> Unprocessable:
        return Unprocessable(
            "The bounding box cannot be used.",
            errors=[{"field": "bbox", "in": "query", "message": message}],
        )

    try:
        west, south, east, north = (float(v) for v in text.split(","))
    except ValueError:
        raise bad("give west,south,east,north as four numbers") from None
    if not all(-180 <= v <= 180 for v in (west, east)) or not all(
        -90 <= v <= 90 for v in (south, north)
    ):
        raise bad("longitudes are -180 to 180, latitudes -90 to 90")
    if south > north:
        raise bad("south must not be above north")
    return Box(south, west, north, east)


def open_instant(open_now: bool, open_at: datetime | None) -> datetime | None:
    """The instant an opening filter asks about (a time without zone: Asia/Shanghai)."""
    if open_at is not None:
        return open_at if open_at.tzinfo else open_at.replace(tzinfo=zone(DEFAULT_ZONE))
    return datetime.now(UTC) if open_now else None


def _codes(values: list[str] | None, vocabulary: Any, name: str) -> tuple[str, ...]:
    unknown = [v for v in values or [] if v not in vocabulary]
    if unknown:
        raise Unprocessable(
            f"Unknown {name} values.",
            errors=[
                {"field": name, "in": "query", "message": f"unknown value {v!r}"} for v in unknown
            ],
        )
    return tuple(dict.fromkeys(values or []))


@public.get("/places", summary="Search places (public); JSON or GeoJSON")
async def search_places(
    request: Request,
    viewer: ViewerDep,
    search: SearchDep,
    accept_language: AcceptLanguage = None,
    lang: LangParam = None,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    type: Annotated[list[str] | None, Query(max_length=4)] = None,
    category: Annotated[list[str] | None, Query(max_length=20)] = None,
    free: bool | None = None,
    wheelchair: bool | None = None,
    open_now: bool = False,
    open_at: datetime | None = None,
    lat: Annotated[float | None, Query(ge=-90, le=90)] = None,
    lon: Annotated[float | None, Query(ge=-180, le=180)] = None,
    radius: Annotated[
        float, Query(gt=0, le=MAX_RADIUS_M, description="metres, at most 50 km")
    ] = 1000,
    bbox: Annotated[str | None, Query(max_length=100, description="west,south,east,north")] = None,
    state: State = "active",
    format: Literal["json", "geojson"] | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Response:
    chosen = language(lang, accept_language)
    if (lat is None) != (lon is None):
        raise Unprocessable(
            "A near search needs both lat and lon.",
            errors=[
                {"field": "lon" if lon is None else "lat", "in": "query", "message": "missing"}
            ],
        )
    if lat is not None and bbox is not None:
        raise BadRequest("Search near a point or inside a box, not both.")
    if state != "active" and not viewer.is_editor:
        raise InsufficientScope("Only tourism editors and administrators list retired places.")
    criteria = Criteria(
        q=q,
        types=_codes(type, PLACE_TYPES, "type"),
        categories=_codes(category, CATEGORIES, "category"),
        free=free,
        wheelchair=wheelchair,
        open_at=open_instant(open_now, open_at),
        open_now=open_now and open_at is None,
        near=Near(lat, lon, radius) if lat is not None and lon is not None else None,
        box=parse_bbox(bbox) if bbox else None,
        state=state,
    )
    found = await search.search(criteria, limit=page_limit(request, limit), cursor=cursor)
    ratings = await _reviews(request).ratings([r.id for r, _ in found.items])
    now = datetime.now(UTC)
    items = [
        place_view(r, chosen, rating=ratings[r.id], distance_m=d, now=now, staff=viewer.is_editor)
        for r, d in found.items
    ]
    nxt = next_link(request, found.next_cursor)
    wants_geojson = format == "geojson" or (
        format is None and GEOJSON in request.headers.get("accept", "")
    )
    if wants_geojson:
        return answer(feature_collection(items, nxt), chosen, media=GEOJSON)
    # The items are JSON already (stored bodies, numbers, labels): `Page`'s validation and
    # dump would only copy them.
    return answer({"items": items, "next": nxt}, chosen)


@public.get("/places/{id}", summary="One place (JSON, or GeoJSON Feature)")
async def read_place(
    request: Request,
    id: DocId,
    viewer: ViewerDep,
    service: PlacesDep,
    accept_language: AcceptLanguage = None,
    lang: LangParam = None,
    format: Literal["json", "geojson"] | None = None,
) -> Response:
    chosen = language(lang, accept_language)
    record = await service.read(viewer, id)
    if format == "geojson" or (format is None and GEOJSON in request.headers.get("accept", "")):
        content = feature(await place_content(request, record, chosen, staff=viewer.is_editor))
        return answer(content, chosen, media=GEOJSON, ETag=etag(record.version))
    return await one_place(request, record, chosen, staff=viewer.is_editor)


@router.post("/places", status_code=201, summary="Create a place (tourism editors)")
async def create_place(
    request: Request,
    data: PlaceIn,
    viewer: SignedInDep,
    service: PlacesDep,
    accept_language: AcceptLanguage = None,
) -> Response:
    record = await service.create(viewer, data)
    return await one_place(request, record, negotiate(accept_language), 201, staff=True)


@router.patch("/places/{id}", summary="Change a place (If-Match: its ETag)")
async def update_place(
    request: Request,
    id: DocId,
    data: PlacePatch,
    viewer: SignedInDep,
    service: PlacesDep,
    if_match: IfMatch = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    record = await service.update(viewer, id, data, if_match)
    return await one_place(request, record, negotiate(accept_language), staff=True)


@router.post("/places/{id}/retire", summary="Retire a place")
async def retire_place(
    request: Request,
    id: DocId,
    viewer: SignedInDep,
    service: PlacesDep,
    if_match: IfMatch = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    record = await service.retire(viewer, id, if_match)
    return await one_place(request, record, negotiate(accept_language), staff=True)


@router.post("/places/import", status_code=201, summary="Import places from GeoJSON (editors)")
async def import_geojson(request: Request, viewer: SignedInDep, service: PlacesDep) -> Response:
    viewer.require_editor()
    try:
        data = json.loads(await request.body())
    except (ValueError, UnicodeDecodeError) as exc:
        raise Unprocessable(
            "The body is not JSON; nothing was imported.",
            errors=[{"pointer": "#", "message": str(exc)[:200]}],
        ) from None
    created = await import_places(service, viewer, data)
    return answer({"imported": len(created), "ids": [r.id for r in created]}, None, status=201)


@public.get("/places/{id}/reviews", summary="A place's reviews, newest first")
async def list_reviews(
    request: Request,
    id: DocId,
    viewer: ViewerDep,
    reviews: ReviewsDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Page:
    items, nxt = await reviews.page(id, page_limit(request, limit), cursor)
    return Page(items=[review_view(r, viewer) for r in items], next=next_link(request, nxt))


@router.put("/places/{id}/reviews/mine", summary="Rate a place 1-5 (citizens; one each)")
async def put_review(
    id: DocId, data: ReviewIn, viewer: SignedInDep, reviews: ReviewsDep
) -> Response:
    record, created = await reviews.put(viewer, id, data)
    return answer(
        review_view(record, viewer), None, status=201 if created else 200, ETag=etag(record.version)
    )


@router.get("/places/{id}/reviews/mine", summary="The caller's review of a place")
async def read_my_review(id: DocId, viewer: SignedInDep, reviews: ReviewsDep) -> dict[str, Any]:
    return review_view(await reviews.mine(viewer, id), viewer)


@router.delete("/places/{id}/reviews/mine", status_code=204, summary="Remove the caller's review")
async def delete_my_review(id: DocId, viewer: SignedInDep, reviews: ReviewsDep) -> Response:
    await reviews.delete(viewer, id)
    return Response(status_code=204)
