"""`FeedConsumer` against a real feed (uvicorn on a loopback port, dev issuer tokens): order,
cursor persistence in the consumer's own store (each adapter), catch-up, at-least-once
delivery, and backoff while the feed is down or refusing."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, generate_latest

from shared.app import create_app
from shared.auth import ClientCredentials, ServiceAuth
from shared.events import (
    CURSOR_SPEC,
    CURSORS,
    Backoff,
    FeedConsumer,
    FeedEvent,
    Handler,
    feed_consumer_lifespan,
    register_metrics,
)
from shared.settings import build_settings
from shared.storage import CollectionSpec, RecordNotFound, Store, open_store
from tests.fixtures.identity import IdP
from tests.shared.events.feedserver import Publisher, ThreadServer, feed_app, opened, serving
from tools._server import free_port

FAST = Backoff(initial=0.05, maximum=0.2)


async def until(condition: Callable[[], bool], within: float = 20.0) -> None:
    deadline = time.monotonic() + within
    while not condition():
        assert time.monotonic() < deadline, "condition not reached in time"
        await asyncio.sleep(0.02)


class Recorder:
    """A handler that records the sequence numbers it was given."""

    def __init__(self) -> None:
        self.seen: list[int] = []

    async def __call__(self, event: FeedEvent) -> None:
        self.seen.append(event.seq)


def _auth(dev: IdP, secret: str | None = None) -> ServiceAuth:
    secret = secret if secret is not None else dev.secrets["huimin-health"]
    return ServiceAuth(ClientCredentials(dev.issuer, "huimin-health", secret))


@asynccontextmanager
async def consumer(
    store_url: str,
    url: str,
    handler: Handler,
    *,
    auth: httpx.Auth | None = None,
    headers: dict[str, str] | None = None,
    page_size: int = 100,
    poll_interval: float = 0.05,
) -> AsyncIterator[FeedConsumer]:
    async with (
        opened(store_url, [CURSOR_SPEC]) as store,
        httpx.AsyncClient(auth=auth, headers=headers, timeout=5) as client,
    ):
        yield FeedConsumer(
            "publisher",
            url + "/events",
            handler,
            store,
            client=client,
            page_size=page_size,
            poll_interval=poll_interval,
            backoff=FAST,
        )


async def _saved_cursor(store: Store) -> int:
    return int((await store.get(CURSORS, "publisher")).body["after"])


async def test_events_are_applied_in_order_and_the_cursor_is_saved(
    store_url: str, dev: IdP, feed: ThreadServer, publisher: Publisher
) -> None:
    stored = await publisher.publish([("thing.created", f"k{i}", {"i": i}) for i in range(230)])
    seqs = [e.seq for e in stored]
    record = Recorder()
    async with consumer(store_url, feed.url, record, auth=_auth(dev), page_size=100) as c:
        async with c.running():
            await until(lambda: len(record.seen) >= 230)
        assert record.seen == seqs  # every event once, in feed order, over three pages
        assert await _saved_cursor(c.store) == seqs[-1]
        status = c.status
        assert status.cursor == seqs[-1]
        assert status.failures == 0
        assert status.staleness is not None
        assert status.staleness < 10
        assert status.last_event_at == stored[-1].at


async def test_a_consumer_that_was_down_catches_up(
    store_url: str, dev: IdP, feed: ThreadServer, publisher: Publisher
) -> None:
    first = [e.seq for e in await publisher.publish([("a", "k", {})] * 5)]
    before = Recorder()
    async with consumer(store_url, feed.url, before, auth=_auth(dev)) as c, c.running():
        await until(lambda: len(before.seen) == 5)
    assert before.seen == first
    # While no consumer runs, the publisher goes on; a new process finds its cursor.
    later = [e.seq for e in await publisher.publish([("b", "k", {})] * 4)]
    after = Recorder()
    async with consumer(store_url, feed.url, after, auth=_auth(dev)) as c:
        async with c.running():
            await until(lambda: len(after.seen) == 4)
            await asyncio.sleep(0.2)  # a few more polls: nothing else arrives
        assert after.seen == later
        assert await _saved_cursor(c.store) == later[-1]


async def test_a_failing_handler_stops_the_feed_at_that_event_and_retries(
    store_url: str, dev: IdP, feed: ThreadServer, publisher: Publisher
) -> None:
    seqs = [e.seq for e in await publisher.publish([("a", f"k{i}", {}) for i in range(5)])]
    seen: list[int] = []
    failed: set[int] = set()

    async def flaky(event: FeedEvent) -> None:
        seen.append(event.seq)
        if event.seq == seqs[2] and event.seq not in failed:
            failed.add(event.seq)
            raise RuntimeError("database hiccup")

    async with consumer(store_url, feed.url, flaky, auth=_auth(dev)) as c:
        with pytest.raises(RuntimeError):
            await c.poll_once()
        # What was applied before the failure is remembered; the failed event is not.
        assert await _saved_cursor(c.store) == seqs[1]
        assert await c.poll_once() == 3
        assert await _saved_cursor(c.store) == seqs[4]
    assert seen == [*seqs[:3], *seqs[2:]]  # the failed event again, nothing skipped


async def test_a_crash_mid_page_redelivers_from_the_last_applied_event(
    store_url: str, dev: IdP, feed: ThreadServer, publisher: Publisher
) -> None:
    seqs = [e.seq for e in await publisher.publish([("a", f"k{i}", {}) for i in range(6)])]
    blocked = asyncio.Event()
    applied: list[int] = []

    async def slow(event: FeedEvent) -> None:
        if event.seq == seqs[3]:
            blocked.set()
            await asyncio.sleep(3600)  # the process dies here
        applied.append(event.seq)

    async with consumer(store_url, feed.url, slow, auth=_auth(dev)) as c:
        task = asyncio.create_task(c.poll_once())
        await blocked.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert applied == seqs[:3]
    again = Recorder()  # the restarted process
    async with consumer(store_url, feed.url, again, auth=_auth(dev)) as c:
        assert await c.load_cursor() == seqs[2]
        await c.poll_once()
    assert again.seen == seqs[3:]


async def test_backs_off_while_the_feed_is_down_then_catches_up(
    tmp_path: Path, dev: IdP, feed_url: str, publisher: Publisher
) -> None:
    port = free_port()
    seqs = [e.seq for e in await publisher.publish([("a", "k", {})] * 3)]
    record = Recorder()
    down = f"http://127.0.0.1:{port}"
    async with consumer(f"sqlite:///{tmp_path}/c.db", down, record, auth=_auth(dev)) as c:
        c.start()
        await asyncio.sleep(1.0)
        failures = c.status.failures
        # 0.05, 0.1, 0.2, 0.2...: a handful of attempts a second, neither a busy loop nor a
        # consumer that gave up.
        assert 3 <= failures <= 25, failures
        assert "ConnectError" in (c.status.last_error or "")
        assert c.status.last_success is None
        assert record.seen == []
        with serving(feed_app(feed_url, dev.issuer), port=port):
            await until(lambda: record.seen == seqs)
            await until(lambda: c.status.failures == 0)
        started = time.monotonic()
        await c.stop()
        assert time.monotonic() - started < 2.0


@pytest.mark.parametrize(
    ("caller", "error"),
    [
        ("citizen", "answered 403"),  # a person's token: the feed refuses it
        ("wrong secret", "ServiceUnavailable"),  # the issuer refuses the client: no token
    ],
)
async def test_errors_from_the_feed_or_the_issuer_back_off(
    tmp_path: Path, dev: IdP, feed: ThreadServer, publisher: Publisher, caller: str, error: str
) -> None:
    await publisher.publish([("a", "k", {})])
    if caller == "citizen":
        auth, headers = None, {"Authorization": f"Bearer {dev.password_token('citizen')}"}
    else:
        auth, headers = _auth(dev, secret="wrong-secret"), None
    record = Recorder()
    url = f"sqlite:///{tmp_path}/c.db"
    async with consumer(url, feed.url, record, auth=auth, headers=headers) as c:
        async with c.running():
            await until(lambda: c.status.failures >= 2)
        assert error in (c.status.last_error or "")
        assert record.seen == []
        with pytest.raises(RecordNotFound):  # nothing applied, nothing saved
            await c.store.get(CURSORS, "publisher")


async def test_stop_is_prompt_while_waiting_for_the_next_poll(
    tmp_path: Path, dev: IdP, feed: ThreadServer
) -> None:
    url = f"sqlite:///{tmp_path}/c.db"
    async with consumer(url, feed.url, Recorder(), auth=_auth(dev), poll_interval=60) as c:
        c.start()
        await until(lambda: c.status.last_success is not None)
        started = time.monotonic()
        await c.stop()
        assert time.monotonic() - started < 1.0


async def test_a_store_without_the_cursor_collection_is_refused(tmp_path: Path) -> None:
    async with opened(f"sqlite:///{tmp_path}/c.db", []) as store, httpx.AsyncClient() as client:
        with pytest.raises(ValueError, match=CURSORS):
            FeedConsumer("f", "http://127.0.0.1:1/events", Recorder(), store, client=client)


def test_backoff_grows_and_is_bounded() -> None:
    b = Backoff(initial=0.5, maximum=30.0, factor=2.0, jitter=0.2)
    for failures, base in [(1, 0.5), (2, 1.0), (3, 2.0), (7, 30.0), (1000, 30.0)]:
        delay = b.delay(failures)
        assert base * 0.8 <= delay <= base, (failures, delay)


async def test_the_lifespan_hook_consumes_and_exports_metrics(
    tmp_path: Path, dev: IdP, feed: ThreadServer, publisher: Publisher
) -> None:
    seqs = [e.seq for e in await publisher.publish([("a", "k", {})] * 2)]
    record = Recorder()
    settings = build_settings(
        service_name="consumer",
        store_url=f"sqlite:///{tmp_path}/consumer.db",
        oidc_issuer=dev.issuer,
        client_id="huimin-health",
        client_secret=dev.secrets["huimin-health"],
    )

    def handler(app: FastAPI) -> Handler:
        assert app.state.store is not None  # earlier hooks and the store are ready
        return record

    specs: list[CollectionSpec] = [CURSOR_SPEC]
    app = create_app(
        settings,
        title="consumer",
        store=lambda url: open_store(url, specs),
        lifespan_hooks=[
            feed_consumer_lifespan(
                "publisher", feed.url + "/events", handler, settings, poll_interval=0.05
            )
        ],
    )
    with serving(app) as server:
        await until(lambda: record.seen == seqs)
        async with httpx.AsyncClient(base_url=server.url) as client:
            metrics = (await client.get("/metrics")).text
    assert f'feed_consumer_cursor{{feed="publisher"}} {float(seqs[-1])}' in metrics
    assert 'feed_consumer_failures{feed="publisher"} 0.0' in metrics


def test_metrics_of_several_consumers_share_one_registry(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    store = open_store(f"sqlite:///{tmp_path}/c.db", [CURSOR_SPEC])
    client = httpx.AsyncClient()
    for name in ("registry", "education"):
        c = FeedConsumer(name, f"http://127.0.0.1:1/{name}", Recorder(), store, client=client)
        register_metrics(registry, c)
    text = generate_latest(registry).decode()
    assert text.count("# HELP feed_consumer_cursor ") == 1
    assert 'feed_consumer_cursor{feed="registry"} 0.0' in text
    assert 'feed_consumer_cursor{feed="education"} 0.0' in text
