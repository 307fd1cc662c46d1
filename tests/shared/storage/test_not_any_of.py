"""Storage contract: negation (`Not`) and alternatives (`AnyOf`), on both adapters.

The multi-valued span key `period` exercises the path where the MongoDB adapter sends a
superset filter and re-checks in Python (FerretDB v1 cannot correlate two bounds on one
array element): a Not or an AnyOf around such a predicate must neither drop true matches
nor keep false ones.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.storage import (
    AllOf,
    AnyOf,
    Bounds,
    Collection,
    Eq,
    In,
    InvalidQuery,
    Not,
    Predicate,
    Prefix,
    Query,
    Range,
    Sort,
    Span,
    Store,
)
from shared.storage.keys import date_span, terms

PEOPLE: list[dict[str, Any]] = [
    {  # q0: two periods, January and June 2020; scores 3 and 9
        "name": "Zhang Wei",
        "age": 30,
        "born": "1990-05-01",
        "scores": [3, 9],
        "tags": [["http://loinc.org", "1234-5"]],
        "periods": ["2020-01", "2020-06"],
    },
    {  # q1: one period, March 2020
        "name": "Zhāng Li",
        "age": 41,
        "born": "1983",
        "scores": [5],
        "tags": [["http://loinc.org", "999-1"], [None, "local"]],
        "periods": ["2020-03"],
    },
    {"name": "Li Na", "age": 25, "born": "1999-12", "periods": ["2019"]},  # q2
    {"name": "张伟", "age": 30, "born": "1990-05-01T10:30:00+08:00", "scores": [7]},  # q3
    {"name": "Wang Fang"},  # q4: hardly any keys at all
]
ALL = ["q0", "q1", "q2", "q3", "q4"]


def span(text: str) -> Span:
    """FHIR `eq` on a date: the stored span lies within the searched one."""
    lo, hi = date_span(text)
    return Span("period", low=Bounds(ge=lo), high=Bounds(le=hi))


# March to May 2020: q1's March lies within it. q0's periods only meet it one bound each
# (June starts after March 1, January ends before June 1): a per-bound superset holds q0.
SPRING = Span(
    "period",
    low=Bounds(ge=datetime(2020, 3, 1, tzinfo=UTC)),
    high=Bounds(le=datetime(2020, 6, 1, tzinfo=UTC)),
)


@pytest.fixture
async def people(store: Store) -> Collection:
    coll = store.collection("people")
    for i, p in enumerate(PEOPLE):
        await coll.create(p, id=f"q{i}")
    return coll


async def ids_of(coll: Collection, *where: Predicate, **kw: Any) -> list[str]:
    page = await coll.search(Query(where=list(where), limit=100, **kw))
    return [r.id for r in page.items]


async def agree(coll: Collection, *where: Predicate) -> list[str]:
    """The matching ids, after checking that count() and the page total say the same."""
    page = await coll.search(Query(where=list(where), limit=100, count=True))
    ids = [r.id for r in page.items]
    assert page.total == len(ids)
    assert await coll.count(list(where)) == len(ids)
    return ids


# --- Not -----------------------------------------------------------------------------------


async def test_not_eq_in_prefix(people: Collection) -> None:
    assert await agree(people, Not(Eq("age", 30))) == ["q1", "q2", "q4"]
    assert await agree(people, Not(In("age", [25, 41, 99]))) == ["q0", "q3", "q4"]
    assert await agree(people, Not(In("tag", ["1234-5", "|local"]))) == ["q2", "q3", "q4"]
    assert await agree(people, Not(Prefix("name", "zh"))) == ["q2", "q3", "q4"]
    assert await agree(people, Not(Prefix("name", "zz"))) == ALL
    assert await agree(people, Not(AllOf("term", terms("zhang wei")))) == [
        "q1",
        "q2",
        "q3",
        "q4",
    ]


async def test_records_without_the_key_match_not(people: Collection) -> None:
    # q4 has no age, tag, born, score or period: it matches every Not.
    assert "q4" in await agree(people, Not(Eq("age", 30)))
    assert await agree(people, Not(Eq("tag", "http://loinc.org|"))) == ["q2", "q3", "q4"]
    assert await agree(people, Not(Range("score", ge=0))) == ["q2", "q4"]
    assert await agree(people, Not(Range("seen", ge=datetime(2000, 1, 1, tzinfo=UTC)))) == ALL


async def test_not_span_is_fhir_ne(people: Collection) -> None:
    lo, hi = date_span("1990-05-01")
    ne = Not(Span("born", low=Bounds(ge=lo), high=Bounds(le=hi)))
    assert await agree(people, ne) == ["q1", "q2", "q4"]
    # one bound: not born after the end of 1989
    _, end_1989 = date_span("1989")
    assert await agree(people, Not(Span("born", low=Bounds(ge=end_1989)))) == ["q1", "q4"]


async def test_not_of_a_two_sided_predicate_on_multi_valued_keys(people: Collection) -> None:
    # q0 (scores 3 and 9) has no single score in [4, 8]: it matches the Not, although each
    # bound alone holds for one of its scores.
    assert await agree(people, Range("score", ge=4, le=8)) == ["q1", "q3"]
    assert await agree(people, Not(Range("score", ge=4, le=8))) == ["q0", "q2", "q4"]
    # The same with spans: neither of q0's periods lies within spring 2020.
    assert await agree(people, SPRING) == ["q1"]
    assert await agree(people, Not(SPRING)) == ["q0", "q2", "q3", "q4"]
    assert await agree(people, Not(span("2020-06"))) == ["q1", "q2", "q3", "q4"]


async def test_not_combines_with_positive_predicates(people: Collection) -> None:
    assert await agree(people, Prefix("name", "zh"), Not(Eq("age", 30))) == ["q1"]
    assert await agree(people, Not(Eq("age", 30)), Prefix("name", "zh")) == ["q1"]
    assert await agree(people, Not(Eq("age", 30)), Not(Prefix("name", "li"))) == ["q4"]
    assert await agree(people, Range("age", ge=25), Not(SPRING), Not(Eq("age", 25))) == [
        "q0",
        "q3",
    ]
    assert await agree(people, Eq("age", 30), Not(Eq("age", 30))) == []


async def test_deleted_records_never_match_not(people: Collection) -> None:
    await people.delete("q4")
    await people.delete("q2")
    assert await agree(people, Not(Eq("age", 30))) == ["q1"]
    assert await agree(people, Not(SPRING)) == ["q0", "q3"]
    assert await agree(people, AnyOf([Not(Eq("age", 30)), Eq("age", 25)])) == ["q1"]


# --- AnyOf ---------------------------------------------------------------------------------


async def test_any_of_prefixes(people: Collection) -> None:
    assert await agree(people, AnyOf([Prefix("name", "wa"), Prefix("name", "na")])) == [
        "q2",
        "q4",
    ]
    # overlapping alternatives: each record once
    assert await agree(people, AnyOf([Prefix("name", "zh"), Prefix("name", "zhang")])) == [
        "q0",
        "q1",
    ]
    assert await agree(people, AnyOf([Prefix("name", "zz")])) == []
    assert await agree(people, AnyOf([Prefix("name", "li")])) == ["q1", "q2"]


async def test_any_of_mixing_keys(people: Collection) -> None:
    got = await agree(people, AnyOf([Eq("age", 25), Eq("tag", "|local"), Prefix("name", "张")]))
    assert got == ["q1", "q2", "q3"]
    got = await agree(people, AnyOf([Range("age", gt=35), AllOf("term", terms("wang fang"))]))
    assert got == ["q1", "q4"]
    # with other predicates: the AnyOf drives, or is checked per candidate
    assert await agree(people, AnyOf([Eq("age", 25), Eq("age", 41)]), Prefix("name", "li")) == [
        "q1",
        "q2",
    ]
    assert await agree(people, Eq("age", 30), AnyOf([Prefix("name", "zh"), Eq("age", 41)])) == [
        "q0"
    ]
    two = [AnyOf([Eq("age", 25), Eq("age", 30)]), AnyOf([Prefix("name", "li"), Eq("score", 7)])]
    assert await agree(people, *two) == ["q2", "q3"]


async def test_any_of_with_not_members(people: Collection) -> None:
    assert await agree(people, AnyOf([Eq("age", 25), Not(Prefix("name", "zh"))])) == [
        "q2",
        "q3",
        "q4",
    ]
    assert await agree(people, AnyOf([Not(Eq("age", 30)), Not(Eq("age", 41))])) == ALL
    assert await agree(people, Prefix("name", "zh"), AnyOf([Not(Eq("age", 30))])) == ["q1"]
    assert await agree(people, AnyOf([Eq("age", 30), Not(SPRING)]), Not(Eq("age", 30))) == [
        "q2",
        "q4",
    ]


async def test_any_of_spans_on_multi_valued_keys(people: Collection) -> None:
    # q0 holds only a per-bound match of SPRING: never an answer through it.
    assert await agree(people, AnyOf([SPRING, Eq("age", 25)])) == ["q1", "q2"]
    assert await agree(people, AnyOf([SPRING, span("2019")])) == ["q1", "q2"]
    # ...but a true match of another alternative (June 2020)
    assert await agree(people, AnyOf([SPRING, span("2020-06")])) == ["q0", "q1"]
    assert await agree(people, AnyOf([span("2020-01"), span("2020-06")])) == ["q0"]
    # FHIR OR over dates combined with AND
    assert await agree(people, AnyOf([SPRING, span("2020-06")]), Range("age", lt=35)) == ["q0"]
    assert await agree(people, AnyOf([SPRING, Range("score", ge=4, le=8)])) == ["q1", "q3"]


# --- sort, paging, counting ----------------------------------------------------------------

QUERIES: dict[str, list[Predicate]] = {
    "not": [Not(Eq("age", 30))],
    "not_span": [Not(SPRING)],
    "not_range_multi": [Not(Range("score", ge=4, le=8))],
    "any_prefixes": [AnyOf([Prefix("name", "zh"), Prefix("name", "li"), Prefix("name", "wa")])],
    "any_spans": [AnyOf([SPRING, span("2020-06"), span("2019")])],
    "any_with_not": [AnyOf([Eq("age", 25), Not(Prefix("name", "zh"))])],
    "mixed": [Not(Eq("age", 41)), AnyOf([Range("age", ge=25), Prefix("name", "wa")])],
}


async def add_crowd(coll: Collection) -> None:
    """Twenty more people, half of them per-bound (false) SPRING matches with two periods."""
    for i in range(20):
        periods = ["2020-01", "2020-06"] if i % 2 else ["2020-04"]
        body = {"name": f"Li Crowd{i}", "age": 20 + i, "periods": periods}
        if i % 3 == 0:
            body["scores"] = [1, 10]
        await coll.create(body, id=f"c{i:02}")


@pytest.mark.parametrize("name", sorted(QUERIES))
@pytest.mark.parametrize("sort", [[], [Sort("age")], [Sort("age", True), Sort("period")]])
async def test_paging_and_sorting(people: Collection, name: str, sort: list[Sort]) -> None:
    await add_crowd(people)
    where = QUERIES[name]
    everything = await people.search(Query(where=where, sort=sort, limit=1000, count=True))
    expected = [r.id for r in everything.items]
    assert everything.total == len(expected) == await people.count(where)
    assert everything.next_cursor is None
    # the order is the sort's
    everyone = await people.search(Query(sort=sort, limit=1000))
    order = [r.id for r in everyone.items]
    assert expected == [i for i in order if i in set(expected)]
    for limit in (1, 3):
        seen: list[str] = []
        cursor = None
        for _ in range(40):
            page = await people.search(Query(where=where, sort=sort, limit=limit, cursor=cursor))
            assert len(page.items) <= limit
            seen += [r.id for r in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
        assert seen == expected


async def test_expected_answers_with_the_crowd(people: Collection) -> None:
    await add_crowd(people)
    even = [f"c{i:02}" for i in range(0, 20, 2)]
    odd = [f"c{i:02}" for i in range(1, 20, 2)]
    assert await agree(people, SPRING) == [*even, "q1"]
    assert await agree(people, Not(SPRING)) == [*odd, "q0", "q2", "q3", "q4"]
    assert await agree(people, AnyOf([SPRING, span("2019")])) == [*even, "q1", "q2"]
    # every crowd member: no score, or scores 1 and 10 (per-bound matches of [4, 8])
    crowd = sorted(even + odd)
    assert await agree(people, Not(Range("score", ge=4, le=8))) == [*crowd, "q0", "q2", "q4"]
    assert await agree(people, AnyOf([Range("score", ge=4, le=8), SPRING])) == [*even, "q1", "q3"]


# --- validation ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "pred",
    [
        Not(Eq("nope", 1)),  # unknown key inside
        Not(Eq("age", "30")),  # wrong type inside
        Not(Prefix("age", "3")),  # predicate not valid for the key type
        Not(Eq("born", datetime(2024, 1, 1, tzinfo=UTC))),
        Not(In("age", [])),
        Not(Not(Eq("age", 30))),  # type: ignore[arg-type]
        Not(AnyOf([Eq("age", 30)])),  # type: ignore[arg-type]
        Not("age = 30"),  # type: ignore[arg-type]
        AnyOf([]),
        AnyOf([Eq("age", i) for i in range(101)]),
        AnyOf([AnyOf([Eq("age", 30)])]),  # nested
        AnyOf([Eq("age", 30), Eq("nope", 1)]),
        AnyOf([Eq("age", 30), Not(Range("name", gt="a"))]),
        AnyOf([Range("age")]),  # no bound
        AnyOf(["age = 30"]),  # type: ignore[list-item]
        AnyOf("age"),  # type: ignore[arg-type]
        AnyOf(Eq("age", 30)),  # type: ignore[arg-type]
    ],
)
async def test_bad_not_and_any_of_raise_invalid_query(people: Collection, pred: Any) -> None:
    with pytest.raises(InvalidQuery) as exc:
        await people.search(Query(where=[pred]))
    assert exc.value.status == 400
    with pytest.raises(InvalidQuery):
        await people.count([pred])


async def test_any_of_takes_up_to_a_hundred_alternatives(people: Collection) -> None:
    preds: list[Predicate] = [Eq("age", 100 + i) for i in range(97)]
    preds += [Eq("age", 30), Eq("age", 25), Prefix("name", "wa")]
    assert len(preds) == 100
    assert await agree(people, AnyOf(preds)) == ["q0", "q2", "q3", "q4"]
