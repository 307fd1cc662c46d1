"""The stored shape of a document state on MongoDB, shared by the adapter's modules."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from shared.storage.prepare import Prepared
from shared.storage.schema import KeyType

Doc = dict[str, Any]
STATE_FIELDS = ("v", "del", "at", "body", "k", "s")


def now_micros() -> int:
    """Wall-clock epoch microseconds (the batch protocol compares these across processes
    of one host; see docs/storage.md)."""
    return time.time_ns() // 1000


def state_of(p: Prepared, version: int, at: int) -> Doc:
    """The stored state of a prepared write at a version."""
    keys: dict[str, list[Any]] = {}
    for key, values in p.keys.items():
        if p.spec.keys[key] is KeyType.SPAN:
            keys[key] = [{"lo": lo, "hi": hi} for lo, hi in values]
        else:
            keys[key] = list(values)
    return {
        "v": version,
        "del": p.op == "delete",
        "at": at,
        "body": p.body,
        "k": keys,
        "s": {k: {"lo": lo, "hi": hi} for k, (lo, hi) in p.sort.items()},
    }


def current_state(doc: Mapping[str, Any]) -> Doc:
    """The state fields of a stored document."""
    return {f: doc.get(f) for f in STATE_FIELDS}
