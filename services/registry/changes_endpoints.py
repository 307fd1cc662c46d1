"""HTTP routes of change requests and merges: thin handlers over `ChangeService` and
`MergeService` (every route needs a bearer token; rules live in the services)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

from services.registry.changes import (
    ApplyAgain,
    ChangeService,
    CreateChange,
    Decision,
    EditChange,
    State,
)
from services.registry.endpoints import CallerDep, _resident
from services.registry.merge import MergeRequest, MergeService
from services.registry.schemas import RESIDENT_ID, Resident
from services.registry.service import RegistryService
from shared.auth.deps import Authenticated
from shared.errors import problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, page_limit
from shared.storage import Record

CHANGE_ID = r"^CR-\d{8}$"


class Transition(BaseModel):
    """One step of a request: the state reached, when, by whom and why."""

    state: State
    at: str
    actor: dict[str, Any]
    reason: str | None = None


class ChangeRequest(BaseModel):
    """A change request as served."""

    id: str
    version: int
    kind: Literal["move", "correction", "household"]
    resident: str
    residents: list[str]
    community: str
    changes: dict[str, Any]
    note: str | None = None
    state: State
    submitter: dict[str, Any]
    deciders: list[dict[str, str]]
    transitions: list[Transition]
    conflict: dict[str, Any] | None = None
    created_at: str
    updated_at: str


class ChangeRequestPage(BaseModel):
    """One page of change requests, newest first; `next` is the URL of the next page."""

    items: list[ChangeRequest]
    next: str | None = None


def _changes(request: Request) -> ChangeService:
    # Stateless over the registry service the app's lifespan made: built per request.
    registry: RegistryService = request.app.state.registry
    return ChangeService(registry)


def _merges(request: Request) -> MergeService:
    registry: RegistryService = request.app.state.registry
    return MergeService(registry)


ChangesDep = Annotated[ChangeService, Depends(_changes)]
MergesDep = Annotated[MergeService, Depends(_merges)]
ChangeId = Annotated[str, Path(pattern=CHANGE_ID)]

router = APIRouter(
    dependencies=[Authenticated], responses=problem_responses(400, 401, 403, 404, 409, 422)
)


def _one(service: ChangeService, caller: Any, record: Record, status: int = 200) -> JSONResponse:
    body = ChangeRequest.model_validate(service.view(caller, record)).model_dump(mode="json")
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"/change-requests/{record.id}"
    return JSONResponse(body, status_code=status, headers=headers)


@router.post(
    "/change-requests",
    status_code=201,
    response_model=ChangeRequest,
    summary="Draft a change request (move, correction, household change)",
)
async def create_change(data: CreateChange, caller: CallerDep, changes: ChangesDep) -> Response:
    return _one(changes, caller, await changes.create(caller, data), 201)


@router.get("/change-requests", summary="Change requests in your reach, newest first")
async def list_changes(
    request: Request,
    caller: CallerDep,
    changes: ChangesDep,
    state: State | None = None,
    resident: Annotated[str | None, Query(pattern=RESIDENT_ID)] = None,
    community: Annotated[str | None, Query(max_length=20)] = None,
    awaiting: Literal["me"] | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ChangeRequestPage:
    page = await changes.search(
        caller,
        state=state,
        resident=resident,
        community=community,
        awaiting=awaiting == "me",
        limit=page_limit(request, limit),
        cursor=cursor,
    )
    items = [ChangeRequest.model_validate(changes.view(caller, r)) for r in page.items]
    nxt = page.next_cursor
    link = str(request.url.include_query_params(cursor=nxt)) if nxt else None
    return ChangeRequestPage(items=items, next=link)


@router.get("/change-requests/{id}", response_model=ChangeRequest, summary="A change request")
async def read_change(id: ChangeId, caller: CallerDep, changes: ChangesDep) -> Response:
    return _one(changes, caller, await changes.load(caller, id))


@router.patch(
    "/change-requests/{id}",
    response_model=ChangeRequest,
    summary="Edit a draft (its submitter)",
    responses=problem_responses(412),
)
async def edit_change(
    id: ChangeId,
    data: EditChange,
    caller: CallerDep,
    changes: ChangesDep,
    if_match: IfMatch = None,
) -> Response:
    return _one(changes, caller, await changes.edit(caller, id, data, if_match))


@router.post("/change-requests/{id}/submit", response_model=ChangeRequest, summary="Submit a draft")
async def submit_change(
    id: ChangeId, caller: CallerDep, changes: ChangesDep, data: Decision | None = None
) -> Response:
    reason = data.reason if data else None
    return _one(changes, caller, await changes.submit(caller, id, reason))


@router.post(
    "/change-requests/{id}/withdraw", response_model=ChangeRequest, summary="Withdraw a draft"
)
async def withdraw_change(
    id: ChangeId, caller: CallerDep, changes: ChangesDep, data: Decision | None = None
) -> Response:
    reason = data.reason if data else None
    return _one(changes, caller, await changes.withdraw(caller, id, reason))


@router.post(
    "/change-requests/{id}/approve",
    response_model=ChangeRequest,
    summary="Approve and apply (the officer above the submitter)",
)
async def approve_change(
    id: ChangeId, caller: CallerDep, changes: ChangesDep, data: Decision | None = None
) -> Response:
    reason = data.reason if data else None
    return _one(changes, caller, await changes.approve(caller, id, reason))


@router.post(
    "/change-requests/{id}/reject",
    response_model=ChangeRequest,
    summary="Reject, with the reason (the officer above the submitter)",
)
async def reject_change(
    id: ChangeId, caller: CallerDep, changes: ChangesDep, data: Decision | None = None
) -> Response:
    reason = data.reason if data else None
    return _one(changes, caller, await changes.reject(caller, id, reason))


@router.post(
    "/change-requests/{id}/apply",
    response_model=ChangeRequest,
    summary="Apply an approved request whose first application met a conflict",
)
async def apply_change(
    id: ChangeId, caller: CallerDep, changes: ChangesDep, data: ApplyAgain | None = None
) -> Response:
    rebase = data.rebase if data else False
    return _one(changes, caller, await changes.apply(caller, id, rebase))


@router.post(
    "/residents/{id}/merge",
    response_model=Resident,
    summary="Retire a duplicate into this resident (street and district officers)",
    responses=problem_responses(412),
)
async def merge_resident(
    id: Annotated[str, Path(pattern=RESIDENT_ID)],
    data: MergeRequest,
    caller: CallerDep,
    merges: MergesDep,
    if_match: IfMatch = None,
) -> Response:
    record = await merges.merge(caller, id, data.duplicate, if_match)
    return _resident(merges.residents, caller, record)
