"""Storage contract: `tally`, the counts of a faceted search (matches, and per value of
each asked key how many matches hold it), on both adapters."""

from __future__ import annotations

import asyncio
import dataclasses
import gc
import logging
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
    InvalidQuery,
    KeyType,
    Not,
    Predicate,
    Prefix,
    Query,
    Range,
    Store,
    Tally,
    Update,
    WriteOp,
    open_store,
    sqlite_carry,
)
from shared.storage import sqlite as sqlite_store
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
    assert await people.tally([Prefix("name", "zh")], []) == Tally(3, {})


async def test_follows_updates_and_deletes(people) -> None:
    await people.update("p0", {**PEOPLE[0], "tags": [["s", "green"]]})
    await people.delete("p1")
    t = await people.tally([], ["tag"])
    assert t.total == 4
    assert tags(t) == {"blue": 1, "green": 2, "red": 1}


async def test_tallies_are_one_tally_per_ask(store: Store, people) -> None:
    """Several tallies of one set of matches: each as the tally of the matches and its own
    predicates (a faceted search's total, and a chosen facet's counts without its filter)."""
    for where in ([AllOf("term", terms("zhang"))], [], [Range("age", ge=30)]):
        asks: list[tuple[list[Predicate], list[str]]] = [
            ([], ["tag", "nid"]),
            ([Eq("tag", "s|red")], ["nid"]),
            ([Not(Eq("nid", "A1")), In("tag", ["s|blue", "s|green"])], ["tag"]),
            ([Eq("nid", "nobody")], []),
        ]
        expected = [await store.tally("people", [*where, *extra], keys) for extra, keys in asks]
        assert await store.tallies("people", where, asks) == expected
        assert await store.tallies("people", where, []) == []


async def test_bad_tallies_asks_are_refused(store: Store, people) -> None:
    with pytest.raises(InvalidQuery):
        await store.tallies("people", [], [([], ["age"])])
    with pytest.raises(InvalidQuery):
        await store.tallies("people", [], [([Eq("nope", 1)], ["tag"])])


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


# --- carried values (CollectionSpec.carry): the embedded store's fast tallies -------------


def item_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Index keys of a test item: words, a colour or two, a size, a state, a number."""
    return {
        "term": terms(body["text"]),
        "color": body.get("colors"),
        "size": body.get("size"),
        "state": body["state"],
        "n": body["n"],
    }


def item_spec(name: str, carry: tuple[str, ...]) -> CollectionSpec:
    """Items, with or without carried keys (the same data either way)."""
    return CollectionSpec(
        name=name,
        keys={
            "term": KeyType.TEXT,
            "color": KeyType.TEXT,
            "size": KeyType.TEXT,
            "state": KeyType.TEXT,
            "n": KeyType.NUMBER,
        },
        extract=item_keys,
        coarse=frozenset({"state", "size"}),
        carry=carry,
    )


CARRIED = item_spec("carried", ("color", "size", "state"))
PLAIN = item_spec("plain", ())
WORDS = ["apple", "apricot", "banana", "cherry", "数学", "数字", "函数"]


def items(count: int) -> list[dict[str, Any]]:
    """Deterministic items: some words, colours (0-2), a size (or none), a state."""
    r = random.Random(7)
    out = []
    for i in range(count):
        colors = r.sample(["red", "green", "blue"], r.choice([0, 1, 1, 2]))
        size = r.choice(["s", "m", "l", None])
        out.append(
            {
                "text": " ".join(r.sample(WORDS, r.randint(1, 3))),
                "colors": colors,
                "size": size,
                "state": r.choice(["published", "published", "draft"]),
                "n": i % 7,
            }
        )
    return out


@pytest.fixture
async def twins(tmp_path: Path) -> AsyncIterator[Store]:
    """A SQLite store holding the same items in a carrying and a plain collection."""
    async with open_store(f"sqlite:///{tmp_path}/twins.db", [CARRIED, PLAIN]) as s:
        for chunk in range(0, 300, 100):
            batch = items(300)[chunk : chunk + 100]
            ops: list[WriteOp] = [Create(c, body) for c in ("carried", "plain") for body in batch]
            await s.write(ops)
        yield s


TWIN_CASES: list[list[Predicate]] = [
    [Eq("state", "published")],
    [AllOf("term", ["apple"])],
    [AllOf("term", ["apple", "banana"]), Eq("state", "published")],
    [AllOf("term", terms("数学")), Eq("color", "red")],
    [Prefix("term", "ap"), Eq("state", "published")],
    [Prefix("term", "ap"), In("size", ["s", "m"]), Not(Eq("color", "blue"))],
    [In("term", ["cherry", "函数"]), Eq("state", "draft")],
    [AllOf("term", ["banana"]), Range("n", ge=3)],
    [AllOf("term", ["banana"]), AnyOf([Eq("color", "red"), Eq("n", 2)])],
    [Eq("size", "l"), AnyOf([Eq("state", "draft"), Eq("color", "green")])],
    [AllOf("term", ["nothing"])],
    # Prefixes one stored value starts with (counted as that value's rows), several, none.
    [Prefix("term", "app"), Eq("state", "published")],
    [Prefix("term", "ban"), Prefix("term", "che"), Not(Eq("color", "red"))],
    [Prefix("term", "数"), In("size", ["s", "l"])],
    [Prefix("term", "zz")],
]


@pytest.mark.parametrize("where", TWIN_CASES, ids=[repr(w)[:60] for w in TWIN_CASES])
async def test_carried_tallies_agree_with_the_general_way(twins: Store, where) -> None:
    keys = ["color", "size", "state"]
    fast = await twins.tally("carried", where, keys)
    slow = await twins.tally("plain", where, keys)
    assert fast == slow
    assert fast.total == await twins.count("carried", where)


@pytest.mark.parametrize("where", TWIN_CASES, ids=[repr(w)[:60] for w in TWIN_CASES])
async def test_carried_tallies_agree_where_every_value_is_common(
    twins: Store, where, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where even the rarest driving value is common (here: every value), the other text
    values are tested by membership in their ids, gathered once; the counts are the same."""
    monkeypatch.setattr(sqlite_carry, "RARITY_CAP", 1)
    gathered: list[str] = []
    member = sqlite_store._Plan.member

    def spy(self: Any, *args: Any) -> Any:
        found = member(self, *args)
        gathered.append(found[0])
        return found

    monkeypatch.setattr(sqlite_store._Plan, "member", spy)
    keys = ["color", "size", "state"]
    assert await twins.tally("carried", where, keys) == await twins.tally("plain", where, keys)
    text_values = sum(
        len(p.values) if isinstance(p, AllOf) else 1
        for p in where
        if isinstance(p, AllOf | Prefix) and p.key == "term"
    )
    assert len(gathered) == (text_values - 1 if text_values > 1 else 0)


SEVERAL_CASES = [*TWIN_CASES, [Range("n", ge=3)], [Not(Eq("state", "draft"))]]


@pytest.mark.parametrize("where", SEVERAL_CASES, ids=[repr(w)[:60] for w in SEVERAL_CASES])
async def test_carried_tallies_of_one_range_agree(
    twins: Store, where, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Several tallies from one set of groups give what one tally per ask gives on a plain
    collection. They are taken where `where` has a text predicate to start from, or is on
    carried keys alone (the maintained counts), not for a range or negations alone."""
    taken: list[bool] = []
    several = sqlite_store.SQLiteStore._carried_tallies

    def spy(self: Any, *args: Any) -> Any:
        found = several(self, *args)
        taken.append(found is not None)
        return found

    monkeypatch.setattr(sqlite_store.SQLiteStore, "_carried_tallies", spy)
    asks: list[tuple[list[Predicate], list[str]]] = [
        ([Eq("color", "red"), In("size", ["s", "l"])], ["state"]),
        ([In("size", ["s", "l"])], ["color"]),
        ([Eq("color", "red")], ["size"]),
        ([Not(Eq("state", "draft"))], ["color", "size"]),
        ([], []),
    ]
    # Asks with predicates of their own only (then only the groups that some ask counts
    # are formed), then one more without (the others remembered).
    for chosen in (asks[:4], asks):
        fast = await twins.tallies("carried", where, chosen)
        assert fast == await twins.tallies("plain", where, chosen)
        for (extra, keys), tally in zip(chosen, fast, strict=True):
            assert tally == await twins.tally("plain", [*where, *extra], keys)
        assert await twins.tallies("carried", where, chosen) == fast  # remembered
    assert taken[0] == (where not in SEVERAL_CASES[-2:])


async def test_carried_tallies_follow_changes(twins: Store) -> None:
    browse: list[Predicate] = [Eq("size", "m")]
    before = await twins.tally("carried", browse, ["state"])  # remembered (maintained counts)
    assert before == await twins.tally("plain", browse, ["state"])
    page = await twins.search("carried", Query(where=[Eq("state", "draft")], limit=1000))
    for r in page.items[:20]:
        await twins.write([Update("carried", r.id, {**r.body, "state": "published"})])
    for r in page.items[20:30]:
        await twins.write([Delete("carried", r.id)])
    assert await twins.tally("carried", browse, ["state"]) != before
    for where in ([Prefix("term", "a")], [Eq("size", "m")], [In("state", ["draft", "x"])]):
        fast = await twins.tally("carried", where, ["state", "color"])
        assert fast.total == await twins.count("carried", where)
        for state, n in fast.counts["state"].items():
            assert n == await twins.count("carried", [*where, Eq("state", state)])
        for color, n in fast.counts["color"].items():
            assert n == await twins.count("carried", [*where, Eq("color", color)])


async def test_past_63_carried_values_tallies_take_the_general_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    async with open_store(f"sqlite:///{tmp_path}/many.db", [CARRIED]) as s:
        many = [{**body, "size": f"size-{i}"} for i, body in enumerate(items(70))]
        with caplog.at_level(logging.WARNING):
            for body in many:
                await s.write([Create("carried", body)])
        assert "more than 63 carried values" in caplog.text
        for where in ([Eq("state", "published")], [Prefix("term", "ap")]):
            t = await s.tally("carried", where, ["size", "color"])
            assert t.total == await s.count("carried", where)
            assert sum(t.counts["size"].values()) == t.total  # one size each


async def test_a_store_filled_before_carrying_tallies_the_general_way(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/old.db"
    before = item_spec("items", ())
    async with open_store(url, [before]) as s:
        await s.write([Create("items", body) for body in items(50)])
    after = item_spec("items", ("color", "size", "state"))
    with caplog.at_level(logging.WARNING):
        async with open_store(url, [after]) as s:
            t = await s.tally("items", [Prefix("term", "ap")], ["color"])
            assert t.total == await s.count("items", [Prefix("term", "ap")])
            assert sum(t.counts["color"].values()) >= 1
    assert "tallies take the general way" in caplog.text


async def test_a_store_filled_before_carrying_builds_no_walk_index(tmp_path: Path) -> None:
    """Its key rows carry no walked values: the index that walks them is not built (on a
    large store, minutes at open for nothing)."""
    url = f"sqlite:///{tmp_path}/old.db"
    async with open_store(url, [item_spec("items", ())]) as s:
        await s.write([Create("items", body) for body in items(20)])
    walking = dataclasses.replace(item_spec("items", ("color",)), walk=("n",))
    async with open_store(url, [walking]) as s:
        assert isinstance(s, sqlite_store.SQLiteStore)
        indexes = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master")}
        assert "items__k_sd" not in indexes
        assert await s.count("items", [Prefix("term", "ap")]) >= 1
    async with open_store(f"sqlite:///{tmp_path}/new.db", [walking]) as s:
        assert isinstance(s, sqlite_store.SQLiteStore)
        indexes = {r[0] for r in s.db.execute("SELECT name FROM sqlite_master")}
        assert "items__k_sd" in indexes


def test_remembered_tallies_are_copies_and_left_alone_by_the_collector() -> None:
    """The embedded store's memo of tallies: each ask gets its own Tally (a caller's change
    stays its own), the least recently used goes beyond the size, and what is kept is plain
    tuples the garbage collector stops tracking."""
    memo = sqlite_carry.Memo(size=2)
    tally = Tally(3, {"color": {"red": 2, "blue": 1}, "size": {}})
    memo.put(("a",), tally)
    got = memo.get(("a",))
    assert got == tally
    assert got is not tally
    assert got is not None
    colors = got.counts["color"]
    assert isinstance(colors, dict)
    colors["red"] = 99
    assert memo.get(("a",)) == tally
    memo.put(("b",), Tally(0, {}))
    memo.get(("a",))  # used: now the latest
    memo.put(("c",), Tally(1, {}))
    assert memo.get(("b",)) is None
    assert memo.get(("a",)) == tally
    for _ in range(5):  # a tuple is let go once what it holds is: a pass per level
        gc.collect()
    assert not any(gc.is_tracked(v) or gc.is_tracked(k) for k, v in memo.found.items())
