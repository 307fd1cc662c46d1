"""Storage contract: `tally`, the counts of a faceted search (matches, and per value of
each asked key how many matches hold it), on both adapters."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.storage import (
    AllOf,
    AnyOf,
    Create,
    Eq,
    In,
    InvalidQuery,
    Not,
    Predicate,
    Prefix,
    Range,
    Store,
    Tally,
    Update,
)
from shared.storage.keys import terms

# tag: multi-valued text; nid: single-valued text (unique); term: words of the name.
PEOPLE: list[dict[str, Any]] = [
    {"name": "Zhang Wei", "nid": "A1", "age": 30, "tags": [["s", "red"], ["s", "blue"]]},
    {"name": "Zhang Li", "nid": "A2", "age": 41, "tags": [["s", "red"]]},
    {"name": "Li Na", "nid": "B1", "age": 25, "tags": [["s", "blue"]]},
    {"name": "张伟", "age": 30, "tags": []},
    {"name": "Wei Zhang", "nid": "B2", "age": 52, "tags": [["s", "red"], ["s", "green"]]},
]


@pytest.fixture
async def people(store: Store):
    coll = store.collection("people")
    for i, p in enumerate(PEOPLE):
        await coll.create(p, id=f"p{i}")
    return coll


def tags(tally: Tally) -> dict[str, int]:
    """The tag counts of a tally by code: a tag is stored as `s|code`, `code` and `s|`
    (shared.storage.keys.token); the first form is enough."""
    return {v[2:]: n for v, n in tally.counts["tag"].items() if v.startswith("s|") and v[2:]}


async def test_counts_per_value_of_multi_and_single_valued_keys(people) -> None:
    t = await people.tally([], ["tag", "nid"])
    assert t.total == 5
    assert tags(t) == {"red": 3, "blue": 2, "green": 1}
    # Records without the key are counted in the total only.
    assert t.counts["nid"] == {"A1": 1, "A2": 1, "B1": 1, "B2": 1}


async def test_counts_only_matches(people) -> None:
    t = await people.tally([AllOf("term", terms("zhang"))], ["tag", "nid"])
    assert t.total == 3
    assert tags(t) == {"red": 3, "blue": 1, "green": 1}
    assert t.counts["nid"] == {"A1": 1, "A2": 1, "B2": 1}
    t = await people.tally([Eq("age", 30), Prefix("name", "zh")], ["nid"])
    assert (t.total, t.counts) == (1, {"nid": {"A1": 1}})


async def test_agrees_with_count_for_every_kind_of_predicate(people) -> None:
    cases: list[list[Predicate]] = [
        [In("age", [25, 30])],
        [Range("age", gt=26)],
        [Not(Eq("nid", "A1"))],
        [AnyOf([Eq("nid", "A1"), Eq("age", 25)])],
        [AllOf("term", ["wei"]), Not(In("age", [52]))],
        [Eq("nid", "nobody")],
    ]
    for where in cases:
        t = await people.tally(where, ["tag", "nid"])
        assert t.total == await people.count(where), where
        for value, n in t.counts["nid"].items():
            assert n == await people.count([*where, Eq("nid", value)]), (where, value)
        for value, n in t.counts["tag"].items():
            assert n == await people.count([*where, Eq("tag", value)]), (where, value)


async def test_no_match_gives_zero_and_no_values(people) -> None:
    t = await people.tally([Eq("nid", "nobody")], ["tag"])
    assert t == Tally(0, {"tag": {}})


async def test_without_keys_a_tally_is_a_count(people) -> None:
    assert await people.tally([Prefix("name", "zh")], []) == Tally(2, {})


async def test_follows_updates_and_deletes(people) -> None:
    await people.update("p0", {**PEOPLE[0], "tags": [["s", "green"]]})
    await people.delete("p1")
    t = await people.tally([], ["tag"])
    assert t.total == 4
    assert tags(t) == {"blue": 1, "green": 2, "red": 1}


@pytest.mark.parametrize(
    "keys",
    [["age"], ["nope"], ["tag", "tag"], "tag", [f"k{i}" for i in range(17)]],
    ids=["number key", "unknown", "twice", "string", "too many"],
)
async def test_bad_tallies_are_refused(people, keys) -> None:
    with pytest.raises(InvalidQuery):
        await people.tally([], keys)


async def test_bad_predicates_are_refused(people) -> None:
    with pytest.raises(InvalidQuery):
        await people.tally([Eq("nope", 1)], ["tag"])


async def test_batches_are_never_half_counted(store: Store) -> None:
    """A writer moves 10 records from one tag to another in batches; tallies taken at the
    same time see all 10 under a single tag."""
    ids = [f"g{i}" for i in range(10)]
    body = {"name": "x", "tags": [["s", "t0"]]}
    await store.write([Create("people", body, id=i) for i in ids])
    stop = asyncio.Event()
    seen: list[dict[str, int]] = []

    async def writer() -> None:
        for gen in range(1, 12):
            tagged = {"name": "x", "tags": [["s", f"t{gen}"]]}
            await store.write([Update("people", i, tagged) for i in ids])
            await asyncio.sleep(0)
        stop.set()

    async def reader() -> None:
        while not stop.is_set():
            t = await store.tally("people", [Prefix("name", "x")], ["tag"])
            assert t.total == 10
            seen.append(tags(t))
            await asyncio.sleep(0)

    await asyncio.gather(writer(), reader(), reader())
    assert seen, "the readers never ran"
    assert all(len(s) == 1 and set(s.values()) == {10} for s in seen), [
        s for s in seen if len(s) != 1 or set(s.values()) != {10}
    ]
