"""Everything a write checks before touching the database, shared by both adapters.

Bad input (bodies, ids, keys, batch shape) is refused here, before the first row is written,
so a refused batch never leaves anything behind.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from shared.storage.codec import encode_body, new_id, sort_values, stored_keys
from shared.storage.errors import InvalidDocument
from shared.storage.model import Create, Delete, Event, Update, WriteOp
from shared.storage.schema import CollectionSpec, extract_keys

# FHIR's id rule, which every other service's ids also fit.
ID_RE = re.compile(r"^[A-Za-z0-9.\-]{1,64}$")
MAX_BATCH_OPS = 1000
MAX_EVENTS = 1000
MAX_EVENT_BYTES = 64 * 1024


@dataclass(frozen=True, slots=True)
class Prepared:
    """One validated operation with its serialized body and stored keys."""

    op: str  # "create" | "update" | "delete"
    spec: CollectionSpec
    id: str
    expected_version: int | None
    body: str  # JSON text ("{}" for a delete)
    keys: dict[str, list[Any]]
    sort: dict[str, tuple[Any, Any]]

    def unique_values(self) -> list[tuple[str, str]]:
        """(key, value) pairs this document claims under its collection's unique keys."""
        return [(k, v) for k in self.spec.unique for v in self.keys.get(k, [])]


def check_id(value: Any) -> str:
    """Refuse ids that are not 1-64 characters of letters, digits, '-' and '.'."""
    if not isinstance(value, str) or not ID_RE.match(value):
        raise InvalidDocument(
            f"invalid id {value!r}: 1-64 characters of A-Z a-z 0-9 - .",
            errors=[{"field": "id", "message": "invalid id"}],
        )
    return value


def _version(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidDocument(f"expected version must be a positive integer, got {value!r}")
    return value


def prepare(specs: dict[str, CollectionSpec], ops: Sequence[WriteOp]) -> list[Prepared]:
    """Validate a batch and compute what each operation will store."""
    if not ops:
        raise InvalidDocument("a write needs at least one operation")
    if len(ops) > MAX_BATCH_OPS:
        raise InvalidDocument(f"a batch holds at most {MAX_BATCH_OPS} operations")
    out: list[Prepared] = []
    seen: set[tuple[str, str]] = set()
    for op in ops:
        spec = specs.get(op.collection)
        if spec is None:
            raise InvalidDocument(f"unknown collection {op.collection!r}")
        if isinstance(op, Create):
            doc_id = new_id() if op.id is None else check_id(op.id)
            text = encode_body(spec, op.body)
            keys = extract_keys(spec, op.body)
            out.append(
                Prepared(
                    "create",
                    spec,
                    doc_id,
                    None,
                    text,
                    stored_keys(spec, keys),
                    sort_values(spec, stored_keys(spec, keys)),
                )
            )
        elif isinstance(op, Update):
            doc_id = check_id(op.id)
            text = encode_body(spec, op.body)
            keys = stored_keys(spec, extract_keys(spec, op.body))
            out.append(
                Prepared(
                    "update",
                    spec,
                    doc_id,
                    _version(op.expected_version),
                    text,
                    keys,
                    sort_values(spec, keys),
                )
            )
        elif isinstance(op, Delete):
            doc_id = check_id(op.id)
            out.append(
                Prepared("delete", spec, doc_id, _version(op.expected_version), "{}", {}, {})
            )
        else:
            raise InvalidDocument(f"unknown write operation {type(op).__name__}")
        if (spec.name, doc_id) in seen:
            # FHIR forbids a transaction touching one resource twice; so do we, everywhere,
            # so that both adapters give the same answer.
            raise InvalidDocument(f"the batch touches {spec.name}/{doc_id} more than once")
        seen.add((spec.name, doc_id))
    return out


def check_events(events: Sequence[Event]) -> list[tuple[str, str, str]]:
    """Validate events; returns (type, key, payload JSON) triples."""
    if len(events) > MAX_EVENTS:
        raise InvalidDocument(f"a write appends at most {MAX_EVENTS} events")
    out = []
    for ev in events:
        if not isinstance(ev, Event) or not ev.type or not isinstance(ev.key, str):
            raise InvalidDocument("an event needs a type and a key")
        try:
            payload = json.dumps(
                ev.payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False
            )
        except (TypeError, ValueError) as exc:
            raise InvalidDocument(f"event payload is not JSON: {exc}") from exc
        if len(payload.encode()) > MAX_EVENT_BYTES:
            raise InvalidDocument(f"event payload exceeds {MAX_EVENT_BYTES} bytes")
        out.append((ev.type, ev.key, payload))
    return out
