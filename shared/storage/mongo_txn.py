"""Atomic batches on MongoDB servers without multi-document transactions.

Protocol (details and the proof sketch in docs/storage.md):
1. checks: every document's current version and every unique value are checked before
   anything is written; a batch that would fail writes nothing.
2. a transaction record `_txns/{tx}` is inserted with state `pending` and the list of
   documents it touches;
3. each document gets its new state in place plus `_tx: tx` and `_prev` (the state before);
   events are inserted into `_outbox` with `_tx: tx`;
4. commit point: one single-document update turns the record `committed` with `cs`, the
   commit time. A reader that started at `as_of` sees a batch's states only if `cs <= as_of`
   (otherwise `_prev`), and it decides that from the one record, for every document alike;
5. finish: markers are replaced by `_cs: cs` (kept so that readers that started before the
   commit still see `_prev`), history is written, old unique claims are released, and the
   record becomes `done` (deleted after a grace period).
A batch that fails before its commit point is rolled back from `_prev`. A crashed writer's
batch is finished (committed) or rolled back (pending and older than the store's batch timeout) by the next
writer that meets one of its documents, and by a periodic sweep in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.storage.codec import from_micros, micros, new_id
from shared.storage.errors import AlreadyExists, VersionConflict
from shared.storage.model import Record, StoredEvent
from shared.storage.prepare import Prepared

if TYPE_CHECKING:
    from shared.storage.mongo import Doc, MongoStore

log = logging.getLogger(__name__)

GRACE_US = 120 * 1_000_000  # finished records are kept this long for slow readers
GAP_TIMEOUT_US = 10 * 1_000_000  # an outbox seq missing this long was abandoned
SWEEP_SECONDS = 10.0


async def write_batch(store: MongoStore, prepared: Sequence[Prepared],
                      events: Sequence[tuple[str, str, str]]) -> list[Record]:
    """Apply a batch atomically (all or nothing, never half visible)."""
    from shared.storage.mongo import current_state, now_micros, state_of

    docs = [await store.load_current(p) for p in prepared]
    versions = [store.check(p, d) for p, d in zip(prepared, docs, strict=True)]
    now = datetime.now(UTC)
    at = micros(now)
    tx = new_id()
    txns = store.coll("_txns")
    await txns.insert_one({"_id": tx, "state": "pending", "at": now_micros(), "cs": None,
                           "ops": [{"c": p.spec.name, "id": p.id} for p in prepared]})
    claimed: list[tuple[Prepared, set[tuple[str, str]]]] = []
    try:
        for p, doc, version in zip(prepared, docs, versions, strict=True):
            if version == 0:
                continue  # deleting a tombstone: nothing changes
            held = store.unique_values(p.spec, doc)
            claimed.append((p, await store.claim(p, held)))
            new = {**state_of(p, version, at), "_tx": tx}
            coll = store.coll(p.spec.name)
            if doc is None:
                try:
                    await coll.insert_one({"_id": p.id, **new, "_prev": None})
                except DuplicateKeyError:
                    raise AlreadyExists(f"{p.spec.name}/{p.id} already exists", id=p.id) from None
            else:
                await store.save_history(p.spec.name, p.id, current_state(doc))
                res = await coll.replace_one({"_id": p.id, "v": doc["v"], "_tx": None},
                                             {**new, "_prev": current_state(doc)})
                if res.matched_count == 0:
                    raise VersionConflict(f"{p.spec.name}/{p.id} changed concurrently")
        if events:
            counter = await store.coll("_counters").find_one_and_update(
                {"_id": "outbox"}, {"$inc": {"n": len(events)}}, upsert=True,
                return_document=ReturnDocument.AFTER)
            first = int(counter["n"]) - len(events) + 1
            await store.coll("_outbox").insert_many([
                {"_id": first + i, "type": t, "key": k, "payload": payload, "at": at, "_tx": tx}
                for i, (t, k, payload) in enumerate(events)])
        res = await txns.update_one({"_id": tx, "state": "pending"},
                                    {"$set": {"state": "committed", "cs": now_micros()}})
        if res.matched_count == 0:
            raise VersionConflict("the batch was aborted by a recovery sweep; retry")
    except BaseException:
        with contextlib.suppress(PyMongoError):
            for p, new_claims in claimed:
                await store.release(p.spec.name, p.id, new_claims)
            await abort(store, tx)
        raise
    await finish(store, tx)
    out = []
    for p, doc, version in zip(prepared, docs, versions, strict=True):
        if version == 0:
            assert doc is not None
            out.append(Record(p.spec.name, p.id, doc["v"], True, from_micros(doc["at"]), {}))
        else:
            out.append(Record(p.spec.name, p.id, version, p.op == "delete", now,
                              json.loads(p.body)))
    return out


async def finish(store: MongoStore, tx: str) -> None:
    """Roll a committed batch forward: clear markers, write history, release old claims."""
    from shared.storage.mongo import current_state

    t = await store.coll("_txns").find_one({"_id": tx})
    if t is None or t["state"] != "committed":
        return
    for op in t["ops"]:
        name, doc_id = op["c"], op["id"]
        coll = store.coll(name)
        doc = await coll.find_one({"_id": doc_id, "_tx": tx})
        if doc is None:
            continue
        spec = store.spec(name)
        await store.save_history(name, doc_id, current_state(doc))
        await coll.update_one({"_id": doc_id, "_tx": tx},
                              {"$set": {"_tx": None, "_cs": t["cs"]}})
        gone = store.unique_values(spec, doc.get("_prev")) - store.unique_values(spec, doc)
        await store.release(name, doc_id, gone)
    await store.coll("_outbox").update_many({"_tx": tx}, {"$set": {"_tx": None}})
    await store.coll("_txns").update_one({"_id": tx, "state": "committed"},
                                         {"$set": {"state": "done", "done_at": t["cs"]}})


async def abort(store: MongoStore, tx: str) -> None:
    """Roll an uncommitted batch back (no-op once it has committed)."""
    from shared.storage.mongo import now_micros

    txns = store.coll("_txns")
    t = await txns.find_one_and_update({"_id": tx, "state": {"$in": ["pending", "aborted"]}},
                                       {"$set": {"state": "aborted"}})
    if t is None:
        return
    for op in t["ops"]:
        name, doc_id = op["c"], op["id"]
        coll = store.coll(name)
        doc = await coll.find_one({"_id": doc_id, "_tx": tx})
        if doc is None:
            continue
        spec = store.spec(name)
        prev = doc.get("_prev")
        if prev is None:
            await coll.delete_one({"_id": doc_id, "_tx": tx})
        else:
            await coll.replace_one({"_id": doc_id, "_tx": tx}, dict(prev))
        extra = store.unique_values(spec, doc) - store.unique_values(spec, prev)
        await store.release(name, doc_id, extra)
    await store.coll("_outbox").delete_many({"_tx": tx})
    await txns.update_one({"_id": tx}, {"$set": {"state": "done", "done_at": now_micros()}})


async def settle(store: MongoStore, tx: str) -> None:
    """Help a batch met on a document to its end: finish it if committed, roll it back if it
    is aborted or presumed dead; leave a live pending batch alone."""
    from shared.storage.mongo import now_micros

    t = await store.coll("_txns").find_one({"_id": tx}, {"ops": 0})
    if t is None:
        return
    if t["state"] == "committed":
        await finish(store, tx)
    elif t["state"] == "aborted" or (
        t["state"] == "pending" and now_micros() - t["at"] > store.batch_timeout_us
    ):
        await abort(store, tx)


async def sweep(store: MongoStore) -> None:
    """Settle batches left behind by crashed writers and forget long-finished ones."""
    from shared.storage.mongo import now_micros

    txns = store.coll("_txns")
    now = now_micros()
    stuck = txns.find({"$or": [{"state": {"$in": ["committed", "aborted"]}},
                               {"state": "pending", "at": {"$lt": now - store.batch_timeout_us}}]},
                      {"_id": 1})
    for t in [t async for t in stuck]:
        await settle(store, t["_id"])
    await txns.delete_many({"state": "done", "done_at": {"$lt": now - GRACE_US}})


async def sweep_forever(store: MongoStore) -> None:
    """Run `sweep` every SWEEP_SECONDS until cancelled."""
    while True:
        await asyncio.sleep(SWEEP_SECONDS)
        try:
            await sweep(store)
        except PyMongoError as exc:  # the database may be away for a while; try again later
            log.warning("batch sweep failed: %s", exc)


async def read_events(store: MongoStore, after: int, limit: int) -> list[StoredEvent]:
    """Events after `after`, in order, stopping before any that may still appear.

    Sequence numbers are allocated before a batch commits, so a number can be taken but not
    yet visible; serving past it would make consumers skip it for good. The feed therefore
    stops at a pending event or at a missing number, unless the number has been missing for
    longer than GAP_TIMEOUT (its batch was rolled back or its writer died).
    """
    from shared.storage.mongo import now_micros

    docs: list[Doc] = [d async for d in store.coll("_outbox").find({"_id": {"$gt": after}})
                       .sort("_id", 1).limit(limit)]
    pending = {d["_tx"] for d in docs if d.get("_tx") is not None}
    states = await store._txn_states(pending) if pending else {}  # noqa: SLF001
    now = now_micros()
    out: list[StoredEvent] = []
    expected = after + 1
    for d in docs:
        if d["_id"] != expected and now - d["at"] < GAP_TIMEOUT_US:
            break  # a gap that may still fill
        tx = d.get("_tx")
        if tx is not None:
            state = states.get(tx, {}).get("state")
            if state == "pending":
                break
            if state not in ("committed", "done") or states[tx].get("cs") is None:
                expected = d["_id"] + 1
                continue  # rolled back: its rows are about to be deleted
        out.append(StoredEvent(d["_id"], d["type"], d["key"], json.loads(d["payload"]),
                               from_micros(d["at"])))
        expected = d["_id"] + 1
    return out


