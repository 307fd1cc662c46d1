"""Forwarding a request to its upstream and streaming the answer back.

The proxy client is aiohttp's: measured on this machine it proxies about ten times more
requests per second than httpx's default transport (docs/gateway.md). One `ClientSession`
per upstream, created in the lifespan, holds that upstream's connection pool.

Neither body is ever held whole: the request body flows from the ASGI server into the
upstream connection chunk by chunk, and the response body the other way.
"""

from __future__ import annotations

import logging
import re
from collections.abc import AsyncIterator, Callable, Mapping
from time import perf_counter
from urllib.parse import unquote_to_bytes

import aiohttp
from multidict import CIMultiDict
from opentelemetry import propagate, trace
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Receive, Scope, Send
from yarl import URL

from gateway.errors import BadGateway, GatewayTimeout, UpstreamUnavailable
from gateway.metrics import GatewayMetrics
from gateway.resilience import BreakerState, CircuitBreaker, RetryBudget
from gateway.routes import RouteSpec
from gateway.settings import GatewaySettings
from shared.errors import BadRequest, HuiminError

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("huimin.gateway")

# RFC 9110 §7.6.1: meaningful for one connection only, never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
# Set by the gateway itself: a client's own values would let it spoof its address or id.
# `Expect: 100-continue` was already answered to the client by the server; passed on, it
# would make the upstream call wait a round trip for a second 100 (nginx drops it too).
_REPLACED = frozenset(
    {
        "host",
        "x-forwarded-for",
        "x-forwarded-proto",
        "x-forwarded-host",
        "forwarded",
        "x-request-id",
        "expect",
    }
)
_NOT_FORWARDED = HOP_BY_HOP | _REPLACED
# A Host header is a name or address and a port: anything else could break the quoting of
# `Forwarded` or mislead an upstream that builds links from X-Forwarded-Host.
_VALID_HOST = re.compile(r"^([A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(:[0-9]{1,5})?$")
# Never passed back: hop-by-hop headers, the gateway's own request id, and the upstream
# server's Date and Server (as nginx hides them too).
_NOT_PASSED_BACK = frozenset(
    {name.encode("latin-1") for name in HOP_BY_HOP} | {b"x-request-id", b"date", b"server"}
)
IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
_BAD_HEADER = re.compile(rb"[\r\n\x00]")
# What a path segment may not hold once decoded (a raw one cannot hold "/" at all).
_BAD_SEGMENT = re.compile(rb"[/\\\x00\r\n]")
_BAD_QUERY = re.compile(rb"[\r\n\x00 ]")


class Upstream:
    """One upstream service: its base URL, connection pool and circuit breaker."""

    def __init__(
        self, name: str, base_url: str, settings: GatewaySettings, metrics: GatewayMetrics
    ):
        self.name = name
        self.base_url = base_url
        connector = aiohttp.TCPConnector(
            limit=settings.pool_size,
            limit_per_host=settings.pool_size,
            keepalive_timeout=settings.keepalive_seconds,
        )
        self.session = aiohttp.ClientSession(
            connector=connector,
            timeout=aiohttp.ClientTimeout(
                total=None, connect=settings.connect_timeout, sock_read=settings.read_timeout
            ),
            # Pass bodies and headers through as they are: no decompression, no cookies kept,
            # no headers the client did not send.
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        )
        # aiohttp retries an idempotent request once by itself when a connection drops
        # (RFC 9112 §9.3.1). That retry would bypass the retry budget and the metrics, so the
        # proxy does all retrying; no public option exists yet, hence the private flag
        # (tests/gateway/test_resilience.py counts the connections and notices a change).
        self.session._retry_connection = False
        self.duration = metrics.upstream_duration.labels(name)
        gauge = metrics.breaker_state.labels(name)
        gauge.set(BreakerState.closed)
        self.breaker = CircuitBreaker(
            settings.breaker_failures,
            settings.breaker_open_seconds,
            on_change=lambda state: gauge.set(state),
        )

    async def ping(self) -> None:
        """Raise unless the upstream's `/healthz` answers 200 (readiness)."""
        async with self.session.get(self.base_url + "/healthz") as response:
            if response.status != 200:
                raise RuntimeError(f"{self.name} /healthz answered {response.status}")

    async def close(self) -> None:
        """Close the pool."""
        await self.session.close()


class _Body:
    """The request body as an async iterator, remembering whether reading it began or failed
    (a started body cannot be sent again; a failed one explains the upstream error)."""

    def __init__(self, receive: Receive) -> None:
        self.receive = receive
        self.started = False
        self.error: Exception | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        self.started = True
        try:
            while True:
                message = await self.receive()
                if message["type"] == "http.disconnect":
                    raise ClientDisconnect()
                chunk: bytes = message.get("body", b"")
                if chunk:
                    yield chunk
                if not message.get("more_body", False):
                    return
        except Exception as exc:  # e.g. the body limit's 413, or the client went away
            self.error = exc
            raise


class UpstreamResponse(Response):
    """Streams an aiohttp response to the client, releasing the connection at the end."""

    def __init__(
        self,
        upstream: aiohttp.ClientResponse,
        headers: list[tuple[bytes, bytes]],
        on_body_error: Callable[[BaseException], None],
    ):
        self.status_code = upstream.status
        self.raw_headers = headers
        self.background = None
        self._upstream = upstream
        self._on_body_error = on_body_error

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Send status and headers, then the body as it arrives."""
        content = self._upstream.content
        try:
            await send(
                {
                    "type": "http.response.start",
                    "status": self.status_code,
                    "headers": self.raw_headers,
                }
            )
            if content.is_eof():
                # The whole body arrived with the headers (most API answers): one message
                # instead of a chunk and an empty end.
                body = content.read_nowait(-1)
                await send({"type": "http.response.body", "body": body, "more_body": False})
                return
            async for chunk in content.iter_any():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        except (aiohttp.ClientError, TimeoutError) as exc:
            # Too late for an error response: re-raised, so the server aborts the connection
            # and the client sees a truncated body, never a complete-looking one.
            self._on_body_error(exc)
            raise
        finally:
            self._upstream.release()


class Proxy:
    """Forwards requests to the upstreams of the route table."""

    def __init__(self, settings: GatewaySettings, metrics: GatewayMetrics) -> None:
        self.settings = settings
        self.metrics = metrics
        self.upstreams: dict[str, Upstream] = {}
        self.budget = RetryBudget(settings.retry_budget_ratio, settings.retry_budget_floor)

    def open(self, upstreams: Mapping[str, str]) -> None:
        """Create one pool per upstream (inside the running event loop)."""
        for name, url in upstreams.items():
            self.upstreams[name] = Upstream(name, url, self.settings, self.metrics)

    async def close(self) -> None:
        """Close every pool."""
        for upstream in self.upstreams.values():
            await upstream.close()
        self.upstreams.clear()

    async def forward(
        self,
        scope: Scope,
        receive: Receive,
        route: RouteSpec,
        path: str,
        headers: CIMultiDict[str],
        extra_headers: list[tuple[bytes, bytes]],
    ) -> UpstreamResponse:
        """Send the request of `scope` to the route's upstream as `path` (from
        `upstream_path`) with `headers` (from `upstream_headers`); return the streamed
        response plus `extra_headers`."""
        upstream = self.upstreams[route.upstream]
        target = URL(upstream.base_url + path, encoded=True)
        method: str = scope["method"]
        if not upstream.breaker.allow():
            self.metrics.breaker_rejections.labels(upstream.name).inc()
            wait = max(1, round(upstream.breaker.retry_after()))
            raise UpstreamUnavailable(
                f"The {upstream.name} service is failing; requests to it are paused.",
                headers={"Retry-After": str(wait)},
                upstream=upstream.name,
            )
        body = _Body(receive) if _has_body(scope) else None
        self.budget.on_request()
        span: trace.Span = trace.INVALID_SPAN
        current = trace.get_current_span()
        if current.is_recording():
            # The client span is the upstream's parent, but never the current span: nothing
            # runs inside it that could need it, and attaching it costs a context switch.
            span = tracer.start_span(
                f"{method} {upstream.name}",
                kind=trace.SpanKind.CLIENT,
                attributes={"http.request.method": method, "server.address": upstream.base_url},
            )
            propagate.inject(headers, context=trace.set_span_in_context(span))
        elif current.get_span_context().is_valid:
            # Not recorded here (sampled out, or no exporter): the upstream still joins this
            # trace, and learns the sampling decision.
            propagate.inject(headers)
        try:
            response = await self._send(upstream, method, target, headers, body)
            span.set_attribute("http.response.status_code", response.status)
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(trace.StatusCode.ERROR, type(exc).__name__)
            # Either the upstream's failure was counted already, or it was no verdict on the
            # upstream at all (the client's body was too large, the client left): in both
            # cases a half-open probe is over and the next request may probe again.
            upstream.breaker.release()
            raise
        finally:
            span.end()
        if response.status in (502, 503, 504):
            self.metrics.upstream_errors.labels(upstream.name, "status_5xx").inc()
            upstream.breaker.failure()
        else:
            upstream.breaker.success()
        return UpstreamResponse(
            response,
            response_headers(response, extra_headers),
            lambda exc: self._body_lost(upstream, exc),
        )

    def _body_lost(self, upstream: Upstream, exc: BaseException) -> None:
        self.metrics.upstream_errors.labels(upstream.name, "body").inc()
        logger.warning("upstream %s failed while sending its body: %r", upstream.name, exc)

    async def _send(
        self,
        upstream: Upstream,
        method: str,
        target: URL,
        headers: CIMultiDict[str],
        body: _Body | None,
    ) -> aiohttp.ClientResponse:
        attempt = 0
        while True:
            started = perf_counter()
            try:
                response = await upstream.session.request(
                    method,
                    target,
                    headers=headers,
                    data=body.chunks() if body is not None else None,
                    allow_redirects=False,
                )
            except TimeoutError:
                self._body_failed(body)
                self.metrics.upstream_errors.labels(upstream.name, "timeout").inc()
                upstream.breaker.failure()
                raise GatewayTimeout(
                    f"The {upstream.name} service did not answer in time.", upstream=upstream.name
                ) from None
            except aiohttp.ClientError as exc:
                self._body_failed(body)
                kind = "connect" if isinstance(exc, aiohttp.ClientConnectorError) else "disconnect"
                self.metrics.upstream_errors.labels(upstream.name, kind).inc()
                # Safe to send again: the method is idempotent and no body byte was consumed.
                if (
                    method in IDEMPOTENT
                    and attempt < self.settings.retries
                    and (body is None or not body.started)
                    and self.budget.try_spend()
                ):
                    attempt += 1
                    self.metrics.retries.labels(upstream.name).inc()
                    continue
                upstream.breaker.failure()
                logger.warning("upstream %s failed: %r", upstream.name, exc)
                raise BadGateway(
                    f"The {upstream.name} service could not be reached.", upstream=upstream.name
                ) from None
            upstream.duration.observe(perf_counter() - started)
            return response

    @staticmethod
    def _body_failed(body: _Body | None) -> None:
        # The request body, not the upstream, failed: report that (413, or a gone client).
        if body is not None and body.error is not None:
            error = body.error
            if isinstance(error, ClientDisconnect | HuiminError) or hasattr(error, "status_code"):
                raise error


def spans_exported(provider: trace.TracerProvider | None = None) -> bool:
    """Whether a span made now would reach an exporter.

    The SDK builds a full span (attributes checked, ids drawn, events list) even when no
    processor is registered, as with no `OTEL_EXPORTER_OTLP_ENDPOINT` set: two spans per
    request were about a sixth of the gateway's time in a profile. The processors are
    private to the SDK; if it ever hides them differently, spans are made as before.
    """
    if provider is None:
        provider = trace.get_tracer_provider()
    processor = getattr(provider, "_active_span_processor", None)
    processors = getattr(processor, "_span_processors", None)
    return processors is None or bool(processors)


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"transfer-encoding" or (name == b"content-length" and value != b"0"):
            return True
    return False


def upstream_path(scope: Scope, route: RouteSpec) -> str:
    """The path and query to request upstream; 400 for anything that could escape the route.

    Decided on the raw path as the client sent it, segment by segment, so `..`, `%2e%2e`,
    encoded slashes and empty segments are refused before any routing consequence.
    """
    raw: bytes = scope.get("raw_path") or scope["path"].encode()
    raw = raw.split(b"?", 1)[0]
    segments = raw.split(b"/")[1:]
    last = len(segments) - 1
    for index, segment in enumerate(segments):
        decoded = unquote_to_bytes(segment) if b"%" in segment else segment
        if decoded == b"." or decoded == b"..":
            raise BadRequest("The path may not contain '.' or '..' segments.")
        if not segment and index != last:
            raise BadRequest("The path may not contain empty segments ('//').")
        if _BAD_SEGMENT.search(decoded):
            raise BadRequest("The path may not contain encoded slashes or control characters.")
    strip = route.strip_prefix.encode()
    if not (raw == strip or raw.startswith(strip + b"/")):
        # The prefix itself was percent-encoded: refuse rather than guess.
        raise BadRequest("The path's route prefix must not be percent-encoded.")
    rest = raw[len(strip) :] or b"/"
    query: bytes = scope.get("query_string", b"")
    if _BAD_QUERY.search(query):
        raise BadRequest("The query string contains control characters.")
    return (rest + (b"?" + query if query else b"")).decode("latin-1")


def upstream_headers(scope: Scope) -> CIMultiDict[str]:
    """The request headers to send upstream: end-to-end ones, plus forwarding information."""
    connection_listed: set[str] | None = None
    host = ""
    kept: list[tuple[str, str]] = []
    for raw_name, raw_value in scope["headers"]:
        if _BAD_HEADER.search(raw_value) or _BAD_HEADER.search(raw_name):
            raise BadRequest("A request header contains a line break or NUL.")
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        if name in _NOT_FORWARDED:
            if name == "connection":
                listed = {t.strip().lower() for t in value.split(",")}
                connection_listed = listed | (connection_listed or set())
            elif name == "host":
                if not _VALID_HOST.match(value):
                    raise BadRequest("The Host header is not a valid host name and port.")
                host = value
            continue
        kept.append((name, value))
    if connection_listed:
        kept = [(name, value) for name, value in kept if name not in connection_listed]
    client = scope.get("client")
    address = client[0] if client else "unknown"
    proto = scope.get("scheme", "http")
    # None of these names is among the kept ones (they are all in _REPLACED).
    kept.append(("X-Forwarded-For", address))
    kept.append(("X-Forwarded-Proto", proto))
    forwarded = f'for="{_node(address)}";proto={proto}'
    if host:
        kept.append(("X-Forwarded-Host", host))
        forwarded += f';host="{host}"'
    kept.append(("Forwarded", forwarded))
    request_id = scope.get("state", {}).get("request_id")
    if request_id:
        kept.append(("X-Request-ID", request_id))
    return CIMultiDict(kept)


def _node(address: str) -> str:
    # RFC 7239 §6: IPv6 addresses are bracketed.
    return f"[{address}]" if ":" in address else address


def response_headers(
    response: aiohttp.ClientResponse, extra: list[tuple[bytes, bytes]]
) -> list[tuple[bytes, bytes]]:
    """The upstream's end-to-end response headers (repeated ones kept), plus `extra`."""
    dropped = _NOT_PASSED_BACK
    listed = response.headers.getall("Connection", ())
    if listed:
        dropped = dropped | {
            t.strip().lower().encode("latin-1") for v in listed for t in v.split(",")
        }
    out = [(name, value) for name, value in response.raw_headers if name.lower() not in dropped]
    out.extend(extra)
    return out
