"""Server-assigned record ids: time-ordered (UUIDv7, RFC 9562), as 32 hex digits.

Random ids (UUIDv4) land anywhere in every id-ordered B-tree: the table's primary key, the
per-record key index and each (key, value, id) index entry of a common value such as an
AuditEvent's `type`. On a store larger than the page cache each insert then reads a cold
page. Time-ordered ids append next to the previous insert, so the hot pages stay cached
(measured in bench/results/health.md). The id still reveals nothing but its creation time
to the millisecond, which `meta.lastUpdated` states anyway.
"""

from __future__ import annotations

from uuid6 import uuid7


def new_id() -> str:
    """A new time-ordered id: 32 lower-case hex digits, unique and increasing."""
    return uuid7().hex
