"""Collection schemas: which index keys a collection has, their types, and its unique keys."""

from __future__ import annotations

import enum
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.storage.errors import InvalidDocument

_NAME = re.compile(r"^[a-z][a-z0-9_]{0,47}$")
_KEY = re.compile(r"^[a-z_][a-zA-Z0-9_:-]{0,63}$")

MAX_DOC_BYTES = (
    1 << 20
)  # 1 MiB of JSON: far above any FHIR resource we accept, far below BSON's 16 MiB
MAX_KEY_VALUES = 5_000  # per document: bounds the index rows a single write can create


class KeyType(enum.StrEnum):
    """The value type of an index key; every value of a key has this type."""

    TEXT = "text"  # str: equality, in-list, prefix, all-of
    NUMBER = "number"  # int | float: equality, in-list, ranges
    INSTANT = "instant"  # aware datetime: equality, in-list, ranges (stored as epoch microseconds)
    SPAN = "span"  # (low, high) aware datetimes, half-open: span predicates on both ends


KeyValue = str | int | float | datetime | tuple[datetime, datetime]
Keys = Mapping[str, KeyValue | Sequence[KeyValue] | None]
Extractor = Callable[[Mapping[str, Any]], Keys]


def _no_keys(_body: Mapping[str, Any]) -> Keys:
    return {}


@dataclass(frozen=True, slots=True)
class CollectionSpec:
    """A collection: its name, typed index keys, unique keys and the key extractor.

    `extract` turns a document body into its index keys at write time; queries only ever
    look at those keys, never at the body, so every search is answered from an index.
    """

    name: str
    keys: Mapping[str, KeyType] = field(default_factory=dict)
    unique: Sequence[str] = ()
    extract: Extractor = _no_keys
    max_doc_bytes: int = MAX_DOC_BYTES
    # Keys each of whose values matches a large share of the collection (a district, a
    # status). The embedded store has no statistics to know it: a search never walks
    # their index when another positive predicate can drive it, it only checks them.
    coarse: frozenset[str] = frozenset()
    # Text keys whose values ride along on every text key row of a record in the embedded
    # store, so that a tally of them over the matches of a text predicate reads one range
    # of an index instead of seeking each match (docs/storage.md, "Tallies"). For keys
    # with few distinct value combinations (a catalogue's facets); other stores ignore it.
    carry: tuple[str, ...] = ()
    # Keys a search sorted on them, descending ("newest first"), may walk in that order in
    # the embedded store, stopping at a page, instead of sorting every match: for a sort
    # over many matches of a few common words or filters (docs/storage.md, "Walks").
    walk: tuple[str, ...] = ()
    # Unsorted searches (id order) driven by one value of a text key read that key's index
    # in id order in the embedded store, checking the other predicates per entry, and stop
    # at a page, instead of finding every match first: for a listing driven by a broad
    # value (a category) whose first page lies near the start (docs/storage.md, "Streams").
    stream: bool = False

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"collection name {self.name!r} must match {_NAME.pattern}")
        for key in self.keys:
            if not _KEY.match(key):
                raise ValueError(f"key name {key!r} in {self.name} must match {_KEY.pattern}")
        for key in self.unique:
            if self.keys.get(key) is not KeyType.TEXT:
                raise ValueError(f"unique key {key!r} of {self.name} must be a declared text key")
        for key in self.coarse:
            if key not in self.keys:
                raise ValueError(f"coarse key {key!r} of {self.name} is not a declared key")
        for key in self.walk:
            if self.keys.get(key) not in (KeyType.INSTANT, KeyType.NUMBER, KeyType.TEXT):
                raise ValueError(f"walked key {key!r} of {self.name} must be a declared key")
        for key in self.carry:
            if self.keys.get(key) is not KeyType.TEXT:
                raise ValueError(f"carried key {key!r} of {self.name} must be a declared text key")


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, list | set | frozenset) or (
        isinstance(value, Sequence) and not isinstance(value, str | tuple)
    ):
        return list(value)
    return [value]


def _check(spec: CollectionSpec, key: str, kind: KeyType, value: Any) -> Any:
    ok: bool
    if kind is KeyType.TEXT:
        ok = isinstance(value, str)
    elif kind is KeyType.NUMBER:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and isinstance(value, float) and value != value:  # NaN sorts nowhere
            ok = False
    elif kind is KeyType.INSTANT:
        ok = isinstance(value, datetime) and value.tzinfo is not None
    else:
        ok = (
            isinstance(value, tuple)
            and len(value) == 2
            and all(isinstance(v, datetime) and v.tzinfo is not None for v in value)
            and value[0] <= value[1]
        )
    if not ok:
        raise InvalidDocument(
            f"index key {key!r} of {spec.name} expects {kind.value} values, got {value!r}",
            errors=[{"field": key, "message": f"expected a {kind.value} value"}],
        )
    return value


def extract_keys(spec: CollectionSpec, body: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Run the extractor and check every value against the declared key types.

    Values are de-duplicated (order kept) so a document never carries the same index row twice.
    """
    try:
        raw = spec.extract(body)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        # Extractors read client data; a value they cannot index is the client's error.
        raise InvalidDocument(f"cannot index document of {spec.name}: {exc}") from exc
    out: dict[str, list[Any]] = {}
    total = 0
    for key, value in raw.items():
        kind = spec.keys.get(key)
        if kind is None:
            raise InvalidDocument(f"extractor of {spec.name} produced undeclared key {key!r}")
        values = list(dict.fromkeys(_check(spec, key, kind, v) for v in _as_list(value)))
        if values:
            out[key] = values
            total += len(values)
    if total > MAX_KEY_VALUES:
        raise InvalidDocument(
            f"document of {spec.name} produces {total} index values (at most {MAX_KEY_VALUES})"
        )
    return out
