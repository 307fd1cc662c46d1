"""The registry's audit trail: every read of a full record and every change, with who,
when, what, which residents and how it ended.

Changes carry their entry in the same atomic batch as the change, so a change is never
without its record. Reads (and refused attempts) are queued and stored in batches at most
`audit_flush_seconds` late and on shutdown; a failed batch is put back and retried, and the
queue is bounded: when the store stays down that long, requests are refused (503) rather
than served unaudited.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.registry.access import Access
from services.registry.repository import AUDIT, RegistryRepository
from shared.errors import ServiceUnavailable
from shared.storage import Create

logger = logging.getLogger(__name__)
MAX_RESIDENTS = 100  # a search page lists at most this many residents in its entry


def now_iso() -> str:
    """The current time, UTC, milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def entry(
    access: Access,
    action: str,
    residents: Iterable[str] = (),
    *,
    outcome: str = "success",
    status: int = 200,
    detail: str | None = None,
    client: str | None = None,
) -> dict[str, Any]:
    """One audit record."""
    body: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "at": now_iso(),
        "action": action,
        "outcome": outcome,
        "status": status,
        "actor": access.actor(),
        "residents": list(dict.fromkeys(residents))[:MAX_RESIDENTS],
    }
    if detail:
        body["detail"] = detail[:500]
    if client:
        body["actor"]["address"] = client
    return body


def as_op(record: Mapping[str, Any]) -> Create:
    """The write that stores an entry inside a change's batch."""
    return Create(AUDIT, record, str(record["id"]))


class AuditQueue:
    """Queues read entries and stores them in batches."""

    def __init__(
        self,
        repo: RegistryRepository,
        *,
        flush_seconds: float,
        batch_size: int,
        max_pending: int,
    ) -> None:
        self.repo = repo
        self.flush_seconds = flush_seconds
        self.batch_size = batch_size
        self.max_pending = max_pending
        self.pending: list[Mapping[str, Any]] = []
        self._wake = asyncio.Event()

    def check_capacity(self) -> None:
        """503 before serving a read that could not be audited (the queue is full)."""
        if len(self.pending) >= self.max_pending:
            raise ServiceUnavailable(
                "The audit trail cannot be written at the moment; try again shortly."
            )

    def add(self, record: Mapping[str, Any]) -> None:
        """Queue an entry; it is stored within `flush_seconds`."""
        self.pending.append(record)
        if len(self.pending) >= self.batch_size:
            self._wake.set()

    async def flush(self) -> None:
        """Store everything queued (in batches the store accepts)."""
        while self.pending:
            batch, self.pending = self.pending[: self.batch_size], self.pending[self.batch_size :]
            try:
                await self.repo.append_audit(batch)
            except Exception:
                # Never drop entries silently: put them back for the next flush.
                self.pending[:0] = batch
                logger.exception("storing %d audit entries failed; will retry", len(batch))
                raise

    async def run(self) -> None:
        """Flush periodically until cancelled."""
        while True:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.flush_seconds):
                    await self._wake.wait()
            self._wake.clear()
            with contextlib.suppress(Exception):
                await self.flush()

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[AuditQueue]:
        """Run the flusher for the app's lifetime; flush what is left on shutdown."""
        task = asyncio.create_task(self.run(), name="registry-audit-flush")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            await self.flush()


def public_entry(body: Mapping[str, Any], *, for_citizen: bool) -> dict[str, Any]:
    """An entry as served; citizens see who (username and roles) and what, not account ids
    or network addresses of the staff."""
    actor = dict(body["actor"])
    if for_citizen:
        actor = {k: actor.get(k) for k in ("username", "roles", "jurisdiction")}
    return {
        "id": body["id"],
        "at": body["at"],
        "action": body["action"],
        "outcome": body["outcome"],
        "actor": actor,
        "residents": list(body.get("residents") or []),
        "detail": body.get("detail"),
    }
