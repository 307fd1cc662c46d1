"""All data access of the registry: collections, the index keys extracted from each
document, and the reads and atomic writes the services need.

Collections: `places` (id = code path), `residents` (id = resident id; the national ID is
a unique key), `households` (id = household id), `audit` (the registry's own trail) and
`counters` (the next resident and household numbers, bumped in the same batch as the
record they number). Every query below is predicates on index keys; nothing reads a
collection to filter it in Python.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from services.registry.names import match_forms, name_keys, pinyin_keys
from services.registry.places import PLACES_COLLECTION, lineage, store_id
from shared.errors import ServiceUnavailable
from shared.storage import (
    AlreadyExists,
    AnyOf,
    Create,
    Eq,
    Event,
    In,
    KeyType,
    Page,
    Predicate,
    Query,
    Range,
    Record,
    RecordDeleted,
    RecordNotFound,
    Sort,
    Store,
    Update,
    VersionConflict,
    WriteOp,
    open_store,
)
from shared.storage.schema import CollectionSpec, Keys

PLACES = PLACES_COLLECTION
RESIDENTS = "residents"
HOUSEHOLDS = "households"
AUDIT = "audit"
COUNTERS = "counters"
IMPORT_JOBS = "import_jobs"
IMPORT_ERRORS = "import_errors"
CHANGES = "change_requests"
MAX_CANDIDATES = 20


def day_instant(value: str | date) -> datetime:
    """A calendar date as the instant of its midnight (UTC), for range predicates."""
    d = date.fromisoformat(value) if isinstance(value, str) else value
    return datetime(d.year, d.month, d.day, tzinfo=UTC)


def _place_keys(body: Mapping[str, Any]) -> Keys:
    return {"_id": body["code"], "level": body["level"], "parent": body.get("parent")}


def resident_keys(body: Mapping[str, Any]) -> Keys:
    """Index keys of a resident: jurisdiction path, search and duplicate keys."""
    name = body["name"]
    zh, latin = name.get("zh"), name.get("latin")
    birth = body["birth_date"]
    return {
        # Ids as a key too: fetching several records by id is one In predicate.
        "_id": body["id"],
        # Every enclosing place: "within my jurisdiction" is one equality on this key.
        "place": lineage(body["address"]["community"]),
        "status": body["status"],
        "national_id": body.get("national_id"),
        "phone": body.get("phone"),
        "name": name_keys(zh, latin),
        "pinyin": pinyin_keys(zh),
        "dup": [f"{form}|{birth}" for form in match_forms(zh, latin)],
        "birth": day_instant(birth),
        "household": (body.get("household") or {}).get("id"),
        "review": (body.get("review") or {}).get("status"),
    }


def _household_keys(body: Mapping[str, Any]) -> Keys:
    return {"place": lineage(body["community"]), "head": body["head"]}


def _audit_keys(body: Mapping[str, Any]) -> Keys:
    actor = body["actor"]
    return {
        "resident": body.get("residents") or [],
        "actor": [v for v in (actor.get("sub"), actor.get("username")) if v],
        "at": datetime.fromisoformat(body["at"]),
        "action": body["action"],
    }


def _import_job_keys(body: Mapping[str, Any]) -> Keys:
    return {
        "owner": body["owner"]["sub"],
        "state": body["state"],
        "created": datetime.fromisoformat(body["created_at"]),
        "beat": datetime.fromisoformat(body["beat"]),
    }


def _import_error_keys(body: Mapping[str, Any]) -> Keys:
    return {"job": body["job"], "row": body["row"]}


def _change_keys(body: Mapping[str, Any]) -> Keys:
    return {
        # Every place enclosing the resident's community when the request was made: "in my
        # jurisdiction" is one equality, as for residents.
        "place": lineage(body["community"]),
        "state": body["state"],
        "resident": body["residents"],
        # "<role>|<place>" of the officers who may decide: "awaiting me" is one equality.
        "decider": body["deciders"],
        "created": datetime.fromisoformat(body["created_at"]),
    }


SPECS = [
    CollectionSpec(
        PLACES,
        keys={"_id": KeyType.TEXT, "level": KeyType.TEXT, "parent": KeyType.TEXT},
        extract=_place_keys,
    ),
    CollectionSpec(
        RESIDENTS,
        keys={
            "_id": KeyType.TEXT,
            "place": KeyType.TEXT,
            "status": KeyType.TEXT,
            "national_id": KeyType.TEXT,
            "phone": KeyType.TEXT,
            "name": KeyType.TEXT,
            "pinyin": KeyType.TEXT,
            "dup": KeyType.TEXT,
            "birth": KeyType.INSTANT,
            "household": KeyType.TEXT,
            "review": KeyType.TEXT,
        },
        unique=["national_id"],
        # A jurisdiction or a status holds up to every resident: never the search driver.
        coarse=frozenset({"place", "status"}),
        extract=resident_keys,
        max_doc_bytes=64 * 1024,
    ),
    CollectionSpec(
        HOUSEHOLDS,
        keys={"place": KeyType.TEXT, "head": KeyType.TEXT},
        extract=_household_keys,
        max_doc_bytes=64 * 1024,
    ),
    CollectionSpec(
        AUDIT,
        keys={
            "resident": KeyType.TEXT,
            "actor": KeyType.TEXT,
            "at": KeyType.INSTANT,
            "action": KeyType.TEXT,
        },
        extract=_audit_keys,
    ),
    CollectionSpec(COUNTERS),
    # Bulk import jobs (services/registry/import_jobs.py) and their failed rows.
    CollectionSpec(
        IMPORT_JOBS,
        keys={
            "owner": KeyType.TEXT,
            "state": KeyType.TEXT,
            "created": KeyType.INSTANT,
            "beat": KeyType.INSTANT,
        },
        extract=_import_job_keys,
    ),
    CollectionSpec(
        IMPORT_ERRORS,
        keys={"job": KeyType.TEXT, "row": KeyType.NUMBER},
        extract=_import_error_keys,
        max_doc_bytes=64 * 1024,
    ),
    # Change requests (services/registry/changes.py).
    CollectionSpec(
        CHANGES,
        keys={
            "place": KeyType.TEXT,
            "state": KeyType.TEXT,
            "resident": KeyType.TEXT,
            "decider": KeyType.TEXT,
            "created": KeyType.INSTANT,
        },
        extract=_change_keys,
        max_doc_bytes=64 * 1024,
    ),
]


def make_store(url: str) -> Store:
    """An unopened store for the registry (the `store=` factory of `create_app`)."""
    return open_store(url, SPECS)


# Resident numbers are reserved from the counter this many at a time (see `next_number`).
NUMBER_BLOCK = 64


class RegistryRepository:
    """Reads and writes registry documents through the storage port."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._blocks: dict[str, tuple[int, int]] = {}  # counter -> [next, end) reserved
        self._block_lock = asyncio.Lock()

    # places

    async def place(self, code: str) -> Record | None:
        """A place by code, or None."""
        try:
            return await self.store.get(PLACES, store_id(code))
        except (RecordNotFound, RecordDeleted):
            return None

    async def places(self, codes: Sequence[str]) -> dict[str, Record]:
        """Places by code (at most 1000)."""
        if not codes:
            return {}
        unique = list(dict.fromkeys(codes))[:1000]
        page = await self.store.search(PLACES, Query(where=[In("_id", unique)], limit=len(unique)))
        return {r.body["code"]: r for r in page.items}

    async def children(self, parent: str | None, *, limit: int = 1000) -> list[Record]:
        """The places directly under `parent` (the districts when None)."""
        where: Predicate = Eq("parent", parent) if parent else Eq("level", "district")
        page = await self.store.search(PLACES, Query(where=[where], limit=limit))
        return list(page.items)

    # residents

    async def resident(self, id: str) -> Record | None:
        """The current version of a resident, or None."""
        try:
            return await self.store.get(RESIDENTS, id)
        except (RecordNotFound, RecordDeleted):
            return None

    async def resident_history(
        self, id: str, *, limit: int, before_version: int | None
    ) -> list[Record]:
        """Versions of a resident, newest first."""
        return await self.store.history(RESIDENTS, id, limit=limit, before_version=before_version)

    async def residents(self, ids: Sequence[str]) -> dict[str, Record]:
        """Residents by id (at most 1000)."""
        if not ids:
            return {}
        unique = list(dict.fromkeys(ids))[:1000]
        query = Query(where=[In("_id", unique)], limit=len(unique))
        return {r.id: r for r in (await self.store.search(RESIDENTS, query)).items}

    async def search_residents(self, query: Query) -> Page:
        """One page of residents."""
        return await self.store.search(RESIDENTS, query)

    async def count_residents(self, where: Sequence[Predicate]) -> int:
        """How many residents match."""
        return await self.store.count(RESIDENTS, where)

    async def by_national_id(self, number: str) -> Record | None:
        """The resident holding a national ID number."""
        page = await self.store.search(RESIDENTS, Query(where=[Eq("national_id", number)], limit=1))
        return page.items[0] if page.items else None

    async def probable_duplicates(
        self, dup_keys: Sequence[str], phone: str | None, exclude: str | None = None
    ) -> list[Record]:
        """Residents sharing a name form and birth date, or the phone number."""
        members: list[Predicate] = []
        if dup_keys:
            members.append(In("dup", list(dup_keys)))
        if phone:
            members.append(Eq("phone", phone))
        if not members:
            return []
        where: Predicate = members[0] if len(members) == 1 else AnyOf(members)
        page = await self.store.search(RESIDENTS, Query(where=[where], limit=MAX_CANDIDATES + 1))
        return [r for r in page.items if r.id != exclude][:MAX_CANDIDATES]

    async def members(self, household: str) -> list[Record]:
        """The residents of a household (at most 100, by resident id)."""
        query = Query(where=[Eq("household", household)], limit=100)
        return list((await self.store.search(RESIDENTS, query)).items)

    # households

    async def household(self, id: str) -> Record | None:
        """The current version of a household, or None (also for a dissolved one)."""
        try:
            return await self.store.get(HOUSEHOLDS, id)
        except (RecordNotFound, RecordDeleted):
            return None

    # counters and writes

    async def allocate(
        self, counter: str, prefix: str, *, at_least: int = 0
    ) -> tuple[str, WriteOp]:
        """The next number of `counter` as `<prefix>-NNNNNNNN`, and the write that takes it
        (to go in the same batch as the record: a conflicting batch took it first)."""
        try:
            current = await self.store.get(COUNTERS, counter)
        except RecordNotFound:
            n = max(1, at_least)
            return f"{prefix}-{n:08d}", Create(COUNTERS, {"next": n + 1}, counter)
        n = max(int(current.body["next"]), at_least)
        op = Update(COUNTERS, counter, {"next": n + 1}, current.version)
        return f"{prefix}-{n:08d}", op

    async def next_number(self, counter: str, prefix: str) -> str:
        """The next number of `counter` from a block this process reserved.

        Taking each number in the record's own batch made concurrent registrations collide
        on the counter and retry (a long tail under load); a block is one counter write per
        `NUMBER_BLOCK` records. Numbers are still unique (a record is created with its id,
        so a number taken otherwise, e.g. by an import with explicit ids, fails and the
        caller takes the next one); the price is a gap when a process stops mid-block.
        """
        async with self._block_lock:
            n, end = self._blocks.get(counter, (0, 0))
            if n >= end:
                n, end = await self._reserve(counter)
            self._blocks[counter] = (n + 1, end)
        return f"{prefix}-{n:08d}"

    async def _reserve(self, counter: str) -> tuple[int, int]:
        for _ in range(20):
            try:
                current = await self.store.get(COUNTERS, counter)
            except RecordNotFound:
                op: WriteOp = Create(COUNTERS, {"next": 1 + NUMBER_BLOCK}, counter)
                first = 1
            else:
                first = int(current.body["next"])
                op = Update(COUNTERS, counter, {"next": first + NUMBER_BLOCK}, current.version)
            try:
                await self.store.write([op])
            except (VersionConflict, AlreadyExists):
                continue  # another process reserved a block meanwhile: read the counter again
            return first, first + NUMBER_BLOCK
        raise ServiceUnavailable("The resident numbers are contended; try again.")

    async def bump_counter(self, counter: str, at_least: int) -> WriteOp | None:
        """The write that keeps `counter` above an explicitly numbered record."""
        try:
            current = await self.store.get(COUNTERS, counter)
        except RecordNotFound:
            return Create(COUNTERS, {"next": at_least + 1}, counter)
        if int(current.body["next"]) > at_least:
            return None
        return Update(COUNTERS, counter, {"next": at_least + 1}, current.version)

    async def write(self, ops: Sequence[WriteOp], events: Sequence[Event] = ()) -> list[Record]:
        """Apply operations and events atomically."""
        return await self.store.write(ops, events)

    # audit

    async def append_audit(self, entries: Sequence[Mapping[str, Any]]) -> None:
        """Store audit entries (the batched ones of reads)."""
        await self.store.write([Create(AUDIT, e, str(e["id"])) for e in entries])

    async def search_audit(
        self, where: Sequence[Predicate], *, limit: int, cursor: str | None
    ) -> Page:
        """Audit entries newest first."""
        query = Query(
            where=list(where), sort=[Sort("at", descending=True)], limit=limit, cursor=cursor
        )
        return await self.store.search(AUDIT, query)

    # import jobs

    async def import_job(self, id: str) -> Record | None:
        """An import job, or None."""
        try:
            return await self.store.get(IMPORT_JOBS, id)
        except (RecordNotFound, RecordDeleted):
            return None

    async def import_jobs_of(self, owner: str, *, limit: int, cursor: str | None) -> Page:
        """The jobs one account started, newest first."""
        query = Query(
            where=[Eq("owner", owner)],
            sort=[Sort("created", descending=True)],
            limit=limit,
            cursor=cursor,
        )
        return await self.store.search(IMPORT_JOBS, query)

    async def stale_import_jobs(self, beat_before: datetime) -> list[Record]:
        """Unfinished jobs whose runner has not written since `beat_before` (at most 100)."""
        where: list[Predicate] = [
            In("state", ["queued", "running"]),
            Range("beat", lt=beat_before),
        ]
        return list((await self.store.search(IMPORT_JOBS, Query(where=where, limit=100))).items)

    async def import_errors(self, job: str, *, limit: int, cursor: str | None) -> Page:
        """A job's failed rows in file order."""
        query = Query(where=[Eq("job", job)], sort=[Sort("row")], limit=limit, cursor=cursor)
        return await self.store.search(IMPORT_ERRORS, query)

    # change requests

    async def change_request(self, id: str) -> Record | None:
        """A change request, or None."""
        try:
            return await self.store.get(CHANGES, id)
        except (RecordNotFound, RecordDeleted):
            return None

    async def search_changes(
        self, where: Sequence[Predicate], *, limit: int, cursor: str | None
    ) -> Page:
        """Change requests newest first."""
        query = Query(
            where=list(where), sort=[Sort("created", descending=True)], limit=limit, cursor=cursor
        )
        return await self.store.search(CHANGES, query)
