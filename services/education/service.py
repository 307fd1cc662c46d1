"""Business rules of the learning-resource catalogue: create, read with visibility,
versioned changes and the publication states draft → published → retired.

Every change is one store write at the version the caller read (`If-Match`, else the
version just loaded), so two editors never overwrite each other silently; a refused
change writes nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from services.education.access import Viewer
from services.education.repository import RESOURCES, EducationRepository
from services.education.schemas import ResourceIn, ResourcePatch, validate_resource
from shared.auth.errors import InsufficientScope
from shared.errors import Conflict, NotFound
from shared.etags import check_if_match
from shared.ids import new_id
from shared.storage import Create, Record, Update, VersionConflict

# Which action leads from which state (retired is final: a replacement is a new resource).
TRANSITIONS: dict[str, tuple[frozenset[str], str]] = {
    "publish": (frozenset({"draft"}), "published"),
    "retire": (frozenset({"draft", "published"}), "retired"),
}


def now_iso() -> str:
    """The current instant as ISO 8601 UTC text (microseconds: "newest first" must order
    resources published within the same second)."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def expected_version(value: str | None, current: int, what: str) -> int:
    """The version an `If-Match` header names (412 when it is not the current one)."""
    check_if_match(value, current, what)
    return current


def _stored(data: ResourceIn) -> dict[str, Any]:
    return data.model_dump(mode="json")


class ResourceService:
    """The catalogue's resources."""

    def __init__(self, repo: EducationRepository) -> None:
        self.repo = repo

    async def create(self, viewer: Viewer, data: ResourceIn) -> Record:
        """A new draft owned by the caller (educators and admins)."""
        viewer.require_author()
        rid = new_id()
        at = now_iso()
        body = {
            "id": rid,
            "state": "draft",
            "owner": viewer.owner(),
            **_stored(data),
            "date_modified": at,
            "date_published": None,
            "date_retired": None,
        }
        return (await self.repo.write([Create(RESOURCES, body, rid)]))[0]

    async def read(self, viewer: Viewer, id: str) -> Record:
        """A resource the caller may see; 404 otherwise."""
        record = await self.repo.get(RESOURCES, id)
        if record is None or not viewer.sees_resource(record.body):
            raise NotFound(f"Resource {id} is not known.")
        return record

    async def _editable(self, viewer: Viewer, id: str) -> Record:
        record = await self.read(viewer, id)
        if not viewer.may_edit(record.body):
            raise InsufficientScope("Only the resource's author and administrators change it.")
        return record

    async def update(
        self, viewer: Viewer, id: str, patch: ResourcePatch, if_match: str | None
    ) -> Record:
        """Replace the members given; the result is validated as a whole."""
        record = await self._editable(viewer, id)
        version = expected_version(if_match, record.version, f"resource {id}")
        current = dict(record.body)
        if current["state"] == "retired":
            raise Conflict(f"Resource {id} is retired; retired resources are not changed.")
        fields = {k: v for k, v in current.items() if k in ResourceIn.model_fields}
        for key in patch.model_fields_set:
            fields[key] = getattr(patch, key)
        merged = _stored(validate_resource({k: v for k, v in fields.items() if v is not None}))
        if all(current.get(k) == v for k, v in merged.items()):
            return record
        body = {**current, **merged, "date_modified": now_iso()}
        return await self._write(id, body, version)

    async def transition(
        self,
        viewer: Viewer,
        id: str,
        action: Literal["publish", "retire"],
        if_match: str | None,
    ) -> Record:
        """Publish a draft, or retire a resource (409 from any other state)."""
        record = await self._editable(viewer, id)
        version = expected_version(if_match, record.version, f"resource {id}")
        sources, target = TRANSITIONS[action]
        state = record.body["state"]
        if state == target:
            return record  # asked twice (a retried request): already done
        if state not in sources:
            raise Conflict(f"Resource {id} is {state}; it cannot be {target} from there.")
        at = now_iso()
        body = {**record.body, "state": target, "date_modified": at}
        body["date_published" if target == "published" else "date_retired"] = at
        return await self._write(id, body, version)

    async def _write(self, id: str, body: dict[str, Any], version: int) -> Record:
        try:
            return (await self.repo.write([Update(RESOURCES, id, body, version)]))[0]
        except VersionConflict:
            raise Conflict(
                f"Resource {id} was changed by someone else meanwhile; read it and try again."
            ) from None
