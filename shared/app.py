"""The app factory every Huimin process is built with.

`create_app(settings, title=..., routers=[...], store=open_store)` returns a FastAPI app with
the suite's conventions already in place:

- `/healthz` (alive), `/readyz` (store and extra checks reachable, else a 503 problem),
  `/metrics` (Prometheus text, per-app registry);
- problem+json errors (`shared.errors`), request ids (`X-Request-ID`), request metrics,
  OpenTelemetry server spans, the request body limit (`max_body_bytes`);
- a lifespan that opens the store and any other clients once per process and closes them
  on shutdown; endpoints reach the store through `StoreDep`.

`serve(create, SettingsClass)` is the body of every `python -m <service>`.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import sys
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Annotated, Protocol, TypeAlias, TypeVar, cast, runtime_checkable

import uvicorn
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.responses import PlainTextResponse
from fastapi.telemetry import TelemetryConfig
from opentelemetry import trace
from pydantic import BaseModel, ValidationError
from starlette.datastructures import MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import (
    HuiminError,
    PayloadTooLarge,
    ServiceUnavailable,
    install_error_handlers,
    problem_response,
    problem_responses,
)
from shared.logging import configure_logging, request_id_var
from shared.metrics import HttpMetrics, MetricsMiddleware, new_registry
from shared.settings import Settings, get_settings
from shared.storage import Store
from shared.telemetry import Telemetry, setup_telemetry

logger = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# Ids we echo back and log must be short and harmless; anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
DEFAULT_READINESS_TIMEOUT = 2.0


@runtime_checkable
class StoreLike(Protocol):
    """The lifecycle part of `shared.storage.Store`: all the app factory relies on."""

    async def open(self) -> None:
        """Connect (create files, pools...)."""

    async def ping(self) -> None:
        """Raise if the store cannot serve requests."""

    async def close(self) -> None:
        """Release every resource."""


StoreFactory: TypeAlias = Callable[[str], StoreLike]
"""Builds an unopened store from a URL, e.g. `lambda url: open_store(url, SPECS)`."""

ReadinessCheck: TypeAlias = Callable[[], Awaitable[object]]
"""Raises (or times out) when a dependency is not reachable."""

LifespanHook: TypeAlias = Callable[[FastAPI], AbstractAsyncContextManager[object]]
"""Creates a client on startup (put it on `app.state`) and closes it on shutdown."""

ErrorRenderer: TypeAlias = Callable[[HuiminError, str], Response]
"""Renders an error raised outside the routes (e.g. a 413 from the body limit) for a path;
the default is problem+json, the FHIR service renders an OperationOutcome."""


def render_problem(error: HuiminError, path: str) -> Response:
    """The default error renderer: RFC 9457 problem+json."""
    return problem_response(error.to_problem(path), headers=error.headers)


SettingsT = TypeVar("SettingsT", bound=Settings)

# FastAPI's own tracing would duplicate the spans of the OpenTelemetry instrumentation
# (shared.telemetry), and its metrics would duplicate /metrics.
_NATIVE_TELEMETRY_OFF: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}


class HealthStatus(BaseModel):
    """Body of `/healthz`."""

    status: str = "ok"
    service: str


class ReadyStatus(BaseModel):
    """Body of a successful `/readyz`."""

    status: str = "ready"
    checks: dict[str, str]


def get_store(request: Request) -> Store:
    """Return the app's open store (FastAPI dependency)."""
    store: StoreLike | None = getattr(request.app.state, "store", None)
    if store is None:
        raise RuntimeError(
            "no open store: pass store= to create_app and run the app with its lifespan"
        )
    # Whatever create_app was given: a shared.storage Store in services, a double in tests.
    return cast(Store, store)


StoreDep = Annotated[Store, Depends(get_store)]
"""The request's store, e.g. `async def read(store: StoreDep) -> ...`."""


def create_app(
    settings: Settings,
    *,
    title: str,
    routers: Sequence[APIRouter] = (),
    store: StoreLike | StoreFactory | None = None,
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    lifespan_hooks: Sequence[LifespanHook] = (),
    telemetry: Telemetry | None = None,
    version: str = "0.1.0",
    app_class: type[FastAPI] = FastAPI,
    readiness_timeout: float = DEFAULT_READINESS_TIMEOUT,
    render_error: ErrorRenderer = render_problem,
) -> FastAPI:
    """Build a service app with health, readiness, metrics, errors, tracing and request ids.

    `store` is an unopened store or a factory called with `settings.store_url`; it is opened
    in the lifespan, pinged by `/readyz` and closed on shutdown. Lifespan hooks run after
    the store opens, in order, and may add checks to `app.state.readiness_checks`.
    `app_class` is a FastAPI subclass to build instead (the gateway's serves its proxied
    routes before the middleware stack).
    """

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        for note in settings.warnings():
            logger.warning(note)
        async with AsyncExitStack() as stack:
            if store is not None:
                opened = store if isinstance(store, StoreLike) else store(settings.store_url)
                await opened.open()
                stack.push_async_callback(opened.close)
                # Runs first (LIFO): /readyz and StoreDep stop using a store being closed.
                stack.push_async_callback(_forget_store, app)
                app.state.store = opened
                app.state.readiness_checks["store"] = opened.ping
            for hook in lifespan_hooks:
                await stack.enter_async_context(hook(app))
            logger.info(
                "%s ready (env=%s, store=%s)",
                settings.service_name,
                settings.env.value,
                _scheme(settings.store_url) if store is not None else "none",
            )
            yield

    app = app_class(
        title=title,
        version=version,
        lifespan=lifespan,
        telemetry=_NATIVE_TELEMETRY_OFF,
    )
    app.state.settings = settings
    app.state.store = None
    app.state.readiness_checks = dict(readiness_checks or {})
    metrics = HttpMetrics(new_registry())
    app.state.metrics = metrics

    # Starlette runs the last-added middleware first: errors innermost, then the body limit,
    # metrics, request id outermost, so a 500 or 413 is still counted and carries its id.
    install_error_handlers(
        app, render_unhandled=None if render_error is render_problem else render_error
    )
    app.add_middleware(
        BodyLimitMiddleware, max_bytes=settings.max_body_bytes, render_error=render_error
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)
    app.add_middleware(RequestIdMiddleware)

    _add_ops_routes(app, settings, readiness_timeout)
    for router in routers:
        app.include_router(router)

    (telemetry or setup_telemetry(settings)).instrument_app(app)
    return app


async def _forget_store(app: FastAPI) -> None:
    app.state.store = None
    app.state.readiness_checks.pop("store", None)


def _scheme(url: str) -> str:
    # Log only the kind of store: the URL may hold credentials.
    return url.split(":", 1)[0]


def _add_ops_routes(app: FastAPI, settings: Settings, readiness_timeout: float) -> None:
    # Public on purpose: orchestrators probe and scrape without tokens.
    ops = APIRouter(tags=["ops"])

    @ops.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> HealthStatus:
        return HealthStatus(service=settings.service_name)

    @ops.get(
        "/readyz",
        summary="Readiness: every dependency answers",
        response_model=ReadyStatus,
        responses=problem_responses(503),
    )
    async def readyz(request: Request) -> ReadyStatus | Response:
        checks: dict[str, ReadinessCheck] = dict(request.app.state.readiness_checks)
        results = await asyncio.gather(
            *(_run_check(name, check, readiness_timeout) for name, check in checks.items())
        )
        failed = [(name, why) for name, why in results if why is not None]
        if failed:
            error = ServiceUnavailable(
                "Not ready: " + ", ".join(name for name, _ in failed) + " failed.",
                errors=[{"dependency": name, "message": why} for name, why in failed],
                checks={name: "ok" if why is None else "failed" for name, why in results},
            )
            # Returned, not raised: _run_check has logged the cause once already.
            return problem_response(error.to_problem(request.url.path))
        return ReadyStatus(checks={name: "ok" for name, _ in results})

    metrics: HttpMetrics = app.state.metrics
    ops.add_api_route(
        "/metrics",
        metrics.endpoint,
        methods=["GET"],
        summary="Prometheus metrics",
        response_class=PlainTextResponse,
    )
    app.include_router(ops)


async def _run_check(name: str, check: ReadinessCheck, seconds: float) -> tuple[str, str | None]:
    try:
        async with asyncio.timeout(seconds):
            await check()
    except TimeoutError:
        logger.warning("readiness check %s timed out after %.1f s", name, seconds)
        return name, f"no answer within {seconds:g} s"
    except Exception as exc:
        # The type only: the message may name hosts or credentials, and /readyz is public.
        logger.warning("readiness check %s failed: %r", name, exc)
        return name, f"{type(exc).__name__}"
    return name, None


class RequestIdMiddleware:
    """Accept the caller's `X-Request-ID` (or make one), log with it and echo it back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Attach the request id to the scope, the logs, the span and the response."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = _incoming_request_id(scope) or uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        span = trace.get_current_span()
        if span.is_recording():
            span.set_attribute("huimin.request_id", request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        token = request_id_var.set(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


def payload_too_large(max_bytes: int) -> PayloadTooLarge:
    """The 413 problem of a request body over `max_bytes`."""
    return PayloadTooLarge(
        f"The request body exceeds the limit of {max_bytes} bytes.", max_bytes=max_bytes
    )


class _BodyTooLarge(StarletteHTTPException):
    # An HTTPException, because FastAPI turns any other error raised while it reads the
    # body into a 400; shared.errors renders it as the payload-too-large problem.
    def __init__(self, max_bytes: int) -> None:
        super().__init__(413, payload_too_large(max_bytes).detail)


def declared_length(scope: Scope) -> int | None:
    """The request's Content-Length, if it declares a valid one."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def counting_receive(
    receive: Receive, max_bytes: int, too_large: Callable[[int], Exception]
) -> Receive:
    """`receive`, raising `too_large(max_bytes)` once the body read exceeds `max_bytes`:
    chunked bodies declare no length, so what actually arrives is counted."""
    received = 0

    async def limited_receive() -> Message:
        nonlocal received
        message = await receive()
        if message["type"] == "http.request":
            received += len(message.get("body", b""))
            if received > max_bytes:
                raise too_large(max_bytes)
        return message

    return limited_receive


class BodyLimitMiddleware:
    """Refuse request bodies over `max_bytes` with a 413 problem.

    FastAPI's own `max_body_size` answers a declared oversize body with a plain-text 413
    from outside the app's middleware, which would bypass problem+json, request ids and
    metrics; this one runs inside them.
    """

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, render_error: ErrorRenderer = render_problem
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.render_error = render_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Answer 413 up front for a declared oversize body, else count while reading."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = declared_length(scope)
        if declared is not None and declared > self.max_bytes:
            error = payload_too_large(self.max_bytes)
            response = self.render_error(error, Request(scope).url.path)
            await response(scope, receive, send)
            return
        await self.app(scope, counting_receive(receive, self.max_bytes, _BodyTooLarge), send)


def _incoming_request_id(scope: Scope) -> str | None:
    wanted = REQUEST_ID_HEADER.lower().encode()
    for name, value in scope.get("headers", ()):
        if name == wanted:
            return valid_request_id(value.decode("latin-1"))
    return None


def valid_request_id(candidate: str) -> str | None:
    """A caller's `X-Request-ID` if it is short and harmless enough to echo and log."""
    return candidate if _VALID_REQUEST_ID.match(candidate) else None


def load_settings(settings_class: type[SettingsT]) -> SettingsT:
    """The process's settings; an invalid configuration exits with status 2 and says why,
    one line per setting, without a traceback."""
    try:
        return get_settings(settings_class)
    except ValidationError as exc:
        print(f"{settings_class.__name__}: invalid configuration", file=sys.stderr)
        for error in exc.errors():
            where = ".".join(str(part) for part in error["loc"]) or "settings"
            print(f"  {where}: {error['msg']}", file=sys.stderr)
        raise SystemExit(2) from None


def freeze_heap() -> None:
    """Put every object alive now out of the cyclic garbage collector's reach, once a
    serving process has imported everything and built its app. That is some 100,000
    objects (FastAPI, pydantic, OpenTelemetry, the routes) that are never garbage; without
    this, each full collection walks them all, a pause of 50-80 ms on this machine during
    which every request of the process waits (a p95 made of GC). Garbage of later
    requests is still collected. Not for test processes, which build many apps: a frozen
    cycle is never freed."""
    gc.collect()  # garbage of the startup is freed, not frozen
    gc.freeze()


def serve(create: Callable[[SettingsT], FastAPI], settings_class: type[SettingsT]) -> None:
    """Load settings, configure logging and run `create(settings)` with uvicorn."""
    settings = load_settings(settings_class)
    configure_logging(settings)
    app = create(settings)
    freeze_heap()
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,  # keep shared.logging's handler: one format for every line
        server_header=False,
        timeout_graceful_shutdown=10,
    )
