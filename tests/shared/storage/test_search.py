"""Storage contract: search predicates, sorting, cursor paging, counting, bad queries."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from shared.storage import (
    AllOf,
    Bounds,
    Eq,
    In,
    InvalidQuery,
    Prefix,
    Query,
    Range,
    Sort,
    Span,
    Store,
)
from shared.storage.keys import date_span, fold, terms

PEOPLE: list[dict[str, Any]] = [
    {
        "name": "Zhang Wei",
        "age": 30,
        "born": "1990-05-01",
        "scores": [3, 9],
        "tags": [["http://loinc.org", "1234-5"]],
        "seen": "2024-01-01T08:00:00+00:00",
    },
    {
        "name": "Zhāng Li",
        "age": 41,
        "born": "1983",
        "scores": [5],
        "tags": [["http://loinc.org", "999-1"], [None, "local"]],
    },
    {
        "name": "Li Na",
        "age": 25,
        "born": "1999-12",
        "scores": [],
        "seen": "2024-06-01T08:00:00+08:00",
    },
    {"name": "张伟", "age": 30, "born": "1990-05-01T10:30:00+08:00"},
    {"name": "北京市朝阳区 王芳", "born": "1970-01-01"},
]


@pytest.fixture
async def people(store: Store):
    coll = store.collection("people")
    ids = [(await coll.create(p, id=f"p{i}")).id for i, p in enumerate(PEOPLE)]
    assert ids == ["p0", "p1", "p2", "p3", "p4"]
    return coll


def names(page) -> list[str]:
    return [r.body["name"] for r in page.items]


async def ids_of(coll, *where, **kw) -> list[str]:
    page = await coll.search(Query(where=list(where), **kw))
    return [r.id for r in page.items]


async def test_equality_in_and_prefix(people) -> None:
    assert await ids_of(people, Eq("age", 30)) == ["p0", "p3"]
    assert await ids_of(people, In("age", [25, 41, 99])) == ["p1", "p2"]
    # prefix search is accent-, case- and width-folded through the key helper
    assert await ids_of(people, Prefix("name", fold("ZHANG"))) == ["p0", "p1"]
    assert await ids_of(people, Prefix("name", "li")) == ["p1", "p2"]  # word prefixes
    assert await ids_of(people, Prefix("name", "张")) == ["p3"]
    assert await ids_of(people, Prefix("name", "zz")) == []


async def test_tokens(people) -> None:
    assert await ids_of(people, Eq("tag", "http://loinc.org|1234-5")) == ["p0"]
    assert await ids_of(people, Eq("tag", "1234-5")) == ["p0"]
    assert await ids_of(people, Eq("tag", "|local")) == ["p1"]
    assert await ids_of(people, Eq("tag", "http://loinc.org|")) == ["p0", "p1"]


async def test_all_of_terms_chinese_and_latin(people) -> None:
    assert await ids_of(people, AllOf("term", terms("朝阳"))) == ["p4"]
    assert await ids_of(people, AllOf("term", terms("北京 王芳"))) == ["p4"]
    assert await ids_of(people, AllOf("term", terms("北京 张伟"))) == []
    assert await ids_of(people, AllOf("term", terms("zhang WEI"))) == ["p0"]


async def test_number_ranges_use_one_value_of_multivalued_keys(people) -> None:
    assert await ids_of(people, Range("age", ge=30, lt=41)) == ["p0", "p3"]
    assert await ids_of(people, Range("age", gt=30)) == ["p1"]
    # p0 has scores 3 and 9: no single score lies in [4, 8]
    assert await ids_of(people, Range("score", ge=4, le=8)) == ["p1"]
    assert await ids_of(people, Range("score", ge=9)) == ["p0"]


async def test_instant_ranges(people) -> None:
    cut = datetime(2024, 3, 1, tzinfo=UTC)
    assert await ids_of(people, Range("seen", lt=cut)) == ["p0"]
    assert await ids_of(people, Range("seen", ge=cut)) == ["p2"]
    assert await ids_of(people, Eq("seen", datetime(2024, 1, 1, 8, tzinfo=UTC))) == ["p0"]


async def test_span_predicates_follow_date_precision(people) -> None:
    lo, hi = date_span("1990-05-01")  # the day, UTC
    # FHIR eq: the stored span lies within the searched one. p3 was born at 10:30 +08:00,
    # i.e. 02:30 UTC on the same day.
    assert await ids_of(people, Span("born", low=Bounds(ge=lo), high=Bounds(le=hi))) == ["p0", "p3"]
    lo, hi = date_span("1990-05-01T02:30Z")  # the minute: p0's whole day is not within it
    assert await ids_of(people, Span("born", low=Bounds(ge=lo), high=Bounds(le=hi))) == ["p3"]
    lo_y, hi_y = date_span("1990")
    assert await ids_of(people, Span("born", low=Bounds(ge=lo_y), high=Bounds(le=hi_y))) == [
        "p0",
        "p3",
    ]
    # FHIR sa (starts after the end of 1989) / eb (ends before 1990)
    _, end_1989 = date_span("1989")
    assert await ids_of(people, Span("born", low=Bounds(ge=end_1989))) == ["p0", "p2", "p3"]
    assert await ids_of(people, Span("born", high=Bounds(le=lo_y))) == ["p1", "p4"]
    # overlap: p1's whole-year 1983 span overlaps 1983-06
    lo_m, hi_m = date_span("1983-06")
    assert await ids_of(people, Span("born", low=Bounds(lt=hi_m), high=Bounds(gt=lo_m))) == ["p1"]


async def test_predicates_combine_with_and(people) -> None:
    got = await ids_of(people, Prefix("name", "zh"), Range("age", lt=35), Eq("tag", "1234-5"))
    assert got == ["p0"]


async def test_sort_ascending_descending_with_missing_values(people) -> None:
    asc = await ids_of(people, sort=[Sort("age")])
    assert asc == ["p4", "p2", "p0", "p3", "p1"]  # p4 has no age: first ascending
    desc = await ids_of(people, sort=[Sort("age", descending=True)])
    assert desc == ["p1", "p0", "p3", "p2", "p4"]  # ...and last descending; ties by id
    # multi-valued: ascending by the smallest value, descending by the largest
    by_score = await ids_of(people, Range("score", ge=0), sort=[Sort("score")])
    assert by_score == ["p0", "p1"]
    by_score_desc = await ids_of(people, Range("score", ge=0), sort=[Sort("score", True)])
    assert by_score_desc == ["p0", "p1"]
    two_keys = await ids_of(people, sort=[Sort("age", True), Sort("born", True)])
    assert two_keys == ["p1", "p0", "p3", "p2", "p4"]  # p0 ends later on its day


@pytest.mark.parametrize(
    "sort",
    [
        [],
        [Sort("age")],
        [Sort("age", True)],
        [Sort("age", True), Sort("name")],
        [Sort("born"), Sort("seen", True)],
    ],
)
async def test_cursor_paging_visits_everything_once(people, sort) -> None:
    everything = await ids_of(people, sort=sort, limit=100)
    seen: list[str] = []
    cursor = None
    for _ in range(10):
        page = await people.search(Query(sort=sort, limit=2, cursor=cursor))
        seen += [r.id for r in page.items]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == everything
    assert len(seen) == 5


async def test_paging_stays_correct_while_data_changes(people) -> None:
    sort = [Sort("age")]
    page1 = await people.search(Query(sort=sort, limit=2))
    assert [r.id for r in page1.items] == ["p4", "p2"]
    await people.create({"name": "Early", "age": 1}, id="p5")  # sorts before the cursor
    await people.create({"name": "Late", "age": 99}, id="p6")  # sorts after it
    await people.delete("p3")
    rest: list[str] = []
    cursor = page1.next_cursor
    while cursor:
        page = await people.search(Query(sort=sort, limit=2, cursor=cursor))
        rest += [r.id for r in page.items]
        cursor = page.next_cursor
    assert rest == ["p0", "p1", "p6"]  # nothing repeated, nothing skipped


async def test_count_and_total(people) -> None:
    assert await people.count() == 5
    assert await people.count([Eq("age", 30)]) == 2
    page = await people.search(Query(where=[Prefix("name", "zh")], limit=1, count=True))
    assert page.total == 2
    assert len(page.items) == 1
    assert page.next_cursor
    await people.delete("p0")
    assert await people.count([Eq("age", 30)]) == 1
    assert await ids_of(people, Eq("age", 30)) == ["p3"]


async def test_limit_zero_counts_only(people) -> None:
    page = await people.search(Query(where=[Eq("age", 30)], limit=0, count=True))
    assert page.items == []
    assert page.total == 2


@pytest.mark.parametrize(
    "query",
    [
        Query(where=[Eq("nope", 1)]),  # unknown key
        Query(where=[Eq("age", "30")]),  # wrong type
        Query(where=[Eq("age", True)]),  # bool is not a number
        Query(where=[Eq("seen", datetime(2024, 1, 1))]),  # naive datetime
        Query(where=[Prefix("age", "3")]),  # prefix on a number
        Query(where=[Range("name", gt="a")]),  # range on text
        Query(where=[Range("age")]),  # no bound
        Query(where=[Eq("born", datetime(2024, 1, 1, tzinfo=UTC))]),  # eq on a span
        Query(where=[In("age", [])]),  # empty in-list
        Query(where=[AllOf("age", [1])]),  # type: ignore[list-item]  # all-of on a number
        Query(where=[Eq("name", {"$ne": None})]),  # type: ignore[arg-type]  # operator-like
        Query(where=["age = 30"]),  # type: ignore[list-item]  # not a predicate
        Query(sort=[Sort("nope")]),
        Query(limit=-1),
        Query(limit=100_000),
        Query(cursor="not-a-cursor"),
    ],
)
async def test_bad_queries_raise_invalid_query(people, query) -> None:
    with pytest.raises(InvalidQuery) as exc:
        await people.search(query)
    assert exc.value.status == 400


async def test_cursor_of_another_order_is_refused(people) -> None:
    page = await people.search(Query(sort=[Sort("age")], limit=1))
    with pytest.raises(InvalidQuery):
        await people.search(Query(sort=[Sort("name")], limit=1, cursor=page.next_cursor))


async def test_operator_strings_are_plain_values(people) -> None:
    assert await ids_of(people, Eq("name", '{"$gt": ""}')) == []
    assert await ids_of(people, Prefix("name", "$where")) == []
