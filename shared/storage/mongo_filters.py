"""Predicates, sort and keyset conditions as MongoDB filters, plus the same in Python.

Document layout (see docs/storage.md): `k.<key>` holds the stored key values (an array;
spans as {lo, hi} sub-documents), `s.<key>.lo|hi` the smallest/largest value for sorting.
Bounds are sent per value path, not correlated with `$elemMatch` (see `is_exact`); a Not
is a `$nor`, an AnyOf an `$or`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from typing import Any

from shared.storage.codec import micros, stored
from shared.storage.keyset import KeysetOps, after
from shared.storage.query import (
    AllOf,
    AnyOf,
    Eq,
    In,
    KeyPredicate,
    Not,
    Predicate,
    Prefix,
    Range,
    Sort,
    Span,
)
from shared.storage.schema import CollectionSpec, KeyType

_OPS = {"gt": "$gt", "ge": "$gte", "lt": "$lt", "le": "$lte"}


def _regex_escape(text: str) -> str:
    # Escape only regex metacharacters: servers use PCRE (MongoDB) or RE2 (FerretDB), and RE2
    # refuses escapes of ordinary characters such as a space, which re.escape produces.
    return "".join("\\" + ch if ch in _META else ch for ch in text)


_META = set("\\.^$|?*+()[]{}")


def is_exact(pred: Predicate) -> bool:
    """Whether the server answers `pred` exactly on multi-valued keys.

    Bounds on one value of an array need `$elemMatch`, which FerretDB v1 evaluates per bound
    (not per element) and refuses on sub-documents; so two-sided ranges and spans are sent
    as a superset (each bound on any value) and re-checked here for documents whose key has
    more than one value. A single bound needs no correlation. A Not or an AnyOf is exact
    when everything inside it is.
    """
    if isinstance(pred, Not):
        return is_exact(pred.pred)
    if isinstance(pred, AnyOf):
        return all(is_exact(p) for p in pred.preds)
    if isinstance(pred, Range):
        return sum(b is not None for b in (pred.gt, pred.ge, pred.lt, pred.le)) < 2
    if isinstance(pred, Span):
        return len(pred.low.items()) + len(pred.high.items()) < 2
    return True


def inexact_keys(pred: Predicate) -> set[str]:
    """The keys whose documents with several values `predicate_filter(pred)` may answer as
    a superset (it is exact on documents where each of them has at most one value)."""
    if isinstance(pred, Not):
        return inexact_keys(pred.pred)
    if isinstance(pred, AnyOf):
        return set().union(*(inexact_keys(p) for p in pred.preds))
    return set() if is_exact(pred) else {pred.key}


def predicate_filter(spec: CollectionSpec, pred: Predicate) -> dict[str, Any]:
    """The filter for one predicate: a superset of the answer where `is_exact` is False,
    exact on documents where none of its `inexact_keys` has several values."""
    if isinstance(pred, AnyOf):
        return {"$or": [predicate_filter(spec, p) for p in pred.preds]}
    if isinstance(pred, Not):
        inner = _key_filter(spec, pred.pred)
        if is_exact(pred.pred):
            return {"$nor": [inner]}
        # The inner filter is a superset on multi-valued keys, so its $nor would drop true
        # matches there: keep every multi-valued document (re-checked in Python) and negate
        # only where the inner filter is exact.
        return {"$or": [{"$nor": [inner]}, multi_valued([pred.pred.key])]}
    return _key_filter(spec, pred)


def _key_filter(spec: CollectionSpec, pred: KeyPredicate) -> dict[str, Any]:
    kind = spec.keys[pred.key]
    path = f"k.{pred.key}"
    if isinstance(pred, Eq):
        return {path: stored(kind, pred.value)}
    if isinstance(pred, In):
        return {path: {"$in": [stored(kind, v) for v in pred.values]}}
    if isinstance(pred, Prefix):
        # An anchored, case-sensitive regex: MongoDB answers it from the index as a range.
        return {path: {"$regex": "^" + _regex_escape(pred.value)}}
    if isinstance(pred, AllOf):
        return {path: {"$all": list(dict.fromkeys(pred.values))}}
    if isinstance(pred, Range):
        pairs = (("gt", pred.gt), ("ge", pred.ge), ("lt", pred.lt), ("le", pred.le))
        return {path: {_OPS[o]: stored(kind, b) for o, b in pairs if b is not None}}
    assert isinstance(pred, Span)
    out: dict[str, Any] = {}
    if pred.low.items():
        out[f"{path}.lo"] = {_OPS[o]: micros(b) for o, b in pred.low.items()}
    if pred.high.items():
        out[f"{path}.hi"] = {_OPS[o]: micros(b) for o, b in pred.high.items()}
    return out


def multi_valued(keys: Sequence[str]) -> dict[str, Any]:
    """Documents where any of `keys` has two or more values."""
    return {"$or": [{f"k.{k}.1": {"$exists": True}} for k in keys]}


def single_valued(keys: Sequence[str]) -> dict[str, Any]:
    """Documents where each of `keys` has at most one value."""
    return {"$and": [{f"k.{k}.1": {"$exists": False}} for k in keys]}


def sort_fields(sort: Sequence[Sort]) -> list[tuple[str, bool]]:
    """(field, descending) per sort key: ascending on the smallest value, descending on the
    largest."""
    return [(f"s.{s.key}.{'hi' if s.descending else 'lo'}", s.descending) for s in sort]


def _and(xs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$and": xs} if xs else {}


def _or(xs: list[dict[str, Any]]) -> dict[str, Any]:
    return {"$or": xs} if xs else {"_id": {"$in": []}}


MONGO_KEYSET: KeysetOps[dict[str, Any]] = KeysetOps(
    is_null=lambda f: {f: None},
    not_null=lambda f: {f: {"$ne": None}},
    eq=lambda f, v: {f: v},
    gt=lambda f, v: {f: {"$gt": v}},
    lt=lambda f, v: {f: {"$lt": v}},
    id_gt=lambda v: {"_id": {"$gt": v}},
    all_of=_and,
    any_of=_or,
)


def keyset_filter(sort: Sequence[Sort], values: Sequence[Any], last_id: str) -> dict[str, Any]:
    """Filter for documents after the cursor position."""
    return after(sort_fields(sort), values, last_id, MONGO_KEYSET)


# --- the same order in Python (for the few documents of in-flight batches) ----------------


def state_keys(spec: CollectionSpec, state: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Stored keys of a document state, spans back as (lo, hi) tuples."""
    out: dict[str, list[Any]] = {}
    for key, values in (state.get("k") or {}).items():
        if spec.keys.get(key) is KeyType.SPAN:
            out[key] = [(v["lo"], v["hi"]) for v in values]
        else:
            out[key] = list(values)
    return out


def sort_position(state: Mapping[str, Any], sort: Sequence[Sort]) -> list[Any]:
    """The sort values of a document state, as in the cursor."""
    s = state.get("s") or {}
    return [(s.get(x.key) or {}).get("hi" if x.descending else "lo") for x in sort]


def compare(sort: Sequence[Sort], a: tuple[list[Any], str], b: tuple[list[Any], str]) -> int:
    """Order two (sort values, id) positions as the database does."""
    for x, va, vb in zip(sort, a[0], b[0], strict=True):
        if va == vb:
            continue
        if va is None:  # nulls first ascending, last descending
            return 1 if x.descending else -1
        if vb is None:
            return -1 if x.descending else 1
        less = va < vb
        return (1 if less else -1) if x.descending else (-1 if less else 1)
    return (a[1] > b[1]) - (a[1] < b[1])


def sorter(sort: Sequence[Sort]) -> Any:
    """A `key=` function ordering (sort values, id) positions."""
    return functools.cmp_to_key(lambda a, b: compare(sort, a, b))
