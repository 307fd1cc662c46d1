"""Storage contract: atomic multi-document writes and the outbox."""

from __future__ import annotations

import asyncio

import pytest

from shared.storage import (
    AlreadyExists,
    Create,
    DocumentTooLarge,
    Eq,
    Event,
    InvalidDocument,
    Prefix,
    Query,
    RecordNotFound,
    Store,
    UniqueViolation,
    Update,
    VersionConflict,
)


async def test_batch_writes_everything_and_its_events(store: Store) -> None:
    people = store.collection("people")
    old = await people.create({"name": "Old", "nid": "1"}, id="old")
    recs = await store.write(
        [
            Create("people", {"name": "New", "nid": "2"}, id="new"),
            Update("people", "old", {"name": "Old2", "nid": "1"}, expected_version=1),
            Create("notes", {"person": "new", "text": "moved in"}),
        ],
        [
            Event("resident.registered", "new", {"id": "new"}),
            Event("resident.updated", "old", {"id": "old"}),
        ],
    )
    assert [(r.collection, r.version) for r in recs] == [("people", 1), ("people", 2), ("notes", 1)]
    assert (await people.get("old")).body["name"] == "Old2"
    assert (await store.collection("notes").search(Query(where=[Eq("person", "new")]))).items
    events = await store.events(after=0)
    assert [(e.type, e.key) for e in events] == [
        ("resident.registered", "new"),
        ("resident.updated", "old"),
    ]
    assert events[0].payload == {"id": "new"}
    assert events[1].seq > events[0].seq
    assert old.version == 1


@pytest.mark.parametrize(
    ("bad", "error"),
    [
        (Update("people", "a", {"name": "A!"}, expected_version=9), VersionConflict),
        (Create("people", {"name": "dup"}, id="a"), AlreadyExists),
        (Create("people", {"name": "C", "nid": "nid-a"}), UniqueViolation),
        (Update("people", "missing", {"name": "?"}), RecordNotFound),
        (Create("people", {"name": "big", "blob": "x" * 70_000}), DocumentTooLarge),
        (Create("people", {"name": "bad", "age": "old"}), InvalidDocument),
    ],
)
async def test_failed_batch_leaves_nothing_behind(store: Store, bad, error) -> None:
    people = store.collection("people")
    await people.create({"name": "A", "nid": "nid-a"}, id="a")
    await people.create({"name": "B"}, id="b")
    before_events = await store.events()
    with pytest.raises(error):
        await store.write(
            [
                Create("people", {"name": "First", "nid": "nid-new"}, id="first"),
                Update("people", "b", {"name": "B2"}, expected_version=1),
                Create("notes", {"person": "x"}),
                bad,
            ],
            [Event("should.not", "appear")],
        )
    with pytest.raises(RecordNotFound):
        await people.get("first")
    assert (await people.get("b")).body == {"name": "B"}
    assert [h.version for h in await people.history("b")] == [1]
    assert (await people.get("a")).version == 1
    assert await store.events() == before_events
    assert await store.collection("notes").count() == 0
    assert await people.count() == 2
    # the unique value the failed batch claimed is free again
    await people.create({"name": "Later", "nid": "nid-new"})


async def test_batch_touching_a_record_twice_is_refused(store: Store) -> None:
    with pytest.raises(InvalidDocument):
        await store.write(
            [Create("people", {"name": "A"}, id="x"), Update("people", "x", {"name": "B"})]
        )
    with pytest.raises(RecordNotFound):
        await store.collection("people").get("x")


async def test_single_write_with_event_is_atomic(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A"}, events=[Event("resident.registered", "a")])
    with pytest.raises(VersionConflict):
        await people.update(
            rec.id, {"name": "B"}, expected_version=5, events=[Event("resident.updated", "a")]
        )
    assert [e.type for e in await store.events()] == ["resident.registered"]


async def test_event_feed_paging(store: Store) -> None:
    people = store.collection("people")
    for i in range(7):
        await people.create({"name": f"p{i}"}, events=[Event("t", f"k{i}", {"i": i})])
    first = await store.events(after=0, limit=3)
    assert [e.payload["i"] for e in first] == [0, 1, 2]
    rest = await store.events(after=first[-1].seq, limit=100)
    assert [e.payload["i"] for e in rest] == [3, 4, 5, 6]
    assert await store.events(after=rest[-1].seq) == []


async def test_batches_are_never_half_visible_to_concurrent_readers(store: Store) -> None:
    """A writer moves 10 records from one generation to the next in batches; readers
    running at the same time must always see all 10 records of a single generation."""
    people = store.collection("people")
    ids = [f"g{i}" for i in range(10)]
    await store.write([Create("people", {"name": i, "gen": 0}, id=i) for i in ids])
    stop = asyncio.Event()
    observations: list[list[int]] = []

    async def writer() -> None:
        for gen in range(1, 16):
            await store.write([Update("people", i, {"name": i, "gen": gen}) for i in ids])
            await asyncio.sleep(0)
        stop.set()

    async def reader() -> None:
        while not stop.is_set():
            page = await people.search(Query(limit=100))
            observations.append(sorted({r.body["gen"] for r in page.items}))
            assert len(page.items) == 10
            by_id = [(await people.get(i)).body["gen"] for i in ids[:3]]
            assert len(set(by_id)) >= 1
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    assert observations, "the readers never ran"
    assert all(len(gens) == 1 for gens in observations), observations
    final = await people.search(Query(where=[Eq("gen", 15)], limit=100))
    assert len(final.items) == 10


async def test_searches_during_batches_return_only_matches(store: Store) -> None:
    """Documents a batch in flight lists are judged apart from the query (the MongoDB
    adapter fetches them by id); a search must still return only what matches."""
    people = store.collection("people")
    ids = [f"b{i}" for i in range(10)]
    await store.write([Create("people", {"name": "busy", "gen": 0}, id=i) for i in ids])
    for i in range(5):
        await people.create({"name": f"quiet {i}", "gen": 0}, id=f"q{i}")
    stop = asyncio.Event()
    seen: list[list[str]] = []

    async def writer() -> None:
        for gen in range(1, 12):
            await store.write([Update("people", i, {"name": "busy", "gen": gen}) for i in ids])
            await asyncio.sleep(0)
        stop.set()

    async def reader() -> None:
        while not stop.is_set():
            page = await people.search(Query(where=[Prefix("name", "quiet")], limit=100))
            seen.append(sorted(r.id for r in page.items))
            assert await people.count([Prefix("name", "quiet")]) == 5
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    assert seen, "the readers never ran"
    assert all(s == [f"q{i}" for i in range(5)] for s in seen), [s for s in seen if len(s) != 5]
