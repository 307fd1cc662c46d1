"""Token-bucket rate limits: per person, per client, in memory and shared through Redis."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from gateway.ratelimit import Bucket, MemoryLimiter, RedisLimiter
from tests.fixtures.gateway import ThreadServer, UpstreamState
from tests.gateway.conftest import SERVICES, gateway_client, settings_for
from tools.redis import RedisServer
from tools.service_server import ServiceServer


async def test_a_person_over_their_limit_gets_429_with_headers(idp, upstream: ThreadServer, token):
    settings = settings_for(idp, upstream.url, user_rate=0.01, user_burst=3)
    alice = {"Authorization": f"Bearer {token(sub='alice')}"}
    bob = {"Authorization": f"Bearer {token(sub='bob')}"}
    async with gateway_client(settings) as (_, client):
        admitted = [await client.get("/registry/echo/x", headers=alice) for _ in range(3)]
        refused = await client.get("/registry/echo/x", headers=alice)
        other = await client.get("/registry/echo/x", headers=bob)
        metrics = (await client.get("/metrics")).text
    assert [r.status_code for r in admitted] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in admitted] == ["2", "1", "0"]
    assert admitted[0].headers["ratelimit-limit"] == "3"
    assert refused.status_code == 429
    assert refused.headers["content-type"] == "application/problem+json"
    assert int(refused.headers["retry-after"]) >= 1
    assert refused.headers["ratelimit-remaining"] == "0"
    assert int(refused.headers["ratelimit-reset"]) > 0
    assert other.status_code == 200  # Bob has his own bucket
    assert 'gateway_ratelimit_rejections_total{caller="user"} 1.0' in metrics


async def test_anonymous_callers_are_limited_by_address(idp, upstream: ThreadServer):
    settings = settings_for(idp, upstream.url, client_rate=0.01, client_burst=2)
    async with gateway_client(settings) as (_, client):
        statuses = [(await client.get("/tourism/echo/x")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]


async def test_memory_buckets_refill_and_take_from_all_or_none():
    limiter = MemoryLimiter()
    user = Bucket("user:a", rate=1000.0, burst=1)
    client = Bucket("client:c", rate=0.001, burst=2)
    first = await limiter.acquire([user, client])
    second = await limiter.acquire([Bucket("user:b", 1000.0, 1), client])
    refused = await limiter.acquire([Bucket("user:c", 1000.0, 1), client])
    assert (first.allowed, second.allowed, refused.allowed) == (True, True, False)
    # The refusal took nothing from the person's bucket: user:c still has its token.
    assert (await limiter.acquire([Bucket("user:c", 1000.0, 1)])).allowed


async def test_redis_buckets_are_atomic_and_shared(redis_server: RedisServer):
    first, second = RedisLimiter(redis_server.url), RedisLimiter(redis_server.url)
    bucket = Bucket("test:shared", rate=0.001, burst=4)
    try:
        decisions = [
            await limiter.acquire([bucket]) for limiter in (first, second, first, second, first)
        ]
    finally:
        await first.close()
        await second.close()
    assert [d.allowed for d in decisions] == [True, True, True, True, False]
    assert [d.remaining for d in decisions] == [3, 2, 1, 0, 0]


async def test_an_unreachable_redis_fails_open():
    limiter = RedisLimiter("redis://127.0.0.1:1/0")
    try:
        decision = await limiter.acquire([Bucket("x", 1.0, 1)])
    finally:
        await limiter.close()
    assert decision.allowed


@pytest.fixture
def two_gateways(idp, upstream: ThreadServer, redis_server: RedisServer, tmp_path: Path):
    env = {
        "HUIMIN_OIDC_ISSUER": idp.issuer,
        "HUIMIN_UPSTREAM_URLS": json.dumps({name: upstream.url for name in SERVICES}),
        "HUIMIN_REDIS_URL": redis_server.url,
        "HUIMIN_CLIENT_RATE": "0.001",
        "HUIMIN_CLIENT_BURST": "5",
    }
    servers = [ServiceServer("gateway", tmp_path / f"gateway-{i}", env).start() for i in range(2)]
    try:
        yield servers
    finally:
        for server in servers:
            server.stop()


def test_two_gateway_processes_share_one_redis_limit(
    two_gateways: list[ServiceServer], upstream_state: UpstreamState
):
    statuses: list[tuple[int, int]] = []
    with httpx.Client(timeout=30) as client:
        for i in range(12):
            server = two_gateways[i % 2]
            statuses.append((i % 2, client.get(server.url + "/tourism/echo/x").status_code))
    admitted = [which for which, status in statuses if status == 200]
    assert len(admitted) == 5, statuses
    assert set(admitted) == {0, 1}  # both replicas drew from the same bucket
    assert {status for _, status in statuses} == {200, 429}
    assert upstream_state.calls["/echo/x"] == 5
