"""Records written in batches off the request path: the audit trails of reads and searches.

A request queues its record and goes on; a flusher stores the queue in batches at most
`flush_seconds` late (sooner once a batch is full), and whatever is left on shutdown. A
record is never dropped silently: a failed batch goes back to the head of the queue and is
retried. The queue is bounded by back-pressure: while `max_backlog` records wait, new
requests are held (`await queue.room()`) until it is half empty, and refused with 503 after
`backlog_wait` seconds, so a server is never faster than its audit trail, and a store that
stops taking records stops the reads it would have to record instead of losing their trace.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Generic, Self, TypeVar

from shared.errors import ServiceUnavailable

logger = logging.getLogger(__name__)
T = TypeVar("T")


class BatchQueue(Generic[T]):
    """Queues records and stores them in batches through `store_batch`."""

    def __init__(
        self,
        store_batch: Callable[[list[T]], Awaitable[None]],
        *,
        flush_seconds: float,
        batch_size: int,
        max_backlog: int,
        backlog_wait: float = 10.0,
        name: str = "batch",
    ) -> None:
        self.store_batch = store_batch
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.max_backlog = max_backlog
        self.backlog_wait = backlog_wait
        self.name = name
        self.pending: list[T] = []
        self._wake = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._stopping = False

    def add(self, record: T) -> None:
        """Queue a record; it is stored within `flush_seconds`."""
        self.pending.append(record)
        if len(self.pending) >= self.batch_size:
            self._wake.set()
        if len(self.pending) >= self.max_backlog:
            self._room.clear()

    async def room(self) -> None:
        """Return once the backlog leaves room for another request's records; 503 when the
        store has taken none for `backlog_wait` seconds."""
        if self._room.is_set():
            return
        try:
            async with asyncio.timeout(self.backlog_wait):
                await self._room.wait()
        except TimeoutError:
            raise ServiceUnavailable(
                f"The {self.name} trail cannot be written fast enough; try again shortly."
            ) from None

    async def flush(self) -> None:
        """Store everything queued, a batch at a time."""
        while self.pending:
            batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
            try:
                await self.store_batch(batch)
            except Exception:
                self.pending[:0] = batch
                logger.exception("storing %d %s records failed; will retry", len(batch), self.name)
                raise
            if len(self.pending) < self.max_backlog // 2:
                self._room.set()

    async def run(self) -> None:
        """Flush periodically until `running` asks it to stop."""
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await self._wake.wait()
            self._wake.clear()
            with contextlib.suppress(Exception):
                await self.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[Self]:
        """Run the flusher for the app's lifetime; flush what is left on shutdown."""
        task = asyncio.create_task(self.run(), name=f"{self.name}-flush")
        try:
            yield self
        finally:
            # Not cancelled: a batch being stored when cancelled would be neither surely
            # stored nor safely retried. The flusher finishes its batch and stops.
            self._stopping = True
            self._wake.set()
            await task
            await self.flush()
