"""Business rules of places and events: create, read with visibility, versioned changes
(`If-Match`), and the states active → retired.

Every change is one store write at the version the caller read (`If-Match`, else the
version just loaded), so two editors never overwrite each other silently; a refused change
writes nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel

from services.tourism.access import Viewer
from services.tourism.repository import EVENTS, PLACES, TourismRepository
from services.tourism.schemas import (
    EventIn,
    EventPatch,
    PlaceIn,
    PlacePatch,
    validate_as,
)
from shared.errors import Conflict, NotFound, Unprocessable
from shared.etags import check_if_match
from shared.ids import new_id
from shared.storage import Create, Record, Update, VersionConflict

WHAT = {PLACES: "Place", EVENTS: "Event"}


def now_iso() -> str:
    """The current instant as ISO 8601 UTC text."""
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


def stored(data: BaseModel) -> dict[str, Any]:
    """A validated model as stored (JSON types)."""
    return data.model_dump(mode="json")


def new_body(viewer: Viewer, data: BaseModel, id: str | None = None) -> dict[str, Any]:
    """The stored body of a new place or event, edited by `viewer`."""
    at = now_iso()
    return {
        "id": id or new_id(),
        "state": "active",
        **stored(data),
        "editor": viewer.editor(),
        "date_created": at,
        "date_modified": at,
        "date_retired": None,
    }


class Documents:
    """Places or events: the rules both share."""

    collection: str = PLACES
    model: type[BaseModel] = PlaceIn

    def __init__(self, repo: TourismRepository) -> None:
        self.repo = repo

    def new_body(self, viewer: Viewer, data: BaseModel, id: str | None = None) -> dict[str, Any]:
        """The stored body of a new document."""
        return new_body(viewer, data, id)

    async def check_links(self, body: dict[str, Any]) -> None:
        """Refuse references to places that are not active (422)."""

    async def create(self, viewer: Viewer, data: BaseModel) -> Record:
        """A new active document (editors)."""
        viewer.require_editor()
        body = self.new_body(viewer, data)
        await self.check_links(body)
        return (await self.repo.write([Create(self.collection, body, body["id"])]))[0]

    async def read(self, viewer: Viewer, id: str) -> Record:
        """A document the caller may see (retired ones: editors only); 404 otherwise."""
        record = await self.repo.get(self.collection, id)
        if record is None or (record.body["state"] != "active" and not viewer.is_editor):
            raise NotFound(f"{WHAT[self.collection]} {id} is not known.")
        return record

    async def update(
        self, viewer: Viewer, id: str, patch: BaseModel, if_match: str | None
    ) -> Record:
        """Replace the members given; the result is validated as a whole."""
        viewer.require_editor()
        record = await self.read(viewer, id)
        check_if_match(if_match, record.version, f"{self.collection[:-1]} {id}")
        current = dict(record.body)
        if current["state"] == "retired":
            raise Conflict(f"{WHAT[self.collection]} {id} is retired; it is not changed.")
        fields = {k: v for k, v in current.items() if k in self.model.model_fields}
        for key in patch.model_fields_set:
            fields[key] = getattr(patch, key)
        merged = stored(validate_as(self.model, {k: v for k, v in fields.items() if v is not None}))
        if all(current.get(k) == v for k, v in merged.items()):
            return record
        body = {**current, **merged, "editor": viewer.editor(), "date_modified": now_iso()}
        await self.check_links(body)
        return await self._write(id, body, record.version)

    async def retire(self, viewer: Viewer, id: str, if_match: str | None) -> Record:
        """Retire a document (final; repeating it changes nothing)."""
        viewer.require_editor()
        record = await self.read(viewer, id)
        check_if_match(if_match, record.version, f"{self.collection[:-1]} {id}")
        if record.body["state"] == "retired":
            return record
        at = now_iso()
        body = {**record.body, "state": "retired", "date_modified": at, "date_retired": at}
        return await self._write(id, body, record.version)

    async def _write(self, id: str, body: dict[str, Any], version: int) -> Record:
        try:
            return (await self.repo.write([Update(self.collection, id, body, version)]))[0]
        except VersionConflict:
            raise Conflict(
                f"{WHAT[self.collection]} {id} was changed by someone else meanwhile; "
                "read it and try again."
            ) from None


async def require_active_places(
    repo: TourismRepository, ids: Sequence[str], pointer: str
) -> dict[str, Record]:
    """The places named, all active; 422 naming each one that is not."""
    found = await repo.many(PLACES, ids)
    errors = [
        {
            "pointer": f"{pointer}/{n}" if len(ids) > 1 else pointer,
            "message": f"no active place {i}",
        }
        for n, i in enumerate(ids)
        if i not in found or found[i].body["state"] != "active"
    ]
    if errors:
        raise Unprocessable("The document names places that do not exist.", errors=errors)
    return found


class PlaceService(Documents):
    """Places (attractions, destinations, lodging, restaurants)."""

    collection = PLACES
    model = PlaceIn

    async def check_links(self, body: dict[str, Any]) -> None:
        ids = list(body.get("includes_attraction") or [])
        if body["id"] in ids:
            raise Unprocessable(
                "A destination does not include itself.",
                errors=[{"pointer": "#/includes_attraction", "message": "names the place itself"}],
            )
        if ids:
            await require_active_places(self.repo, ids, "#/includes_attraction")


class EventService(Documents):
    """Events (schema.org Event) at places."""

    collection = EVENTS
    model = EventIn

    async def check_links(self, body: dict[str, Any]) -> None:
        await require_active_places(self.repo, [body["location"]], "#/location")


__all__ = ["EventPatch", "EventService", "PlacePatch", "PlaceService", "now_iso"]
