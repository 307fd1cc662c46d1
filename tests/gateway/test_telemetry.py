"""Request ids, one trace from the gateway through a service to its store, metrics, CORS,
and FHIR links built on the gateway's public base."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import ProxyTracerProvider

from gateway.app import GatewayApp, create_gateway_app
from gateway.proxy import spans_exported
from services.health.app import create_health_app
from services.health.settings import HealthSettings
from shared.settings import build_settings
from shared.telemetry import setup_telemetry
from tests.fixtures.gateway import ThreadServer, serving, serving_gateway
from tests.fixtures.health import new_patient
from tests.gateway.conftest import SERVICES, gateway_client, settings_for
from tools._server import free_port


async def test_request_id_is_accepted_or_created_and_echoed(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        given = await client.get("/tourism/echo/x", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/tourism/echo/x")
        refused = await client.get("/tourism/echo/x", headers={"X-Request-ID": "bad id!"})
    assert given.headers["x-request-id"] == "abc-123"
    assert ["x-request-id", "abc-123"] in given.json()["headers"]
    created = made.headers["x-request-id"]
    assert len(created) == 32
    assert ["x-request-id", created] in made.json()["headers"]  # the service logs the same id
    assert refused.headers["x-request-id"] != "bad id!"


async def test_traceparent_reaches_the_upstream_in_the_callers_trace(idp, upstream: ThreadServer):
    trace_id = secrets.token_hex(16)
    incoming = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    settings = settings_for(idp, upstream.url)
    async with gateway_client(settings, in_memory_traces=True) as (_, client):
        response = await client.get("/tourism/echo/x", headers={"traceparent": incoming})
    [sent] = [v for k, v in response.json()["headers"] if k == "traceparent"]
    assert sent.split("-")[1] == trace_id
    assert sent != incoming  # a child span of the gateway's, not the caller's header copied


def test_one_trace_spans_gateway_service_and_store(idp, tmp_path: Path):
    gateway_port = free_port()
    public_base = f"http://127.0.0.1:{gateway_port}/fhir"
    health_settings = build_settings(
        HealthSettings,
        env="test",
        store_url=f"sqlite:///{tmp_path}/health.db",
        oidc_issuer=idp.issuer,
        fhir_base_url=public_base,
    )
    telemetry = setup_telemetry(health_settings, in_memory=True)
    exporter = telemetry.memory_exporter
    assert exporter is not None
    token = idp.password_token("doctor", scope="user/*.cruds")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/fhir+json"}
    with serving(create_health_app(health_settings, telemetry=telemetry)) as health:
        urls = {name: health.url for name in SERVICES}
        gateway_app = create_gateway_app(settings_for(idp, urls), telemetry=telemetry)
        with (
            serving_gateway(gateway_app, port=gateway_port) as gateway,
            httpx.Client(base_url=gateway.url, timeout=30) as client,
        ):
            created = client.post("/fhir/Patient", json=new_patient(), headers=headers)
            read = client.get(created.headers["location"], headers=headers)
    assert created.status_code == 201, created.text
    # FHIR links are built on the gateway's public base, so clients follow them through it.
    assert created.headers["location"].startswith(public_base + "/Patient/")
    assert read.status_code == 200
    finished = exporter.get_finished_spans()
    # The test's own httpx client is traced too (and sends its own traceparent): start from
    # the gateway's client span of the create and gather its whole trace.
    client_span = next(s for s in finished if s.name == "POST health")
    trace_id = client_span.context.trace_id
    spans = [s for s in finished if s.context.trace_id == trace_id]
    names = [s.name for s in spans]
    assert "POST /fhir/{rest:path}" in names, names  # the gateway's server span
    [service_span] = [
        s for s in spans if s.parent and s.parent.span_id == client_span.context.span_id
    ]
    assert service_span.name == "POST /{resource_type}"  # the health service's server span
    store_spans = [s for s in spans if s.name.startswith("sqlite")]
    assert store_spans, names
    assert all(s.resource is not None for s in store_spans)


async def test_metrics_show_requests_and_upstream_errors(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url, read_timeout=0.2)) as (_, client):
        await client.get("/tourism/echo/x")
        await client.get("/tourism/slow?seconds=1")
        await client.get("/openapi.json")
        metrics = (await client.get("/metrics")).text
    assert 'route="/tourism/{rest}",status="200"' in metrics
    assert 'route="/tourism/{rest}",status="504"' in metrics
    assert 'route="/openapi.json",status="200"' in metrics
    assert 'gateway_upstream_errors_total{kind="timeout",upstream="tourism"} 1.0' in metrics
    assert 'gateway_breaker_state{upstream="registry"} 0.0' in metrics
    assert "gateway_upstream_duration_seconds_bucket" in metrics


async def test_cors_preflight_is_answered_at_the_edge(idp, upstream: ThreadServer, upstream_state):
    settings = settings_for(idp, upstream.url, cors_origins=["https://console.example"])
    async with gateway_client(settings) as (_, client):
        preflight = await client.options(
            "/registry/echo/x",
            headers={
                "Origin": "https://console.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        stranger = await client.options(
            "/registry/echo/x",
            headers={
                "Origin": "https://evil.example",
                "Access-Control-Request-Method": "POST",
            },
        )
        simple = await client.get("/tourism/echo/x", headers={"Origin": "https://console.example"})
    assert preflight.status_code == 200  # no token needed for a preflight
    assert preflight.headers["access-control-allow-origin"] == "https://console.example"
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "authorization" in preflight.headers["access-control-allow-headers"].lower()
    assert stranger.status_code == 400
    assert "access-control-allow-origin" not in stranger.headers
    assert simple.headers["access-control-allow-origin"] == "https://console.example"
    assert "RateLimit-Remaining" in simple.headers["access-control-expose-headers"]
    assert sum(upstream_state.calls.values()) == 1  # only the simple GET went upstream


def test_spans_are_made_only_when_a_processor_would_receive_them() -> None:
    silent = TracerProvider()
    exporting = TracerProvider()
    exporting.add_span_processor(SimpleSpanProcessor(InMemorySpanExporter()))
    assert not spans_exported(silent)
    assert spans_exported(exporting)
    # Without the SDK nothing is recorded anyway; the API's spans cost nothing to make.
    assert spans_exported(ProxyTracerProvider())


async def test_without_an_exporter_the_trace_id_still_travels(idp, upstream: ThreadServer):
    trace_id = secrets.token_hex(16)
    incoming = f"00-{trace_id}-{secrets.token_hex(8)}-01"
    async with gateway_client(settings_for(idp, upstream.url)) as (app, client):
        assert isinstance(app, GatewayApp)
        assert app.dispatch is not None
        app.dispatch.spans_exported = lambda provider=None: False  # no OTEL_EXPORTER_* set
        joined = await client.get("/tourism/echo/x", headers={"traceparent": incoming})
        fresh = await client.get("/tourism/echo/x")
    [sent] = [v for k, v in joined.json()["headers"] if k == "traceparent"]
    assert sent.split("-")[1] == trace_id  # the caller's trace
    assert sent != incoming  # under a span id of the gateway's
    [made] = [v for k, v in fresh.json()["headers"] if k == "traceparent"]
    version, new_trace, span_id, flags = made.split("-")
    assert (version, flags) == ("00", "01")
    assert int(new_trace, 16) != 0  # a new trace, with valid ids
    assert int(span_id, 16) != 0
