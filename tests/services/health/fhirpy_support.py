"""Helpers of the FHIR acceptance tests: a fhirpy client on the test server, OperationOutcome
checks, and "was anything stored?" probes by unique identifier."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
from fhirpy import SyncFHIRClient

from tests.fixtures.health import RESIDENT_SYSTEM, Fhir, new_patient

FHIR_JSON = "application/fhir+json"
PROBE_SYSTEM = "https://huimin.example/sid/test-probe"


def fhirpy_client(fhir: Fhir, user: str = "doctor", scope: str | None = None) -> SyncFHIRClient:
    """A fhirpy client (a real, unmodified FHIR client library) authenticated as `user`."""
    return SyncFHIRClient(
        fhir.base,
        authorization=f"Bearer {fhir.token(user, scope)}",
        requests_config={"timeout": 60},
    )


def unique() -> str:
    """A value no other test uses."""
    return uuid.uuid4().hex


def probe_identifier(value: str) -> dict[str, str]:
    """An identifier for finding (or not finding) a resource by afterwards."""
    return {"system": PROBE_SYSTEM, "value": value}


def tagged_patient(value: str, **extra: Any) -> dict[str, Any]:
    """A new Patient that also carries the probe identifier `value`."""
    body = new_patient(**extra)
    body["identifier"] = [*body["identifier"], probe_identifier(value)]
    return body


def observation(value: str, subject: str, **extra: Any) -> dict[str, Any]:
    """A heart rate Observation about `subject`, carrying the probe identifier `value`."""
    return {
        "resourceType": "Observation",
        "identifier": [probe_identifier(value)],
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4"}]},
        "subject": {"reference": subject},
        "valueQuantity": {"value": 72, "unit": "/min"},
        **extra,
    }


def urn() -> str:
    """A fresh urn:uuid (a Bundle entry's fullUrl)."""
    return f"urn:uuid:{uuid.uuid4()}"


def post_bundle(c: httpx.Client, bundle: dict[str, Any]) -> httpx.Response:
    """POST a batch or transaction Bundle to the base URL."""
    return c.post("/", json=bundle, headers={"Content-Type": "application/fhir+json"})


def entry_status(entry: dict[str, Any]) -> int:
    """The HTTP status of a batch/transaction response entry ("201 Created" -> 201)."""
    return int(entry["response"]["status"].split()[0])


def stored(c: httpx.Client, resource_type: str, value: str) -> list[dict[str, Any]]:
    """The resources of a type that carry the probe identifier `value`."""
    r = c.get(f"/{resource_type}", params={"identifier": f"{PROBE_SYSTEM}|{value}"})
    assert r.status_code == 200, r.text
    return [e["resource"] for e in r.json().get("entry", [])]


def resident_token(body: dict[str, Any]) -> str:
    """`system|value` of a test Patient's resident identifier (for conditional criteria)."""
    ident = next(i for i in body["identifier"] if i["system"] == RESIDENT_SYSTEM)
    return f"{RESIDENT_SYSTEM}|{ident['value']}"


def assert_outcome(
    r: httpx.Response, status: int, *, expression: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """Assert an error response: the status, FHIR JSON, an OperationOutcome with an error issue
    (one naming `expression`, one of type `code`, when given); returns the outcome."""
    assert r.status_code == status, f"{r.status_code} (expected {status}): {r.text}"
    assert r.headers["content-type"].startswith(FHIR_JSON), r.headers["content-type"]
    outcome: dict[str, Any] = r.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    issues = outcome["issue"]
    assert any(i["severity"] in ("error", "fatal") for i in issues), outcome
    assert all(i.get("diagnostics") for i in issues), outcome
    if expression is not None:
        paths = [x for i in issues for x in i.get("expression", [])]
        assert any(expression in p for p in paths), f"no issue at {expression}: {outcome}"
    if code is not None:
        assert any(i["code"] == code for i in issues), f"no issue of type {code}: {outcome}"
    return outcome


def entries_of(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    """The entries of a Bundle (none when the server left the element out)."""
    entries: list[dict[str, Any]] = bundle.get("entry", [])
    return entries


def next_link(bundle: dict[str, Any]) -> str | None:
    """The URL of a Bundle's next page, if any."""
    return next((x["url"] for x in bundle.get("link", []) if x["relation"] == "next"), None)


def follow(c: httpx.Client, first: httpx.Response, *, max_pages: int = 50) -> list[dict[str, Any]]:
    """Every page of a Bundle from its first response, following next links; returns bundles."""
    assert first.status_code == 200, first.text
    pages = [first.json()]
    while (url := next_link(pages[-1])) is not None:
        assert len(pages) < max_pages, "too many pages: is the next link stuck?"
        r = c.get(url)
        assert r.status_code == 200, r.text
        pages.append(r.json())
    return pages
