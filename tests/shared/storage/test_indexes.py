"""Every search is answered from an index: the database's own plan says so."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from shared.storage import AllOf, Bounds, Eq, In, Prefix, Query, Range, Sort, Span, Store

QUERIES = {
    "eq": Query(where=[Eq("nid", "x")]),
    "in": Query(where=[In("age", [1, 2, 3])]),
    "prefix": Query(where=[Prefix("name", "zh")]),
    "range": Query(where=[Range("age", ge=18, lt=65)]),
    "instant": Query(where=[Range("seen", gt=datetime(2024, 1, 1, tzinfo=UTC))]),
    "all_of": Query(where=[AllOf("term", ["北京", "朝阳"])]),
    "span": Query(where=[Span("born", low=Bounds(ge=datetime(1990, 1, 1, tzinfo=UTC)),
                              high=Bounds(le=datetime(1991, 1, 1, tzinfo=UTC)))]),
    "and_sorted": Query(where=[Prefix("name", "li"), Range("age", gt=20)],
                        sort=[Sort("age", True)]),
}


@pytest.fixture
async def filled(store: Store) -> Store:
    people = store.collection("people")
    for i in range(30):
        await people.create({"name": f"Person {i}", "age": i, "nid": str(i), "born": "1990"})
    return store


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_sqlite_plans_search_indexes_never_scan(filled: Store, name: str) -> None:
    if filled.kind != "sqlite":
        pytest.skip("SQLite plan (the MongoDB variant is test_mongo_indexes_per_predicate)")
    plan = await filled.explain("people", QUERIES[name])
    lines = plan.splitlines()
    assert any("USING COVERING INDEX people__k_" in ln for ln in lines), plan
    assert any("USING PRIMARY KEY" in ln for ln in lines), plan
    assert not any(ln.startswith("SCAN") for ln in lines), plan


async def test_mongo_indexes_per_predicate(filled: Store, name: str = "") -> None:
    if filled.kind != "mongodb":
        pytest.skip("MongoDB only")
    from shared.storage.mongo import MongoStore

    assert isinstance(filled, MongoStore)
    indexes = await filled.coll("people").index_information()
    paths = {key for spec in indexes.values() for key, _ in spec["key"]}
    # every predicate path and every sort path of every key has its own index
    for key, kind in filled.spec("people").keys.items():
        wanted = [f"k.{key}.lo", f"k.{key}.hi"] if kind == "span" else [f"k.{key}"]
        wanted += [f"s.{key}.lo", f"s.{key}.hi"]
        assert set(wanted) <= paths, (key, sorted(paths))
    explained = json.loads(await filled.explain("people", QUERIES["eq"]))
    assert explained.get("ok") == 1.0 or "queryPlanner" in explained, explained
