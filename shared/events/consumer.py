"""`FeedConsumer`: polls another service's `GET /events` feed and applies each event.

Delivery is at least once, in feed order. The consumer remembers its cursor in its own
store (collection `consumer_cursors`, one document per feed) and moves it forward only
after the handler returned for every event up to it, so an event is never skipped; after a
crash, a restart or a failing handler, events since the last saved cursor are handed over
again. **Handlers must therefore be idempotent**: applying an event twice must leave the
same state as applying it once (e.g. compare a version carried in the event with what was
already applied).

A handler that raises stops the feed at that event: the consumer saves the progress made
so far, backs off and retries it. A feed that is down, answers an error or garbage, or an
identity provider that refuses the service token, are retried the same way: bounded
exponential backoff with jitter, logged, never a busy loop and never a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from weakref import WeakKeyDictionary

import httpx
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from shared.app import LifespanHook
from shared.auth.service_tokens import ClientCredentials, ServiceAuth
from shared.events.feed import DEFAULT_LIMIT, FeedEvent, FeedPage
from shared.settings import Settings
from shared.storage import CollectionSpec, RecordNotFound, Store, VersionConflict
from shared.storage.model import Create, Update

logger = logging.getLogger(__name__)

CURSORS = "consumer_cursors"
CURSOR_SPEC = CollectionSpec(CURSORS)
"""Declare it among the consumer's store collections: `open_store(url, [..., CURSOR_SPEC])`."""

Handler = Callable[[FeedEvent], Awaitable[None]]
"""Applies one event; must be idempotent (see the module docstring). Raise to retry it."""


@dataclass(frozen=True, slots=True)
class Backoff:
    """Delays between retries: `initial * factor**(n-1)`, capped at `maximum`, jittered."""

    initial: float = 0.5
    maximum: float = 30.0
    factor: float = 2.0
    jitter: float = 0.2  # up to this fraction is taken off, so replicas do not poll in step

    def delay(self, failures: int) -> float:
        """Seconds to wait after the `failures`-th consecutive failure (1, 2, ...)."""
        exponent = min(max(failures - 1, 0), 32)  # 2**32 * initial is past any sane maximum
        base = min(self.maximum, self.initial * self.factor**exponent)
        return base * (1.0 - self.jitter * random.random())


@dataclass(frozen=True, slots=True)
class ConsumerStatus:
    """What a consumer has done: for logs, metrics and operators."""

    feed: str
    cursor: int | None  # last event applied (None: not loaded yet)
    last_success: float | None  # epoch seconds of the last successful poll
    last_event_at: datetime | None  # commit time of the last event applied
    failures: int  # consecutive failed polls (0 when healthy)
    last_error: str | None

    @property
    def staleness(self) -> float | None:
        """Seconds since the feed was last read successfully (None: never)."""
        return None if self.last_success is None else max(0.0, time.time() - self.last_success)


class FeedConsumer:
    """Polls one feed URL and hands its events, in order, to `handler`."""

    def __init__(
        self,
        feed: str,
        url: str,
        handler: Handler,
        store: Store,
        *,
        client: httpx.AsyncClient,
        page_size: int = DEFAULT_LIMIT,
        poll_interval: float = 2.0,
        backoff: Backoff | None = None,
    ) -> None:
        if CURSORS not in store.specs:
            raise ValueError(f"the consumer's store must declare the {CURSORS!r} collection")
        self.feed = feed
        self.url = url
        self.handler = handler
        self.store = store
        self.client = client
        self.page_size = page_size
        self.poll_interval = poll_interval
        self.backoff = backoff or Backoff()
        self._cursor: int | None = None
        self._cursor_version: int | None = None
        self._last_success: float | None = None
        self._last_event_at: datetime | None = None
        self._failures = 0
        self._last_error: str | None = None
        self._stopping = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    # --- state -----------------------------------------------------------------------------

    @property
    def status(self) -> ConsumerStatus:
        """A snapshot of progress and health."""
        return ConsumerStatus(
            self.feed,
            self._cursor,
            self._last_success,
            self._last_event_at,
            self._failures,
            self._last_error,
        )

    async def load_cursor(self) -> int:
        """The saved cursor (0 for a feed never read)."""
        try:
            record = await self.store.get(CURSORS, self.feed)
        except RecordNotFound:
            self._cursor, self._cursor_version = 0, None
        else:
            self._cursor, self._cursor_version = int(record.body["after"]), record.version
            if record.body.get("url") != self.url:
                # Same feed name, another address: fine after a move, wrong if it is another
                # service's feed (its numbers mean something else). Say so once.
                logger.warning(
                    "feed %s: cursor %d was saved for %s, now reading %s",
                    self.feed,
                    self._cursor,
                    record.body.get("url"),
                    self.url,
                )
        return self._cursor

    async def _save_cursor(self, seq: int) -> None:
        body = {"feed": self.feed, "url": self.url, "after": seq, "at": _now()}
        op = (
            Create(CURSORS, body, self.feed)
            if self._cursor_version is None
            else Update(CURSORS, self.feed, body, self._cursor_version)
        )
        try:
            (record,) = await self.store.write([op])
        except VersionConflict:
            # Another replica of this service consumes the same feed and saved meanwhile:
            # keep the larger cursor (both applied everything up to their own).
            theirs = await self.load_cursor()
            if theirs >= seq:
                return
            await self._save_cursor(seq)
            return
        self._cursor, self._cursor_version = seq, record.version

    # --- one poll --------------------------------------------------------------------------

    async def fetch(self, after: int) -> FeedPage:
        """One page of the feed after `after` (raises on any transport or HTTP failure)."""
        response = await self.client.get(self.url, params={"after": after, "limit": self.page_size})
        if response.status_code != 200:
            raise FeedError(f"{self.url} answered {response.status_code}: {response.text[:200]}")
        return FeedPage.model_validate_json(response.content)

    async def poll_once(self) -> int:
        """Fetch one page and apply it; the number of events applied.

        The cursor is saved after the page (and, when a handler fails or the consumer is
        stopped, after the last event that was applied), never before an event is applied.
        """
        after = self._cursor if self._cursor is not None else await self.load_cursor()
        page = await self.fetch(after)
        done = after
        applied = 0
        try:
            for event in page.events:
                if event.seq <= done:
                    continue  # a feed never goes back; if one did, we would not either
                await self.handler(event)
                done = event.seq
                applied += 1
                self._last_event_at = event.at
                if self._stopping.is_set():
                    break
            else:
                # A feed may move its cursor past events it filtered out; follow it forward.
                done = max(done, page.next)
        finally:
            # Also on a failing handler or on cancellation: what was applied stays applied.
            if done > after:
                await self._save_cursor(done)
        return applied

    # --- the loop --------------------------------------------------------------------------

    async def run(self) -> None:
        """Poll until `stop()`: at once while pages come back full, else every interval."""
        while not self._stopping.is_set():
            try:
                applied = await self.poll_once()
            except Exception as exc:
                self._failures += 1
                self._last_error = f"{type(exc).__name__}: {exc}"[:500]
                delay = self.backoff.delay(self._failures)
                log = logger.warning if self._failures <= 3 else logger.info
                log(
                    "feed %s: poll failed (%d in a row), retrying in %.1f s: %s",
                    self.feed,
                    self._failures,
                    delay,
                    self._last_error,
                )
                await self._sleep(delay)
                continue
            if self._failures:
                logger.info("feed %s: reachable again after %d failures", self.feed, self._failures)
            self._failures = 0
            self._last_error = None
            self._last_success = time.time()
            if applied < self.page_size:
                await self._sleep(self.poll_interval)

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    def start(self) -> None:
        """Run the loop as a background task."""
        if self._task is not None and not self._task.done():
            return
        self._stopping.clear()
        self._task = asyncio.create_task(self.run(), name=f"feed-consumer-{self.feed}")

    async def stop(self, grace: float = 5.0) -> None:
        """Stop after the event being applied (at most `grace` seconds), then cancel."""
        self._stopping.set()
        task, self._task = self._task, None
        if task is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        except Exception:
            logger.exception("feed %s: consumer ended with an error", self.feed)

    @asynccontextmanager
    async def running(self) -> AsyncIterator[FeedConsumer]:
        """Run in the background for the duration of the block."""
        self.start()
        try:
            yield self
        finally:
            await self.stop()


class FeedError(RuntimeError):
    """The feed answered, but not with a page of events."""


def _now() -> str:
    return datetime.now(UTC).isoformat()


# --- wiring into an app --------------------------------------------------------------------


def feed_consumer_lifespan(
    feed: str,
    url: str,
    handler: Callable[[FastAPI], Handler],
    settings: Settings,
    *,
    page_size: int = DEFAULT_LIMIT,
    poll_interval: float = 2.0,
    backoff: Backoff | None = None,
    timeout: float = 10.0,
) -> LifespanHook:
    """A `create_app` lifespan hook consuming `url` with the service's own client credentials
    (`HUIMIN_CLIENT_ID`/`HUIMIN_CLIENT_SECRET` against `HUIMIN_OIDC_ISSUER`).

    `handler(app)` is called once the earlier hooks ran (so it can reach `app.state`). The
    consumer is kept on `app.state.feed_consumers[feed]` and exported on `/metrics`. It is
    not a readiness check on purpose: a service answers its own API while a feed it reads
    is down, and catches up when the feed is back.
    """

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        credentials = ClientCredentials(
            settings.oidc_issuer, settings.client_id, settings.client_secret.get_secret_value()
        )
        async with httpx.AsyncClient(auth=ServiceAuth(credentials), timeout=timeout) as client:
            consumer = FeedConsumer(
                feed,
                url,
                handler(app),
                app.state.store,
                client=client,
                page_size=page_size,
                poll_interval=poll_interval,
                backoff=backoff,
            )
            consumers: dict[str, FeedConsumer] = getattr(app.state, "feed_consumers", None) or {}
            consumers[feed] = consumer
            app.state.feed_consumers = consumers
            metrics = getattr(app.state, "metrics", None)
            if metrics is not None:
                register_metrics(metrics.registry, consumer)
            logger.info("feed %s: consuming %s", feed, url)
            async with consumer.running():
                yield

    return hook


# --- metrics -------------------------------------------------------------------------------


class _ConsumerCollector(Collector):
    """Gauges of every consumer registered on one Prometheus registry."""

    def __init__(self) -> None:
        self.consumers: dict[str, FeedConsumer] = {}

    def collect(self) -> Iterator[Metric]:
        cursor = GaugeMetricFamily(
            "feed_consumer_cursor", "Last event applied, per feed.", labels=["feed"]
        )
        success = GaugeMetricFamily(
            "feed_consumer_last_success_timestamp_seconds",
            "When the feed was last read successfully (epoch seconds).",
            labels=["feed"],
        )
        failures = GaugeMetricFamily(
            "feed_consumer_failures", "Consecutive failed polls, per feed.", labels=["feed"]
        )
        for name, consumer in self.consumers.items():
            status = consumer.status
            cursor.add_metric([name], float(status.cursor or 0))
            success.add_metric([name], status.last_success or 0.0)
            failures.add_metric([name], float(status.failures))
        yield from (cursor, success, failures)

    def describe(self) -> list[Any]:
        return []  # nothing to check against other collectors: the names are our own


_collectors: WeakKeyDictionary[CollectorRegistry, _ConsumerCollector] = WeakKeyDictionary()


def register_metrics(registry: CollectorRegistry, consumer: FeedConsumer) -> None:
    """Export `consumer`'s cursor, last success and failures on `registry`."""
    collector = _collectors.get(registry)
    if collector is None:
        collector = _collectors[registry] = _ConsumerCollector()
        registry.register(collector)
    collector.consumers[consumer.feed] = consumer
