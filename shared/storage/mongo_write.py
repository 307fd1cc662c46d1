"""Single-document writes and unique claims on MongoDB-protocol servers.

The one atomic decision every server makes, FerretDB v1 included, is an insert against a
unique index (`_id`). FerretDB applies `update_one` and `find_one_and_update` as
read-modify-write without a check, so concurrent compare-and-set on a version field can have
several winners there. So the right to write version n of a document is taken by inserting
its history entry `<id>|<n>` first: exactly one writer succeeds, the others get a version
conflict. The history entry carries the full new state, so a writer that dies between the
entry and the document is rolled forward by the next writer that meets the entry.
Unique key values are claimed the same way, one `_id`-unique document per (key, value).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError

from shared.storage.codec import from_micros, micros
from shared.storage.errors import AlreadyExists, RecordNotFound, UniqueViolation, VersionConflict
from shared.storage.model import Record
from shared.storage.mongo_state import STATE_FIELDS, Doc, current_state, now_micros, state_of
from shared.storage.prepare import Prepared
from shared.storage.schema import CollectionSpec

if TYPE_CHECKING:
    from shared.storage.mongo import MongoStore

CLAIM_STALE_US = 30 * 1_000_000  # a unique claim this old whose holder lacks the value is left over


def check(p: Prepared, doc: Mapping[str, Any] | None) -> int:
    """The version this write creates (0: nothing to do); raises on a failed precondition."""
    name = f"{p.spec.name}/{p.id}"
    if p.op == "create":
        return 1
    if doc is None:
        raise RecordNotFound(f"{name} not found")
    if p.expected_version is not None and p.expected_version != doc["v"]:
        raise VersionConflict(
            f"{name} is at version {doc['v']}, not {p.expected_version}", current_version=doc["v"]
        )
    if p.op == "delete" and doc["del"]:
        return 0
    return int(doc["v"]) + 1


async def claim_version(
    store: MongoStore, p: Prepared, state: Mapping[str, Any], tx: str | None = None
) -> None:
    """Take the right to write `state` (version n) by inserting history entry <id>|<n>."""
    entry = {"_id": f"{p.id}|{state['v']}", "id": p.id, **state, "w": now_micros()}
    if tx is not None:
        entry["tx"] = tx
    try:
        await store.coll(p.spec.name + "__h").insert_one(entry)
        return
    except DuplicateKeyError:
        pass
    await _roll_forward_orphan(store, p)
    if p.op == "create":
        raise AlreadyExists(f"{p.spec.name}/{p.id} already exists", id=p.id)
    raise VersionConflict(f"{p.spec.name}/{p.id} changed concurrently")


async def _roll_forward_orphan(store: MongoStore, p: Prepared) -> None:
    """Finish a single write whose writer died after its history entry: the entry holds the
    complete state, so the document is brought to it. Young entries are left alone (their
    writer may be about to finish)."""
    coll = store.coll(p.spec.name)
    doc = await coll.find_one({"_id": p.id})
    nxt = 1 if doc is None else int(doc["v"]) + 1
    entry = await store.coll(p.spec.name + "__h").find_one({"_id": f"{p.id}|{nxt}"})
    if (
        entry is None
        or entry.get("tx")
        or now_micros() - entry.get("w", 0) < store.batch_timeout_us
    ):
        return
    state = {f: entry[f] for f in STATE_FIELDS}
    if doc is None:
        try:
            await coll.insert_one({"_id": p.id, **state})
        except DuplicateKeyError:
            return
    elif doc.get("_tx") is None:
        await coll.replace_one({"_id": p.id, "v": doc["v"]}, state)


async def write_one(store: MongoStore, p: Prepared, doc: Doc | None) -> Record:
    """Create, update or delete one document (no events) whose stored form is `doc`:
    claim, history entry, document."""
    version = check(p, doc)
    now = datetime.now(UTC)
    if version == 0:
        assert doc is not None
        return Record(p.spec.name, p.id, doc["v"], True, from_micros(doc["at"]), {})
    new = state_of(p, version, micros(now))
    held = unique_values(p.spec, current_state(doc) if doc else None)
    claimed = await claim(store, p, held)
    coll = store.coll(p.spec.name)
    try:
        await claim_version(store, p, new)
        if doc is None:
            await coll.insert_one({"_id": p.id, **new})
        else:
            # The history entry above made us the only writer of this version.
            await coll.replace_one({"_id": p.id}, new)
    except BaseException:
        await release(store, p.spec.name, p.id, claimed)
        raise
    await release(store, p.spec.name, p.id, held - set(p.unique_values()))
    return Record(p.spec.name, p.id, version, p.op == "delete", now, json.loads(p.body))


def unique_values(spec: CollectionSpec, state: Mapping[str, Any] | None) -> set[tuple[str, str]]:
    """(key, value) pairs a stored state holds under the collection's unique keys."""
    if state is None or state.get("del"):
        return set()
    keys = state.get("k") or {}
    return {(k, v) for k in spec.unique for v in keys.get(k, [])}


def _claim_id(key: str, value: str) -> str:
    return json.dumps([key, value], ensure_ascii=False)


async def claim(store: MongoStore, p: Prepared, held: set[tuple[str, str]]) -> set[tuple[str, str]]:
    """Claim the unique values `p` needs and does not hold yet; returns the new claims."""
    claims = store.coll(p.spec.name + "__u")
    new: set[tuple[str, str]] = set()
    try:
        for key, value in sorted(set(p.unique_values()) - held):
            cid = _claim_id(key, value)
            try:
                await claims.insert_one({"_id": cid, "id": p.id, "at": now_micros()})
                new.add((key, value))
                continue
            except DuplicateKeyError:
                pass
            c = await claims.find_one({"_id": cid})
            if c is not None and c["id"] == p.id:
                continue
            if c is not None and await _stale(store, p.spec, c, key, value):
                # Leftover of a dead writer: remove it and claim afresh (the insert decides).
                await claims.delete_one({"_id": cid, "id": c["id"], "at": c["at"]})
                try:
                    await claims.insert_one({"_id": cid, "id": p.id, "at": now_micros()})
                    new.add((key, value))
                    continue
                except DuplicateKeyError:
                    c = await claims.find_one({"_id": cid})
            holder = c["id"] if c else None
            raise UniqueViolation(
                f"{key} {value!r} is already used by {p.spec.name}/{holder}",
                key=key,
                existing_id=holder,
            )
    except BaseException:
        await release(store, p.spec.name, p.id, new)
        raise
    return new


async def _stale(
    store: MongoStore, spec: CollectionSpec, claim: Mapping[str, Any], key: str, value: str
) -> bool:
    if now_micros() - claim["at"] < CLAIM_STALE_US:
        return False  # its holder may still be writing
    doc = await store.coll(spec.name).find_one({"_id": claim["id"]})
    if doc is None:
        return True
    states = [current_state(doc), doc.get("_prev")] if doc.get("_tx") else [current_state(doc)]
    return not any((key, value) in unique_values(spec, s) for s in states)


async def release(
    store: MongoStore, collection: str, id: str, values: set[tuple[str, str]]
) -> None:
    """Give up claims (only those `id` still holds)."""
    for key, value in values:
        await store.coll(collection + "__u").delete_one({"_id": _claim_id(key, value), "id": id})
