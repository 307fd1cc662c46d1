"""Data access of the health service: resources, their version index and audit records.

Every FHIR resource type is one collection (keys from `services.health.searchparams`); the
`history` collection indexes every version written (type, id, version, time, compartment)
so that type- and system-level `_history` page through versions from an index. A change,
its history row and its AuditEvent are one atomic store batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.health.searchparams import collection_name, collection_specs, patient_compartments
from shared.storage import (
    CollectionSpec,
    Create,
    Delete,
    Eq,
    In,
    KeyType,
    Page,
    Predicate,
    Query,
    Range,
    Record,
    Sort,
    Store,
    Update,
    WriteOp,
    open_store,
)
from shared.storage.keys import date_span

HISTORY = "history"


def _history_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "type": body["type"],
        "at": date_span(body["at"])[0],
        "_compartment": body.get("compartment") or [],
    }


HISTORY_SPEC = CollectionSpec(
    HISTORY,
    keys={"type": KeyType.TEXT, "at": KeyType.INSTANT, "_compartment": KeyType.TEXT},
    extract=_history_keys,
)


def specs() -> list[CollectionSpec]:
    """Every collection of the health store."""
    return [*collection_specs(), HISTORY_SPEC]


def make_store(url: str) -> Store:
    """An unopened store for the health service (the `store=` factory of `create_app`)."""
    return open_store(url, specs())


@dataclass(frozen=True, slots=True)
class Change:
    """One resource write: create (version 1), update to `version`, or delete (tombstone)."""

    method: str  # POST | PUT | DELETE
    resource_type: str
    id: str
    body: Mapping[str, Any]  # the new body; for DELETE the last live body (for its compartment)
    version: int  # the version this change creates
    at: str  # meta.lastUpdated of the new version
    expected_version: int | None = None  # None: the record must not exist yet


def compartment_of(resource_type: str, body: Mapping[str, Any]) -> list[str]:
    """The patients ("Patient/<id>") whose compartment holds this resource."""
    if not body:
        return []
    return patient_compartments(resource_type, body)


class FhirRepository:
    """Reads and writes FHIR resources through the storage port."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, resource_type: str, id: str, *, include_deleted: bool = False) -> Record:
        """The current version (RecordNotFound / RecordDeleted)."""
        return await self.store.get(
            collection_name(resource_type), id, include_deleted=include_deleted
        )

    async def get_version(self, resource_type: str, id: str, version: int) -> Record:
        """One version of a resource."""
        return await self.store.get_version(collection_name(resource_type), id, version)

    async def history(
        self, resource_type: str, id: str, *, limit: int, before_version: int | None
    ) -> list[Record]:
        """Versions of one resource, newest first."""
        return await self.store.history(
            collection_name(resource_type), id, limit=limit, before_version=before_version
        )

    async def search(self, resource_type: str, query: Query) -> Page:
        """One page of live resources of a type."""
        return await self.store.search(collection_name(resource_type), query)

    async def count(self, resource_type: str, where: Sequence[Predicate]) -> int:
        """How many live resources of a type match."""
        return await self.store.count(collection_name(resource_type), where)

    async def get_many(
        self, resource_type: str, ids: Sequence[str], where: Sequence[Predicate] = ()
    ) -> list[Record]:
        """Live resources of a type by id (at most 1000), optionally also matching `where`."""
        if not ids:
            return []
        unique = list(dict.fromkeys(ids))[:1000]
        query = Query(where=[In("_id", unique), *where], limit=len(unique))
        return list((await self.search(resource_type, query)).items)

    async def versions(
        self,
        resource_type: str | None,
        *,
        compartment: str | None,
        since: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """History rows newest first: of a type (or every type), optionally of one patient."""
        where: list[Predicate] = []
        if resource_type is not None:
            where.append(Eq("type", resource_type))
        if compartment is not None:
            where.append(Eq("_compartment", compartment))
        if since is not None:
            where.append(Range("at", ge=since))
        query = Query(where=where, sort=[Sort("at", descending=True)], limit=limit, cursor=cursor)
        return await self.store.search(HISTORY, query)

    async def write(
        self, changes: Sequence[Change], audit: Sequence[Mapping[str, Any]] = ()
    ) -> list[Record]:
        """Apply changes, their history rows and AuditEvents atomically; the change records."""
        ops: list[WriteOp] = []
        for c in changes:
            coll = collection_name(c.resource_type)
            if c.method == "DELETE":
                ops.append(Delete(coll, c.id, c.expected_version))
            elif c.expected_version is None:
                ops.append(Create(coll, c.body, c.id))
            else:
                ops.append(Update(coll, c.id, c.body, c.expected_version))
        for c in changes:
            row = {
                "type": c.resource_type,
                "id": c.id,
                "version": c.version,
                "at": c.at,
                "method": c.method,
                "compartment": compartment_of(c.resource_type, c.body),
            }
            ops.append(Create(HISTORY, row))
        ops.extend(Create(collection_name("AuditEvent"), a, str(a["id"])) for a in audit)
        records = await self.store.write(ops)
        return records[: len(changes)]

    async def append_audit(self, events: Sequence[Mapping[str, Any]]) -> None:
        """Store AuditEvents (the batched ones of reads and searches)."""
        coll = collection_name("AuditEvent")
        await self.store.write([Create(coll, e, str(e["id"])) for e in events])
