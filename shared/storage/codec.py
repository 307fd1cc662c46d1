"""How key values are stored (both adapters) and evaluated in Python for a few documents.

Stored forms: text as str, numbers as numbers, instants as integer epoch microseconds, spans
as (low, high) microsecond pairs. Integers compare exactly in SQLite and in BSON (int64);
microseconds since 1970 stay far inside 2**53, so float comparisons never blur them either.
"""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.storage.errors import DocumentTooLarge, InvalidDocument
from shared.storage.query import AllOf, AnyOf, Bounds, Eq, In, Not, Predicate, Prefix, Range
from shared.storage.schema import CollectionSpec, KeyType

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The largest code point: `prefix + TOP` bounds every string that starts with `prefix`.
TOP = "\U0010ffff"


def micros(value: datetime) -> int:
    """Epoch microseconds of an aware datetime (exact integer arithmetic, no float)."""
    delta = value - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The aware UTC datetime of epoch microseconds."""
    return _EPOCH + timedelta(microseconds=value)


def stored(kind: KeyType, value: Any) -> Any:
    """The stored form of one (already type-checked) key value or query operand."""
    if kind is KeyType.INSTANT or (kind is KeyType.SPAN and isinstance(value, datetime)):
        return micros(value)
    if kind is KeyType.SPAN:
        return (micros(value[0]), micros(value[1]))
    return value


def stored_keys(spec: CollectionSpec, keys: Mapping[str, list[Any]]) -> dict[str, list[Any]]:
    """All key values of a document in stored form."""
    return {k: [stored(spec.keys[k], v) for v in vs] for k, vs in keys.items()}


def sort_values(spec: CollectionSpec, keys: Mapping[str, list[Any]]) -> dict[str, tuple[Any, Any]]:
    """(smallest, largest) stored value per key: ascending sorts use the first, descending
    the second (spans: lowest low end, highest high end)."""
    out: dict[str, tuple[Any, Any]] = {}
    for k, vs in keys.items():
        if spec.keys[k] is KeyType.SPAN:
            out[k] = (min(v[0] for v in vs), max(v[1] for v in vs))
        else:
            out[k] = (min(vs), max(vs))
    return out


def encode_body(spec: CollectionSpec, body: Mapping[str, Any]) -> str:
    """Serialize a body to canonical JSON text, enforcing the collection's size limit."""
    if not isinstance(body, Mapping):
        raise InvalidDocument("a document body must be a JSON object")
    try:
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InvalidDocument(f"document is not JSON-serializable: {exc}") from exc
    size = len(text.encode())
    if size > spec.max_doc_bytes:
        raise DocumentTooLarge(
            f"document of {size} bytes exceeds the {spec.max_doc_bytes}-byte limit of {spec.name}"
        )
    return text


_last_id = [0, 0]  # (milliseconds, counter) of the previous id from this process


def new_id() -> str:
    """A fresh server-assigned id in the UUIDv7 layout, increasing within this process (a
    12-bit counter orders ids of the same millisecond), so inserts stay index-local."""
    ms = time.time_ns() // 1_000_000
    if ms <= _last_id[0]:
        ms, seq = _last_id[0], _last_id[1] + 1
        if seq > 0xFFF:
            ms, seq = ms + 1, 0
    else:
        seq = int.from_bytes(os.urandom(2), "big") & 0x3FF
    _last_id[:] = [ms, seq]
    rand = int.from_bytes(os.urandom(8), "big") & ((1 << 62) - 1)
    value = ((ms & ((1 << 48) - 1)) << 80) | (0x7 << 76) | (seq << 64) | (0b10 << 62) | rand
    return str(uuid.UUID(int=value))


def _cmp(value: Any, op: str, bound: Any) -> bool:
    if op == "gt":
        return bool(value > bound)
    if op == "ge":
        return bool(value >= bound)
    if op == "lt":
        return bool(value < bound)
    return bool(value <= bound)


def _bounds_ok(value: Any, bounds: Bounds) -> bool:
    return all(_cmp(value, op, micros(b)) for op, b in bounds.items())


def matches(spec: CollectionSpec, keys: Mapping[str, list[Any]], pred: Predicate) -> bool:
    """Evaluate one predicate on a document's stored keys (only used for the handful of
    documents of an in-flight batch, and to re-check what a server answered as a superset;
    searches are answered by the database)."""
    if isinstance(pred, Not):
        return not matches(spec, keys, pred.pred)
    if isinstance(pred, AnyOf):
        return any(matches(spec, keys, p) for p in pred.preds)
    kind = spec.keys[pred.key]
    values = keys.get(pred.key, [])
    if isinstance(pred, Eq):
        target = stored(kind, pred.value)
        return any(v == target for v in values)
    if isinstance(pred, In):
        targets = {stored(kind, v) for v in pred.values}
        return any(v in targets for v in values)
    if isinstance(pred, Prefix):
        return any(isinstance(v, str) and v.startswith(pred.value) for v in values)
    if isinstance(pred, AllOf):
        return set(pred.values) <= set(values)
    if isinstance(pred, Range):
        pairs = (("gt", pred.gt), ("ge", pred.ge), ("lt", pred.lt), ("le", pred.le))
        ops = [(op, b) for op, b in pairs if b is not None]
        return any(all(_cmp(v, op, stored(kind, b)) for op, b in ops) for v in values)
    return any(_bounds_ok(lo, pred.low) and _bounds_ok(hi, pred.high) for lo, hi in values)
