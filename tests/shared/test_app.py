"""The app factory: probes, metrics, request ids, body limit, store lifecycle."""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import weakref
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI

from shared.app import StoreDep, StoreLike, create_app, freeze_heap
from shared.errors import PROBLEM_CONTENT_TYPE, problem_type
from shared.settings import Settings, build_settings
from shared.storage import open_store
from shared.telemetry import setup_telemetry

SETTINGS = build_settings(service_name="apptest", store_url="sqlite:///var/apptest.db")


class MemoryStore:
    """A store double with the real lifecycle: it records what happened to it."""

    def __init__(self, *, healthy: bool = True) -> None:
        self.healthy = healthy
        self.events: list[str] = []
        self.url: str | None = None

    async def open(self) -> None:
        self.events.append("open")

    async def ping(self) -> None:
        if not self.healthy:
            raise ConnectionError("connection refused by 10.1.2.3:27017 (user admin)")

    async def close(self) -> None:
        self.events.append("close")


def items_router() -> APIRouter:
    router = APIRouter(prefix="/items")

    @router.get("/{item_id}")
    async def read(item_id: int, store: StoreDep) -> dict[str, Any]:
        return {"id": item_id, "store": id(store)}

    @router.post("")
    async def create(item: dict[str, Any]) -> dict[str, Any]:
        return item

    @router.get("/fail/now")
    async def fail() -> None:
        raise RuntimeError("boom")

    return router


def make_app(settings: Settings = SETTINGS, **kwargs: Any) -> FastAPI:
    kwargs.setdefault("routers", [items_router()])
    return create_app(settings, title="App test", telemetry=setup_telemetry(settings), **kwargs)


@asynccontextmanager
async def running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan around a client, as uvicorn would."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://testserver") as client,
    ):
        yield client


async def test_healthz_answers_without_dependencies():
    async with running(make_app(store=MemoryStore(healthy=False))) as client:
        response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "service": "apptest"}


async def test_readyz_is_200_when_the_store_answers():
    async with running(make_app(store=MemoryStore())) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready", "checks": {"store": "ok"}}


async def test_readyz_is_a_503_problem_naming_the_failed_store():
    async with running(make_app(store=MemoryStore(healthy=False))) as client:
        response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == problem_type("service-unavailable")
    assert body["errors"] == [{"dependency": "store", "message": "ConnectionError"}]
    assert body["checks"] == {"store": "failed"}
    # /readyz is public: the failure's message (hosts, users) stays in the log.
    assert "10.1.2.3" not in response.text


async def test_readyz_runs_extra_checks_and_lists_only_the_failures():
    async def redis_ok() -> None:
        return None

    async def issuer_down() -> None:
        raise OSError("unreachable")

    app = make_app(store=MemoryStore(), readiness_checks={"redis": redis_ok, "jwks": issuer_down})
    async with running(app) as client:
        response = await client.get("/readyz")
    body = response.json()
    assert response.status_code == 503
    assert [e["dependency"] for e in body["errors"]] == ["jwks"]
    assert body["checks"] == {"redis": "ok", "jwks": "failed", "store": "ok"}


async def test_readyz_does_not_hang_on_a_slow_dependency():
    async def hangs() -> None:
        await asyncio.sleep(30)

    app = make_app(readiness_checks={"slow": hangs}, readiness_timeout=0.05)
    async with running(app) as client:
        response = await asyncio.wait_for(client.get("/readyz"), timeout=5)
    assert response.status_code == 503
    assert response.json()["errors"][0]["message"] == "no answer within 0.05 s"


async def test_store_is_opened_once_shared_by_requests_and_closed_on_shutdown():
    store = MemoryStore()
    app = make_app(store=store)
    async with running(app) as client:
        assert store.events == ["open"]
        first = (await client.get("/items/1")).json()
        second = (await client.get("/items/2")).json()
        assert first["store"] == second["store"] == id(store)
    assert store.events == ["open", "close"]
    assert app.state.store is None


async def test_a_store_factory_gets_the_configured_url():
    made: list[MemoryStore] = []

    def factory(url: str) -> StoreLike:
        store = MemoryStore()
        store.url = url
        made.append(store)
        return store

    async with running(make_app(store=factory)) as client:
        assert (await client.get("/readyz")).status_code == 200
    [store] = made
    assert store.url == "sqlite:///var/apptest.db"
    assert store.events == ["open", "close"]


async def test_lifespan_hooks_run_in_order_and_can_add_readiness_checks():
    log: list[str] = []

    def hook(name: str):
        @asynccontextmanager
        async def lifespan(app: FastAPI) -> AsyncIterator[None]:
            log.append(f"start {name}")

            async def check() -> None:
                return None

            app.state.readiness_checks[name] = check
            yield
            log.append(f"stop {name}")

        return lifespan

    app = make_app(store=MemoryStore(), lifespan_hooks=[hook("http"), hook("cache")])
    async with running(app) as client:
        body = (await client.get("/readyz")).json()
    assert body["checks"] == {"store": "ok", "http": "ok", "cache": "ok"}
    assert log == ["start http", "start cache", "stop cache", "stop http"]


async def test_store_dependency_without_a_store_is_a_500_problem():
    async with running(make_app()) as client:
        response = await client.get("/items/1")
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE


async def test_startup_logs_the_settings_warnings(caplog):
    settings = build_settings(
        service_name="apptest",
        env="production",
        oidc_issuer="https://id.example/realms/huimin",
        client_secret="a-real-secret-of-some-length",
        store_url="sqlite:///var/apptest.db",
    )
    with caplog.at_level(logging.WARNING, logger="shared.app"):
        async with running(make_app(settings)):
            pass
    assert any("SQLite store in production" in r.getMessage() for r in caplog.records)


def metric_value(text: str, name: str, **labels: str) -> float | None:
    rendered = ",".join(f'{k}="{v}"' for k, v in labels.items())
    match = re.search(rf"^{re.escape(name)}\{{{re.escape(rendered)}\}} (\S+)$", text, re.M)
    return float(match.group(1)) if match else None


async def test_metrics_count_requests_by_route_template_and_status():
    async with running(make_app(store=MemoryStore())) as client:
        for item_id in (1, 2, 3):
            await client.get(f"/items/{item_id}")
        await client.get("/items/not-a-number")
        await client.get("/no/such/route")
        response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/items/{item_id}"
    assert metric_value(text, "http_requests_total", method="GET", route=route, status="200") == 3
    assert metric_value(text, "http_requests_total", method="GET", route=route, status="422") == 1
    assert (
        metric_value(text, "http_requests_total", method="GET", route="unmatched", status="404")
        == 1
    )
    count = metric_value(
        text, "http_request_duration_seconds_count", method="GET", route=route, status="200"
    )
    assert count == 3
    assert "process_cpu_seconds_total" in text


async def test_metrics_use_the_full_template_of_nested_routers():
    inner = APIRouter(prefix="/patients")

    @inner.get("/{pid}")
    async def read(pid: str) -> dict[str, str]:
        return {"id": pid}

    outer = APIRouter(prefix="/v1")
    outer.include_router(inner)
    async with running(make_app(routers=[outer])) as client:
        await client.get("/v1/patients/p1")
        text = (await client.get("/metrics")).text
    labels = {"method": "GET", "route": "/v1/patients/{pid}", "status": "200"}
    assert metric_value(text, "http_requests_total", **labels) == 1


async def test_each_app_has_its_own_registry():
    first, second = make_app(), make_app()
    async with running(first) as client:
        await client.get("/healthz")
    async with running(second) as client:
        text = (await client.get("/metrics")).text
    healthz = {"method": "GET", "route": "/healthz", "status": "200"}
    assert metric_value(text, "http_requests_total", **healthz) is None


async def test_request_id_is_echoed_or_generated():
    async with running(make_app()) as client:
        echoed = await client.get("/healthz", headers={"X-Request-ID": "abc-123.x"})
        generated = await client.get("/healthz")
        replaced = await client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"})
        failed = await client.get("/items/fail/now", headers={"X-Request-ID": "on-error"})
    assert echoed.headers["x-request-id"] == "abc-123.x"
    assert re.fullmatch(r"[0-9a-f]{32}", generated.headers["x-request-id"])
    assert re.fullmatch(r"[0-9a-f]{32}", replaced.headers["x-request-id"])
    assert failed.status_code == 500
    assert failed.headers["x-request-id"] == "on-error"


async def test_declared_oversize_body_is_a_413_problem():
    app = make_app(build_settings(service_name="apptest", max_body_bytes=64))
    async with running(app) as client:
        response = await client.post("/items", json={"text": "x" * 100})
        small = await client.post("/items", json={"text": "ok"})
    assert small.status_code == 200
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body = response.json()
    assert body["type"] == problem_type("payload-too-large")
    assert body["max_bytes"] == 64
    assert "x-request-id" in response.headers


async def test_streamed_oversize_body_is_a_413_problem():
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"x" * 20
        yield b'"}'

    app = make_app(build_settings(service_name="apptest", max_body_bytes=64))
    async with running(app) as client:
        response = await client.post(
            "/items", content=chunks(), headers={"content-type": "application/json"}
        )
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    assert response.json()["type"] == problem_type("payload-too-large")


@pytest.mark.parametrize("path", ["/openapi.json", "/docs"])
async def test_api_docs_are_served(path):
    async with running(make_app()) as client:
        assert (await client.get(path)).status_code == 200


async def test_readyz_with_the_real_embedded_store(tmp_path):
    settings = build_settings(service_name="apptest", store_url=f"sqlite:///{tmp_path}/app.db")
    app = make_app(settings, store=open_store)
    async with running(app) as client:
        response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json()["checks"] == {"store": "ok"}
    assert (tmp_path / "app.db").exists()


def test_freeze_heap_hides_the_startup_objects_from_the_collector() -> None:
    """What is alive when a serving process starts is frozen (a full collection no longer
    walks it); garbage at that moment is freed first, not frozen."""

    class Cycle:
        def __init__(self) -> None:
            self.me = self

    def seen(target: object) -> bool:
        return any(o is target for o in gc.get_objects())

    gc.unfreeze()
    dead = weakref.ref(Cycle())  # unreachable, held only by its own cycle
    kept: list[object] = [object()]
    assert seen(kept)
    try:
        freeze_heap()
        assert dead() is None
        assert gc.get_freeze_count() > 0
        assert not seen(kept)
    finally:
        gc.unfreeze()
    assert seen(kept)
