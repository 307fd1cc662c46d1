"""Records, pages, write operations and events: the values that cross the storage port."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True, slots=True)
class Record:
    """One version of a document. A deleted record is a tombstone with an empty body."""

    collection: str
    id: str
    version: int
    deleted: bool
    updated_at: datetime
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class Page:
    """One page of search results, the cursor to the next page, and the total when asked."""

    items: Sequence[Record]
    next_cursor: str | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """How many live records match (`total`), and how many of them hold each value of
    each key asked for (`counts[key][value]`; values held by no match are absent)."""

    total: int
    counts: Mapping[str, Mapping[str, int]]


@dataclass(frozen=True, slots=True)
class KeyValues:
    """The index key values of the live records matching a search, read from the index
    alone: `values[id][key]` lists a record's values of each key asked for (empty when it
    has none, in no particular order), for at most `limit` records in id order; `more`
    when others match too."""

    values: Mapping[str, Mapping[str, Sequence[Any]]]
    more: bool


@dataclass(frozen=True, slots=True)
class Create:
    """Create a document; the store assigns an id unless one is given."""

    collection: str
    body: Mapping[str, Any]
    id: str | None = None


@dataclass(frozen=True, slots=True)
class Update:
    """Replace a document's body; with `expected_version`, only if that is the current one.

    Updating a tombstone brings the record back (a new version), as FHIR update does.
    """

    collection: str
    id: str
    body: Mapping[str, Any]
    expected_version: int | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    """Delete a document as a versioned tombstone (idempotent on an already deleted one)."""

    collection: str
    id: str
    expected_version: int | None = None


WriteOp = Create | Update | Delete


@dataclass(frozen=True, slots=True)
class Event:
    """A domain event to append to the outbox in the same atomic write as the change."""

    type: str
    key: str
    payload: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """An event as served by the feed: `seq` is the cursor consumers remember."""

    seq: int
    type: str
    key: str
    payload: Mapping[str, Any]
    at: datetime
