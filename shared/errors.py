"""One error model for the suite, rendered as RFC 9457 `application/problem+json`.

Domain code raises a `HuiminError` subclass; `install_error_handlers(app)` renders it, and
also turns FastAPI validation errors, Starlette `HTTPException`s and unexpected exceptions
into problem documents, so a client only ever has to understand one error shape:

    {"type": "https://huimin.example/problems/not-found", "title": "Not Found",
     "status": 404, "detail": "Patient 42 does not exist", "instance": "/fhir/Patient/42",
     "errors": []}

Subclass to add a more specific problem type (the storage errors do):

    class VersionConflict(Conflict):
        type = problem_type("version-conflict")
        title = "Version Conflict"
"""

from __future__ import annotations

import http
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from opentelemetry import trace
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_TYPE_BASE = "https://huimin.example/problems/"

logger = logging.getLogger(__name__)

# Members every problem has; extension members may not silently replace them.
_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})


def problem_type(slug: str) -> str:
    """Return the problem type URI for `slug`."""
    return PROBLEM_TYPE_BASE + slug


class HuiminError(Exception):
    """Base of every error that carries its own HTTP status and problem type."""

    status: ClassVar[int] = 500
    type: ClassVar[str] = problem_type("internal-error")
    title: ClassVar[str] = "Internal Server Error"
    default_headers: ClassVar[Mapping[str, str]] = {}

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        clash = _STANDARD_MEMBERS & extra.keys()
        if clash:
            raise TypeError(f"extension members may not be named {sorted(clash)}")
        super().__init__(detail or self.title)
        self.detail = detail
        self.errors: list[dict[str, Any]] = [dict(e) for e in errors or ()]
        self.headers: dict[str, str] = {**self.default_headers, **(headers or {})}
        self.extra: dict[str, Any] = extra

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        """Return the problem document for this error."""
        return _problem(
            status=self.status,
            type_=self.type,
            title=self.title,
            detail=self.detail,
            instance=instance,
            errors=self.errors,
            extra=self.extra,
        )


class BadRequest(HuiminError):
    """The request is malformed (400)."""

    status = 400
    type = problem_type("bad-request")
    title = "Bad Request"


class Unauthorized(HuiminError):
    """No valid credentials were presented (401)."""

    status = 401
    type = problem_type("unauthorized")
    title = "Unauthorized"
    # RFC 6750 §3: a 401 for a bearer-token API must name the scheme.
    default_headers: ClassVar[Mapping[str, str]] = {"WWW-Authenticate": 'Bearer realm="huimin"'}


class Forbidden(HuiminError):
    """The caller is known but not allowed to do this (403)."""

    status = 403
    type = problem_type("forbidden")
    title = "Forbidden"


class NotFound(HuiminError):
    """The resource does not exist, or the caller may not know it does (404)."""

    status = 404
    type = problem_type("not-found")
    title = "Not Found"


class MethodNotAllowed(HuiminError):
    """The resource does not support this method (405)."""

    status = 405
    type = problem_type("method-not-allowed")
    title = "Method Not Allowed"


class Conflict(HuiminError):
    """The request conflicts with the resource's current state (409)."""

    status = 409
    type = problem_type("conflict")
    title = "Conflict"


class Gone(HuiminError):
    """The resource existed but was deleted (410)."""

    status = 410
    type = problem_type("gone")
    title = "Gone"


class PreconditionFailed(HuiminError):
    """An `If-Match`/`If-None-Match` precondition did not hold (412)."""

    status = 412
    type = problem_type("precondition-failed")
    title = "Precondition Failed"


class PayloadTooLarge(HuiminError):
    """The request body exceeds the configured limit (413)."""

    status = 413
    type = problem_type("payload-too-large")
    title = "Content Too Large"


class UnsupportedMediaType(HuiminError):
    """The request body's Content-Type is not one the endpoint accepts (415)."""

    status = 415
    type = problem_type("unsupported-media-type")
    title = "Unsupported Media Type"


class Unprocessable(HuiminError):
    """The request is well-formed but its content is invalid (422)."""

    status = 422
    type = problem_type("validation-error")
    title = "Unprocessable Content"


class TooManyRequests(HuiminError):
    """The caller exceeded a rate limit (429)."""

    status = 429
    type = problem_type("too-many-requests")
    title = "Too Many Requests"


class ServiceUnavailable(HuiminError):
    """A dependency is down; retrying later may succeed (503)."""

    status = 503
    type = problem_type("service-unavailable")
    title = "Service Unavailable"


# Lets a bare HTTPException (e.g. Starlette's own 404/405) share the type of our classes.
_CLASS_BY_STATUS: dict[int, type[HuiminError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        Unauthorized,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Gone,
        PreconditionFailed,
        PayloadTooLarge,
        UnsupportedMediaType,
        Unprocessable,
        TooManyRequests,
        ServiceUnavailable,
        HuiminError,
    )
}


class FieldProblem(BaseModel):
    """One field-level problem: where (`pointer` into the body or `field`) and what."""

    model_config = ConfigDict(extra="allow")

    pointer: str | None = Field(default=None, examples=["#/name/0/family"])
    field: str | None = Field(default=None, examples=["limit"])
    message: str


class Problem(BaseModel):
    """RFC 9457 problem details, as every non-FHIR endpoint returns them."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[problem_type("not-found")])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[FieldProblem] = []


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """Return a FastAPI `responses=` mapping documenting problem+json for `statuses`."""
    return {
        status: {
            "model": Problem,
            "content": {PROBLEM_CONTENT_TYPE: {}},
            "description": http.HTTPStatus(status).phrase,
        }
        for status in statuses
    }


class ProblemResponse(JSONResponse):
    """A JSON response with the problem+json media type."""

    media_type = PROBLEM_CONTENT_TYPE


def problem_response(
    problem: Mapping[str, Any], *, headers: Mapping[str, str] | None = None
) -> Response:
    """Render a problem document as a response with its status."""
    status = int(problem["status"])
    if status < 200 or status in (204, 304):
        # These statuses must not carry a body (RFC 9110 §6.4.1).
        return Response(status_code=status, headers=headers)
    return ProblemResponse(problem, status_code=status, headers=headers)


def _problem(
    *,
    status: int,
    type_: str,
    title: str,
    detail: str | None,
    instance: str | None,
    errors: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": type_,
        "title": title,
        "status": status,
        "detail": detail if detail is not None else title,
        "instance": instance,
        "errors": jsonable_encoder([dict(e) for e in errors]),
    }
    # Standard members first, for people reading raw responses; clashes were refused.
    body.update(jsonable_encoder(dict(extra or {})))
    return body


def _instance(request: Request) -> str:
    return request.url.path


async def huimin_error_handler(request: Request, exc: Exception) -> Response:
    """Render a `HuiminError` as problem+json."""
    assert isinstance(exc, HuiminError)
    if exc.status >= 500:
        logger.warning("%s: %s", exc.title, exc, extra={"problem_type": exc.type})
    return problem_response(exc.to_problem(_instance(request)), headers=exc.headers)


async def http_exception_handler(request: Request, exc: Exception) -> Response:
    """Render a Starlette/FastAPI `HTTPException` (routing 404/405, 413...) as problem+json."""
    assert isinstance(exc, StarletteHTTPException)
    cls = _CLASS_BY_STATUS.get(exc.status_code)
    extra: dict[str, Any] = {}
    detail: str | None
    if isinstance(exc.detail, str):
        detail = exc.detail
    else:
        # Some libraries put structured data in `detail`; keep it, as an extension member.
        detail = None
        extra["data"] = exc.detail
    problem = _problem(
        status=exc.status_code,
        # RFC 9457 §4.2.1: about:blank means "nothing beyond the status code".
        type_=cls.type if cls else "about:blank",
        title=cls.title if cls else _phrase(exc.status_code),
        detail=detail,
        instance=_instance(request),
        extra=extra,
    )
    return problem_response(problem, headers=exc.headers)


async def validation_error_handler(request: Request, exc: Exception) -> Response:
    """Render FastAPI's `RequestValidationError` as a 422 problem with one entry per field."""
    assert isinstance(exc, RequestValidationError)
    errors = [field_problem(err) for err in exc.errors()]
    problem = Unprocessable(
        f"The request has {len(errors)} invalid field{'s' if len(errors) != 1 else ''}.",
        errors=errors,
    ).to_problem(_instance(request))
    return problem_response(problem)


def field_problem(error: Mapping[str, Any]) -> dict[str, Any]:
    """Turn one pydantic/FastAPI error into a problem `errors` entry."""
    loc = [str(part) for part in error.get("loc", ())]
    code = str(error.get("type", "invalid"))
    message = str(error.get("msg", "Invalid value"))
    if loc and loc[0] == "body":
        path = loc[1:]
        if code == "json_invalid":
            # The location of a JSON syntax error is a character offset, not a member.
            ctx = error.get("ctx") or {}
            offset = path[0] if path else "?"
            message = f"Invalid JSON at character {offset}: {ctx.get('error', message)}"
            path = []
        return {"pointer": json_pointer(path), "message": message, "code": code}
    if len(loc) >= 2 and loc[0] in ("query", "path", "header", "cookie"):
        return {"field": ".".join(loc[1:]), "in": loc[0], "message": message, "code": code}
    return {"field": ".".join(loc), "message": message, "code": code}


def json_pointer(path: Sequence[str]) -> str:
    """Return the URI-fragment JSON Pointer (RFC 6901) for `path` within the body."""
    escaped = (part.replace("~", "~0").replace("/", "~1") for part in path)
    return "#" + "".join("/" + part for part in escaped)


def _phrase(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def _trace_id() -> str | None:
    context = trace.get_current_span().get_span_context()
    return trace.format_trace_id(context.trace_id) if context.is_valid else None


class UnhandledErrorMiddleware:
    """Turn an unexpected exception into a 500 problem that reveals nothing internal.

    It sits inside the app's other middleware (request id, metrics, tracing) so those see
    an ordinary 500 response; Starlette's own last-resort handler would bypass them.
    """

    def __init__(
        self, app: ASGIApp, render: Callable[[HuiminError, str], Response] | None = None
    ) -> None:
        self.app = app
        # Another error format for the 500 (the FHIR service answers OperationOutcomes).
        self.render = render

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the app; on an unexpected exception answer 500 if nothing was sent yet."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            span = trace.get_current_span()
            if span.is_recording():
                span.record_exception(exc)
                span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if started:
                # Too late for a clean response; let the server close the connection.
                raise
            trace_id = _trace_id()
            detail = "An unexpected error occurred. Quote the trace id when reporting it."
            if self.render is not None:
                error = HuiminError(detail + (f" Trace id: {trace_id}." if trace_id else ""))
                await self.render(error, Request(scope).url.path)(scope, receive, send)
                return
            problem = _problem(
                status=500,
                type_=HuiminError.type,
                title=HuiminError.title,
                detail=detail,
                instance=Request(scope).url.path,
                extra={"trace_id": trace_id} if trace_id else None,
            )
            await problem_response(problem)(scope, receive, send)


def install_error_handlers(
    app: FastAPI, render_unhandled: Callable[[HuiminError, str], Response] | None = None
) -> None:
    """Render every error of `app` as problem+json (call before adding other middleware);
    `render_unhandled` renders the 500 of an unexpected error in another format."""
    app.add_exception_handler(HuiminError, huimin_error_handler)
    app.add_exception_handler(StarletteHTTPException, http_exception_handler)
    app.add_exception_handler(RequestValidationError, validation_error_handler)
    app.add_middleware(UnhandledErrorMiddleware, render=render_unhandled)
