"""Gateway fixtures: the test upstream, the dev issuer's tokens, and gateway apps."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from gateway.app import create_gateway_app
from gateway.settings import GatewaySettings
from shared.settings import build_settings
from shared.telemetry import setup_telemetry
from tests.fixtures import started
from tests.fixtures.gateway import ThreadServer, UpstreamState, serving, upstream_app
from tests.fixtures.identity import IdP, dev_idp
from tools._server import free_port
from tools.redis import RedisError, RedisServer

SERVICES = ("health", "registry", "education", "tourism")


@pytest.fixture
def upstream_state() -> UpstreamState:
    return UpstreamState()


@pytest.fixture
def upstream(upstream_state: UpstreamState) -> Iterator[ThreadServer]:
    """The test upstream, standing in for every service."""
    with serving(upstream_app(upstream_state)) as server:
        yield server


@pytest.fixture(scope="session")
def idp(dev_issuer: Any) -> IdP:
    return dev_idp(dev_issuer)


@pytest.fixture
def token(idp: IdP):
    """`token(**claims)`: a signed access token of the dev issuer."""

    def make(**claims: Any) -> str:
        return idp.sign(idp.claims(**claims))

    return make


def closed_url() -> str:
    """A loopback URL where nothing listens."""
    return f"http://127.0.0.1:{free_port()}"


def settings_for(idp: IdP, url: str | dict[str, str], **values: Any) -> GatewaySettings:
    """Gateway settings with every service at `url` (or per service) and the dev issuer."""
    urls = url if isinstance(url, dict) else {name: url for name in SERVICES}
    values.setdefault("env", "test")
    return build_settings(GatewaySettings, oidc_issuer=idp.issuer, upstream_urls=urls, **values)


@contextlib.asynccontextmanager
async def gateway_client(
    settings: GatewaySettings, *, in_memory_traces: bool = False
) -> AsyncIterator[tuple[FastAPI, httpx.AsyncClient]]:
    """The gateway app (lifespan running) and an httpx client calling it in process."""
    telemetry = setup_telemetry(settings, in_memory=True) if in_memory_traces else None
    app = create_gateway_app(settings, telemetry=telemetry)
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=30) as client,
    ):
        yield app, client


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A real redis-server (Debian's package, see tools/redis.py) for the session."""
    yield from started(RedisServer(tmp_path_factory.mktemp("redis")), "Redis", RedisError)
