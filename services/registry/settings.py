"""Settings of the registry service: the shared `HUIMIN_*` variables plus paging and audit."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class RegistrySettings(Settings):
    """Registry service settings (env prefix `HUIMIN_`)."""

    service_name: str = "registry"
    port: int = 8002
    default_limit: int = Field(default=20, ge=1, le=100)
    max_limit: int = Field(default=100, ge=1, le=100)
    # Read audit entries are written in batches: at most this many seconds late.
    audit_flush_seconds: float = Field(default=0.25, gt=0, le=10)
    audit_batch_size: int = Field(default=200, ge=1, le=900)
    # Reads are refused (503) rather than served unaudited once this many entries wait.
    audit_max_pending: int = Field(default=20_000, ge=100)
    # Load the demo hierarchy, residents and households at start (dev stack; idempotent).
    demo_data: bool = False
    # With demo_data: this many generated households on top (about three residents each;
    # the dev stack sets 100). At most 120: demo national IDs number residents in 3 digits.
    demo_households: int = Field(default=0, ge=0, le=120)
    # Citizen accounts (POST /residents/{id}/account): the registry manages Keycloak users
    # through the admin API as its own service account (HUIMIN_CLIENT_ID/SECRET, which the
    # realm grants realm-management manage-users and view-users). Off: those calls answer
    # 503, as they must with the embedded dev issuer, which has no admin API.
    citizen_accounts: bool = False
    # Keycloak's root URL for admin calls when it differs from the issuer's server (e.g.
    # an in-cluster address); empty: the server part of HUIMIN_OIDC_ISSUER.
    keycloak_admin_url: str | None = None
