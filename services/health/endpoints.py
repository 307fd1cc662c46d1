"""The FHIR REST routes: thin handlers that parse HTTP and call the service layer.

Every route but `/metadata` needs a bearer token (the router's dependency); what the token
allows is checked per interaction by the service (`services.health.access`).
"""

from __future__ import annotations

from email.utils import format_datetime
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

import orjson
from fastapi import APIRouter, Depends, Request
from starlette.responses import Response

from services.health.access import Access
from services.health.bundles import BundleProcessor
from services.health.capability import capability_statement
from services.health.outcome import FhirResponse, error_outcome, issue, operation_outcome
from services.health.resources import check_type, parse_json, validate
from services.health.search import RESULT_PARAMS
from services.health.searching import Base, Searcher
from services.health.service import Caller, FhirService, Planned, etag
from services.health.settings import HealthSettings
from shared.auth.deps import Authenticated, CurrentPrincipal
from shared.errors import BadRequest, Unprocessable, UnsupportedMediaType
from shared.storage.keys import date_span

_JSON_TYPES = ("application/fhir+json", "application/json", "application/json+fhir")


def _service(request: Request) -> FhirService:
    service: FhirService = request.app.state.fhir
    return service


async def get_caller(request: Request, principal: CurrentPrincipal) -> Caller:
    """The caller, with their own Patient resolved when their scopes are patient-context."""
    service = _service(request)
    await service.audit.room()  # back-pressure: no new work while the audit trail lags
    access = Access(principal)
    if access.needs_patient and principal.resident_id:
        access = Access(principal, await service.patient_of(principal.resident_id))
    client = request.client
    return Caller(principal, access, client.host if client else None)


CallerDep = Annotated[Caller, Depends(get_caller)]


def base_of(request: Request) -> Base:
    """The base URL for links: configured, else that of the request."""
    settings: HealthSettings = request.app.state.settings
    if settings.fhir_base_url:
        return Base(settings.fhir_base_url.rstrip("/"))
    return Base(str(request.base_url).rstrip("/"))


def _prefer(request: Request, name: str) -> str | None:
    for part in request.headers.get("prefer", "").split(";"):
        for item in part.split(","):
            key, _, value = item.strip().partition("=")
            if key.strip().lower() == name:
                return value.strip().strip('"').lower()
    return None


def _strict(request: Request) -> bool:
    return _prefer(request, "handling") == "strict"


async def _body(request: Request, *, patch: bool = False) -> Any:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    allowed = ("application/json-patch+json",) if patch else _JSON_TYPES
    if ctype and ctype not in allowed:
        raise UnsupportedMediaType(
            f"Content-Type {ctype} is not accepted here; send {' or '.join(allowed)}.",
            issue_code="not-supported",
        )
    raw = await request.body()
    if patch:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise BadRequest(f"The JSON Patch is not valid JSON: {exc}") from None
    return parse_json(raw)


def _last_modified(body: Any) -> dict[str, str]:
    at = (body.get("meta") or {}).get("lastUpdated") if isinstance(body, dict) else None
    if not at:
        return {}
    try:
        return {"Last-Modified": format_datetime(date_span(at)[0], usegmt=True)}
    except ValueError:
        return {}


def resource_response(body: Any, version: int, status: int = 200) -> FhirResponse:
    """A resource with its ETag and Last-Modified headers."""
    headers = {"ETag": etag(version), **_last_modified(body)}
    return FhirResponse(body, status_code=status, headers=headers)


def _written(request: Request, base: Base, planned: Planned | None) -> Response:
    if planned is None:
        return Response(status_code=204)
    if planned.interaction == "delete":
        return Response(status_code=204, headers={"ETag": etag(planned.version)})
    headers = {"ETag": etag(planned.version), **_last_modified(planned.resource)}
    if planned.status == 201 or planned.change is not None:
        headers["Location"] = (
            f"{base.ref(planned.resource_type, planned.id)}/_history/{planned.version}"
        )
    if planned.status == 201:
        headers["Content-Location"] = headers["Location"]
    prefer = _prefer(request, "return")
    if prefer == "minimal":
        return Response(status_code=planned.status, headers=headers)
    if prefer == "operationoutcome":
        outcome = operation_outcome(
            [
                issue(
                    f"{planned.interaction} of {planned.resource_type}/{planned.id} succeeded.",
                    severity="information",
                    code="informational",
                )
            ]
        )
        return FhirResponse(outcome, status_code=planned.status, headers=headers)
    return FhirResponse(dict(planned.resource), status_code=planned.status, headers=headers)


public = APIRouter(tags=["fhir"])
router = APIRouter(tags=["fhir"], dependencies=[Authenticated])


@public.get("/metadata", summary="CapabilityStatement (public)")
async def metadata(request: Request) -> FhirResponse:
    settings: HealthSettings = request.app.state.settings
    return FhirResponse(capability_statement(settings, base_of(request).url))


@router.post("/", summary="batch or transaction Bundle")
async def bundle(request: Request, caller: CallerDep) -> FhirResponse:
    body = await _body(request)
    processor: BundleProcessor = request.app.state.bundles
    return FhirResponse(await processor.process(caller, body, base_of(request)))


@router.get("/Patient/{id}/$everything", summary="Patient $everything")
async def everything(id: str, request: Request, caller: CallerDep) -> FhirResponse:
    searcher: Searcher = request.app.state.searcher
    items = list(request.query_params.multi_items())
    return FhirResponse(await searcher.everything(caller, id, items, base_of(request)))


@router.post("/{resource_type}/$validate", summary="$validate a resource")
async def validate_resource(
    resource_type: str, request: Request, caller: CallerDep
) -> FhirResponse:
    check_type(resource_type)
    body = await _body(request)
    if body.get("resourceType") == "Parameters":
        found = [
            p.get("resource")
            for p in body.get("parameter") or []
            if isinstance(p, dict) and p.get("name") == "resource"
        ]
        if not found or not isinstance(found[0], dict):
            raise BadRequest(
                "$validate takes a resource, or Parameters with a 'resource' parameter."
            )
        body = found[0]
    try:
        validate(body, resource_type)
    except (Unprocessable, BadRequest) as exc:
        return FhirResponse(error_outcome(exc), status_code=exc.status)
    return FhirResponse(
        operation_outcome(
            [issue("The resource is valid.", severity="information", code="informational")]
        )
    )


@router.get("/{resource_type}/_history", summary="history of a type")
async def type_history(resource_type: str, request: Request, caller: CallerDep) -> FhirResponse:
    searcher: Searcher = request.app.state.searcher
    items = list(request.query_params.multi_items())
    return FhirResponse(await searcher.type_history(caller, resource_type, items, base_of(request)))


@router.get("/{resource_type}", summary="search")
async def search(resource_type: str, request: Request, caller: CallerDep) -> FhirResponse:
    searcher: Searcher = request.app.state.searcher
    items = list(request.query_params.multi_items())
    bundle = await searcher.search(
        caller, resource_type, items, base_of(request), strict=_strict(request)
    )
    return FhirResponse(bundle)


@router.post("/{resource_type}/_search", summary="search (form POST)")
async def search_post(resource_type: str, request: Request, caller: CallerDep) -> FhirResponse:
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype and ctype != "application/x-www-form-urlencoded":
        raise BadRequest("POST _search takes application/x-www-form-urlencoded parameters.")
    raw = (await request.body()).decode("utf-8", errors="replace")
    items = list(request.query_params.multi_items()) + parse_qsl(raw, keep_blank_values=True)
    searcher: Searcher = request.app.state.searcher
    bundle = await searcher.search(
        caller, resource_type, items, base_of(request), strict=_strict(request)
    )
    return FhirResponse(bundle)


@router.post("/{resource_type}", summary="create (If-None-Exist: conditional create)")
async def create(resource_type: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    body = await _body(request)
    planned = await service.plan_create(
        caller, resource_type, body, if_none_exist=_create_criteria(request)
    )
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


def _create_criteria(request: Request) -> str | None:
    """If-None-Exist, else the search parameters in the URL of the POST: that is how fhirpy's
    get_or_create (and Aidbox) ask for a conditional create, and ignoring them would silently
    create duplicates."""
    header = request.headers.get("if-none-exist")
    if header is not None:
        return header
    # Result parameters (_format, _pretty...) are about the response, not criteria.
    items = [(k, v) for k, v in request.query_params.multi_items() if k not in RESULT_PARAMS]
    return urlencode(items) or None


@router.put("/{resource_type}", summary="conditional update")
async def conditional_update(resource_type: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    body = await _body(request)
    query = str(request.url.query)
    target = await service.conditional_target(caller, resource_type, query, "u")
    if target is None:
        rid = body.get("id")
        if rid is None:
            planned = await service.plan_create(caller, resource_type, body)
        else:
            planned = await service.plan_update(caller, resource_type, str(rid), body)
    else:
        if body.get("id") not in (None, target.id):
            raise BadRequest(f"The resource id does not match the resource found ({target.id}).")
        planned = await service.plan_update(
            caller,
            resource_type,
            target.id,
            {**body, "id": target.id},
            if_match=request.headers.get("if-match"),
        )
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


@router.delete("/{resource_type}", summary="conditional delete")
async def conditional_delete(resource_type: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    target = await service.conditional_target(caller, resource_type, str(request.url.query), "d")
    if target is None:
        return Response(status_code=204)
    planned = await service.plan_delete(caller, resource_type, target.id)
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


@router.get("/{resource_type}/{id}", summary="read")
async def read(resource_type: str, id: str, request: Request, caller: CallerDep) -> FhirResponse:
    record = await _service(request).read(caller, resource_type, id)
    return resource_response(record.body, record.version)


@router.put("/{resource_type}/{id}", summary="update (If-Match: versioned)")
async def update(resource_type: str, id: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    body = await _body(request)
    planned = await service.plan_update(
        caller, resource_type, id, body, if_match=request.headers.get("if-match")
    )
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


@router.patch("/{resource_type}/{id}", summary="JSON Patch")
async def patch(resource_type: str, id: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    ops = await _body(request, patch=True)
    planned = await service.plan_patch(
        caller, resource_type, id, ops, if_match=request.headers.get("if-match")
    )
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


@router.delete("/{resource_type}/{id}", summary="delete")
async def delete(resource_type: str, id: str, request: Request, caller: CallerDep) -> Response:
    service = _service(request)
    planned = await service.plan_delete(
        caller, resource_type, id, if_match=request.headers.get("if-match")
    )
    await service.write_one(caller, planned)
    return _written(request, base_of(request), planned)


@router.get("/{resource_type}/{id}/_history", summary="history of a resource")
async def history(resource_type: str, id: str, request: Request, caller: CallerDep) -> FhirResponse:
    searcher: Searcher = request.app.state.searcher
    items = list(request.query_params.multi_items())
    return FhirResponse(
        await searcher.instance_history(caller, resource_type, id, items, base_of(request))
    )


@router.get("/{resource_type}/{id}/_history/{version}", summary="vread")
async def vread(
    resource_type: str, id: str, version: str, request: Request, caller: CallerDep
) -> FhirResponse:
    record = await _service(request).vread(caller, resource_type, id, version)
    return resource_response(record.body, record.version)
