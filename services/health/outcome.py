"""FHIR errors: every failure of the health service is an OperationOutcome.

Domain code raises the suite's `HuiminError`s (storage errors included); the handlers here
render them, FastAPI's validation errors and routing errors as OperationOutcome resources
with the FHIR status codes instead of problem+json. `issues=` on an error (an extension
member) carries ready-made OperationOutcome issues, e.g. one per invalid element.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shared.errors import HuiminError

logger = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"

# The OperationOutcome issue type (http://hl7.org/fhir/issue-type) for each HTTP status.
_ISSUE_CODE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    412: "conflict",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    429: "throttled",
    503: "transient",
}


def issue(
    diagnostics: str,
    *,
    code: str = "processing",
    severity: str = "error",
    expression: Sequence[str] = (),
) -> dict[str, Any]:
    """One OperationOutcome issue."""
    out: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        out["expression"] = list(expression)
    return out


def operation_outcome(issues: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """An OperationOutcome resource with the given issues."""
    return {"resourceType": "OperationOutcome", "issue": [dict(i) for i in issues]}


def error_outcome(exc: HuiminError) -> dict[str, Any]:
    """The OperationOutcome of a domain error: its own issues, else one per field error."""
    code = exc.extra.get("issue_code") or _ISSUE_CODE.get(exc.status, "exception")
    ready = exc.extra.get("issues")
    if ready:
        return operation_outcome(ready)
    detail = exc.detail or exc.title
    if not exc.errors:
        return operation_outcome([issue(detail, code=code)])
    issues = []
    for err in exc.errors:
        where = err.get("expression") or err.get("field")
        message = str(err.get("message") or detail)
        issues.append(issue(message, code=code, expression=[str(where)] if where else ()))
    if detail and all(i["diagnostics"] != detail for i in issues):
        issues.insert(0, issue(detail, code=code))
    return operation_outcome(issues)


class FhirResponse(Response):
    """A FHIR JSON response (orjson: bundles of hundreds of resources are the hot path)."""

    media_type = FHIR_JSON

    def render(self, content: Any) -> bytes:
        """Serialize `content` (bytes pass through unchanged)."""
        if isinstance(content, bytes):
            return content
        return orjson.dumps(content)

    def init_headers(self, headers: Mapping[str, str] | None = None) -> None:
        """Add the charset FHIR clients expect on application/fhir+json."""
        super().init_headers(headers)
        raw = [(k, v) for k, v in self.raw_headers if k != b"content-type"]
        raw.append((b"content-type", f"{FHIR_JSON}; charset=utf-8".encode()))
        self.raw_headers = raw


def outcome_response(
    status: int, outcome: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> FhirResponse:
    """An OperationOutcome response."""
    return FhirResponse(dict(outcome), status_code=status, headers=dict(headers or {}))


async def _domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HuiminError)
    if exc.status >= 500:
        logger.warning("%s: %s", exc.title, exc)
    return outcome_response(exc.status, error_outcome(exc), exc.headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else "request refused"
    if exc.status_code == 404:
        detail = f"No FHIR endpoint at {request.method} {request.url.path}."
    elif exc.status_code == 405:
        detail = f"{request.method} is not supported on {request.url.path}."
    code = _ISSUE_CODE.get(exc.status_code, "exception")
    return outcome_response(
        exc.status_code, operation_outcome([issue(detail, code=code)]), exc.headers
    )


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    issues = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "header", "path")]
        issues.append(issue(str(err.get("msg", "invalid")), code="invalid", expression=loc))
    return outcome_response(400, operation_outcome(issues))


def install_outcome_handlers(app: FastAPI) -> None:
    """Render every error of the app as an OperationOutcome (replacing problem+json)."""
    app.add_exception_handler(HuiminError, _domain_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
