"""The API gateway: the suite's only public entry.

Requests under a route table prefix (`gateway/routes.toml`) are checked at the edge (path,
headers, token, rate limit) and streamed to their service; the gateway keeps no data.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import APIRouter, FastAPI
from pydantic import BaseModel, ConfigDict
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from gateway.dispatch import ProxyDispatch
from gateway.edge import admit
from gateway.me import ResidentView
from gateway.metrics import GatewayMetrics
from gateway.openapi import MergedOpenAPI
from gateway.proxy import Proxy
from gateway.ratelimit import Limiter, MemoryLimiter, RedisLimiter
from gateway.routes import RouteTable, load_routes
from gateway.settings import GatewaySettings
from shared.app import create_app
from shared.auth import CurrentPrincipal, auth_lifespan
from shared.errors import problem_responses
from shared.settings import get_settings
from shared.telemetry import Telemetry

__all__ = ["GatewaySettings", "create_gateway_app"]

# CORS admits every method: the dispatch answers 405 itself from the route table.
_ANY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE"]
# Headers a browser script may read on a cross-origin response.
_EXPOSED = [
    *("Location", "ETag", "Content-Location", "Retry-After", "X-Request-ID"),
    *("RateLimit-Limit", "RateLimit-Remaining", "RateLimit-Reset"),
]
_ALLOWED = [
    *("Authorization", "Content-Type", "If-Match", "If-None-Match", "Prefer"),
    *("X-Request-ID", "traceparent", "tracestate"),
]


class GatewayApp(FastAPI):
    """FastAPI, with the route table's prefixes served by `ProxyDispatch` before the
    middleware stack (gateway.dispatch says why); everything else is FastAPI's as usual."""

    dispatch: ProxyDispatch | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Proxied requests to the dispatch, the rest (and the lifespan) to FastAPI."""
        if scope["type"] == "http" and self.dispatch is not None:
            route = self.dispatch.match(scope["path"])
            if route is not None:
                await self.dispatch(route, scope, receive, send)
                return
        await super().__call__(scope, receive, send)


class NamedRoute(Route):
    """A plain Starlette route (the merged `/openapi.json`, which replaces FastAPI's own)
    that still names itself in the scope, as FastAPI's routes do, so metrics label it by
    template."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        """Starlette's match, plus `route` in the child scope."""
        match, child_scope = super().matches(scope)
        if match is not Match.NONE:
            child_scope["route"] = self
        return match, child_scope


@dataclass
class Gateway:
    """What the proxy endpoints share (on `app.state.gateway`)."""

    settings: GatewaySettings
    table: RouteTable
    proxy: Proxy
    metrics: GatewayMetrics
    limiter: Limiter


def create_gateway_app(
    settings: GatewaySettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the gateway app (`uvicorn --factory gateway.app:create_gateway_app` works too).

    The route table is read and checked here, so a bad file stops the start-up
    (`gateway.routes.RouteFileError`).
    """
    settings = settings if settings is not None else get_settings(GatewaySettings)
    table = load_routes(settings.routes_file, settings.upstream_urls)
    app = create_app(
        settings,
        title="Huimin API",
        lifespan_hooks=[auth_lifespan(settings), _clients_hook],
        telemetry=telemetry,
        app_class=GatewayApp,
    )
    assert isinstance(app, GatewayApp)
    metrics = GatewayMetrics(app.state.metrics.registry)
    gateway = Gateway(
        settings=settings,
        table=table,
        proxy=Proxy(settings, metrics),
        metrics=metrics,
        limiter=MemoryLimiter(),
    )
    app.state.gateway = gateway
    _serve_merged_openapi(app, table, settings)
    app.include_router(me_router)
    cors: dict[str, Any] = {
        "allow_origins": settings.cors_origins,
        "allow_methods": _ANY_METHOD,
        "allow_headers": _ALLOWED,
        "expose_headers": _EXPOSED,
        "max_age": 600,
    }
    # Outermost: a preflight is answered before any token or limit is looked at.
    app.add_middleware(CORSMiddleware, **cors)
    app.dispatch = ProxyDispatch(
        table,
        gateway,
        app.state.metrics,
        cors,
        reserved=[r.path for r in app.router.routes if isinstance(r, Route)],
    )
    return app


def _serve_merged_openapi(app: FastAPI, table: RouteTable, settings: GatewaySettings) -> None:
    # FastAPI's own /openapi.json describes only the gateway's routes; /docs reads this one.
    merged = MergedOpenAPI(
        base=app.openapi,
        upstreams=lambda: app.state.gateway.proxy.upstreams,
        mounts=table.mounts(),
        ttl=settings.openapi_cache_seconds,
    )
    app.router.routes[:] = [
        r for r in app.router.routes if getattr(r, "path", None) != app.openapi_url
    ]

    async def openapi(request: Request) -> Response:
        return JSONResponse(await merged.document())

    app.router.routes.insert(0, NamedRoute("/openapi.json", openapi, include_in_schema=False))


me_router = APIRouter(tags=["resident"])


class ResidentSection(BaseModel):
    """One service's part of `/me`: `status` ok, unavailable, forbidden or timeout."""

    model_config = ConfigDict(extra="allow")

    status: str
    detail: str | None = None


class Resident360(BaseModel):
    """`GET /me`: the caller's record and household, health summary and enrollments."""

    resident_id: str
    complete: bool
    registry: ResidentSection
    health: ResidentSection
    education: ResidentSection


@me_router.get(
    "/me",
    summary="Your record, household, health summary and enrollments (residents)",
    response_model=Resident360,
    responses=problem_responses(401, 403, 429),
)
async def me(request: Request, principal: CurrentPrincipal) -> JSONResponse:
    """Assembled in parallel with your own token; `complete` is false when a part is missing."""
    gateway: Gateway = request.app.state.gateway
    client = request.client
    limits = await admit(
        principal,
        client.host if client else "unknown",
        gateway.limiter,
        gateway.settings,
        gateway.metrics,
    )
    view = ResidentView(gateway.proxy.upstreams, gateway.settings.me_deadline_seconds)
    return JSONResponse(await view.build(request, principal), headers=limits)


@asynccontextmanager
async def _clients_hook(app: FastAPI) -> AsyncIterator[None]:
    # Pools and the Redis client belong to the event loop that serves: made here, not above.
    gateway: Gateway = app.state.gateway
    gateway.proxy.open(gateway.table.upstreams)
    if isinstance(app, GatewayApp) and app.dispatch is not None:
        app.dispatch.validator = app.state.token_validator
    if gateway.settings.redis_url:
        redis_limiter = RedisLimiter(gateway.settings.redis_url)
        gateway.limiter = redis_limiter
        app.state.readiness_checks["redis"] = redis_limiter.ping
    for name, upstream in gateway.proxy.upstreams.items():
        app.state.readiness_checks[f"upstream:{name}"] = upstream.ping
    try:
        yield
    finally:
        await gateway.limiter.close()
        await gateway.proxy.close()
