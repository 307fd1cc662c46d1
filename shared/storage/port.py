"""The storage port: one async interface, implemented by the SQLite and MongoDB adapters."""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from typing import Any

from shared.storage.errors import InvalidQuery
from shared.storage.model import (
    Create,
    Delete,
    Event,
    KeyValues,
    Page,
    Record,
    StoredEvent,
    Tally,
    Update,
    WriteOp,
)
from shared.storage.query import MAX_LIMIT, Predicate, Query, validate_key_values
from shared.storage.schema import CollectionSpec, extract_keys


class Store(abc.ABC):
    """A document store with typed index keys, versioning, atomic batches and an outbox."""

    kind: str = "abstract"

    def __init__(self, specs: Sequence[CollectionSpec]) -> None:
        self.specs: dict[str, CollectionSpec] = {}
        for spec in specs:
            if spec.name in self.specs:
                raise ValueError(f"collection {spec.name!r} declared twice")
            self.specs[spec.name] = spec

    def spec(self, name: str) -> CollectionSpec:
        """The schema of a declared collection."""
        try:
            return self.specs[name]
        except KeyError:
            raise InvalidQuery(f"unknown collection {name!r}") from None

    def collection(self, name: str) -> Collection:
        """A handle bound to one collection."""
        return Collection(self, self.spec(name))

    async def __aenter__(self) -> Store:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create tables/indexes for every declared collection (idempotent)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections."""

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable when the database cannot answer."""

    @abc.abstractmethod
    async def get(self, collection: str, id: str, *, include_deleted: bool = False) -> Record:
        """The current version; RecordNotFound, or RecordDeleted for a tombstone."""

    @abc.abstractmethod
    async def get_version(self, collection: str, id: str, version: int) -> Record:
        """One historical version (RecordNotFound if it never existed)."""

    @abc.abstractmethod
    async def history(
        self, collection: str, id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[Record]:
        """Versions newest first, at most `limit`, older than `before_version` when given."""

    @abc.abstractmethod
    async def search(self, collection: str, query: Query) -> Page:
        """Live records matching every predicate, in sort order (then id), one page."""

    @abc.abstractmethod
    async def count(self, collection: str, where: Sequence[Predicate] = ()) -> int:
        """How many live records match."""

    @abc.abstractmethod
    async def tally(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str]
    ) -> Tally:
        """How many live records match, and per value of each text key in `keys` how many
        of them hold it: the counts of a faceted search, in one pass over the matches."""

    async def key_values(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str], limit: int
    ) -> KeyValues:
        """The values of index keys of the first `limit` live matches (id order), without
        their bodies where the adapter can read them from its index (the embedded store);
        this generic way reads the bodies and extracts their keys again."""
        spec = self.spec(collection)
        validate_key_values(spec, where, keys, limit)
        values: dict[str, dict[str, list[Any]]] = {}
        cursor: str | None = None
        while len(values) <= limit:
            need = min(MAX_LIMIT, limit + 1 - len(values))
            page = await self.search(collection, Query(where=where, limit=need, cursor=cursor))
            for record in page.items:
                found = extract_keys(spec, record.body)
                values[record.id] = {key: found.get(key, []) for key in keys}
            cursor = page.next_cursor
            if cursor is None:
                break
        more = len(values) > limit
        if more:
            values.pop(max(values))
        return KeyValues(values, more)

    async def tallies(
        self,
        collection: str,
        where: Sequence[Predicate],
        asks: Sequence[tuple[Sequence[Predicate], Sequence[str]]],
    ) -> list[Tally]:
        """One tally per ask `(predicates, keys)`, each of the matches of `where` and the
        ask's own predicates: a faceted search's total and the counts of each chosen facet
        without its own filter. An adapter may find the matches of `where` once for all;
        this one asks one tally each."""
        return [await self.tally(collection, [*where, *extra], keys) for extra, keys in asks]

    @abc.abstractmethod
    async def write(self, ops: Sequence[WriteOp], events: Sequence[Event] = ()) -> list[Record]:
        """Apply every operation and append every event atomically: all or nothing."""

    @abc.abstractmethod
    async def events(self, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        """Outbox events with seq > after, oldest first."""

    @abc.abstractmethod
    async def explain(self, collection: str, query: Query) -> str:
        """The database's plan for a search (tests use it to prove index use)."""


class Collection:
    """Convenience methods on one collection; single writes go through `Store.write`."""

    def __init__(self, store: Store, spec: CollectionSpec) -> None:
        self.store = store
        self.spec = spec
        self.name = spec.name

    async def create(
        self, body: Mapping[str, Any], *, id: str | None = None, events: Sequence[Event] = ()
    ) -> Record:
        """Create a document (server-assigned id unless `id` is given)."""
        return (await self.store.write([Create(self.name, body, id)], events))[0]

    async def update(
        self,
        id: str,
        body: Mapping[str, Any],
        *,
        expected_version: int | None = None,
        events: Sequence[Event] = (),
    ) -> Record:
        """Replace a document's body, optionally only at `expected_version`."""
        return (await self.store.write([Update(self.name, id, body, expected_version)], events))[0]

    async def delete(
        self, id: str, *, expected_version: int | None = None, events: Sequence[Event] = ()
    ) -> Record:
        """Delete as a versioned tombstone."""
        return (await self.store.write([Delete(self.name, id, expected_version)], events))[0]

    async def get(self, id: str, *, include_deleted: bool = False) -> Record:
        """The current version of a document."""
        return await self.store.get(self.name, id, include_deleted=include_deleted)

    async def get_version(self, id: str, version: int) -> Record:
        """One version of a document."""
        return await self.store.get_version(self.name, id, version)

    async def history(
        self, id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[Record]:
        """Versions of a document, newest first."""
        return await self.store.history(self.name, id, limit=limit, before_version=before_version)

    async def search(self, query: Query) -> Page:
        """One page of matching records."""
        return await self.store.search(self.name, query)

    async def count(self, where: Sequence[Predicate] = ()) -> int:
        """How many live records match."""
        return await self.store.count(self.name, where)

    async def tally(self, where: Sequence[Predicate], keys: Sequence[str]) -> Tally:
        """Matches and their counts per value of `keys` (see Store.tally)."""
        return await self.store.tally(self.name, where, keys)
