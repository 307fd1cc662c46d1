"""Relevance scoring of the candidates (no server): where a term occurs decides its
weight, and the scoring fields remembered per resource version score the same."""

from __future__ import annotations

import gc
from datetime import UTC, datetime
from typing import Any

from services.education.search import FieldMemo, Fields, parse_text, score
from shared.storage import Record

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def record(id: str, version: int, **body: Any) -> Record:
    return Record("resources", id, version, False, NOW, body)


PHOTO = record(
    "r1",
    1,
    name={"zh": "光合作用入门", "en": "Photosynthesis basics"},
    keywords=["Plants", "叶绿素"],
    description={"en": "How leaves make sugar from light."},
)


def test_weights_by_field_and_the_phrase_bonus() -> None:
    assert score(PHOTO, parse_text("光合作用")) == 3 * 3 + 5  # three bigrams in the name
    assert score(PHOTO, parse_text("plants")) == 2  # a keyword
    assert score(PHOTO, parse_text("photo")) == 3 + 5  # a name word's start, in the name
    assert score(PHOTO, parse_text("leaves")) == 1  # neither: the description
    assert score(PHOTO, parse_text("叶绿素 basics")) == 2 + 2 + 3


def test_remembered_fields_score_the_same_and_follow_versions() -> None:
    memo = FieldMemo(size=2)
    for q in ("光合作用", "plants", "photo", "leaves", "叶绿素 basics"):
        text = parse_text(q)
        assert score(PHOTO, text, memo.get(PHOTO)) == score(PHOTO, text)
    assert memo.get(PHOTO) == memo.get(PHOTO) == Fields.of(PHOTO.body)
    renamed = record("r1", 2, **{**PHOTO.body, "name": {"en": "Leaves"}})
    assert memo.get(renamed) == Fields.of(renamed.body) != memo.get(PHOTO)
    assert score(renamed, parse_text("leaves"), memo.get(renamed)) == 3 + 5


def test_the_memo_keeps_the_latest_versions_only() -> None:
    memo = FieldMemo(size=2)
    a, b, c = (record(i, 1, name={"en": i}) for i in ("a", "b", "c"))
    first = memo.get(a)
    memo.get(b)
    assert memo.get(a) == first  # used again: now the latest
    memo.get(c)  # b, the least recently used, goes
    assert list(memo.found) == [("a", 1), ("c", 1)]


def test_remembered_fields_are_left_alone_by_the_garbage_collector() -> None:
    """Plain tuples of strings: once collections have seen them (a tuple is let go when
    what it holds is, so nested ones take a pass per level), the collector stops tracking
    them, so thousands remembered do not lengthen its full collections."""
    memo = FieldMemo()
    for i in range(100):
        memo.get(record(f"r{i}", 1, name={"zh": "光合作用", "en": "Leaves"}, keywords=["x"]))
    for _ in range(3):
        gc.collect()
    assert not any(gc.is_tracked(packed) for packed in memo.found.values())
    assert not any(gc.is_tracked(key) for key in memo.found)
