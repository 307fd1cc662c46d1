"""Gateway settings: the shared `HUIMIN_*` variables plus routing, limits and resilience."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import Settings

DEFAULT_ROUTES_FILE = Path(__file__).resolve().parent / "routes.toml"


class GatewaySettings(Settings):
    """Gateway settings (env prefix `HUIMIN_`)."""

    service_name: str = "gateway"
    port: int = 8000
    routes_file: Path = DEFAULT_ROUTES_FILE
    # Overrides the route file's [upstreams], e.g. '{"health": "http://10.0.0.5:8001"}'.
    upstream_urls: dict[str, str] = Field(default_factory=dict)
    # Connection pool per upstream: at most this many open connections, idle ones kept.
    pool_size: int = Field(default=256, ge=1)
    keepalive_seconds: float = Field(default=30.0, gt=0)
    connect_timeout: float = Field(default=2.0, gt=0)
    # Longest silence while reading the upstream's response (headers or body): then 504.
    read_timeout: float = Field(default=30.0, gt=0)
    # Idempotent requests that failed to connect or lost the connection are tried again,
    # at most this many times, while the retry budget allows it.
    retries: int = Field(default=2, ge=0, le=5)
    # Retries may add at most this share of the requests (plus a small floor), so retries
    # cannot multiply the load on an upstream that is already failing.
    retry_budget_ratio: float = Field(default=0.2, ge=0, le=1)
    retry_budget_floor: int = Field(default=10, ge=0)
    # Circuit breaker per upstream: open after this many failures in a row, for this long.
    breaker_failures: int = Field(default=5, ge=1)
    breaker_open_seconds: float = Field(default=10.0, gt=0)
    # Token buckets: per person (token `sub`) and per client (`azp`, or the IP address of
    # an anonymous caller). Zero rate turns that limit off.
    user_rate: float = Field(default=20.0, ge=0)
    user_burst: int = Field(default=40, ge=1)
    client_rate: float = Field(default=200.0, ge=0)
    client_burst: int = Field(default=400, ge=1)
    # Browsers' origins allowed to call the API (the console and the mobile app's web view).
    cors_origins: list[str] = Field(
        default_factory=lambda: ["http://localhost:3000", "http://localhost:8100"]
    )
    # `GET /me` answers within this time, marking the sections still missing.
    me_deadline_seconds: float = Field(default=3.0, gt=0, le=30)
    # The merged OpenAPI document is fetched from the services at most this often.
    openapi_cache_seconds: float = Field(default=60.0, ge=0)
