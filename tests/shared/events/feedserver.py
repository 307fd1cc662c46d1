"""A real feed to consume in tests: an app with the shared `GET /events` router over a store,
served by uvicorn on a loopback port (in a thread of the test process), and a writer that
puts domain events into that store the way a publishing service does (change + event in one
batch)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI

from shared.app import create_app
from shared.auth.deps import auth_lifespan
from shared.events import events_router
from shared.settings import build_settings
from shared.storage import CollectionSpec, Create, Event, Store, StoredEvent, open_store
from tools._server import HOST, free_port
from tools.ferretdb import FerretDB

# What the publisher changes along with each event (a real outbox write needs a change).
ENTITIES = CollectionSpec("entities")


def feed_app(store_url: str, issuer: str) -> FastAPI:
    """A publishing service reduced to its feed: `GET /events` over `store_url`."""
    settings = build_settings(service_name="publisher", store_url=store_url, oidc_issuer=issuer)
    return create_app(
        settings,
        title="publisher",
        routers=[events_router()],
        store=lambda url: open_store(url, [ENTITIES]),
        lifespan_hooks=[auth_lifespan(settings)],
    )


class ThreadServer:
    """uvicorn serving `app` on a loopback port from a thread; `port` may be chosen up front
    (to start a feed later where a consumer already polls)."""

    def __init__(self, app: FastAPI, port: int | None = None) -> None:
        self.port = port or free_port()
        config = uvicorn.Config(
            app, host=HOST, port=self.port, log_config=None, lifespan="on", access_log=False
        )
        self.server = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> ThreadServer:
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"feed server on port {self.port} did not start")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(15)
            assert not self.thread.is_alive(), "feed server did not stop"


@contextmanager
def serving(app: FastAPI, port: int | None = None) -> Iterator[ThreadServer]:
    server = ThreadServer(app, port).start()
    try:
        yield server
    finally:
        server.stop()


class Publisher:
    """Writes events into a feed's store, each with a change, as a service's outbox does."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def publish(
        self, events: Sequence[tuple[str, str, Mapping[str, Any]]]
    ) -> list[StoredEvent]:
        """Append (type, key, payload) events in one batch; the stored events."""
        before = await self.last_seq()
        ops = [Create(ENTITIES.name, {"n": i}) for i in range(len(events))]
        await self.store.write(ops, [Event(t, k, dict(p)) for t, k, p in events])
        return await self.store.events(before, 1000)

    async def last_seq(self) -> int:
        seq = 0
        while batch := await self.store.events(seq, 1000):
            seq = batch[-1].seq
        return seq


@asynccontextmanager
async def opened(url: str, specs: Sequence[CollectionSpec]) -> AsyncIterator[Store]:
    store = open_store(url, specs)
    await store.open()
    try:
        yield store
    finally:
        await store.close()


def store_url_for(request: pytest.FixtureRequest, kind: str, tmp: Path, name: str) -> str:
    """A fresh store URL: a SQLite file in `tmp`, or a new database on the test FerretDB."""
    if kind == "sqlite":
        return f"sqlite:///{tmp}/{name}.db"
    server: FerretDB = request.getfixturevalue("ferretdb")
    return server.uri.rstrip("/") + f"/{name}{uuid.uuid4().hex[:10]}"
