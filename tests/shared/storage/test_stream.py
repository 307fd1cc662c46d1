"""The embedded store's streams (CollectionSpec.stream): an unsorted page driven by one
value of a text key is read off that key's index in id order, and must equal, page by page
and cursor by cursor, what the general plan (every match found, then sorted) answers."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from shared.storage import (
    AllOf,
    AnyOf,
    CollectionSpec,
    Create,
    Delete,
    Eq,
    In,
    KeyType,
    Not,
    Predicate,
    Query,
    Range,
    Sort,
    Store,
    Update,
    WriteOp,
    open_store,
)
from shared.storage import sqlite as sqlite_store
from tests.shared.storage.paging import pages


def keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """A kind (a few values), a state (coarse), words, a rank (some have none)."""
    return {
        "kind": body["kind"],
        "state": body["state"],
        "word": body["words"],
        "rank": body.get("rank"),
    }


def spec(name: str, stream: bool) -> CollectionSpec:
    """The same collection, streamed or not."""
    return CollectionSpec(
        name=name,
        keys={
            "kind": KeyType.TEXT,
            "state": KeyType.TEXT,
            "word": KeyType.TEXT,
            "rank": KeyType.NUMBER,
        },
        extract=keys,
        coarse=frozenset({"state"}),
        stream=stream,
    )


STREAMED = spec("streamed", True)
PLAIN = spec("plain", False)


def bodies(count: int) -> list[dict[str, Any]]:
    """Deterministic records; ids are given out of insertion order."""
    r = random.Random(7)
    return [
        {
            "kind": r.choice(["a", "a", "a", "b", "c"]),
            "state": r.choice(["on", "on", "off"]),
            "words": r.sample(["x", "y", "z", "w"], r.randint(1, 3)),
            "rank": r.choice([1, 2, 3, None]),
        }
        for _ in range(count)
    ]


@pytest.fixture
async def twins(tmp_path: Path) -> AsyncIterator[Store]:
    """Both collections with the same 300 records (ids too), some deleted or changed."""
    async with open_store(f"sqlite:///{tmp_path}/stream.db", [STREAMED, PLAIN]) as s:
        data = bodies(300)
        ids = [f"r{(i * 37) % 300:04d}" for i in range(300)]
        for c in ("streamed", "plain"):
            ops: list[WriteOp] = [Create(c, b, id=i) for i, b in zip(ids, data, strict=True)]
            await s.write(ops)
            await s.write([Delete(c, "r0005"), Delete(c, "r0100")])
            await s.write([Update(c, "r0200", {**data[3], "kind": "c", "state": "on"})])
        yield s


CASES: list[list[Predicate]] = [
    [Eq("kind", "a")],
    [In("kind", ["b"]), Eq("state", "on")],
    [Eq("kind", "a"), Eq("state", "on"), Not(Eq("word", "x"))],
    [Eq("kind", "c"), AnyOf([Eq("word", "w"), Range("rank", ge=3)])],
    [Eq("state", "off"), Eq("word", "y")],  # the word drives (state is coarse)
    [Eq("kind", "b"), Range("rank", le=1)],
    [Eq("kind", "none")],
    [In("kind", ["a", "b"]), Eq("state", "on")],  # two values: the general plan
    [AllOf("word", ["x", "y"])],  # not one value: the general plan
]


@pytest.mark.parametrize("where", CASES, ids=[repr(w)[:60] for w in CASES])
@pytest.mark.parametrize("limit", [1, 7, 50])
async def test_streamed_pages_equal_general_pages(twins: Store, where, limit) -> None:
    query = Query(where=where, limit=limit)
    streamed = await pages(twins, "streamed", query)
    assert streamed == await pages(twins, "plain", query)
    assert sum(len(p) for p in streamed) == await twins.count("streamed", where)


async def test_streams_are_taken_only_where_they_apply(twins: Store, monkeypatch) -> None:
    """One value of a text key drives: streamed, without sorting; otherwise (several
    values, a sort, a collection not streamed) the general plan."""
    taken: list[bool] = []
    streamed = sqlite_store.SQLiteStore._streamed

    def spy(self: Any, spec: CollectionSpec, query: Query) -> Any:
        found = streamed(self, spec, query)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(sqlite_store.SQLiteStore, "_streamed", spy)
    one = [Eq("kind", "a"), Eq("state", "on")]
    await twins.search("streamed", Query(where=one))
    await twins.search("streamed", Query(where=[In("kind", ["a", "b"])]))
    await twins.search("streamed", Query(where=one, sort=[Sort("rank")]))
    await twins.search("plain", Query(where=one))
    assert taken == [True, False, False, False]
    plan = await twins.explain("streamed", Query(where=one, limit=5))
    assert "USING COVERING INDEX streamed__k_s" in plan, plan
    assert "TEMP B-TREE" not in plan, plan
