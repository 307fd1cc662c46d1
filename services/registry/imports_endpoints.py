"""Routes of bulk import: start a job from a CSV file, follow it, read its failed rows.

The file comes as the request body (`text/csv`, `charset` parameter optional) or as the
`file` part of `multipart/form-data` (what an HTML form or `curl -F file=@x.csv` sends),
within the service's request body limit (`HUIMIN_MAX_BODY_BYTES`). A job is visible to
the account that started it and to administrators; to anyone else it does not exist (404),
since its rows name people.
"""

from __future__ import annotations

import email.parser
import email.policy
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from services.registry.endpoints import CallerDep
from services.registry.import_jobs import ImportRunner
from services.registry.imports import parse_file
from services.registry.schemas import ImportErrorPage, ImportJob, ImportJobPage
from services.registry.service import Caller
from shared.auth.deps import Authenticated
from shared.errors import NotFound, Unprocessable, UnsupportedMediaType, problem_responses
from shared.params import Cursor, Limit, page_limit
from shared.storage import Record

CSV_TYPES = ("text/csv", "application/csv", "text/plain", "application/vnd.ms-excel")
JobId = Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")]


def _runner(request: Request) -> ImportRunner:
    runner: ImportRunner = request.app.state.imports
    return runner


RunnerDep = Annotated[ImportRunner, Depends(_runner)]

router = APIRouter(
    tags=["imports"],
    dependencies=[Authenticated],
    responses=problem_responses(400, 401, 403, 404, 422),
)


def _view(record: Record) -> dict[str, Any]:
    b = record.body
    return ImportJob(
        id=record.id,
        state=b["state"],
        filename=b["filename"],
        encoding=b["encoding"],
        rows=b["rows"],
        error=b.get("error"),
        owner=b["owner"].get("username"),
        created_at=b["created_at"],
        started_at=b.get("started_at"),
        finished_at=b.get("finished_at"),
        errors=f"/imports/{record.id}/errors",
    ).model_dump(mode="json")


def _parameters(value: str) -> tuple[str, dict[str, str]]:
    kind, _, rest = value.partition(";")
    params = {}
    for part in rest.split(";"):
        key, _, v = part.strip().partition("=")
        if key:
            params[key.strip().lower()] = v.strip().strip('"')
    return kind.strip().lower(), params


def _multipart(raw: bytes, content_type: str) -> tuple[bytes, str | None, str | None]:
    # The stdlib's MIME parser reads form data well enough for one file part, which spares
    # the service a multipart dependency for this one route.
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + raw)
    found: bytes | None = None
    charset = filename = None
    fields: dict[str, str] = {}
    for part in message.iter_parts() if message.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(payload, bytes):
            continue
        if name == "file":
            found, charset, filename = payload, part.get_content_charset(), part.get_filename()
        elif isinstance(name, str):
            fields[name] = payload.decode("utf-8", "replace").strip()
    if found is None:
        raise Unprocessable(
            "The form has no file part.",
            errors=[{"field": "file", "in": "body", "message": "missing"}],
        )
    return found, fields.get("charset") or charset, fields.get("filename") or filename


async def _upload(request: Request) -> tuple[bytes, str | None, str | None]:
    """The file, its declared charset and its name."""
    kind, params = _parameters(request.headers.get("content-type", ""))
    raw = await request.body()
    if kind == "multipart/form-data":
        return _multipart(raw, request.headers["content-type"])
    if kind in CSV_TYPES:
        return raw, params.get("charset"), None
    raise UnsupportedMediaType("Send the file as text/csv or as the file part of a form.")


async def _job(caller: Caller, runner: ImportRunner, id: str) -> Record:
    record = await runner.repo.import_job(id)
    access = caller.access
    if record is None or not (
        access.is_admin or record.body["owner"]["sub"] == access.principal.subject
    ):
        raise NotFound(f"Import job {id} is not known.")
    return record


@router.post(
    "/imports",
    status_code=202,
    response_model=ImportJob,
    summary="Import residents and households from a CSV file (a background job)",
    responses=problem_responses(413, 415),
)
async def start_import(
    request: Request,
    caller: CallerDep,
    runner: RunnerDep,
    filename: Annotated[str | None, Query(max_length=200)] = None,
) -> Response:
    caller.access.require_writer()
    raw, charset, sent_name = await _upload(request)
    parsed = parse_file(raw, charset)
    name = (filename or sent_name or "import.csv")[:200]
    record = await runner.submit(caller, parsed, name)
    headers: Mapping[str, str] = {"Location": f"/imports/{record.id}"}
    return JSONResponse(_view(record), status_code=202, headers=dict(headers))


@router.get("/imports", summary="Your import jobs, newest first")
async def list_imports(
    request: Request,
    caller: CallerDep,
    runner: RunnerDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ImportJobPage:
    owner = caller.access.principal.subject
    page = await runner.repo.import_jobs_of(owner, limit=page_limit(request, limit), cursor=cursor)
    nxt = page.next_cursor
    return ImportJobPage.model_validate(
        {
            "items": [_view(r) for r in page.items],
            "next": str(request.url.include_query_params(cursor=nxt)) if nxt else None,
        }
    )


@router.get("/imports/{id}", response_model=ImportJob, summary="An import job and its progress")
async def read_import(id: JobId, caller: CallerDep, runner: RunnerDep) -> Response:
    return JSONResponse(_view(await _job(caller, runner, id)))


@router.get("/imports/{id}/errors", summary="The failed rows of an import job, in file order")
async def import_errors(
    request: Request,
    id: JobId,
    caller: CallerDep,
    runner: RunnerDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> ImportErrorPage:
    await _job(caller, runner, id)
    page = await runner.repo.import_errors(id, limit=page_limit(request, limit), cursor=cursor)
    nxt = page.next_cursor
    return ImportErrorPage.model_validate(
        {
            "items": [{"row": r.body["row"], "errors": r.body["errors"]} for r in page.items],
            "next": str(request.url.include_query_params(cursor=nxt)) if nxt else None,
        }
    )
