"""Optimistic concurrency under real concurrency: one winner per version, per unique value,
per event sequence number, on both adapters (FerretDB applies updates as unchecked
read-modify-write, so these are not given for free there)."""

from __future__ import annotations

import asyncio
from typing import Any

from shared.storage import (
    AlreadyExists,
    Create,
    Eq,
    Event,
    Query,
    Store,
    UniqueViolation,
    VersionConflict,
    open_store,
)
from tests.fixtures.storage import SPECS


async def outcomes(coros) -> tuple[list[Any], list[BaseException]]:
    results = await asyncio.gather(*coros, return_exceptions=True)
    ok = [r for r in results if not isinstance(r, BaseException)]
    return ok, [r for r in results if isinstance(r, BaseException)]


async def test_one_winner_per_expected_version(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A", "age": 0})
    ok, errors = await outcomes(
        people.update(rec.id, {"name": "A", "age": i}, expected_version=1) for i in range(1, 21)
    )
    assert len(ok) == 1, ok
    assert all(isinstance(e, VersionConflict) for e in errors), errors
    current = await people.get(rec.id)
    assert current.version == 2
    assert current.body["age"] == ok[0].body["age"]
    assert [h.version for h in await people.history(rec.id)] == [2, 1]


async def test_one_winner_per_unique_value_and_id(store: Store) -> None:
    people = store.collection("people")
    ok, errors = await outcomes(people.create({"name": f"P{i}", "nid": "same"}) for i in range(10))
    assert len(ok) == 1, errors
    assert all(isinstance(e, UniqueViolation) for e in errors), errors
    ok, errors = await outcomes(people.create({"name": f"Q{i}"}, id="one") for i in range(10))
    assert len(ok) == 1, errors
    assert all(isinstance(e, AlreadyExists) for e in errors), errors


async def test_event_sequence_numbers_from_two_clients(store: Store, tmp_path) -> None:
    """Two independent store instances (two processes' worth of clients) append events at
    once: every event gets its own number and the feed serves each exactly once."""
    url = getattr(store, "url", None) or f"sqlite:///{store.path}"  # type: ignore[attr-defined]
    async with open_store(url, SPECS) as other:
        a, b = store.collection("people"), other.collection("people")
        await asyncio.gather(
            *(
                coll.create({"name": f"{tag}{i}"}, events=[Event("made", f"{tag}{i}")])
                for i in range(15)
                for tag, coll in (("a", a), ("b", b))
            )
        )
    feed = await store.events(after=0, limit=1000)
    seqs = [e.seq for e in feed]
    assert seqs == sorted(set(seqs))
    assert len(feed) == 30
    assert {e.key for e in feed} == {f"{t}{i}" for t in "ab" for i in range(15)}


async def test_concurrent_writes_fail_alone_and_atomically(store: Store) -> None:
    """Writes in flight together (on SQLite: committed as one group) keep their own
    all-or-nothing: a write whose second operation fails leaves nothing behind, while the
    writes around it are stored, with their events."""
    people = store.collection("people")
    await people.create({"name": "Holder", "nid": "taken"})

    def write(i: int) -> Any:
        ops: list[Any] = [Create("people", {"name": f"W{i}", "gen": 7}, f"w{i}")]
        if i % 5 == 2:  # the second operation of every fifth write breaks a unique key
            ops.append(Create("people", {"name": f"X{i}", "nid": "taken"}, f"x{i}"))
        return store.write(ops, events=[Event("made", f"w{i}")])

    ok, errors = await outcomes(write(i) for i in range(40))
    assert len(errors) == 8, errors
    assert len(ok) == 32
    assert all(isinstance(e, UniqueViolation) for e in errors), errors
    stored = {r.id for r in (await people.search(Query(where=[Eq("gen", 7)], limit=100))).items}
    assert stored == {f"w{i}" for i in range(40) if i % 5 != 2}
    feed = [e.key for e in await store.events(0, 1000) if e.type == "made"]
    assert sorted(feed) == sorted(stored)
