"""Settings of the health service: the shared `HUIMIN_*` variables plus FHIR paging, audit
and the registry feed it consumes."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class HealthSettings(Settings):
    """Health service settings (env prefix `HUIMIN_`)."""

    service_name: str = "health"
    port: int = 8001
    # The base URL clients see (through the gateway in the suite); Bundle links, fullUrl and
    # Location headers are built on it. Empty: the URL of the incoming request.
    fhir_base_url: str = ""
    default_count: int = Field(default=20, ge=1, le=1000)
    max_count: int = Field(default=500, ge=1, le=1000)
    # Transactions are one atomic store batch (at most 1000 operations); each entry costs a
    # resource write and a history row, and the audit record needs one more.
    max_bundle_entries: int = Field(default=400, ge=1, le=490)
    # Read and search audit records are written in batches: at most this many seconds late.
    audit_flush_seconds: float = Field(default=0.25, gt=0, le=10)
    audit_batch_size: int = Field(default=200, ge=1, le=900)
    # Requests wait while this many audit records are queued (back-pressure), and get 503
    # after `audit_backlog_wait_seconds` if the store does not catch up.
    audit_max_backlog: int = Field(default=2000, ge=2)
    audit_backlog_wait_seconds: float = Field(default=10.0, gt=0, le=60)
    # Load the demo patients at start (the dev stack sets it; idempotent).
    demo_data: bool = False
    # With demo_data: clinical records for this many of the registry's generated demo
    # residents, R-00000031 onwards (services/health/demo_clinic.py; the dev stack sets it).
    demo_patients: int = Field(default=0, ge=0, le=1000)
    # The registry's event feed (e.g. http://127.0.0.1:8002/events): when set, registered,
    # updated, moved and merged residents create or update their linked Patients, read with
    # this service's client credentials (HUIMIN_CLIENT_ID / HUIMIN_CLIENT_SECRET). Unset: off.
    registry_events_url: str | None = None
    registry_events_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    registry_events_page_size: int = Field(default=100, ge=1, le=1000)
