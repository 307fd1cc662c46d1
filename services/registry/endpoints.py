"""The registry's HTTP routes: thin handlers that parse HTTP and call the services.

Every route needs a bearer token (the router's dependency); what the caller may see and do
is decided by the services from the token's roles and jurisdiction (`access.py`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from services.registry.access import Access
from services.registry.households import HouseholdService
from services.registry.places import import_places, is_code, parse_csv, parse_json
from services.registry.schemas import (
    HOUSEHOLD_ID,
    RESIDENT_ID,
    AddMember,
    AuditPage,
    Counts,
    CreateHousehold,
    HistoryPage,
    Household,
    ImportResult,
    MoveMember,
    Place,
    PlaceList,
    RecordStatus,
    RegisterResident,
    Resident,
    ResidentPage,
    ResidentSummary,
    UpdateHousehold,
    UpdateResident,
)
from services.registry.search import ResidentFilter, Searcher
from services.registry.service import Caller, RegistryService
from shared.auth.deps import Authenticated, CurrentPrincipal, require_role
from shared.errors import NotFound, Unprocessable, UnsupportedMediaType, problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, next_link, page_limit
from shared.storage import Record


async def get_caller(request: Request, principal: CurrentPrincipal) -> Caller:
    """The caller and their reach."""
    client = request.client
    return Caller(Access.of(principal), client.host if client else None)


def _registry(request: Request) -> RegistryService:
    service: RegistryService = request.app.state.registry
    return service


def _households(request: Request) -> HouseholdService:
    service: HouseholdService = request.app.state.households
    return service


def _searcher(request: Request) -> Searcher:
    searcher: Searcher = request.app.state.searcher
    return searcher


CallerDep = Annotated[Caller, Depends(get_caller)]
RegistryDep = Annotated[RegistryService, Depends(_registry)]
HouseholdsDep = Annotated[HouseholdService, Depends(_households)]
SearcherDep = Annotated[Searcher, Depends(_searcher)]
ResidentId = Annotated[str, Path(pattern=RESIDENT_ID)]
HouseholdId = Annotated[str, Path(pattern=HOUSEHOLD_ID)]

router = APIRouter(
    dependencies=[Authenticated], responses=problem_responses(400, 401, 403, 404, 422)
)


def _resident(
    service: RegistryService, caller: Caller, record: Record, status: int = 200
) -> JSONResponse:
    body = Resident.model_validate(service.view(caller, record)).model_dump(mode="json")
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"/residents/{record.id}"
    return JSONResponse(body, status_code=status, headers=headers)


def _household(record: Record, members: list[Record]) -> JSONResponse:
    body = Household(
        id=record.id,
        version=record.version,
        community=record.body["community"],
        address=record.body["address"],
        head=record.body["head"],
        members=[
            {
                "resident_id": m.id,
                "relationship": m.body["household"]["relationship"],
                "name": m.body["name"],
                "status": m.body["status"],
            }
            for m in sorted(members, key=lambda m: (m.id != record.body["head"], m.id))
        ],
    ).model_dump(mode="json")
    return JSONResponse(body, headers={"ETag": etag(record.version)})


# places


@router.get("/places", summary="Districts, or the places directly under a place")
async def list_places(
    service: RegistryDep, parent: Annotated[str | None, Query(max_length=20)] = None
) -> PlaceList:
    if parent is not None and not is_code(parent):
        raise Unprocessable(
            "Not a place code.", errors=[{"field": "parent", "in": "query", "message": "bad code"}]
        )
    children = await service.repo.children(parent)
    return PlaceList.model_validate({"items": [r.body for r in children]})


@router.post(
    "/places/import",
    summary="Import places from JSON or CSV (admins)",
    dependencies=[Depends(require_role("admin"))],
    responses=problem_responses(413, 415),
)
async def import_places_file(request: Request, service: RegistryDep) -> ImportResult:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    raw = await request.body()
    if ctype == "application/json":
        rows = parse_json(raw)
    elif ctype == "text/csv":
        rows = parse_csv(raw)
    else:
        raise UnsupportedMediaType("Send the places as application/json or text/csv.")
    counts = await import_places(service.repo, rows)
    return ImportResult(created=counts.created, updated=counts.updated, unchanged=counts.unchanged)


@router.get("/places/{code:path}/counts", summary="Residents per community under a place")
async def place_counts(code: str, caller: CallerDep, searcher: SearcherDep) -> Counts:
    if not is_code(code):
        raise NotFound(f"There is no place {code}.")
    return Counts.model_validate(await searcher.counts(caller, code))


@router.get("/places/{code:path}", summary="One place")
async def get_place(code: str, service: RegistryDep) -> Place:
    record = await service.repo.place(code) if is_code(code) else None
    if record is None:
        raise NotFound(f"There is no place {code}.")
    return Place.model_validate(record.body)


# residents


@router.post(
    "/residents",
    status_code=201,
    response_model=Resident,
    summary="Register a resident",
    responses=problem_responses(409),
)
async def register(data: RegisterResident, caller: CallerDep, service: RegistryDep) -> Response:
    record = await service.register(caller, data)
    return _resident(service, caller, record, 201)


@router.get("/residents", summary="Search residents in your reach")
async def search_residents(
    request: Request,
    caller: CallerDep,
    searcher: SearcherDep,
    name: Annotated[str | None, Query(min_length=1, max_length=100)] = None,
    national_id: Annotated[str | None, Query(max_length=40)] = None,
    phone: Annotated[str | None, Query(max_length=30)] = None,
    place: Annotated[str | None, Query(max_length=20)] = None,
    status: RecordStatus | None = None,
    review: Literal["pending", "resolved"] | None = None,
    age_min: Annotated[int | None, Query(ge=0, le=150)] = None,
    age_max: Annotated[int | None, Query(ge=0, le=150)] = None,
    born_from: date | None = None,
    born_to: date | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ResidentPage:
    criteria = ResidentFilter(
        name, national_id, phone, place, status, review, age_min, age_max, born_from, born_to
    )
    query = "&".join(f"{k}={v}" for k, v in request.query_params.items() if k != "cursor")
    page = await searcher.residents(
        caller, criteria, limit=page_limit(request, limit), cursor=cursor, query=query
    )
    items = [
        ResidentSummary(
            id=r.id,
            name=r.body["name"],
            sex=r.body["sex"],
            birth_date=r.body["birth_date"],
            community=r.body["address"]["community"],
            status=r.body["status"],
            review=(r.body.get("review") or {}).get("status"),
        )
        for r in page.items
    ]
    return ResidentPage(items=items, next=next_link(request, page.next_cursor))


@router.get("/residents/{id}", response_model=Resident, summary="A resident's record")
async def read_resident(id: ResidentId, caller: CallerDep, service: RegistryDep) -> Response:
    return _resident(service, caller, await service.read(caller, id))


@router.patch(
    "/residents/{id}",
    response_model=Resident,
    summary="Change a resident (a new community is a move)",
    responses=problem_responses(409, 412),
)
async def update_resident(
    id: ResidentId,
    data: UpdateResident,
    caller: CallerDep,
    service: RegistryDep,
    if_match: IfMatch = None,
) -> Response:
    return _resident(service, caller, await service.update(caller, id, data, if_match))


@router.get("/residents/{id}/history", summary="Versions of a resident, newest first")
async def resident_history(
    request: Request,
    id: ResidentId,
    caller: CallerDep,
    service: RegistryDep,
    limit: Limit = None,
    before: Annotated[int | None, Query(ge=2)] = None,
) -> HistoryPage:
    size = page_limit(request, limit)
    versions = await service.history(caller, id, limit=size, before=before)
    items = [Resident.model_validate(service.view(caller, v)) for v in versions]
    more = len(versions) == size and versions[-1].version > 1
    link = str(request.url.include_query_params(before=versions[-1].version)) if more else None
    return HistoryPage(items=items, next=link)


@router.get("/residents/{id}/access-log", summary="Who read or changed this record")
async def access_log(
    request: Request,
    id: ResidentId,
    caller: CallerDep,
    searcher: SearcherDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> AuditPage:
    items, nxt = await searcher.access_log(
        caller, id, limit=page_limit(request, limit), cursor=cursor
    )
    return AuditPage.model_validate({"items": items, "next": next_link(request, nxt)})


@router.get("/residents/{id}/household", summary="The household a resident belongs to")
async def resident_household(
    id: ResidentId, caller: CallerDep, households: HouseholdsDep
) -> Response:
    record, members = await households.of_resident(caller, id)
    return _household(record, members)


# households


@router.post("/households", status_code=201, summary="Register a household")
async def create_household(
    data: CreateHousehold, caller: CallerDep, households: HouseholdsDep
) -> Response:
    record = await households.create(caller, data)
    response = _household(record, await households.repo.members(record.id))
    response.status_code = 201
    response.headers["Location"] = f"/households/{record.id}"
    return response


@router.get("/households/{id}", summary="A household and its members")
async def read_household(id: HouseholdId, caller: CallerDep, households: HouseholdsDep) -> Response:
    record, members = await households.read(caller, id)
    return _household(record, members)


@router.patch("/households/{id}", summary="Change the address or relationships")
async def update_household(
    id: HouseholdId,
    data: UpdateHousehold,
    caller: CallerDep,
    households: HouseholdsDep,
    if_match: IfMatch = None,
) -> Response:
    record = await households.update(caller, id, data, if_match)
    return _household(record, await households.repo.members(id))


@router.post("/households/{id}/members", summary="Add a member")
async def add_member(
    id: HouseholdId,
    data: AddMember,
    caller: CallerDep,
    households: HouseholdsDep,
    if_match: IfMatch = None,
) -> Response:
    record = await households.add_member(caller, id, data, if_match)
    return _household(record, await households.repo.members(id))


@router.delete(
    "/households/{id}/members/{resident}",
    summary="Remove a member (the last one dissolves the household: 204)",
)
async def remove_member(
    id: HouseholdId,
    resident: ResidentId,
    caller: CallerDep,
    households: HouseholdsDep,
    if_match: IfMatch = None,
) -> Response:
    record = await households.remove_member(caller, id, resident, if_match)
    if record is None:
        return Response(status_code=204)
    return _household(record, await households.repo.members(id))


@router.post("/households/{id}/members/{resident}/move", summary="Move a member elsewhere")
async def move_member(
    id: HouseholdId,
    resident: ResidentId,
    data: MoveMember,
    caller: CallerDep,
    households: HouseholdsDep,
    if_match: IfMatch = None,
) -> Response:
    record = await households.move_member(caller, id, resident, data, if_match)
    return _household(record, await households.repo.members(record.id))


# audit


@router.get("/audit", summary="Search the audit trail (auditors)")
async def audit_trail(
    request: Request,
    caller: CallerDep,
    searcher: SearcherDep,
    resident: Annotated[str | None, Query(pattern=RESIDENT_ID)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> AuditPage:
    for label, value in (("since", since), ("until", until)):
        if value is not None and value.tzinfo is None:
            raise Unprocessable(
                "Times need a zone.",
                errors=[{"field": label, "in": "query", "message": "add Z or an offset"}],
            )
    items, nxt = await searcher.trail(
        caller,
        resident=resident,
        actor=actor,
        since=since,
        until=until,
        limit=page_limit(request, limit),
        cursor=cursor,
    )
    return AuditPage.model_validate({"items": items, "next": next_link(request, nxt)})
