"""Typed storage errors. Each carries its HTTP status through the shared error model."""

from __future__ import annotations

from shared.errors import (
    BadRequest,
    Conflict,
    Gone,
    HuiminError,
    NotFound,
    PayloadTooLarge,
    ServiceUnavailable,
    Unprocessable,
    problem_type,
)


class StorageError(HuiminError):
    """Base for errors raised by the storage layer."""


class InvalidQuery(StorageError, BadRequest):
    """A query names an unknown key, uses a predicate the key's type does not support,
    passes a value of the wrong type, or carries a cursor that does not belong to it."""

    type = problem_type("invalid-query")
    title = "Invalid Query"


class InvalidDocument(StorageError, Unprocessable):
    """A document (or its extracted index keys) is not storable as given."""

    type = problem_type("invalid-document")
    title = "Invalid Document"


class DocumentTooLarge(StorageError, PayloadTooLarge):
    """A document's JSON is larger than its collection allows."""

    type = problem_type("document-too-large")
    title = "Document Too Large"


class RecordNotFound(StorageError, NotFound):
    """No record with that id exists (never created)."""

    type = problem_type("not-found")
    title = "Not Found"


class RecordDeleted(StorageError, Gone):
    """The record existed and was deleted; its tombstone and history remain."""

    type = problem_type("deleted")
    title = "Deleted"


class VersionConflict(StorageError, Conflict):
    """The expected version does not match the stored one (optimistic concurrency)."""

    type = problem_type("version-conflict")
    title = "Version Conflict"


class AlreadyExists(StorageError, Conflict):
    """A create names an id that is already taken."""

    type = problem_type("already-exists")
    title = "Already Exists"


class UniqueViolation(StorageError, Conflict):
    """A unique key value is already held by another record."""

    type = problem_type("unique-violation")
    title = "Unique Value Taken"


class StoreUnavailable(StorageError, ServiceUnavailable):
    """The database cannot be reached."""

    type = problem_type("store-unavailable")
    title = "Store Unavailable"
