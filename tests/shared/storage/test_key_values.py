"""Storage contract: `key_values`, the index key values of a search's matches without
their bodies, on both adapters (the embedded store reads them from its index, the others
from the bodies): the same records as a search, the same values the extractor gave."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.storage import (
    AnyOf,
    Create,
    Delete,
    Eq,
    In,
    InvalidQuery,
    Not,
    Predicate,
    Query,
    Range,
    Store,
    Update,
)
from shared.storage.schema import extract_keys

SEEN = datetime(2026, 3, 1, 8, 30, tzinfo=UTC)


def person(i: int) -> dict[str, object]:
    """Person i: some without an age, several tags and scores, a `seen` instant."""
    body: dict[str, object] = {
        "name": f"Person {i} {'Zhang' if i % 3 == 0 else 'Li'}",
        "nid": f"N{i:03d}",
        "tags": [["s", f"t{i % 4}"], ["s", "all"]],
        "scores": [i, i + 0.5],
        "seen": (SEEN + timedelta(minutes=i)).isoformat(),
    }
    if i % 5:
        body["age"] = 20 + i
    return body


@pytest.fixture
async def people(store: Store) -> Store:
    """30 people, two of them deleted and one changed."""
    await store.write([Create("people", person(i), id=f"p{i:03d}") for i in range(30)])
    await store.write([Delete("people", "p004"), Delete("people", "p011")])
    changed = {**person(7), "age": 99, "tags": [["s", "changed"]]}
    await store.write([Update("people", "p007", changed)])
    return store


CASES: list[list[Predicate]] = [
    [],
    [Eq("tag", "s|all")],
    [Range("age", ge=25, lt=40)],
    [In("tag", ["s|t1", "s|changed"])],
    [Eq("tag", "s|all"), Not(Eq("tag", "s|t2"))],
    [AnyOf([Eq("tag", "s|t3"), Range("age", gt=45)])],
]


@pytest.mark.parametrize("where", CASES, ids=[repr(w)[:50] for w in CASES])
async def test_key_values_are_the_matches_and_their_keys(people: Store, where) -> None:
    keys = ["nid", "age", "score", "tag", "seen"]
    found = await people.key_values("people", where, keys, 1000)
    page = await people.search("people", Query(where=where, limit=1000))
    assert list(found.values) == [r.id for r in page.items]
    assert not found.more
    spec = people.spec("people")
    for record in page.items:
        expected = extract_keys(spec, record.body)
        got = found.values[record.id]
        assert set(got) == set(keys)
        for key in keys:
            assert sorted(got[key]) == sorted(expected.get(key, [])), (record.id, key)


async def test_key_values_limit_keeps_id_order(people: Store) -> None:
    where: list[Predicate] = [Eq("tag", "s|all")]
    every = await people.key_values("people", where, ["age"], 1000)
    first = await people.key_values("people", where, ["age"], 5)
    assert list(first.values) == list(every.values)[:5]
    assert first.more
    exact = await people.key_values("people", where, ["age"], len(every.values))
    assert not exact.more
    assert list(exact.values) == list(every.values)
    none = await people.key_values("people", where, ["age"], 0)
    assert none.values == {}
    assert none.more


async def test_key_values_without_a_value_and_no_match(people: Store) -> None:
    found = await people.key_values("people", [Eq("nid", "N005")], ["age", "nid"], 10)
    assert found.values == {"p005": {"age": [], "nid": ["N005"]}}
    assert (await people.key_values("people", [Eq("nid", "none")], ["age"], 10)).values == {}


@pytest.mark.parametrize(
    ("keys", "limit"),
    [([], 10), (["age", "age"], 10), (["born"], 10), (["nope"], 10), (["age"], 10_001)],
)
async def test_key_values_refuses_bad_calls(people: Store, keys, limit) -> None:
    with pytest.raises(InvalidQuery):
        await people.key_values("people", [], keys, limit)
