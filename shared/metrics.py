"""Prometheus HTTP metrics: a pure ASGI middleware and the `/metrics` exposition.

Each app gets its own `CollectorRegistry` so that tests can build many apps in one process
without "duplicated timeseries" errors. Routes are labelled by their template
(`/fhir/Patient/{id}`), never the raw path, to keep label cardinality bounded.
"""

from __future__ import annotations

from time import perf_counter
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    gc_collector,
    generate_latest,
    platform_collector,
    process_collector,
)
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "unmatched"
# Any other method a client invents is counted as OTHER, so labels stay bounded.
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# Seconds; the tail matters most (a proxy hop plus a store call should stay well under 1 s).
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def new_registry() -> CollectorRegistry:
    """Return a registry with the process, platform and GC collectors."""
    registry = CollectorRegistry()
    process_collector.ProcessCollector(registry=registry)
    platform_collector.PlatformCollector(registry=registry)
    gc_collector.GCCollector(registry=registry)
    return registry


class HttpMetrics:
    """The request metrics of one app."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        self.requests = Counter(
            "http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.duration = Histogram(
            "http_request_duration_seconds",
            "Time from request start to the last response byte, in seconds.",
            ["method", "route", "status"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_progress = Gauge(
            "http_requests_in_progress",
            "HTTP requests being handled now.",
            ["method"],
            registry=registry,
        )

    def exposition(self) -> Response:
        """Return the registry in the Prometheus text format."""
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)

    async def endpoint(self, request: Request) -> Response:
        """Serve `/metrics`."""
        return self.exposition()


def route_template(scope: Scope) -> str | None:
    """Return the matched route's path template, or None when no route matched."""
    # FastAPI >= 0.137 keeps the route as declared in its router (without the prefixes of
    # include_router) in scope["route"]; the full template lives in the effective context.
    fastapi_scope: Any = scope.get("fastapi")
    if isinstance(fastapi_scope, dict):
        path = getattr(fastapi_scope.get("effective_route_context"), "path_format", None)
        if isinstance(path, str) and path:
            return path
    route = scope.get("route")
    path = getattr(route, "path_format", None) or getattr(route, "path", None)
    return path if isinstance(path, str) else None


class MetricsMiddleware:
    """Count and time every HTTP request (pure ASGI: no per-request task or body copy)."""

    def __init__(self, app: ASGIApp, *, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Record the request once its response has been handed to the server."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method = scope["method"] if scope["method"] in _KNOWN_METHODS else "OTHER"
        status = 500  # what the client gets if the app dies before answering
        in_progress = self.metrics.in_progress.labels(method)

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = perf_counter()
        in_progress.inc()
        try:
            await self.app(scope, receive, recording_send)
        finally:
            elapsed = perf_counter() - started
            in_progress.dec()
            labels = (method, route_template(scope) or UNMATCHED_ROUTE, str(status))
            self.metrics.requests.labels(*labels).inc()
            self.metrics.duration.labels(*labels).observe(elapsed)
