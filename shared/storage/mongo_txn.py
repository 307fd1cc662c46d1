"""Atomic batches on MongoDB-protocol servers without multi-document transactions.

Protocol (the reasoning is in docs/storage.md):
1. checks: current versions and preconditions are read and checked first, so a batch that
   would fail on them writes nothing;
2. a record `_txns/{tx}` lists the documents the batch touches (for recovery);
3. each document: its unique values are claimed, its version is claimed by inserting the
   history entry (tagged with tx), and it is written in place with `_tx: tx` and `_prev`
   (the state before); events go into `_outbox` with `_tx: tx`;
4. commit point: inserting the decision `_txd/{tx}` = committed with `cs`, the commit time.
   An insert against `_id` is the one atomic decision every server makes, so a commit and a
   recovery's abort can never both win. A reader that started at `as_of` sees the batch's
   states only if it committed with `cs <= as_of`, and otherwise `_prev`; it decides from the
   one decision for every document alike, so it never sees half a batch;
5. finish: markers are replaced by `_cs: cs` (kept so readers that began before the commit
   still see `_prev`), old unique claims are released, the record is marked done.
A batch that fails before its commit point is rolled back from `_prev`. A crashed writer's
batch is finished (committed) or rolled back (no decision and older than the store's batch
timeout) by the next writer that meets one of its documents, and by a sweep in every process.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pymongo.errors import DuplicateKeyError, PyMongoError

from shared.storage.codec import from_micros, micros, new_id
from shared.storage.errors import VersionConflict
from shared.storage.model import Record, StoredEvent
from shared.storage.mongo_state import Doc, current_state, now_micros, state_of
from shared.storage.mongo_write import (
    check,
    claim,
    claim_version,
    release,
    unique_values,
)
from shared.storage.prepare import Prepared

if TYPE_CHECKING:
    from shared.storage.mongo import MongoStore

log = logging.getLogger(__name__)

GRACE_US = 120 * 1_000_000  # finished records are kept this long for slow readers
GAP_TIMEOUT_US = 10 * 1_000_000  # an outbox seq missing this long was abandoned
SWEEP_SECONDS = 10.0
FORGET_PER_SWEEP = 500  # finished batch records dropped per sweep (then at once again)
SEQ_ATTEMPTS = 100


async def load_current(store: MongoStore, p: Prepared) -> Doc | None:
    """The stored document an update or delete will replace (None for a create: its id is
    checked by the atomic history insert instead, which costs no read), with any finished
    batch on it settled first."""
    if p.op == "create":
        return None
    coll = store.coll(p.spec.name)
    doc = await coll.find_one({"_id": p.id})
    if doc is not None and doc.get("_tx") is not None:
        await settle(store, doc["_tx"])
        doc = await coll.find_one({"_id": p.id})
        if doc is not None and doc.get("_tx") is not None:
            raise VersionConflict(
                f"{p.spec.name}/{p.id} is part of a batch in progress; retry", busy=True
            )
    return doc


async def write_batch(
    store: MongoStore, prepared: Sequence[Prepared], events: Sequence[tuple[str, str, str]]
) -> list[Record]:
    """Apply a batch atomically (all or nothing, never half visible)."""
    docs = [await load_current(store, p) for p in prepared]
    versions = [check(p, d) for p, d in zip(prepared, docs, strict=True)]
    now = datetime.now(UTC)
    at = micros(now)
    tx = new_id()
    await store.coll("_txns").insert_one(
        {
            "_id": tx,
            "at": now_micros(),
            "done": False,
            "ops": [{"c": p.spec.name, "id": p.id} for p in prepared],
        }
    )
    claimed: list[tuple[Prepared, set[tuple[str, str]]]] = []
    try:
        for p, doc, version in zip(prepared, docs, versions, strict=True):
            if version == 0:
                continue  # deleting a tombstone: nothing changes
            held = unique_values(p.spec, current_state(doc) if doc else None)
            claimed.append((p, await claim(store, p, held)))
            new = state_of(p, version, at)
            await claim_version(store, p, new, tx)
            coll = store.coll(p.spec.name)
            if doc is None:
                await coll.insert_one({"_id": p.id, **new, "_tx": tx, "_prev": None})
            else:
                await coll.replace_one(
                    {"_id": p.id}, {**new, "_tx": tx, "_prev": current_state(doc)}
                )
        for t, k, payload in events:
            await _append_event(
                store, {"type": t, "key": k, "payload": payload, "at": at, "_tx": tx}
            )
        try:
            await store.coll("_txd").insert_one(
                {"_id": tx, "outcome": "committed", "cs": now_micros()}
            )
        except DuplicateKeyError:
            raise VersionConflict("the batch was rolled back by a recovery sweep; retry") from None
    except BaseException:
        with contextlib.suppress(PyMongoError):
            for p, new_claims in claimed:
                await release(store, p.spec.name, p.id, new_claims)
            await abort(store, tx)
        raise
    await finish(store, tx)
    out = []
    for p, doc, version in zip(prepared, docs, versions, strict=True):
        if version == 0:
            assert doc is not None
            out.append(Record(p.spec.name, p.id, doc["v"], True, from_micros(doc["at"]), {}))
        else:
            out.append(
                Record(p.spec.name, p.id, version, p.op == "delete", now, json.loads(p.body))
            )
    return out


async def _append_event(store: MongoStore, event: Doc) -> None:
    """Insert an outbox event under the next free sequence number. The number is taken by
    the insert itself (unique `_id`), since `$inc` on a counter is not atomic on FerretDB."""
    outbox = store.coll("_outbox")
    for _ in range(SEQ_ATTEMPTS):
        if store.seq_hint is None:
            last = await outbox.find_one({}, {"_id": 1}, sort=[("_id", -1)])
            store.seq_hint = int(last["_id"]) if last else 0
        store.seq_hint += 1
        try:
            await outbox.insert_one({"_id": store.seq_hint, **event})
            return
        except DuplicateKeyError:
            store.seq_hint = None  # another process took it: look again
    raise VersionConflict("could not allocate an event sequence number; retry")


async def _decide(store: MongoStore, tx: str, outcome: str) -> Doc:
    """Record the batch's outcome unless one is recorded already; returns the recorded one."""
    decision = {"_id": tx, "outcome": outcome, "cs": now_micros()}
    try:
        await store.coll("_txd").insert_one(decision)
        return decision
    except DuplicateKeyError:
        found = await store.coll("_txd").find_one({"_id": tx})
        assert found is not None
        return found


def _by_collection(t: Doc) -> dict[str, list[str]]:
    """The ids a batch record lists, per collection, in batch order."""
    out: dict[str, list[str]] = {}
    for op in t["ops"]:
        out.setdefault(op["c"], []).append(op["id"])
    return out


def _ids(ids: Sequence[str]) -> Doc:
    """A filter on these `_id`s. One id is asked as an equality: FerretDB answers that from
    its SQL table, but evaluates `$in` itself, over every document."""
    return {"_id": ids[0]} if len(ids) == 1 else {"_id": {"$in": list(ids)}}


async def finish(store: MongoStore, tx: str) -> None:
    """Roll a committed batch forward: clear markers, release old unique claims."""
    t = await store.coll("_txns").find_one({"_id": tx})
    d = await store.coll("_txd").find_one({"_id": tx})
    if t is None or d is None or d["outcome"] != "committed":
        return
    # Per collection, not per document: a batch of 200 audit records used to cost 400 round
    # trips, and on FerretDB, which scans for most queries, 400 scans (minutes).
    for name, ids in _by_collection(t).items():
        coll = store.coll(name)
        spec = store.spec(name)
        mine = {**_ids(ids), "_tx": tx}
        # The states before and after, read before the markers go, for the claims to release.
        marked = (
            [doc async for doc in coll.find(mine, {"k": 1, "del": 1, "_prev": 1})]
            if spec.unique
            else []
        )
        await coll.update_many(mine, {"$set": {"_tx": None, "_cs": d["cs"]}})
        for doc in marked:
            gone = unique_values(spec, doc.get("_prev")) - unique_values(spec, doc)
            await release(store, name, doc["_id"], gone)
    await store.coll("_outbox").update_many({"_tx": tx}, {"$set": {"_tx": None}})
    await store.coll("_txns").update_one({"_id": tx}, {"$set": {"done": True, "at": d["cs"]}})


async def abort(store: MongoStore, tx: str) -> None:
    """Roll a batch back unless it committed (then finish it instead)."""
    decision = await _decide(store, tx, "aborted")
    if decision["outcome"] == "committed":
        await finish(store, tx)
        return
    t = await store.coll("_txns").find_one({"_id": tx})
    if t is None:
        return
    for name, ids in _by_collection(t).items():
        await _roll_back(store, name, ids, tx)
    await store.coll("_outbox").delete_many({"_tx": tx})
    await store.coll("_txns").update_one({"_id": tx}, {"$set": {"done": True, "at": now_micros()}})


async def _roll_back(store: MongoStore, name: str, ids: Sequence[str], tx: str) -> None:
    """Undo a batch in one collection: restore each written document, free each claimed
    version; documents are read in one query and created ones deleted in one."""
    coll = store.coll(name)
    spec = store.spec(name)
    docs = {doc["_id"]: doc async for doc in coll.find(_ids(ids))}
    created: list[str] = []
    entries: list[str] = []
    for doc_id in ids:
        doc = docs.get(doc_id)
        if doc is not None and doc.get("_tx") == tx:
            claimed = int(doc["v"])
            prev = doc.get("_prev")
            if prev is None:
                created.append(doc_id)
            else:
                await coll.replace_one({"_id": doc_id, "_tx": tx}, dict(prev))
            extra = unique_values(spec, doc) - unique_values(spec, prev)
            await release(store, name, doc_id, extra)
        else:  # claimed, but the document was not written yet
            claimed = 1 if doc is None else int(doc["v"]) + 1
        entries.append(f"{doc_id}|{claimed}")
    if created:
        await coll.delete_many({**_ids(created), "_tx": tx})
    # The versions it claimed are free again for the next writer. By `_id`, not by `tx`:
    # history is not indexed on `tx`.
    await store.coll(name + "__h").delete_many({**_ids(entries), "tx": tx})


async def settle(store: MongoStore, tx: str) -> None:
    """Help a batch met on a document to its end: finish it if committed, roll it back if it
    is presumed dead; leave a live undecided batch alone."""
    d = await store.coll("_txd").find_one({"_id": tx})
    if d is not None:
        await (finish(store, tx) if d["outcome"] == "committed" else abort(store, tx))
        return
    t = await store.coll("_txns").find_one({"_id": tx}, {"ops": 0})
    if t is None or now_micros() - t["at"] > store.batch_timeout_us:
        await abort(store, tx)


async def sweep(store: MongoStore, *, forget: bool = True) -> int:
    """Settle batches left behind by crashed writers and (`forget`) drop the records of
    long-finished ones, a bounded number per pass."""
    txns = store.coll("_txns")
    now = now_micros()
    # Only batches older than the timeout: younger ones have a live writer finishing them.
    stuck = txns.find({"done": False, "at": {"$lt": now - store.batch_timeout_us}}, {"_id": 1})
    for t in [t async for t in stuck]:
        await settle(store, t["_id"])
    if not forget:
        return 0
    # Bounded: FerretDB evaluates `$in` by scanning, so forgetting thousands of batches at
    # once (a store that ran long without a sweep) held a start-up for a quarter of an hour.
    done = {"done": True, "at": {"$lt": now - GRACE_US}}
    old = [t["_id"] async for t in txns.find(done, {"_id": 1}).limit(FORGET_PER_SWEEP)]
    if old:
        await txns.delete_many({"_id": {"$in": old}})
        await store.coll("_txd").delete_many({"_id": {"$in": old}})
    return len(old)


async def sweep_forever(store: MongoStore) -> None:
    """Run `sweep` every SWEEP_SECONDS until cancelled."""
    pause = SWEEP_SECONDS
    while True:
        await asyncio.sleep(pause)
        try:
            forgotten = await sweep(store)
        except PyMongoError as exc:  # the database may be away for a while; try again later
            log.warning("batch sweep failed: %s", exc)
            forgotten = 0
        # A full chunk means more are waiting: go on soon, without hogging the server.
        pause = 0.5 if forgotten >= FORGET_PER_SWEEP else SWEEP_SECONDS


async def read_events(store: MongoStore, after: int, limit: int) -> list[StoredEvent]:
    """Events after `after`, in order, stopping before any that may still appear.

    A sequence number is taken before its batch commits, so a number can exist but not yet
    be visible; serving past it would make consumers skip it for good. The feed therefore
    stops at an undecided event or at a missing number, unless the number has been missing
    for longer than GAP_TIMEOUT (its batch was rolled back or its writer died).
    """
    docs: list[Doc] = [
        d
        async for d in store.coll("_outbox")
        .find({"_id": {"$gt": after}})
        .sort("_id", 1)
        .limit(limit)
    ]
    decisions = await store.txn_states({d["_tx"] for d in docs if d.get("_tx") is not None})
    now = now_micros()
    out: list[StoredEvent] = []
    expected = after + 1
    for d in docs:
        if d["_id"] != expected and now - d["at"] < GAP_TIMEOUT_US:
            break  # a gap that may still fill
        tx = d.get("_tx")
        if tx is not None:
            outcome: Any = decisions.get(tx, {}).get("outcome")
            if outcome is None:
                break  # undecided: it may commit
            if outcome != "committed":
                expected = d["_id"] + 1
                continue  # rolled back: its rows are about to be deleted
        out.append(
            StoredEvent(
                d["_id"], d["type"], d["key"], json.loads(d["payload"]), from_micros(d["at"])
            )
        )
        expected = d["_id"] + 1
    return out
