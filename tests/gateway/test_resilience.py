"""Timeouts, retries of idempotent requests only, the circuit breaker, upstream down."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import httpx
import pytest

from gateway.app import create_gateway_app
from gateway.resilience import BreakerState, CircuitBreaker, RetryBudget
from tests.fixtures.gateway import DroppingUpstream, ThreadServer, UpstreamState, serving_gateway
from tests.gateway.conftest import closed_url, gateway_client, settings_for


async def test_a_slow_upstream_gets_504(idp, upstream: ThreadServer):
    settings = settings_for(idp, upstream.url, read_timeout=0.3)
    async with gateway_client(settings) as (_, client):
        started = time.monotonic()
        response = await client.get("/tourism/slow?seconds=3")
        elapsed = time.monotonic() - started
        metrics = (await client.get("/metrics")).text
    assert response.status_code == 504
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["upstream"] == "tourism"
    assert elapsed < 3  # answered at the timeout, not when the upstream finished
    assert 'gateway_upstream_errors_total{kind="timeout",upstream="tourism"} 1.0' in metrics


async def test_an_upstream_that_is_down_gets_502_at_once(idp):
    settings = settings_for(idp, closed_url(), retries=0)
    async with gateway_client(settings) as (_, client):
        response = await client.get("/tourism/echo/x")
    assert response.status_code == 502
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["type"].endswith("/bad-gateway")
    assert "tourism" in response.json()["detail"]


async def test_idempotent_requests_are_retried_after_a_dropped_connection(idp, token):
    with DroppingUpstream(drops=1) as flaky:
        async with gateway_client(settings_for(idp, flaky.url)) as (_, client):
            response = await client.get("/tourism/anything")
            metrics = (await client.get("/metrics")).text
    assert response.status_code == 200
    assert response.text == "ok"
    assert flaky.connections == 2
    assert 'gateway_upstream_retries_total{upstream="tourism"} 1.0' in metrics


async def test_non_idempotent_requests_are_never_retried(idp, token):
    auth = {"Authorization": f"Bearer {token()}"}
    with DroppingUpstream(drops=1) as flaky:
        async with gateway_client(settings_for(idp, flaky.url)) as (_, client):
            post = await client.post("/tourism/anything", json={"a": 1}, headers=auth)
            patch = await client.patch("/tourism/anything", json={"a": 1}, headers=auth)
    assert post.status_code == 502
    # The POST went out once; the PATCH (a new connection) was answered the first time.
    assert patch.status_code == 200
    assert flaky.connections == 2
    assert [r.split(b" ", 1)[0] for r in flaky.requests] == [b"POST", b"PATCH"]


async def test_retries_stop_when_the_budget_is_spent(idp):
    settings = settings_for(idp, closed_url(), retries=2, retry_budget_floor=1)
    settings = settings.model_copy(update={"retry_budget_ratio": 0.0})
    async with gateway_client(settings) as (_, client):
        for _ in range(3):
            assert (await client.get("/tourism/x")).status_code == 502
        metrics = (await client.get("/metrics")).text
    assert 'gateway_upstream_retries_total{upstream="tourism"} 1.0' in metrics


async def test_breaker_opens_fails_fast_probes_and_closes(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    settings = settings_for(idp, upstream.url, breaker_failures=2, breaker_open_seconds=0.5)
    async with gateway_client(settings) as (_, client):
        failures = [(await client.get("/tourism/fail")).status_code for _ in range(2)]
        fast = await client.get("/tourism/fail")
        metrics_open = (await client.get("/metrics")).text
        assert upstream_state.calls["/fail"] == 2  # the open breaker did not call upstream
        await asyncio.sleep(0.6)
        probe_failed = await client.get("/tourism/fail")  # half-open probe fails: open again
        again = await client.get("/tourism/fail")
        await asyncio.sleep(0.6)
        upstream_state.fail_status = 200
        probe_ok = await client.get("/tourism/fail")
        closed = await client.get("/tourism/fail")
        metrics_closed = (await client.get("/metrics")).text
    assert failures == [503, 503]  # the upstream's own answers, passed through
    assert fast.status_code == 503
    assert fast.json()["type"].endswith("/upstream-unavailable")
    assert int(fast.headers["retry-after"]) >= 1
    assert 'gateway_breaker_state{upstream="tourism"} 2.0' in metrics_open
    assert probe_failed.json() == {"failed": True}
    assert again.json()["type"].endswith("/upstream-unavailable")
    assert (probe_ok.status_code, closed.status_code) == (200, 200)
    assert upstream_state.calls["/fail"] == 5
    assert 'gateway_breaker_state{upstream="tourism"} 0.0' in metrics_closed


def state_of(breaker: CircuitBreaker) -> BreakerState:
    # A call, so the type checker does not carry one assertion's narrowing to the next.
    return breaker.state


def test_half_open_admits_a_single_probe():
    now = [0.0]
    breaker = CircuitBreaker(1, 10.0, clock=lambda: now[0])
    breaker.failure()
    assert state_of(breaker) == BreakerState.open
    assert not breaker.allow()
    now[0] = 10.0
    assert state_of(breaker) == BreakerState.half_open
    assert breaker.allow()
    assert not breaker.allow()  # a second caller waits for the probe's verdict
    breaker.success()
    assert state_of(breaker) == BreakerState.closed
    assert breaker.allow()


def test_retry_budget_grows_with_requests():
    budget = RetryBudget(ratio=0.5, floor=0)
    assert not budget.try_spend()
    budget.on_request()
    budget.on_request()
    assert budget.try_spend()
    assert not budget.try_spend()


async def test_a_probe_ended_by_the_clients_own_error_does_not_jam_the_breaker(
    idp, upstream: ThreadServer, upstream_state: UpstreamState, token
):
    settings = settings_for(
        idp, upstream.url, breaker_failures=1, breaker_open_seconds=0.3, max_body_bytes=100
    )

    async def oversized() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 100

    async with gateway_client(settings) as (_, client):
        assert (await client.get("/tourism/fail")).status_code == 503  # opens the breaker
        await asyncio.sleep(0.4)
        probe = await client.post(
            "/tourism/echo/x",
            content=oversized(),
            headers={"Authorization": f"Bearer {token()}"},
        )
        upstream_state.fail_status = 200
        after = await client.get("/tourism/fail")
    assert probe.status_code == 413
    # The 413 said nothing about the upstream: the next request may probe it.
    assert after.status_code == 200, after.text


async def read_whole(client: httpx.AsyncClient, path: str) -> bytes:
    async with client.stream("GET", path) as response:
        assert response.status_code == 200
        return await response.aread()


async def test_an_upstream_stalling_mid_body_aborts_the_response(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    app = create_gateway_app(settings_for(idp, upstream.url, read_timeout=0.5))
    try:
        with serving_gateway(app) as gateway:
            async with httpx.AsyncClient(base_url=gateway.url, timeout=10) as client:
                with pytest.raises(httpx.RemoteProtocolError):
                    await read_whole(client, "/tourism/gated")  # first chunk, then silence
                metrics = (await client.get("/metrics")).text
    finally:
        upstream_state.finish_response.set()  # let the upstream's stream end
    # Counted, and the client saw a broken body rather than a complete-looking one.
    assert 'gateway_upstream_errors_total{kind="body",upstream="tourism"} 1.0' in metrics
