"""The storage engine: one async port (`Store`), an embedded SQLite adapter and a MongoDB
adapter, with typed index keys extracted at write time. See docs/storage.md."""

from __future__ import annotations

from collections.abc import Sequence

from shared.storage.errors import (
    AlreadyExists,
    DocumentTooLarge,
    InvalidDocument,
    InvalidQuery,
    RecordDeleted,
    RecordNotFound,
    StorageError,
    StoreUnavailable,
    UniqueViolation,
    VersionConflict,
)
from shared.storage.model import (
    Create,
    Delete,
    Event,
    KeyValues,
    Page,
    Record,
    StoredEvent,
    Tally,
    Update,
    WriteOp,
)
from shared.storage.port import Collection, Store
from shared.storage.query import (
    AllOf,
    AnyOf,
    Bounds,
    Eq,
    In,
    KeyPredicate,
    Not,
    Predicate,
    Prefix,
    Query,
    Range,
    Sort,
    Span,
)
from shared.storage.schema import CollectionSpec, KeyType


def open_store(
    url: str, specs: Sequence[CollectionSpec] = (), *, batch_timeout: float = 30.0
) -> Store:
    """A store for `sqlite:///path` or `mongodb://...` URLs (call `await store.open()`).

    `batch_timeout`: MongoDB only; seconds after which a batch left pending by a crashed
    writer is rolled back.
    """
    if url.startswith("sqlite:"):
        from shared.storage.sqlite import SQLiteStore

        return SQLiteStore(url, specs)
    if url.startswith(("mongodb:", "mongodb+srv:")):
        from shared.storage.mongo import MongoStore

        return MongoStore(url, specs, batch_timeout=batch_timeout)
    raise ValueError(f"unsupported store URL scheme: {url.split(':', 1)[0]!r}")


__all__ = [
    "AllOf",
    "AlreadyExists",
    "AnyOf",
    "Bounds",
    "Collection",
    "CollectionSpec",
    "Create",
    "Delete",
    "DocumentTooLarge",
    "Eq",
    "Event",
    "In",
    "InvalidDocument",
    "InvalidQuery",
    "KeyPredicate",
    "KeyType",
    "KeyValues",
    "Not",
    "Page",
    "Predicate",
    "Prefix",
    "Query",
    "Range",
    "Record",
    "RecordDeleted",
    "RecordNotFound",
    "Sort",
    "Span",
    "StorageError",
    "Store",
    "StoreUnavailable",
    "StoredEvent",
    "Tally",
    "UniqueViolation",
    "Update",
    "VersionConflict",
    "WriteOp",
    "open_store",
]
