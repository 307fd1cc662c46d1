"""Telemetry: one provider per process, server spans, W3C propagation, library spans."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator

import httpx
import pytest
import uvicorn
from fastapi import APIRouter, FastAPI, Request
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind

from shared.app import create_app
from shared.settings import build_settings
from shared.telemetry import Telemetry, setup_telemetry
from tools._server import free_port

SETTINGS = build_settings(service_name="teletest")


@pytest.fixture
def telemetry() -> Telemetry:
    telemetry = setup_telemetry(SETTINGS, in_memory=True)
    assert telemetry.memory_exporter is not None
    telemetry.memory_exporter.clear()
    return telemetry


def finished(telemetry: Telemetry) -> tuple[ReadableSpan, ...]:
    assert telemetry.memory_exporter is not None
    return telemetry.memory_exporter.get_finished_spans()


def make_app(telemetry: Telemetry) -> FastAPI:
    router = APIRouter(prefix="/things")

    @router.get("/{thing_id}")
    async def read(thing_id: str) -> dict[str, str]:
        return {"id": thing_id}

    return create_app(SETTINGS, title="Telemetry test", routers=[router], telemetry=telemetry)


def asgi_client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver")


def test_setup_is_idempotent_and_sets_the_global_provider(telemetry):
    again = setup_telemetry(build_settings(service_name="other"))
    assert again.provider is telemetry.provider
    assert trace.get_tracer_provider() is telemetry.provider
    # Only callers that ask for it get the in-memory exporter.
    assert again.memory_exporter is None


async def test_a_request_produces_a_server_span_with_the_route_template(telemetry):
    app = make_app(telemetry)
    async with asgi_client(app) as client:
        response = await client.get("/things/abc")
    assert response.status_code == 200
    [server] = [s for s in finished(telemetry) if s.kind is SpanKind.SERVER]
    assert server.name == "GET /things/{thing_id}"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/things/{thing_id}"
    assert server.attributes["huimin.request_id"] == response.headers["x-request-id"]


async def test_incoming_traceparent_continues_the_callers_trace(telemetry):
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    async with asgi_client(make_app(telemetry)) as client:
        await client.get("/things/1", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
    [server] = [s for s in finished(telemetry) if s.kind is SpanKind.SERVER]
    assert trace.format_trace_id(server.context.trace_id) == trace_id
    assert server.parent is not None
    assert trace.format_span_id(server.parent.span_id) == parent_id


async def test_probes_are_not_traced(telemetry):
    async with asgi_client(make_app(telemetry)) as client:
        for path in ("/healthz", "/readyz", "/metrics"):
            assert (await client.get(path)).status_code == 200
    assert [s for s in finished(telemetry) if s.kind is SpanKind.SERVER] == []


async def test_a_500_marks_the_server_span_as_error(telemetry):
    router = APIRouter()

    @router.get("/fail")
    async def fail() -> None:
        raise RuntimeError("boom")

    app = create_app(SETTINGS, title="t", routers=[router], telemetry=telemetry)
    async with asgi_client(app) as client:
        assert (await client.get("/fail")).status_code == 500
    [server] = [s for s in finished(telemetry) if s.kind is SpanKind.SERVER]
    assert server.status.status_code is trace.StatusCode.ERROR
    assert any(event.name == "exception" for event in server.events)


def test_instrumenting_an_app_twice_is_harmless(telemetry):
    app = make_app(telemetry)
    telemetry.instrument_app(app)
    telemetry.instrument_app(app)
    assert app._is_instrumented_by_opentelemetry is True  # type: ignore[attr-defined]


@pytest.fixture
def echo_server() -> Iterator[str]:
    """A real HTTP server that answers with the traceparent header it received."""
    app = FastAPI()

    @app.get("/echo")
    async def echo(request: Request) -> dict[str, str | None]:
        return {"traceparent": request.headers.get("traceparent")}

    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "echo server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


async def test_httpx_calls_are_traced_and_carry_traceparent(telemetry, echo_server):
    tracer = telemetry.provider.get_tracer(__name__)
    async with httpx.AsyncClient(trust_env=False) as client:
        with tracer.start_as_current_span("caller") as caller:
            response = await client.get(f"{echo_server}/echo")
    sent = response.json()["traceparent"]
    assert sent is not None
    _version, trace_id, span_id, _flags = sent.split("-")
    assert trace_id == trace.format_trace_id(caller.get_span_context().trace_id)
    [client_span] = [s for s in finished(telemetry) if s.kind is SpanKind.CLIENT]
    assert trace.format_span_id(client_span.context.span_id) == span_id
    assert client_span.parent is not None
    assert client_span.parent.span_id == caller.get_span_context().span_id


def test_sqlite3_cursor_queries_are_traced(telemetry, tmp_path):
    tracer = telemetry.provider.get_tracer(__name__)
    with tracer.start_as_current_span("unit-of-work") as work:
        connection = sqlite3.connect(tmp_path / "t.db")
        try:
            # The dbapi instrumentation wraps cursors; Connection.execute() bypasses it.
            cursor = connection.cursor()
            cursor.execute("CREATE TABLE t (x INTEGER)")
            cursor.execute("INSERT INTO t VALUES (?)", (1,))
        finally:
            connection.close()
    database_spans = [
        s for s in finished(telemetry) if (s.attributes or {}).get("db.system") == "sqlite"
    ]
    assert [s.name for s in database_spans] == ["CREATE", "INSERT"]
    assert all(s.parent is not None for s in database_spans)
    assert {s.parent.span_id for s in database_spans if s.parent} == {
        work.get_span_context().span_id
    }
