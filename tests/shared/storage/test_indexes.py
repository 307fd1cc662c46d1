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
    "span": Query(
        where=[
            Span(
                "born",
                low=Bounds(ge=datetime(1990, 1, 1, tzinfo=UTC)),
                high=Bounds(le=datetime(1991, 1, 1, tzinfo=UTC)),
            )
        ]
    ),
    "and_sorted": Query(
        where=[Prefix("name", "li"), Range("age", gt=20)], sort=[Sort("age", True)]
    ),
}


@pytest.fixture
async def filled(store: Store) -> Store:
    people = store.collection("people")
    for i in range(30):
        await people.create({"name": f"Person {i}", "age": i, "nid": str(i), "born": "1990"})
    return store


def predicate_paths(store: Store, query: Query) -> set[str]:
    """The document paths a MongoDB query filters or sorts on."""
    kinds = store.spec("people").keys
    paths = set()
    for pred in query.where:
        if isinstance(pred, Span):
            paths |= {f"k.{pred.key}.lo", f"k.{pred.key}.hi"}
        else:
            paths.add(f"k.{pred.key}")
        assert pred.key in kinds
    for s in query.sort:
        paths.add(f"s.{s.key}.{'hi' if s.descending else 'lo'}")
    return paths


@pytest.mark.parametrize("name", sorted(QUERIES))
async def test_every_search_is_served_by_an_index(filled: Store, name: str) -> None:
    query = QUERIES[name]
    plan = await filled.explain("people", query)
    if filled.kind == "sqlite":
        lines = plan.splitlines()
        assert any("USING COVERING INDEX people__k_" in ln for ln in lines), plan
        assert any("USING PRIMARY KEY" in ln for ln in lines), plan
        # Only intermediate results (c: candidate ids, p: the page) may be scanned; every
        # stored table (documents d, keys k*, sort values s*) is searched through an index.
        scanned = {ln.split()[1] for ln in lines if ln.startswith("SCAN ")}
        assert scanned <= {"c", "p"}, plan
        return
    from shared.storage.mongo import MongoStore

    assert isinstance(filled, MongoStore)
    explained = json.loads(plan)
    if "winningPlan" in json.dumps(explained.get("queryPlanner", {})):
        # A real MongoDB server: its planner must pick an index scan.
        assert "IXSCAN" in plan, plan
        assert "COLLSCAN" not in plan, plan
        return
    # FerretDB v1 on SQLite reports `filterPushdown: false`: it evaluates filters itself and
    # ignores secondary indexes, so the contract there is a documented index per predicate
    # path (used as soon as the deployment is MongoDB). See docs/storage.md.
    assert explained.get("filterPushdown") is False, plan
    indexes = await filled.coll("people").index_information()
    indexed = {key for spec in indexes.values() for key, _ in spec["key"]}
    assert predicate_paths(filled, query) <= indexed, sorted(indexed)
