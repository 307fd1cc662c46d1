"""All data access of the education service: collections, the index keys extracted from
each document at write time, and the reads and atomic writes the services need.

Collections: `resources` (the catalogue), `learners` (residents as the registry last told
us), `orgs`, `sessions` (academic sessions), `courses`, `classes`, `enrollments`,
`progress`, and `consumer_cursors` (where the registry feed was read up to). Every query is
predicates on index keys; nothing reads a collection to filter it in Python.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

from shared.events import CURSOR_SPEC
from shared.storage import (
    Create,
    Event,
    KeyType,
    Predicate,
    Record,
    RecordNotFound,
    Store,
    Tally,
    Update,
    WriteOp,
    open_store,
)
from shared.storage.documents import DESCRIPTION_INDEXED_CHARS, DocumentRepository, index_terms
from shared.storage.documents import derived_id as derived_id
from shared.storage.schema import CollectionSpec, Keys

RESOURCES = "resources"
LEARNERS = "learners"
ORGS = "orgs"
SESSIONS = "sessions"
COURSES = "courses"
CLASSES = "classes"
ENROLLMENTS = "enrollments"
PROGRESS = "progress"


def instant(value: str) -> datetime:
    """An ISO date or date-time as an aware instant (dates at midnight UTC)."""
    if len(value) == 10:
        d = date.fromisoformat(value)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    return datetime.fromisoformat(value)


def field_texts(body: Mapping[str, Any], *, descriptions: bool = True) -> dict[str, list[str]]:
    """The searchable texts of a resource by field (names, keywords, descriptions unless
    left out)."""
    name = body.get("name") or {}
    desc = (body.get("description") or {}) if descriptions else {}
    return {
        "name": [v for v in (name.get("zh"), name.get("en")) if v],
        "keywords": list(body.get("keywords") or []),
        "description": [
            v[:DESCRIPTION_INDEXED_CHARS] for v in (desc.get("zh"), desc.get("en")) if v
        ],
    }


def resource_terms(body: Mapping[str, Any]) -> list[str]:
    """Every search term of a resource: words, CJK bigrams, and CJK characters of short fields."""
    texts = field_texts(body)
    return index_terms(texts["name"] + texts["keywords"], texts["description"])


def resource_keys(body: Mapping[str, Any]) -> Keys:
    """Index keys of a learning resource."""
    dated = body.get("date_published") or body["date_modified"]
    return {
        "_id": body["id"],
        "state": body["state"],
        "owner": body["owner"]["sub"],
        "term": resource_terms(body),
        "subject": body["subject"],
        "level": body["educational_level"],
        "type": body["learning_resource_type"],
        "language": body["in_language"],
        "license": body["license"],
        # "Newest first": publication date once published, else the last change.
        "date": instant(dated),
    }


def _learner_keys(body: Mapping[str, Any]) -> Keys:
    return {"_id": body["id"], "status": body["status"], "merged_into": body.get("merged_into")}


def _org_keys(body: Mapping[str, Any]) -> Keys:
    return {"_id": body["id"], "type": body["type"], "parent": body.get("parent")}


def _session_keys(body: Mapping[str, Any]) -> Keys:
    return {"_id": body["id"], "type": body["type"], "start": instant(body["start_date"])}


def _course_keys(body: Mapping[str, Any]) -> Keys:
    return {
        "_id": body["id"],
        "org": body["org"],
        "owner": body["owner"]["sub"],
        "subject": body["subjects"],
    }


def _class_keys(body: Mapping[str, Any]) -> Keys:
    return {
        "_id": body["id"],
        "course": body["course"],
        "org": body["org"],
        "session": body["sessions"],
        "created": instant(body["created_at"]),
    }


def _enrollment_keys(body: Mapping[str, Any]) -> Keys:
    return {
        "class": body["class"],
        "user": body["user"],
        "role": body["role"],
        "status": body["status"],
        # "Active learners of this class" and "this person's active enrollments" are one
        # equality each, whatever else an enrollment carries.
        "class_active": f"{body['class']}|{body['role']}|{body['status']}",
    }


def _progress_keys(body: Mapping[str, Any]) -> Keys:
    return {
        "learner": body["learner"],
        "resource": body["resource"],
        "last": instant(body["last_activity"]),
    }


SPECS = [
    CollectionSpec(
        RESOURCES,
        keys={
            "_id": KeyType.TEXT,
            "state": KeyType.TEXT,
            "owner": KeyType.TEXT,
            "term": KeyType.TEXT,
            "subject": KeyType.TEXT,
            "level": KeyType.TEXT,
            "type": KeyType.TEXT,
            "language": KeyType.TEXT,
            "license": KeyType.TEXT,
            "date": KeyType.INSTANT,
        },
        extract=resource_keys,
        # Few values each, shared by many resources: never the key a search is driven by
        # while the text or a narrower filter can be.
        coarse=frozenset({"state", "subject", "level", "type", "language", "license"}),
        # Facet counts group the rows of the search text by these (SQLite; docs/storage.md).
        carry=("state", "subject", "level", "type", "language", "license"),
        # Newest first is read in date order, stopping at a page (docs/storage.md, "Walks").
        walk=("date",),
        max_doc_bytes=128 * 1024,
    ),
    CollectionSpec(
        LEARNERS,
        keys={"_id": KeyType.TEXT, "status": KeyType.TEXT, "merged_into": KeyType.TEXT},
        extract=_learner_keys,
    ),
    CollectionSpec(
        ORGS,
        keys={"_id": KeyType.TEXT, "type": KeyType.TEXT, "parent": KeyType.TEXT},
        extract=_org_keys,
    ),
    CollectionSpec(
        SESSIONS,
        keys={"_id": KeyType.TEXT, "type": KeyType.TEXT, "start": KeyType.INSTANT},
        extract=_session_keys,
    ),
    CollectionSpec(
        COURSES,
        keys={
            "_id": KeyType.TEXT,
            "org": KeyType.TEXT,
            "owner": KeyType.TEXT,
            "subject": KeyType.TEXT,
        },
        extract=_course_keys,
    ),
    CollectionSpec(
        CLASSES,
        keys={
            "_id": KeyType.TEXT,
            "course": KeyType.TEXT,
            "org": KeyType.TEXT,
            "session": KeyType.TEXT,
            "created": KeyType.INSTANT,
        },
        extract=_class_keys,
    ),
    CollectionSpec(
        ENROLLMENTS,
        keys={
            "class": KeyType.TEXT,
            "user": KeyType.TEXT,
            "role": KeyType.TEXT,
            "status": KeyType.TEXT,
            "class_active": KeyType.TEXT,
        },
        extract=_enrollment_keys,
    ),
    CollectionSpec(
        PROGRESS,
        keys={"learner": KeyType.TEXT, "resource": KeyType.TEXT, "last": KeyType.INSTANT},
        extract=_progress_keys,
    ),
    CURSOR_SPEC,
]


def make_store(url: str) -> Store:
    """An unopened store for the education service (the `store=` factory of `create_app`)."""
    return open_store(url, SPECS)


class EducationRepository(DocumentRepository):
    """Reads and writes education documents through the storage port."""

    async def count(self, collection: str, where: Sequence[Predicate]) -> int:
        """How many live documents match."""
        return await self.store.count(collection, where)

    async def tallies(
        self,
        collection: str,
        where: Sequence[Predicate],
        asks: Sequence[tuple[Sequence[Predicate], Sequence[str]]],
    ) -> list[Tally]:
        """One tally per ask `(predicates, keys)` of the matches of `where` (Store.tallies)."""
        return await self.store.tallies(collection, where, asks)

    async def put_op(self, collection: str, id: str, body: Mapping[str, Any]) -> WriteOp:
        """The write that makes `body` the document `id`: a create, or an update at the
        current version (also of a deleted one, which brings it back)."""
        try:
            current = await self.store.get(collection, id, include_deleted=True)
        except RecordNotFound:
            return Create(collection, body, id)
        return Update(collection, id, body, current.version)

    async def write(self, ops: Sequence[WriteOp], events: Sequence[Event] = ()) -> list[Record]:
        """Apply operations atomically."""
        return await self.store.write(ops, events)
