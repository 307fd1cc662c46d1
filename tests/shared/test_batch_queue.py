"""The batch queue behind the audit trails of reads: requests wait while the backlog is
full, get 503 if the store stops taking records, and nothing queued is dropped."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from shared.batch_queue import BatchQueue
from shared.errors import ServiceUnavailable


class GatedSink:
    """A store that takes a batch only when the gate is open."""

    def __init__(self) -> None:
        self.gate = asyncio.Event()
        self.stored: list[Mapping[str, Any]] = []

    async def store(self, events: Sequence[Mapping[str, Any]]) -> None:
        await self.gate.wait()
        self.stored.extend(events)


def make_log(sink: GatedSink, max_backlog: int, **kwargs: Any) -> BatchQueue[Mapping[str, Any]]:
    return BatchQueue(
        sink.store, flush_seconds=0.01, batch_size=10, max_backlog=max_backlog, **kwargs
    )


async def test_requests_wait_for_room_then_proceed() -> None:
    sink = GatedSink()
    log = make_log(sink, max_backlog=40, backlog_wait=5.0)
    async with log.running():
        for i in range(40):
            log.add({"id": str(i)})
        waiting = asyncio.create_task(log.room())
        await asyncio.sleep(0.05)
        assert not waiting.done()  # held while 40 records wait
        sink.gate.set()
        await asyncio.wait_for(waiting, 2.0)
    assert [e["id"] for e in sink.stored] == [str(i) for i in range(40)]


async def test_a_stuck_store_gives_503_and_loses_nothing() -> None:
    sink = GatedSink()
    log = make_log(sink, max_backlog=20, backlog_wait=0.1)
    async with log.running():
        for i in range(25):
            log.add({"id": str(i)})
        with pytest.raises(ServiceUnavailable):
            await log.room()
        sink.gate.set()  # the store recovers; shutdown flushes the rest
    assert len(sink.stored) == 25


async def test_below_the_backlog_requests_are_not_held() -> None:
    log = make_log(GatedSink(), max_backlog=100)
    for i in range(99):
        log.add({"id": str(i)})
    await asyncio.wait_for(log.room(), 0.1)
