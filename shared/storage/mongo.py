"""MongoDB adapter (PyMongo's async API), correct on servers without transactions.

FerretDB v1 and standalone mongod have no multi-document transactions, so a batch is made
atomic by a commit record (see mongo_txn.py and docs/storage.md): readers decide, document
by document, whether a batch's writes are visible from that one record, so nobody ever sees
half a batch. Single writes without events are one compare-and-set on the document.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, TypeVar

from pymongo import ASCENDING, AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import PyMongoError

from shared.storage import mongo_txn, mongo_write
from shared.storage.codec import from_micros, matches
from shared.storage.errors import RecordDeleted, RecordNotFound, StoreUnavailable
from shared.storage.model import Event, Page, Record, StoredEvent, Tally, WriteOp
from shared.storage.mongo_filters import (
    compare,
    inexact_keys,
    is_exact,
    keyset_filter,
    multi_valued,
    predicate_filter,
    single_valued,
    sort_fields,
    sort_position,
    sorter,
    state_keys,
)
from shared.storage.mongo_state import Doc, current_state, now_micros
from shared.storage.port import Store
from shared.storage.prepare import check_events, prepare
from shared.storage.query import (
    Predicate,
    Query,
    decode_cursor,
    encode_cursor,
    validate,
    validate_tally,
)
from shared.storage.schema import CollectionSpec, KeyType

_MAX_ROUNDS = 20  # reads per page when inexact predicates keep dropping candidates
_COUNT_ATTEMPTS = 5  # runs of a count when batches begin meanwhile (`_counted`)
T = TypeVar("T")


class MongoStore(Store):
    """The production store: MongoDB (replica set or sharded) or any wire-compatible server."""

    kind = "mongodb"

    def __init__(
        self, url: str, specs: Sequence[CollectionSpec], *, batch_timeout: float = 30.0
    ) -> None:
        super().__init__(specs)
        self.url = url
        # A pending batch older than this is presumed dead (its writer crashed) and rolled
        # back by the next writer that meets it or by the sweep.
        self.batch_timeout_us = int(batch_timeout * 1_000_000)
        self._client: AsyncMongoClient[Doc] | None = None
        self._db: AsyncDatabase[Doc] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self.seq_hint: int | None = None  # last outbox sequence number this process used

    # --- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._client is not None:
            return
        client: AsyncMongoClient[Doc] = AsyncMongoClient(
            self.url, serverSelectionTimeoutMS=5000, connectTimeoutMS=5000, tz_aware=True
        )
        db = client.get_default_database(default="huimin")
        try:
            for spec in self.specs.values():
                await self._create_indexes(db, spec)
            await db["_txns"].create_index([("done", ASCENDING), ("at", ASCENDING)])
        except PyMongoError as exc:
            await client.close()
            raise StoreUnavailable(f"MongoDB store unreachable: {exc}") from exc
        self._client, self._db = client, db
        # Settling crashed batches must precede serving; forgetting finished ones can wait.
        await mongo_txn.sweep(self, forget=False)
        self._sweeper = asyncio.create_task(mongo_txn.sweep_forever(self))

    @staticmethod
    async def _create_indexes(db: AsyncDatabase[Doc], spec: CollectionSpec) -> None:
        coll = db[spec.name]
        for key, kind in spec.keys.items():
            # One index per predicate path (the storage contract: every search is indexed).
            paths = [f"k.{key}.lo", f"k.{key}.hi"] if kind is KeyType.SPAN else [f"k.{key}"]
            paths += [f"s.{key}.lo", f"s.{key}.hi"]
            for path in paths:
                await coll.create_index([(path, ASCENDING)])
        await coll.create_index([("_tx", ASCENDING)])
        await coll.create_index([("_cs", ASCENDING)])
        await db[spec.name + "__h"].create_index([("id", ASCENDING), ("v", ASCENDING)])

    async def close(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        if self._client is not None:
            await self._client.close()
            self._client = self._db = None

    @property
    def db(self) -> AsyncDatabase[Doc]:
        """The database handle (StoreUnavailable before open)."""
        if self._db is None:
            raise StoreUnavailable("the MongoDB store is not open")
        return self._db

    def coll(self, name: str) -> AsyncCollection[Doc]:
        """A raw collection handle (only the adapter's own modules use it)."""
        return self.db[name]

    async def ping(self) -> None:
        try:
            await self.db.command("ping")
        except PyMongoError as exc:
            raise StoreUnavailable(f"MongoDB store unreachable: {exc}") from exc

    # --- visibility --------------------------------------------------------------------

    async def txn_states(self, ids: set[str]) -> dict[str, Doc]:
        """Decisions of batches: {tx: {"outcome": "committed"|"aborted", "cs": ...}}; a batch
        without a decision is still pending."""
        if not ids:
            return {}
        found = self.coll("_txd").find({"_id": {"$in": sorted(ids)}})
        return {t["_id"]: t async for t in found}

    @staticmethod
    def visible(doc: Mapping[str, Any], txns: Mapping[str, Doc], as_of: int) -> Doc | None:
        """The state a reader that started at `as_of` sees, or None if the document does not
        exist for it. A batch's writes are visible only if it committed before `as_of`."""
        tx = doc.get("_tx")
        if tx is not None:
            t = txns.get(tx)
            if t is not None and t["outcome"] == "committed" and t["cs"] <= as_of:
                return current_state(doc)
            prev: Doc | None = doc.get("_prev")
            return prev
        cs = doc.get("_cs")
        if cs is not None and cs > as_of:
            return doc.get("_prev")
        return current_state(doc)

    async def _resolve(self, docs: Sequence[Doc], as_of: int) -> list[tuple[Doc, Doc | None]]:
        txns = await self.txn_states({d["_tx"] for d in docs if d.get("_tx") is not None})
        return [(d, self.visible(d, txns, as_of)) for d in docs]

    # --- reads -------------------------------------------------------------------------

    @staticmethod
    def record(collection: str, id: str, state: Mapping[str, Any]) -> Record:
        """A Record from a stored state."""
        return Record(
            collection,
            id,
            state["v"],
            bool(state["del"]),
            from_micros(state["at"]),
            json.loads(state["body"]),
        )

    async def get(self, collection: str, id: str, *, include_deleted: bool = False) -> Record:
        self.spec(collection)
        as_of = now_micros()
        try:
            doc = await self.coll(collection).find_one({"_id": id})
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        state = (await self._resolve([doc], as_of))[0][1] if doc else None
        if state is None:
            raise RecordNotFound(f"{collection}/{id} not found")
        rec = self.record(collection, id, state)
        if rec.deleted and not include_deleted:
            raise RecordDeleted(f"{collection}/{id} was deleted", version=rec.version)
        return rec

    async def get_version(self, collection: str, id: str, version: int) -> Record:
        current = await self.get(collection, id, include_deleted=True)
        if current.version == version:
            return current
        if version < current.version:
            h = await self.coll(collection + "__h").find_one({"_id": f"{id}|{version}"})
            if h is not None:
                return self.record(collection, id, h)
        raise RecordNotFound(f"{collection}/{id} has no version {version}")

    async def history(
        self, collection: str, id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[Record]:
        try:
            current = await self.get(collection, id, include_deleted=True)
        except RecordNotFound:
            return []
        top = min(current.version + 1, before_version or 2**62)
        limit = max(0, min(limit, 1000))
        out: dict[int, Record] = {}
        if current.version < top:
            out[current.version] = current
        found = (
            self.coll(collection + "__h")
            .find({"id": id, "v": {"$lt": top}})
            .sort("v", -1)
            .limit(limit)
        )
        async for h in found:
            out.setdefault(h["v"], self.record(collection, id, h))
        return [out[v] for v in sorted(out, reverse=True)][:limit]

    def _filter(self, spec: CollectionSpec, query: Query) -> dict[str, Any]:
        parts: list[dict[str, Any]] = [{"del": False}]
        parts += [predicate_filter(spec, p) for p in query.where]
        return {"$and": parts}

    def _admit(
        self,
        spec: CollectionSpec,
        query: Query,
        inexact: Sequence[Predicate],
        doc: Doc,
        state: Doc | None,
        as_of: int,
        position: tuple[list[Any], str] | None,
        *,
        suspect: bool = False,
    ) -> bool:
        """Whether a fetched document belongs in the result, re-checked in Python where the
        server's answer may be a superset: batch documents (whose visible state may be their
        previous one), suspects (fetched by id, not by the query) and inexact predicates on
        multi-valued keys."""
        if state is None or state["del"]:
            return False
        in_batch = suspect or doc.get("_tx") is not None or (doc.get("_cs") or 0) > as_of
        if not in_batch and not inexact:
            return True
        keys = state_keys(spec, state)
        if not all(matches(spec, keys, p) for p in (query.where if in_batch else inexact)):
            return False
        return (
            position is None
            or not in_batch
            or compare(query.sort, (sort_position(state, query.sort), doc["_id"]), position) > 0
        )

    async def search(self, collection: str, query: Query) -> Page:
        spec = self.spec(collection)
        validate(spec, query)
        as_of = now_micros()
        position = decode_cursor(collection, query.sort, query.cursor) if query.cursor else None
        order = [(f, -1 if d else 1) for f, d in sort_fields(query.sort)] + [("_id", 1)]
        inexact = [p for p in query.where if not is_exact(p)]
        exact = not inexact
        key = sorter(query.sort)
        try:
            # Documents of in-flight or just-committed batches (normally none) are judged
            # in Python; the rest of the page comes from the server in sort order.
            suspects = await self._suspects(collection, as_of)
            found: dict[str, Doc] = {}
            for doc, state in await self._resolve(suspects, as_of):
                # Every predicate is checked here: a suspect was fetched by id, not by the
                # query (a document a batch lists may not be written yet, or match nothing).
                if self._admit(spec, query, inexact, doc, state, as_of, position, suspect=True):
                    assert state is not None
                    found[doc["_id"]] = state
            skip = {"_id": {"$nin": [d["_id"] for d in suspects]}} if suspects else {}
            need, seek, horizon = query.limit + 1, position, None
            for _ in range(_MAX_ROUNDS):
                flt = {
                    "$and": [
                        self._filter(spec, query),
                        skip,
                        keyset_filter(query.sort, *seek) if seek else {},
                    ]
                }
                docs = [d async for d in self.coll(collection).find(flt).sort(order).limit(need)]
                clean = 0
                for doc, state in await self._resolve(docs, as_of):
                    if doc["_id"] not in found and self._admit(
                        spec, query, inexact, doc, state, as_of, position
                    ):
                        assert state is not None
                        found[doc["_id"]] = state
                        clean += 1
                if exact or len(docs) < need or clean == need:
                    horizon = None
                    break
                # Inexact predicates dropped some candidates: read on from the last one.
                last = docs[-1]
                seek = (sort_position(last, query.sort), last["_id"])
                need -= clean
                horizon = seek
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
        ordered = sorted(
            found.items(), key=lambda kv: key((sort_position(kv[1], query.sort), kv[0]))
        )
        if horizon is not None:
            # Stopped early: serve what lies before the last position read; the cursor
            # resumes from there.
            ordered = [
                kv
                for kv in ordered
                if compare(query.sort, (sort_position(kv[1], query.sort), kv[0]), horizon) <= 0
            ]
        page = ordered[: query.limit]
        cursor = None
        if len(ordered) > query.limit and page:
            last_id, last_state = page[-1]
            cursor = encode_cursor(
                collection, query.sort, sort_position(last_state, query.sort), last_id
            )
        elif horizon is not None:
            cursor = encode_cursor(collection, query.sort, horizon[0], horizon[1])
        total = await self.count(collection, query.where) if query.count else None
        return Page([self.record(collection, i, s) for i, s in page], cursor, total)

    async def _suspects(self, collection: str, as_of: int, also: Collection[Any] = ()) -> list[Doc]:
        """Documents whose visible state may differ from their stored one for this reader:
        those of unfinished batches (every document such a batch lists, also those it has
        not reached yet) and of batches that finished after `as_of`, and the documents
        `also` names. The small `_txns` collection says first whether any such batch
        exists (normally none), which spares a query over the collection."""
        recent = {"$or": [{"done": False}, {"at": {"$gt": as_of}}]}
        batches = [t async for t in self.coll("_txns").find(recent, {"ops": 1})]
        if not batches and not also:
            return []
        named = {o["id"] for t in batches for o in t.get("ops", ()) if o["c"] == collection}
        named.update(also)
        flt: dict[str, Any] = {"$or": [{"_tx": {"$ne": None}}, {"_cs": {"$gt": as_of}}]}
        if named:
            flt["$or"].append({"_id": {"$in": sorted(named)}})
        return [d async for d in self.coll(collection).find(flt)]

    async def _matches(
        self, spec: CollectionSpec, where: Sequence[Predicate], as_of: int, also: set[Any]
    ) -> tuple[dict[str, Any], list[dict[str, list[Any]]], set[Any]]:
        """The matches of `where` as of `as_of`, in two parts: a filter for the stored
        documents that match as stored (the database counts them), and the keys of the few
        others, checked here: documents of in-flight batches (as this reader sees them) and
        documents whose multi-valued keys an inexact predicate cannot judge in the database.
        Documents named in `also` are set aside too; the ids set aside are returned."""
        inexact = sorted(set[str]().union(*(inexact_keys(p) for p in where)))
        suspects = await self._suspects(spec.name, as_of, also)
        known = {d["_id"] for d in suspects}
        base = [self._filter(spec, Query(where=where)), {"_id": {"$nin": list(known)}}]
        states: list[Mapping[str, Any]] = []
        if inexact:
            multi = self.coll(spec.name).find({"$and": [*base, multi_valued(inexact)]}, {"k": 1})
            states += [d async for d in multi]
            base.append(single_valued(inexact))
        states += [
            s for _, s in await self._resolve(suspects, as_of) if s is not None and not s["del"]
        ]
        keys = (state_keys(spec, s) for s in states)
        others = [k for k in keys if all(matches(spec, k, p) for p in where)]
        return {"$and": base}, others, known

    async def _counted(
        self,
        spec: CollectionSpec,
        where: Sequence[Predicate],
        run: Callable[[dict[str, Any], list[dict[str, list[Any]]]], Awaitable[T]],
    ) -> T:
        """`run(filter, others)` over the matches (`_matches`). A batch that began while it
        ran may have had documents counted by the database in their new state before its
        commit: then it runs again with those documents (all that batch lists) set aside
        and judged here as of the new start. What a run sets aside grows with every batch
        seen, so runs settle even under batches without pause; after a few, the last stands
        (each document a batch touched then may be counted in either state, never half a
        document). Normally it costs one more look at the small `_txns`."""
        also: set[Any] = set()
        try:
            for _ in range(_COUNT_ATTEMPTS):
                as_of = now_micros()
                clean, others, known = await self._matches(spec, where, as_of, also)
                result = await run(clean, others)
                later = {d["_id"] for d in await self._suspects(spec.name, as_of)}
                if later <= known:
                    break
                also = known | later
            return result
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc

    async def count(self, collection: str, where: Sequence[Predicate] = ()) -> int:
        spec = self.spec(collection)
        validate(spec, Query(where=where))

        async def run(clean: dict[str, Any], others: list[dict[str, list[Any]]]) -> int:
            return await self.coll(collection).count_documents(clean) + len(others)

        return await self._counted(spec, where, run)

    async def tally(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str]
    ) -> Tally:
        """One aggregation per key (FerretDB v1 has no $facet), grouped by a document's
        whole value list and exploded here: FerretDB v1 unwinds a nested array wrongly (and
        takes "$path" in $project for a literal), and a faceted key has few value lists."""
        spec = self.spec(collection)
        validate_tally(spec, where, keys)
        coll = self.coll(collection)

        async def run(clean: dict[str, Any], others: list[dict[str, list[Any]]]) -> Tally:
            counts: dict[str, Counter[str]] = {k: Counter() for k in keys}
            total = await coll.count_documents(clean) + len(others)
            for key in keys:
                pipeline = [{"$match": clean}, {"$group": {"_id": f"$k.{key}", "n": {"$sum": 1}}}]
                async for row in await coll.aggregate(pipeline):
                    for value in row["_id"] or ():
                        counts[key][value] += int(row["n"])
            for state in others:
                for key in keys:
                    counts[key].update(state.get(key, []))
            return Tally(total, {k: dict(c) for k, c in counts.items()})

        return await self._counted(spec, where, run)

    async def explain(self, collection: str, query: Query) -> str:
        spec = self.spec(collection)
        validate(spec, query)
        order = dict((f, -1 if d else 1) for f, d in sort_fields(query.sort))
        cmd = {"find": collection, "filter": self._filter(spec, query), "limit": query.limit + 1}
        if order:
            cmd["sort"] = order
        result = await self.db.command("explain", cmd)
        return json.dumps(result, default=str, indent=1)

    async def events(self, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        return await mongo_txn.read_events(self, after, max(0, min(limit, 1000)))

    # --- writes (mongo_write.py: single writes and claims; mongo_txn.py: batches) -------

    async def write(self, ops: Sequence[WriteOp], events: Sequence[Event] = ()) -> list[Record]:
        prepared = prepare(self.specs, ops)
        evs = check_events(events)
        try:
            if len(prepared) == 1 and not evs:
                doc = await mongo_txn.load_current(self, prepared[0])
                return [await mongo_write.write_one(self, prepared[0], doc)]
            return await mongo_txn.write_batch(self, prepared, evs)
        except PyMongoError as exc:
            raise StoreUnavailable(str(exc)) from exc
