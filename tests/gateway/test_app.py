"""The gateway skeleton: built with the shared factory, runnable as `python -m gateway`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from gateway.app import GatewaySettings, create_gateway_app
from shared.settings import build_settings
from tests.gateway.conftest import SERVICES, closed_url, gateway_client, settings_for
from tools._server import free_port
from tools.devstack import PROCESSES, child_environment

REPO_ROOT = Path(__file__).resolve().parents[2]


def gateway_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(extra)
    return env


def test_gateway_defaults():
    settings = build_settings(GatewaySettings)
    assert (settings.service_name, settings.host, settings.port) == ("gateway", "127.0.0.1", 8000)


async def test_gateway_answers_health_and_readiness(idp, upstream):
    app = create_gateway_app(settings_for(idp, upstream.url))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        health = await client.get("/healthz")
        ready = await client.get("/readyz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "gateway"}
    # No store of its own: ready when the identity provider and every upstream answer.
    assert ready.status_code == 200
    assert ready.json() == {
        "status": "ready",
        "checks": {"identity": "ok", **{f"upstream:{name}": "ok" for name in SERVICES}},
    }
    assert app.state.store is None


async def test_gateway_is_not_ready_while_an_upstream_is_down(idp, upstream):
    urls = {name: upstream.url for name in SERVICES} | {"tourism": closed_url()}
    app = create_gateway_app(settings_for(idp, urls))
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        ready = await client.get("/readyz")
    assert ready.status_code == 503
    assert ready.headers["content-type"] == "application/problem+json"
    assert ready.json()["checks"]["upstream:tourism"] == "failed"
    assert ready.json()["checks"]["upstream:health"] == "ok"


def test_python_m_gateway_refuses_unsafe_production_settings():
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=REPO_ROOT,
        env=gateway_env(HUIMIN_ENV="production", HUIMIN_PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "GatewaySettings: invalid configuration" in result.stderr
    assert "HUIMIN_OIDC_ISSUER is the dev issuer" in result.stderr
    assert "Traceback" not in result.stderr


def test_python_m_gateway_serves_json_logs_and_stops_on_sigterm():
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "gateway"],
        cwd=REPO_ROOT,
        env=gateway_env(HUIMIN_PORT=str(port), HUIMIN_LOG_JSON="true", PYTHONUNBUFFERED="1"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=1) as client:
            while True:
                assert process.poll() is None, "gateway exited during startup"
                try:
                    response = client.get(
                        f"http://127.0.0.1:{port}/healthz", headers={"X-Request-ID": "probe-1"}
                    )
                    break
                except httpx.TransportError:
                    assert time.monotonic() < deadline, "gateway did not answer in 30 s"
                    time.sleep(0.1)
        assert response.status_code == 200
        assert response.json()["service"] == "gateway"
        process.send_signal(signal.SIGTERM)
        output, _ = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    # Granian stops gracefully (the lifespan's shutdown runs), and the process exits 0.
    assert process.returncode == 0
    records = [json.loads(line) for line in output.splitlines() if line.strip()]
    assert "Application shutdown complete." in [r["message"] for r in records]
    assert all(record["service"] == "gateway" for record in records)
    [access] = [r for r in records if r["logger"] == "gateway.access"]
    assert access["http_path"] == "/healthz"
    assert access["http_status"] == 200
    assert access["request_id"] == "probe-1"


def test_the_dev_stack_gives_fhir_links_the_gateways_base():
    urls = {
        "gateway_url": "http://127.0.0.1:8000",
        "registry_url": "http://127.0.0.1:8002",
        "var_dir": "var",  # the launcher also fills in where the stack keeps its data
    }
    health = next(p for p in PROCESSES if p.name == "health")
    env = child_environment(8001, {}, health.env, urls)
    assert env["HUIMIN_FHIR_BASE_URL"] == "http://127.0.0.1:8000/fhir"


class _BrokenLimiter:
    """A limiter whose store fails in a way nobody planned for."""

    async def acquire(self, buckets: object) -> object:
        raise RuntimeError("secret internals")

    async def close(self) -> None:
        return None


async def test_an_unexpected_error_on_the_proxy_path_is_a_500_problem(idp, upstream):
    async with gateway_client(settings_for(idp, upstream.url)) as (app, client):
        app.state.gateway.limiter = _BrokenLimiter()
        response = await client.get(
            "/tourism/echo/x",
            headers={"X-Request-ID": "req-500", "Origin": "http://localhost:3000"},
        )
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/tourism/echo/x"
    assert "secret internals" not in response.text
    # Still an answer of the edge: its request id, and readable by the allowed origin.
    assert response.headers["x-request-id"] == "req-500"
    assert response.headers["access-control-allow-origin"] == "http://localhost:3000"
