"""The query language of the storage port: predicates on index keys, sort, cursor paging.

Queries never look at document bodies. Every predicate names a declared index key, and both
adapters answer it from an index on that key.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.storage.errors import InvalidQuery
from shared.storage.schema import CollectionSpec, KeyType

MAX_LIMIT = 1000
MAX_IN_VALUES = 1000
MAX_ANY_OF = 100
Scalar = str | int | float | datetime


@dataclass(frozen=True, slots=True)
class Eq:
    """Some value of `key` equals `value`."""

    key: str
    value: Scalar


@dataclass(frozen=True, slots=True)
class In:
    """Some value of `key` is one of `values`."""

    key: str
    values: Sequence[Scalar]


@dataclass(frozen=True, slots=True)
class Prefix:
    """Some (text) value of `key` starts with `value`."""

    key: str
    value: str


@dataclass(frozen=True, slots=True)
class Range:
    """Some (number or instant) value of `key` lies within the given bounds."""

    key: str
    gt: Scalar | None = None
    ge: Scalar | None = None
    lt: Scalar | None = None
    le: Scalar | None = None


@dataclass(frozen=True, slots=True)
class AllOf:
    """`key` holds every one of `values` (e.g. all search terms of a text)."""

    key: str
    values: Sequence[str]


@dataclass(frozen=True, slots=True)
class Bounds:
    """Bounds on one end of a span."""

    gt: datetime | None = None
    ge: datetime | None = None
    lt: datetime | None = None
    le: datetime | None = None

    def items(self) -> list[tuple[str, datetime]]:
        """The set bounds as (operator, value) pairs."""
        pairs = (("gt", self.gt), ("ge", self.ge), ("lt", self.lt), ("le", self.le))
        return [(op, v) for op, v in pairs if v is not None]


@dataclass(frozen=True, slots=True)
class Span:
    """Some span value of `key` has its low end within `low` and its high end within `high`.

    Both bounds apply to the same stored span, which is what FHIR date prefixes need
    (eq: low >= a and high <= b; sa: low >= b; eb: high <= a; ...).
    """

    key: str
    low: Bounds = field(default_factory=Bounds)
    high: Bounds = field(default_factory=Bounds)


KeyPredicate = Eq | In | Prefix | Range | AllOf | Span
"""A predicate on the values of one key."""


@dataclass(frozen=True, slots=True)
class Not:
    """The record does not match `pred`; records without any value for its key match (FHIR
    `:not`, and the date prefix `ne` as `Not(Span(...))`)."""

    pred: KeyPredicate


@dataclass(frozen=True, slots=True)
class AnyOf:
    """The record matches at least one of `preds` (1 to 100 key predicates or Nots; keys may
    differ), e.g. FHIR's comma-separated values: `AnyOf([Prefix(k, "ab"), Prefix(k, "cd")])`.
    An AnyOf inside an AnyOf is refused (InvalidQuery)."""

    preds: Sequence[Predicate]


Predicate = KeyPredicate | Not | AnyOf
KEY_PREDICATES = (Eq, In, Prefix, Range, AllOf, Span)


@dataclass(frozen=True, slots=True)
class Sort:
    """Sort by a key: ascending by its smallest value, descending by its largest (FHIR rule)."""

    key: str
    descending: bool = False


@dataclass(frozen=True, slots=True)
class Query:
    """An AND of predicates, an order, and a page."""

    where: Sequence[Predicate] = ()
    sort: Sequence[Sort] = ()
    limit: int = 50
    cursor: str | None = None
    count: bool = False


def _type_ok(kind: KeyType, value: Any) -> bool:
    if kind is KeyType.TEXT:
        return isinstance(value, str)
    if kind is KeyType.NUMBER:
        return isinstance(value, int | float) and not isinstance(value, bool) and value == value
    if kind in (KeyType.INSTANT, KeyType.SPAN):
        return isinstance(value, datetime) and value.tzinfo is not None
    return False


def _key(spec: CollectionSpec, key: Any) -> KeyType:
    if not isinstance(key, str) or key not in spec.keys:
        raise InvalidQuery(
            f"{spec.name} has no index key {key!r}",
            errors=[{"field": str(key), "message": "unknown search key"}],
        )
    return spec.keys[key]


def _value(spec: CollectionSpec, key: str, kind: KeyType, value: Any) -> None:
    if not _type_ok(kind, value):
        raise InvalidQuery(
            f"key {key!r} of {spec.name} takes {kind.value} values, got {type(value).__name__}",
            errors=[{"field": key, "message": f"expected a {kind.value} value"}],
        )


def _refuse(spec: CollectionSpec, pred: Any, kind: KeyType) -> InvalidQuery:
    name = type(pred).__name__
    return InvalidQuery(
        f"{name} does not apply to {kind.value} key {pred.key!r} of {spec.name}",
        errors=[{"field": pred.key, "message": f"{name} not supported on {kind.value} keys"}],
    )


def _validate_key_predicate(spec: CollectionSpec, pred: Any) -> None:
    if not isinstance(pred, KEY_PREDICATES):
        raise InvalidQuery(f"unknown predicate {type(pred).__name__}")
    kind = _key(spec, pred.key)
    if isinstance(pred, Span):
        if kind is not KeyType.SPAN:
            raise _refuse(spec, pred, kind)
        if not pred.low.items() and not pred.high.items():
            raise InvalidQuery(f"span predicate on {pred.key!r} sets no bound")
        for _, v in pred.low.items() + pred.high.items():
            _value(spec, pred.key, kind, v)
    elif kind is KeyType.SPAN:
        raise _refuse(spec, pred, kind)
    elif isinstance(pred, Eq):
        _value(spec, pred.key, kind, pred.value)
    elif isinstance(pred, In | AllOf):
        values = list(pred.values) if not isinstance(pred.values, str) else None
        if not values or len(values) > MAX_IN_VALUES:
            raise InvalidQuery(
                f"{type(pred).__name__} on {pred.key!r} takes 1 to {MAX_IN_VALUES} values",
                errors=[{"field": pred.key, "message": "empty or too long value list"}],
            )
        if isinstance(pred, AllOf) and kind is not KeyType.TEXT:
            raise _refuse(spec, pred, kind)
        for item in values:
            _value(spec, pred.key, kind, item)
    elif isinstance(pred, Prefix):
        if kind is not KeyType.TEXT:
            raise _refuse(spec, pred, kind)
        _value(spec, pred.key, kind, pred.value)
    else:  # Range
        if kind is KeyType.TEXT:
            raise _refuse(spec, pred, kind)
        bounds = [v for v in (pred.gt, pred.ge, pred.lt, pred.le) if v is not None]
        if not bounds:
            raise InvalidQuery(f"range on {pred.key!r} sets no bound")
        for bound in bounds:
            _value(spec, pred.key, kind, bound)


def _validate_negatable(spec: CollectionSpec, pred: Any) -> None:
    """A key predicate or a Not of one."""
    if isinstance(pred, Not):
        if not isinstance(pred.pred, KEY_PREDICATES):
            raise InvalidQuery(
                f"Not takes an Eq, In, Prefix, Range, AllOf or Span, got {type(pred.pred).__name__}"
            )
        _validate_key_predicate(spec, pred.pred)
    else:
        _validate_key_predicate(spec, pred)


def _validate_predicate(spec: CollectionSpec, pred: Any) -> None:
    if not isinstance(pred, AnyOf):
        _validate_negatable(spec, pred)
        return
    if not isinstance(pred.preds, list | tuple) or not 1 <= len(pred.preds) <= MAX_ANY_OF:
        raise InvalidQuery(f"AnyOf takes a list of 1 to {MAX_ANY_OF} predicates")
    for member in pred.preds:
        if isinstance(member, AnyOf):
            raise InvalidQuery("AnyOf cannot contain another AnyOf")
        _validate_negatable(spec, member)


def validate(spec: CollectionSpec, query: Query) -> None:
    """Check a query against a collection's schema; raise InvalidQuery on any problem."""
    if not isinstance(query.limit, int) or isinstance(query.limit, bool):
        raise InvalidQuery("limit must be an integer")
    if not 0 <= query.limit <= MAX_LIMIT:
        raise InvalidQuery(f"limit must be between 0 and {MAX_LIMIT}")
    for pred in query.where:
        _validate_predicate(spec, pred)
    seen: set[str] = set()
    for s in query.sort:
        if not isinstance(s, Sort):
            raise InvalidQuery(f"sort entries must be Sort, got {type(s).__name__}")
        _key(spec, s.key)
        if s.key in seen:
            raise InvalidQuery(f"sort key {s.key!r} given twice")
        seen.add(s.key)


def predicate_keys(pred: Predicate) -> set[str]:
    """The keys a predicate looks at."""
    if isinstance(pred, Not):
        return {pred.pred.key}
    if isinstance(pred, AnyOf):
        return set().union(*(predicate_keys(p) for p in pred.preds))
    return {pred.key}


# At most this many keys per tally: a faceted search counts a handful.
MAX_TALLY_KEYS = 16


def validate_tally(spec: CollectionSpec, where: Sequence[Predicate], keys: Sequence[str]) -> None:
    """Check a tally: its predicates as a query's, and up to 16 distinct declared text keys
    (counts are per stored value, which only text keys hold as such; with none, a tally
    is a count)."""
    validate(spec, Query(where=where))
    if isinstance(keys, str) or not isinstance(keys, Sequence) or len(keys) > MAX_TALLY_KEYS:
        raise InvalidQuery(f"a tally counts up to {MAX_TALLY_KEYS} keys, given as a list")
    if len(set(keys)) != len(keys):
        raise InvalidQuery("a tally key is given twice")
    for key in keys:
        if _key(spec, key) is not KeyType.TEXT:
            raise InvalidQuery(
                f"key {key!r} of {spec.name} is not a text key: only text keys can be tallied",
                errors=[{"field": key, "message": "not a text key"}],
            )


# At most this many records per `key_values` call, and keys per call: a search reading
# the coordinates of the places in an area, not an export.
MAX_KEY_VALUES_LIMIT = 10_000
MAX_KEY_VALUES_KEYS = 16


def validate_key_values(
    spec: CollectionSpec, where: Sequence[Predicate], keys: Sequence[str], limit: int
) -> None:
    """Check a `key_values` call: its predicates as a query's, 1 to 16 distinct declared
    keys that are not spans, and a limit of 0 to 10,000."""
    validate(spec, Query(where=where))
    if isinstance(limit, bool) or not isinstance(limit, int):
        raise InvalidQuery("limit must be an integer")
    if not 0 <= limit <= MAX_KEY_VALUES_LIMIT:
        raise InvalidQuery(f"limit must be between 0 and {MAX_KEY_VALUES_LIMIT}")
    if isinstance(keys, str) or not isinstance(keys, Sequence):
        raise InvalidQuery("keys are given as a list")
    if not 1 <= len(keys) <= MAX_KEY_VALUES_KEYS or len(set(keys)) != len(keys):
        raise InvalidQuery(f"1 to {MAX_KEY_VALUES_KEYS} distinct keys")
    for key in keys:
        if _key(spec, key) is KeyType.SPAN:
            raise InvalidQuery(
                f"key {key!r} of {spec.name} is a span key: its values cannot be read",
                errors=[{"field": key, "message": "a span key"}],
            )


# --- cursors -------------------------------------------------------------------------------
# A cursor is the position after the last returned record: its sort values and id. It also
# carries a fingerprint of the sort, so a cursor replayed against another order is refused
# instead of silently paging wrongly. Opaque to clients (URL-safe base64 of JSON).


def _fingerprint(collection: str, sort: Sequence[Sort]) -> str:
    return collection + ":" + ",".join(("-" if s.descending else "") + s.key for s in sort)


def encode_cursor(
    collection: str, sort: Sequence[Sort], values: Sequence[Any], last_id: str
) -> str:
    """Encode the position after a record with the given (stored) sort values and id."""
    raw = json.dumps([_fingerprint(collection, sort), list(values), last_id], separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(collection: str, sort: Sequence[Sort], cursor: str) -> tuple[list[Any], str]:
    """Decode a cursor made by encode_cursor for the same collection and sort."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        fp, values, last_id = json.loads(raw)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidQuery("malformed cursor") from exc
    if fp != _fingerprint(collection, sort) or not isinstance(last_id, str):
        raise InvalidQuery("cursor does not belong to this query")
    if not isinstance(values, list) or len(values) != len(sort):
        raise InvalidQuery("malformed cursor")
    for v in values:
        if v is not None and (isinstance(v, bool) or not isinstance(v, str | int | float)):
            raise InvalidQuery("malformed cursor")
    return values, last_id
