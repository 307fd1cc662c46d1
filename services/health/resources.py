"""Resource bodies: parsing request JSON and validating it with the fhir.resources R4B models.

The server stores the client's JSON (after validation and with server-owned `id` and `meta`
set), not a re-serialization of the model: validation must not reformat what a clinic sent.
"""

from __future__ import annotations

import datetime
import decimal
import functools
import re
import typing
from collections.abc import Mapping
from typing import Any

import orjson
from fhir.resources.R4B import get_fhir_model_class
from pydantic import BaseModel, ValidationError

from services.health.outcome import issue
from services.health.searchparams import RESOURCE_TYPES
from shared.errors import BadRequest, NotFound, Unprocessable

FHIR_VERSION = "4.3.0"  # R4B: wire-compatible with R4 (4.0.1) for every type served here
ID_PATTERN = re.compile(r"^[A-Za-z0-9\-.]{1,64}$")
MAX_DEPTH = 32  # deeper JSON than any FHIR resource needs is refused before validation
SUPPORTED = frozenset(RESOURCE_TYPES)


@functools.cache
def model_class(resource_type: str) -> type[BaseModel]:
    """The R4B model of a supported resource type."""
    return get_fhir_model_class(resource_type)


def summary_elements(resource_type: str) -> frozenset[str]:
    """Top-level JSON element names in the resource's summary (`_summary=true`)."""
    return _summary(resource_type)


@functools.cache
def _summary(resource_type: str) -> frozenset[str]:
    out = {"resourceType", "id", "meta"}
    for name, field in model_class(resource_type).model_fields.items():
        extra = field.json_schema_extra
        if isinstance(extra, dict) and extra.get("summary_element_property"):
            out.add(field.alias or name)
    return frozenset(out)


def check_type(resource_type: str) -> str:
    """The resource type if this server serves it, else a 404 OperationOutcome."""
    if resource_type not in SUPPORTED:
        raise NotFound(
            f"Resource type {resource_type!r} is not supported here.",
            issue_code="not-supported",
        )
    return resource_type


def check_id(id: str) -> str:
    """A FHIR logical id ([A-Za-z0-9-.]{1,64}), else 400."""
    if not ID_PATTERN.match(id):
        raise BadRequest(f"{id!r} is not a valid FHIR id ([A-Za-z0-9-.], 1 to 64 characters).")
    return id


def parse_json(raw: bytes) -> dict[str, Any]:
    """The JSON object of a request body; 400 OperationOutcome when malformed or too deep."""
    if not raw.strip():
        raise BadRequest("The request has no body; a FHIR resource was expected.")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}", issue_code="structure") from None
    if not isinstance(data, dict):
        raise BadRequest(
            "The body must be a JSON object (a FHIR resource).", issue_code="structure"
        )
    if _too_deep(data):
        raise BadRequest(f"The body nests deeper than {MAX_DEPTH} levels.", issue_code="structure")
    return data


def _too_deep(value: Any) -> bool:
    # Iterative: a recursive walk is what deep-nesting attacks aim at.
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
    return False


def validate(resource: Mapping[str, Any], expected_type: str | None = None) -> dict[str, Any]:
    """Check a resource against its R4B model; 422 with one issue per invalid element.

    Returns the resource as a plain dict (the client's JSON, not the model's rendering).
    """
    rtype = resource.get("resourceType")
    if not isinstance(rtype, str):
        raise BadRequest("The resource has no resourceType.", issue_code="required")
    if expected_type is not None and rtype != expected_type:
        raise BadRequest(
            f"Expected a {expected_type} resource, got {rtype}.",
            issue_code="invalid",
            errors=[{"expression": "resourceType", "message": f"must be {expected_type}"}],
        )
    if rtype not in SUPPORTED:
        raise BadRequest(
            f"Resource type {rtype!r} is not supported here.", issue_code="not-supported"
        )
    try:
        model = model_class(rtype).model_validate(dict(resource))
    except ValidationError as exc:
        raise Unprocessable(
            f"The {rtype} is not valid: {exc.error_count()} problem(s).",
            issues=validation_issues(rtype, exc),
        ) from None
    except (ValueError, TypeError) as exc:  # validators of fhir.resources raise plain errors
        raise Unprocessable(f"The {rtype} is not valid: {exc}", issue_code="invalid") from None
    problems = element_issues(model, resource, rtype)
    if problems:
        raise Unprocessable(
            f"The {rtype} is not valid: {len(problems)} problem(s).", issues=problems
        )
    return dict(resource)


_ENCOUNTER_STATUS = (
    "planned",
    "arrived",
    "triaged",
    "in-progress",
    "onleave",
    "finished",
    "cancelled",
    "entered-in-error",
    "unknown",
)
_RESULT_STATUS = ("registered", "preliminary", "final", "amended", "corrected", "cancelled")
# Required value sets that the models list only in part (their list ends in "+").
_COMPLETE_CODES: dict[tuple[str, str], tuple[str, ...]] = {
    ("Encounter", "status"): _ENCOUNTER_STATUS,
    ("EncounterStatusHistory", "status"): _ENCOUNTER_STATUS,
    ("Observation", "status"): (*_RESULT_STATUS, "entered-in-error", "unknown"),
    ("DiagnosticReport", "status"): (
        *_RESULT_STATUS,
        "partial",
        "appended",
        "entered-in-error",
        "unknown",
    ),
}


@functools.cache
def _closed_codes(cls: type[BaseModel]) -> dict[str, tuple[str, ...]]:
    # The models list the codes of `code` elements (`enum_values`) but do not enforce them;
    # a list with "+" or "etc." is only the start of a larger value set: checked only when
    # the whole set is known here.
    out = {}
    for name, field in cls.model_fields.items():
        extra = field.json_schema_extra
        codes = extra.get("enum_values") if isinstance(extra, dict) else None
        if not isinstance(codes, list) or not codes:
            continue
        if not {"+", "etc."} & set(codes):
            out[name] = tuple(str(c) for c in codes)
        elif (cls.__name__, name) in _COMPLETE_CODES:
            out[name] = _COMPLETE_CODES[(cls.__name__, name)]
    return out


def _json_kind(annotation: Any) -> str | None:
    """The JSON type of a primitive element ("boolean", "integer", "number", "string")."""
    stack = [annotation]
    while stack:
        a = stack.pop()
        if a is bool:
            return "boolean"
        if a is int:
            return "integer"
        if a is decimal.Decimal:
            return "number"
        if a in (str, datetime.date, datetime.datetime, datetime.time):
            return "string"
        if typing.get_origin(a) is typing.Annotated:
            stack.append(typing.get_args(a)[0])
        else:
            stack.extend(x for x in typing.get_args(a) if x is not type(None))
    return None


@functools.cache
def _json_kinds(cls: type[BaseModel]) -> dict[str, str]:
    out = {}
    for name, field in cls.model_fields.items():
        kind = _json_kind(field.annotation)
        if kind is not None:
            out[name] = kind
    return out


_IS_KIND = {
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
}


def element_issues(model: BaseModel, data: Mapping[str, Any], path: str) -> list[dict[str, Any]]:
    """Issues the models let pass: codes outside their required value set (Patient.gender
    "x"), and primitives of the wrong JSON type that pydantic coerces ("active": "yes") but
    that would be stored as sent."""
    out = []
    closed, kinds = _closed_codes(type(model)), _json_kinds(type(model))
    fields = type(model).model_fields
    for name in model.model_fields_set:  # only what the client sent
        alias = fields[name].alias or name
        value, raw = getattr(model, name, None), data.get(alias)
        if value is None or raw is None:
            continue
        many = isinstance(value, list) and isinstance(raw, list)
        pairs = zip(value, raw, strict=False) if many else [(value, raw)]
        for i, (item, sent) in enumerate(pairs):
            at = f"{path}.{alias}[{i}]" if many else f"{path}.{alias}"
            kind, allowed = kinds.get(name), closed.get(name)
            if kind is not None and sent is not None and not _IS_KIND[kind](sent):
                message = f"{at}: a FHIR {kind} is expected here, got {sent!r}"
                out.append(issue(message, code="value", expression=[at]))
            elif allowed is not None and isinstance(item, str) and item not in allowed:
                message = f"{at}: {item!r} is not a valid code (one of {' | '.join(allowed)})"
                out.append(issue(message, code="code-invalid", expression=[at]))
            elif isinstance(item, BaseModel) and isinstance(sent, dict):
                out.extend(element_issues(item, sent, at))
    return out


def validation_issues(resource_type: str, exc: ValidationError) -> list[dict[str, Any]]:
    """One OperationOutcome issue per pydantic error, located by a FHIRPath-like expression."""
    out = []
    for err in exc.errors(include_url=False):
        path = resource_type
        for part in err.get("loc", ()):
            if isinstance(part, int):
                path += f"[{part}]"
            else:
                path += "." + str(part).removesuffix("__ext")
        kind = err.get("type", "")
        code = "structure" if kind == "extra_forbidden" else "value"
        if kind == "missing":
            code = "required"
        message = str(err.get("msg", "invalid"))
        if kind == "extra_forbidden":
            message = "Unknown element"
        out.append(issue(f"{path}: {message}", code=code, expression=[path]))
    return out
