"""The embedded store's walks (CollectionSpec.walk): a page sorted descending on a walked
key is read in that order and must equal, page by page and cursor by cursor, what the
general plan (every match found, then sorted) answers on the same data. So must the walks
of a collection that also carries keys (CollectionSpec.carry), which read the rarest
driving value's key rows in the walked key's order (shared/storage/sqlite_carry.py)."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime, timedelta
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
    Prefix,
    Query,
    Range,
    Sort,
    Store,
    Update,
    WriteOp,
    open_store,
    sqlite_carry,
)
from shared.storage import sqlite as sqlite_store
from shared.storage.keys import terms
from tests.shared.storage.paging import pages

START = datetime(2024, 1, 1, tzinfo=UTC)


def keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Words, a state, a rank (some records have none), a date (some share one)."""
    return {
        "term": terms(body["text"]),
        "state": body["state"],
        "rank": body.get("rank"),
        "date": datetime.fromisoformat(body["date"]) if body.get("date") else None,
    }


def spec(name: str, walk: tuple[str, ...], carry: tuple[str, ...] = ()) -> CollectionSpec:
    """The same collection, walked or not, carrying its state or not."""
    return CollectionSpec(
        name=name,
        keys={
            "term": KeyType.TEXT,
            "state": KeyType.TEXT,
            "rank": KeyType.NUMBER,
            "date": KeyType.INSTANT,
        },
        extract=keys,
        coarse=frozenset({"state"}),
        walk=walk,
        carry=carry,
    )


WALKED = spec("walked", ("date", "rank"))
CARRIED = spec("carried", ("date", "rank"), ("state",))
PLAIN = spec("plain", ())
COLLECTIONS = ("walked", "carried", "plain")
WORDS = ["alpha", "beta", "gamma", "delta", "deltoid", "数学", "函数"]


def bodies(count: int) -> list[dict[str, Any]]:
    """Deterministic records; dates repeat (ties are ordered by id) and some are missing."""
    r = random.Random(11)
    out = []
    for i in range(count):
        date = START + timedelta(hours=r.randrange(count // 3))
        out.append(
            {
                "text": " ".join(r.sample(WORDS, r.randint(1, 3))),
                "state": r.choice(["published", "published", "draft"]),
                "rank": r.choice([1, 2, 3, None]),
                "date": None if i % 17 == 0 else date.isoformat(),
            }
        )
    return out


@pytest.fixture
async def twins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Store]:
    """Both collections with the same 400 records (ids too), walk thresholds made small."""
    monkeypatch.setattr(sqlite_store, "WALK_MIN_DRIVER", 10)
    monkeypatch.setattr(sqlite_store, "WALK_BUDGET", 120)
    monkeypatch.setattr(sqlite_store, "WALK_PROBE", 30)
    async with open_store(f"sqlite:///{tmp_path}/walk.db", [WALKED, CARRIED, PLAIN]) as s:
        data = bodies(400)
        for c in COLLECTIONS:
            ops: list[WriteOp] = [Create(c, b, id=f"r{i:04d}") for i, b in enumerate(data)]
            await s.write(ops[:200])
            await s.write(ops[200:])
        yield s


CASES: list[list[Predicate]] = [
    [Eq("state", "published")],
    [AllOf("term", ["alpha"])],
    [AllOf("term", ["alpha", "beta"]), Eq("state", "published")],
    [AllOf("term", terms("数学")), Not(Eq("state", "draft"))],
    [Prefix("term", "ga"), In("rank", [1, 2])],
    [AllOf("term", ["delta"]), AnyOf([Eq("rank", 3), Eq("state", "draft")])],
    [AllOf("term", ["gamma"]), Range("date", ge=START + timedelta(hours=50))],
    [Eq("state", "draft"), AllOf("term", ["beta", "gamma", "delta"])],  # sparse: budget runs out
    [In("term", ["alpha", "数学"]), Eq("state", "draft")],
    # Prefixes one stored value starts with (walked as that value's rows), several, none.
    [Prefix("term", "gam"), Prefix("term", "alp"), Eq("state", "published")],
    [Prefix("term", "del"), Not(Eq("state", "draft"))],
    [Prefix("term", "zz")],
    [AllOf("term", ["nothing"])],
]


@pytest.mark.parametrize("where", CASES, ids=[repr(w)[:60] for w in CASES])
@pytest.mark.parametrize("key", ["date", "rank"])
@pytest.mark.parametrize("limit", [1, 7, 50])
@pytest.mark.parametrize("collection", ["walked", "carried"])
async def test_walked_pages_equal_sorted_pages(twins: Store, where, key, limit, collection) -> None:
    query = Query(where=where, sort=[Sort(key, descending=True)], limit=limit)
    walked = await pages(twins, collection, query)
    assert walked == await pages(twins, "plain", query)
    assert sum(len(p) for p in walked) == await twins.count("plain", where)


async def test_walks_are_taken_and_fall_back(twins: Store, monkeypatch) -> None:
    """The walk answers dense queries itself; a sparse one falls back to the general plan."""
    walks: list[bool] = []
    walk = sqlite_store.SQLiteStore._walk

    def spy(self: Any, spec: CollectionSpec, query: Query) -> Any:
        rows = walk(self, spec, query)
        walks.append(rows is not None)
        return rows

    monkeypatch.setattr(sqlite_store.SQLiteStore, "_walk", spy)
    sort = [Sort("date", descending=True)]
    await twins.search("walked", Query(where=[Eq("state", "published")], sort=sort, limit=5))
    await twins.search("walked", Query(where=CASES[-1], sort=sort, limit=5))
    assert walks == [True, False]


async def test_carried_walks_are_taken_where_they_apply(twins: Store, monkeypatch) -> None:
    """Sorted on the carried walked key with a text predicate to start from: walked by its
    carried rows; sorted on another key, or without a text predicate: not."""
    taken: list[bool] = []
    walk = sqlite_store.SQLiteStore._carried_walk

    def spy(self: Any, spec: CollectionSpec, query: Query) -> Any:
        rows = walk(self, spec, query)
        taken.append(rows is not None)
        return rows

    monkeypatch.setattr(sqlite_store.SQLiteStore, "_carried_walk", spy)
    by_date, by_rank = [Sort("date", descending=True)], [Sort("rank", descending=True)]
    await twins.search("carried", Query(where=CASES[-3], sort=by_date, limit=5))
    await twins.search("carried", Query(where=[Eq("state", "draft")], sort=by_date, limit=5))
    await twins.search("carried", Query(where=CASES[2], sort=by_rank, limit=5))
    await twins.search("carried", Query(where=[Range("rank", ge=2)], sort=by_date, limit=5))
    await twins.search("walked", Query(where=CASES[2], sort=by_date, limit=5))
    assert taken == [True, True, False, False, False]


async def test_a_prefix_one_value_starts_with_is_that_value(twins: Store) -> None:
    """exact_prefixes: a text Prefix that one stored value starts with becomes an Eq on it;
    one that several or none start with, or on another kind of key, stays; and it follows
    the data (a new word sharing the prefix makes it a prefix again)."""
    assert isinstance(twins, sqlite_store.SQLiteStore)
    where: list[Predicate] = [
        Prefix("term", "gam"),
        Prefix("term", "del"),
        Prefix("term", "zz"),
        Prefix("state", "pub"),
        Range("rank", ge=2),
    ]
    gamma, published = Eq("term", "gamma"), Eq("state", "published")
    narrowed = sqlite_carry.exact_prefixes(twins.db, CARRIED, where)
    assert narrowed == [gamma, *where[1:3], published, where[4]]
    await twins.write([Create("carried", {"text": "gammaray", "state": "draft", "date": None})])
    assert sqlite_carry.exact_prefixes(twins.db, CARRIED, where) == [
        *where[:3],
        published,
        where[4],
    ]


@pytest.mark.parametrize("collection", ["walked", "carried"])
async def test_walks_see_changes(twins: Store, collection: str) -> None:
    query = Query(where=[AllOf("term", ["alpha"])], sort=[Sort("date", descending=True)])
    first = (await twins.search(collection, query)).items
    for c in (collection, "plain"):
        await twins.write([Delete(c, r.id) for r in first[:3]])
        await twins.write(
            [Create(c, {**first[5].body, "date": "2030-01-01T00:00:00+00:00"}, id="new")]
        )
        await twins.write([Update(c, first[6].id, {**first[6].body, "date": None})])
    assert await pages(twins, collection, query) == await pages(twins, "plain", query)
    assert (await twins.search(collection, query)).items[0].id == "new"
