"""The catalogue's HTTP routes: thin handlers that parse HTTP and call the services.

Reading the catalogue is public (`public` router: a token is optional and, when sent, must
be valid); every other route of the service needs a token (`router`, authenticated at
router level).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from services.education.access import SignedInDep, ViewerDep
from services.education.schemas import (
    RESOURCE_ID,
    Resource,
    ResourceIn,
    ResourcePage,
    ResourcePatch,
    State,
)
from services.education.search import CatalogueSearch, Criteria, SortOrder
from services.education.service import ResourceService
from services.education.vocab import FACETS
from shared.auth.deps import Authenticated
from shared.errors import Unprocessable, problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, next_link, page_limit
from shared.storage import Record


def _resources(request: Request) -> ResourceService:
    service: ResourceService = request.app.state.resources
    return service


def _search(request: Request) -> CatalogueSearch:
    search: CatalogueSearch = request.app.state.catalogue
    return search


ResourcesDep = Annotated[ResourceService, Depends(_resources)]
SearchDep = Annotated[CatalogueSearch, Depends(_search)]
ResourceId = Annotated[str, Path(pattern=RESOURCE_ID)]
Values = Annotated[list[str] | None, Query(max_length=20)]

public = APIRouter(tags=["catalogue"], responses=problem_responses(400, 401, 404, 422))
router = APIRouter(
    tags=["catalogue"],
    dependencies=[Authenticated],
    responses=problem_responses(400, 401, 403, 404, 409, 412, 422),
)


def view(record: Record) -> dict[str, object]:
    """A resource as served."""
    return Resource.model_validate({**record.body, "version": record.version}).model_dump(
        mode="json"
    )


def _one(record: Record, status: int = 200) -> JSONResponse:
    headers = {"ETag": etag(record.version)}
    if status == 201:
        headers["Location"] = f"/resources/{record.id}"
    return JSONResponse(view(record), status_code=status, headers=headers)


def facet_filters(given: dict[str, list[str] | None]) -> dict[str, list[str]]:
    """The facet filters of a search; 422 naming every parameter with an unknown value."""
    errors = []
    out: dict[str, list[str]] = {}
    for name, values in given.items():
        vocabulary = FACETS[name][1]
        for v in values or []:
            if v not in vocabulary:
                errors.append({"field": name, "in": "query", "message": f"unknown value {v!r}"})
        if values:
            out[name] = list(dict.fromkeys(values))
    if errors:
        raise Unprocessable("The search has unknown facet values.", errors=errors)
    return out


@public.get("/resources", summary="Search the catalogue (public: published resources)")
async def search_resources(
    request: Request,
    viewer: ViewerDep,
    search: SearchDep,
    q: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
    subject: Values = None,
    level: Values = None,
    type: Values = None,
    language: Values = None,
    license: Values = None,
    state: State | None = None,
    mine: bool = False,
    sort: SortOrder = "relevance",
    facets: bool = True,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ResourcePage:
    filters = facet_filters(
        {"subject": subject, "level": level, "type": type, "language": language, "license": license}
    )
    criteria = Criteria(q, filters, state, mine, sort)
    result = await search.search(
        viewer, criteria, limit=page_limit(request, limit), cursor=cursor, facets=facets
    )
    return ResourcePage.model_validate(
        {
            "items": [view(r) for r in result.items],
            "total": result.total,
            "facets": result.facets,
            "next": next_link(request, result.next_cursor),
        }
    )


@public.get("/resources/{id}", response_model=Resource, summary="One resource")
async def read_resource(id: ResourceId, viewer: ViewerDep, service: ResourcesDep) -> Response:
    return _one(await service.read(viewer, id))


@router.post(
    "/resources", status_code=201, response_model=Resource, summary="Create a draft (educators)"
)
async def create_resource(data: ResourceIn, viewer: SignedInDep, service: ResourcesDep) -> Response:
    return _one(await service.create(viewer, data), 201)


@router.patch("/resources/{id}", response_model=Resource, summary="Change a resource")
async def update_resource(
    id: ResourceId,
    data: ResourcePatch,
    viewer: SignedInDep,
    service: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    return _one(await service.update(viewer, id, data, if_match))


@router.post(
    "/resources/{id}/{action}",
    response_model=Resource,
    summary="Publish a draft, or retire a resource",
)
async def change_state(
    id: ResourceId,
    action: Literal["publish", "retire"],
    viewer: SignedInDep,
    service: ResourcesDep,
    if_match: IfMatch = None,
) -> Response:
    return _one(await service.transition(viewer, id, action, if_match))
