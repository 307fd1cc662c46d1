"""HTTP routes of events: the public calendar and one event; editors create, change and
retire them (authenticated router)."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from starlette.responses import JSONResponse, Response

from services.tourism.access import SignedInDep, ViewerDep
from services.tourism.endpoints import (
    AcceptLanguage,
    DocId,
    LangParam,
    answer,
    language,
)
from services.tourism.events import Calendar, calendar
from services.tourism.language import Lang, negotiate
from services.tourism.repository import PLACES
from services.tourism.schemas import EventIn, EventPatch, EventStatus, Page, State
from services.tourism.service import EventService
from services.tourism.views import event_view
from shared.auth.deps import Authenticated
from shared.auth.errors import InsufficientScope
from shared.errors import problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, next_link, page_limit
from shared.storage import Record


def _events(request: Request) -> EventService:
    service: EventService = request.app.state.events
    return service


EventsDep = Annotated[EventService, Depends(_events)]

public = APIRouter(tags=["events"], responses=problem_responses(400, 401, 404, 422))
router = APIRouter(
    tags=["events"],
    dependencies=[Authenticated],
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422),
)


async def one_event(
    service: EventService, record: Record, lang: Lang, status: int = 200
) -> JSONResponse:
    """One event with its place's name, ETag and (when created) Location."""
    place = await service.repo.get(PLACES, record.body["location"])
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"/events/{record.id}"
    return answer(event_view(record, lang, place), lang, status=status, **headers)


@public.get("/events", summary="Events overlapping a date range (public calendar)")
async def list_events(
    request: Request,
    viewer: ViewerDep,
    service: EventsDep,
    start: Annotated[date, Query(alias="from", description="first day (Asia/Shanghai)")],
    end: Annotated[date, Query(alias="to", description="last day, included")],
    place: Annotated[str | None, Query(pattern=r"^[0-9a-f]{32}$")] = None,
    status: EventStatus | None = None,
    state: State = "active",
    accept_language: AcceptLanguage = None,
    lang: LangParam = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> Response:
    chosen = language(lang, accept_language)
    if state != "active" and not viewer.is_editor:
        raise InsufficientScope("Only tourism editors and administrators list retired events.")
    c = Calendar(start, end, place, status, state)
    items, nxt = await calendar(service.repo, c, limit=page_limit(request, limit), cursor=cursor)
    places = await service.repo.many(PLACES, [r.body["location"] for r in items])
    views = [event_view(r, chosen, places.get(r.body["location"])) for r in items]
    return answer(Page(items=views, next=next_link(request, nxt)).model_dump(mode="json"), chosen)


@public.get("/events/{id}", summary="One event")
async def read_event(
    id: DocId,
    viewer: ViewerDep,
    service: EventsDep,
    accept_language: AcceptLanguage = None,
    lang: LangParam = None,
) -> Response:
    return await one_event(service, await service.read(viewer, id), language(lang, accept_language))


@router.post("/events", status_code=201, summary="Create an event (tourism editors)")
async def create_event(
    data: EventIn, viewer: SignedInDep, service: EventsDep, accept_language: AcceptLanguage = None
) -> Response:
    record = await service.create(viewer, data)
    return await one_event(service, record, negotiate(accept_language), 201)


@router.patch("/events/{id}", summary="Change an event (If-Match: its ETag)")
async def update_event(
    id: DocId,
    data: EventPatch,
    viewer: SignedInDep,
    service: EventsDep,
    if_match: IfMatch = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    record = await service.update(viewer, id, data, if_match)
    return await one_event(service, record, negotiate(accept_language))


@router.post("/events/{id}/retire", summary="Retire an event")
async def retire_event(
    id: DocId,
    viewer: SignedInDep,
    service: EventsDep,
    if_match: IfMatch = None,
    accept_language: AcceptLanguage = None,
) -> Response:
    record = await service.retire(viewer, id, if_match)
    return await one_event(service, record, negotiate(accept_language))
