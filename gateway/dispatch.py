"""The proxy's hot path: requests under a route table prefix, handled in one raw ASGI pass.

The gateway's own endpoints (`/me`, `/openapi.json`, `/docs`, `/healthz`, `/readyz`,
`/metrics`) stay in FastAPI with the shared middleware stack. Proxied requests skip it: a
profile under load showed most of the gateway's time spent in six middleware layers and
OpenTelemetry's ASGI instrumentation (send and receive wrapped for every message) rather
than in proxying. Here each proxied request gets the same edge work in one pass, in this order:

request id → server span → metrics → CORS → body limit → method, path and header checks →
token → rate limit → upstream call → streamed response.

Errors are problem+json with the request id, as elsewhere in the suite; a preflight is
answered by Starlette's CORS middleware itself, before any token or limit is looked at.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from opentelemetry import context as context_api
from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, StatusCode
from prometheus_client import Counter, Gauge, Histogram
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import ClientDisconnect
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.edge import admit, authenticate
from gateway.proxy import spans_exported, upstream_headers, upstream_path
from gateway.routes import RouteSpec, RouteTable
from shared.app import (
    REQUEST_ID_HEADER,
    counting_receive,
    declared_length,
    payload_too_large,
    valid_request_id,
)
from shared.errors import HuiminError, MethodNotAllowed, problem_response
from shared.logging import request_id_var
from shared.metrics import HttpMetrics

if TYPE_CHECKING:
    from gateway.app import Gateway

logger = logging.getLogger(__name__)
tracer = trace.get_tracer("huimin.gateway")

_REQUEST_ID = REQUEST_ID_HEADER.lower().encode("latin-1")
_ROUTE = "huimin.proxy_route"  # the scope key the matched route travels in
_KNOWN_METHODS = frozenset(
    {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"}
)
# The status a request is counted with when the client left before any answer
# (nginx's convention: no response was sent at all).
_CLIENT_GONE = 499
_UNEXPECTED = "An unexpected error occurred. Quote the trace id when reporting it."


class ProxyRoute:
    """A route of the table with what each of its requests needs, computed once."""

    def __init__(self, spec: RouteSpec) -> None:
        self.spec = spec
        self.prefix = spec.prefix
        self.below = spec.prefix + "/"
        self.allow = ", ".join(spec.methods)
        # As FastAPI's routes name themselves: the template in metrics, the path in spans.
        self.exact_template = spec.prefix
        self.rest_template = spec.prefix + "/{rest}"
        self.exact_span_route = spec.prefix
        self.rest_span_route = spec.prefix + "/{rest:path}"


class _CountingSend:
    """The send of a response not built here (a CORS preflight): remembers its status."""

    def __init__(self, send: Send) -> None:
        self.send = send
        self.status = 500

    async def __call__(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
        await self.send(message)


class ProxyDispatch:
    """Serves every request under a route table prefix; `match` says which those are."""

    def __init__(
        self,
        table: RouteTable,
        gateway: Gateway,
        http_metrics: HttpMetrics,
        cors: dict[str, Any],
        reserved: Iterable[str],
    ) -> None:
        self.gateway = gateway
        self.settings = gateway.settings
        self.http_metrics = http_metrics
        self.routes = [ProxyRoute(spec) for spec in table.routes]  # longest prefix first
        # The gateway's own paths win over a route table prefix, as they always have.
        self.reserved = frozenset(reserved)
        self.max_body = gateway.settings.max_body_bytes
        # Starlette's own CORS logic, around the part of the pass that answers: preflights
        # and the headers of cross-origin answers (errors included) are exactly its.
        self.cors = CORSMiddleware(self._answer, **cors)
        self.validator: Any = None  # the app's TokenValidator, opened in the lifespan
        self._series: dict[tuple[str, str, int], tuple[Counter, Histogram]] = {}
        self.spans_exported = spans_exported  # replaceable in tests: the provider is global
        self._in_progress: dict[str, Gauge] = {}
        # The headers the propagator reads (traceparent, tracestate, baggage), by raw name.
        self._trace_fields = {
            name.encode("latin-1"): name for name in propagate.get_global_textmap().fields
        }

    def match(self, path: str) -> ProxyRoute | None:
        """The route serving `path` (longest whole-segment prefix), if the gateway proxies it."""
        for route in self.routes:
            if path.startswith(route.below) or path == route.prefix:
                return None if path in self.reserved else route
        return None

    async def __call__(self, route: ProxyRoute, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one proxied request."""
        started = perf_counter()
        request_id: str | None = None
        carrier: dict[str, str] = {}
        origin = False
        trace_fields = self._trace_fields
        for name, value in scope["headers"]:
            if name == _REQUEST_ID:
                request_id = valid_request_id(value.decode("latin-1"))
            elif name == b"origin":
                origin = True
            elif name in trace_fields:
                carrier[trace_fields[name]] = value.decode("latin-1")
        if request_id is None:
            request_id = os.urandom(16).hex()  # as random as uuid4().hex, without the object
        state = scope.get("state")
        if state is None:
            state = scope["state"] = {}
        state["request_id"] = request_id
        scope[_ROUTE] = route
        path: str = scope["path"]
        exact = path == route.prefix
        method: str = scope["method"]
        label_method = method if method in _KNOWN_METHODS else "OTHER"
        in_progress = self._in_progress.get(label_method)
        if in_progress is None:
            in_progress = self._in_progress[label_method] = self.http_metrics.in_progress.labels(
                label_method
            )
        in_progress.inc()
        if self.spans_exported():
            span_route = route.exact_span_route if exact else route.rest_span_route
            # One server span, made directly: OpenTelemetry's ASGI middleware would also wrap
            # send and receive for every message.
            span: trace.Span = tracer.start_span(
                f"{method} {span_route}",
                context=propagate.extract(carrier) if carrier else None,
                kind=SpanKind.SERVER,
                attributes={
                    "http.request.method": method,
                    "url.path": path,
                    "http.route": span_route,
                    "huimin.request_id": request_id,
                },
            )
        else:
            # Nothing would receive a span: only its identity is made (a few random bits
            # instead of a full span), so the logs of this request and of the service it
            # calls still share one trace id, the caller's when it sent one.
            span = _unrecorded_span(carrier)
        status = 500  # what the client gets if this pass dies before answering
        span_token = context_api.attach(trace.set_span_in_context(span))
        id_token = request_id_var.set(request_id)
        try:
            if origin:
                counting = _CountingSend(send)
                await self.cors(scope, receive, counting)
                status = counting.status
            else:
                status = await self._answer_status(scope, receive, send)
            if status >= 500:
                span.set_status(StatusCode.ERROR)
        except ClientDisconnect:
            status = _CLIENT_GONE
        except BaseException as exc:
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            raise
        finally:
            request_id_var.reset(id_token)
            context_api.detach(span_token)
            span.set_attribute("http.response.status_code", status)
            span.end()
            in_progress.dec()
            self._record(
                label_method,
                route.exact_template if exact else route.rest_template,
                status,
                perf_counter() - started,
            )

    def _record(self, method: str, template: str, status: int, elapsed: float) -> None:
        # The labelled children are looked up once per (method, route, status), not per
        # request: prometheus_client's labels() takes a lock and builds the label tuple.
        key = (method, template, status)
        series = self._series.get(key)
        if series is None:
            labels = (method, template, str(status))
            series = (
                self.http_metrics.requests.labels(*labels),
                self.http_metrics.duration.labels(*labels),
            )
            self._series[key] = series
        series[0].inc()
        series[1].observe(elapsed)

    async def _answer(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The ASGI app CORS wraps.
        await self._answer_status(scope, receive, send)

    async def _answer_status(self, scope: Scope, receive: Receive, send: Send) -> int:
        """Check, authenticate, limit and forward; errors answered as problem+json."""
        route: ProxyRoute = scope[_ROUTE]
        request_id: str = scope["state"]["request_id"]
        answering = False
        try:
            receive = self._limited(scope, receive)
            spec = route.spec
            method: str = scope["method"]
            if method not in spec.methods:
                raise MethodNotAllowed(
                    f"{method} is not allowed on {spec.prefix}.", headers={"Allow": route.allow}
                )
            # Path and headers first: a traversal or injection attempt is refused as such
            # (400), whoever sends it, and nothing below sees it.
            path = upstream_path(scope, spec)
            headers = upstream_headers(scope)
            gateway = self.gateway
            principal = await authenticate(
                method, _first(scope, b"authorization"), self.validator, spec
            )
            client = scope.get("client")
            limits = await admit(
                principal,
                client[0] if client else "unknown",
                gateway.limiter,
                gateway.settings,
                gateway.metrics,
            )
            extra = [(_REQUEST_ID, request_id.encode("latin-1"))]
            for name, value in limits.items():
                extra.append((name.lower().encode("latin-1"), value.encode("latin-1")))
            response = await gateway.proxy.forward(scope, receive, spec, path, headers, extra)
            answering = True
            await response(scope, receive, send)
            return response.status_code
        except HuiminError as error:
            if answering:
                raise
            if error.status >= 500:
                logger.warning("%s: %s", error.title, error, extra={"problem_type": error.type})
            problem = error.to_problem(scope["path"])
            return await self._send_error(
                problem_response(problem, headers=error.headers), request_id, scope, send
            )
        except ClientDisconnect:
            raise
        except Exception as exc:
            logger.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            if answering:
                # Too late for a clean response; let the server close the connection.
                raise
            span = trace.get_current_span()
            span.record_exception(exc)
            span.set_status(StatusCode.ERROR, type(exc).__name__)
            context = span.get_span_context()
            members: dict[str, Any] = {}
            if context.is_valid:
                members["trace_id"] = trace.format_trace_id(context.trace_id)
            unexpected = HuiminError(_UNEXPECTED, **members)
            return await self._send_error(
                problem_response(unexpected.to_problem(scope["path"])), request_id, scope, send
            )

    @staticmethod
    async def _send_error(response: Response, request_id: str, scope: Scope, send: Send) -> int:
        response.headers[REQUEST_ID_HEADER] = request_id

        async def no_receive() -> Message:
            # An error answer reads nothing more of the request.
            return {"type": "http.disconnect"}

        await response(scope, no_receive, send)
        return response.status_code

    def _limited(self, scope: Scope, receive: Receive) -> Receive:
        """`receive`, refusing bodies over the limit: up front when declared, else counted."""
        declared = declared_length(scope)
        if declared is not None and declared > self.max_body:
            raise payload_too_large(self.max_body)
        return counting_receive(receive, self.max_body, payload_too_large)


def _first(scope: Scope, wanted: bytes) -> str | None:
    for name, value in scope["headers"]:
        if name == wanted:
            return str(value.decode("latin-1"))
    return None


def _unrecorded_span(carrier: dict[str, str]) -> trace.Span:
    """A span that is never recorded: the caller's trace (or a new one) and a new span id."""
    parent = trace.INVALID_SPAN_CONTEXT
    if carrier:
        parent = trace.get_current_span(propagate.extract(carrier)).get_span_context()
    if parent.is_valid:
        trace_id, flags, state = parent.trace_id, parent.trace_flags, parent.trace_state
    else:
        trace_id = random.getrandbits(128) or 1
        flags, state = trace.TraceFlags(trace.TraceFlags.SAMPLED), trace.TraceState()
    # The SDK's own ids are drawn the same way (RandomIdGenerator).
    span_id = random.getrandbits(64) or 1
    return trace.NonRecordingSpan(
        trace.SpanContext(trace_id, span_id, is_remote=False, trace_flags=flags, trace_state=state)
    )
