"""The registry's audit trail: every read of a full record and every change, with who,
when, what, which residents and how it ended.

Changes carry their entry in the same atomic batch as the change, so a change is never
without its record. Reads (and refused attempts) are queued and stored in batches at most
`audit_flush_seconds` late and on shutdown; a failed batch is put back and retried, and the
queue is bounded: requests wait while it is full, and are refused (503) rather than served
unaudited when the store stays down.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.registry.access import Access
from services.registry.repository import AUDIT, RegistryRepository
from shared.batch_queue import BatchQueue
from shared.ids import new_id
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
        "id": new_id(),
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


class AuditQueue(BatchQueue[Mapping[str, Any]]):
    """Queues read entries and stores them in batches (shared/batch_queue.py): requests wait
    while `max_pending` entries are queued, and get 503 if the store stops taking them."""

    def __init__(
        self,
        repo: RegistryRepository,
        *,
        flush_seconds: float,
        batch_size: int,
        max_pending: int,
        backlog_wait: float = 10.0,
    ) -> None:
        super().__init__(
            repo.append_audit,
            flush_seconds=flush_seconds,
            batch_size=batch_size,
            max_backlog=max_pending,
            backlog_wait=backlog_wait,
            name="audit",
        )


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
