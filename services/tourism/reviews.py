"""Reviews: a citizen rates a place 1-5 (one review per citizen and place, editable), and
each place's count and average.

One review per pair by construction: its id is derived from the place and the resident id,
so a second `PUT` updates it and two concurrent first `PUT`s meet at the store (one
creates, the other updates).

The aggregate lives in its own document (`ratings/<place id>`), not on the place, so a
review never moves the place's version (an editor's `If-Match` stays valid). It is never
incremented: after every review write it is recomputed from the reviews themselves (one
indexed tally of the place's reviews by rating) and written at the version read before the
tally, retrying on a conflict. Whichever writer commits last tallied after every review
write that preceded it, so the aggregate settles on the true count and average without
transactions (FerretDB has none). A process that dies between the review and the
aggregate leaves the aggregate one write behind until the place's next review.
"""

from __future__ import annotations

from typing import Any

from services.tourism.access import Viewer
from services.tourism.repository import PLACES, RATINGS, REVIEWS, TourismRepository, derived_id
from services.tourism.schemas import ReviewIn
from services.tourism.service import now_iso
from shared.errors import Conflict, NotFound
from shared.storage import (
    AlreadyExists,
    Create,
    Delete,
    Eq,
    Query,
    Record,
    Sort,
    Update,
    VersionConflict,
)

RETRIES = 20


def review_view(record: Record, viewer: Viewer) -> dict[str, Any]:
    """A review as served: the author's resident id is not shown, only whether it is theirs."""
    body = record.body
    return {
        "id": record.id,
        "place": body["place"],
        "rating": body["rating"],
        "comment": body.get("comment"),
        "mine": viewer.resident_id is not None and body["author"] == viewer.resident_id,
        "version": record.version,
        "date_created": body["date_created"],
        "date_modified": body["date_modified"],
    }


class ReviewService:
    """Citizens' reviews and the per-place aggregate."""

    def __init__(self, repo: TourismRepository) -> None:
        self.repo = repo

    async def _active_place(self, place: str) -> None:
        record = await self.repo.get(PLACES, place)
        if record is None or record.body["state"] != "active":
            raise NotFound(f"Place {place} is not known.")

    async def put(self, viewer: Viewer, place: str, data: ReviewIn) -> tuple[Record, bool]:
        """Create or change the caller's review of a place; (review, created)."""
        author = viewer.require_resident()
        await self._active_place(place)
        rid = derived_id(place, author)
        for _ in range(RETRIES):
            current = await self.repo.get(REVIEWS, rid)
            at = now_iso()
            body = {
                "id": rid,
                "place": place,
                "author": author,
                "rating": data.rating,
                "comment": data.comment,
                "date_created": current.body["date_created"] if current else at,
                "date_modified": at,
            }
            try:
                if current is None:
                    record = (await self.repo.write([Create(REVIEWS, body, rid)]))[0]
                elif all(current.body.get(k) == body[k] for k in ("rating", "comment")):
                    return current, False
                else:
                    op = Update(REVIEWS, rid, body, current.version)
                    record = (await self.repo.write([op]))[0]
            except (AlreadyExists, VersionConflict):
                continue  # the same citizen's other request won; apply ours on top
            await self.refresh(place)
            return record, current is None
        raise Conflict("The review is being changed by another request; try again.")

    async def mine(self, viewer: Viewer, place: str) -> Record:
        """The caller's review of a place (404 when there is none)."""
        author = viewer.require_resident()
        record = await self.repo.get(REVIEWS, derived_id(place, author))
        if record is None:
            raise NotFound(f"You have not reviewed place {place}.")
        return record

    async def delete(self, viewer: Viewer, place: str) -> None:
        """Remove the caller's review of a place (idempotent)."""
        record = await self.mine(viewer, place)
        await self.repo.write([Delete(REVIEWS, record.id)])
        await self.refresh(place)

    async def page(
        self, place: str, limit: int, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """A place's reviews, newest first."""
        await self._active_place(place)
        query = Query(
            where=[Eq("place", place)],
            sort=[Sort("date", descending=True)],
            limit=limit,
            cursor=cursor,
        )
        found = await self.repo.search(REVIEWS, query)
        return list(found.items), found.next_cursor

    async def refresh(self, place: str) -> dict[str, Any]:
        """Recompute a place's aggregate from its reviews and store it (see the module
        docstring for why this settles under concurrent writers)."""
        for _ in range(RETRIES):
            current = await self.repo.get(RATINGS, place)
            tally = await self.repo.tally(REVIEWS, [Eq("place", place)], ["rating"])
            counts = tally.counts.get("rating", {})
            total = sum(int(value) * n for value, n in counts.items())
            body = {
                "place": place,
                "count": tally.total,
                "sum": total,
                "average": round(total / tally.total, 2) if tally.total else None,
            }
            if current is not None and dict(current.body) == body:
                return body
            op = (
                Create(RATINGS, body, place)
                if current is None
                else Update(RATINGS, place, body, current.version)
            )
            try:
                await self.repo.write([op])
            except (AlreadyExists, VersionConflict):
                continue
            return body
        raise Conflict("The place's rating is being updated by many requests; try again.")

    async def ratings(self, places: list[str]) -> dict[str, dict[str, Any]]:
        """Review count and average per place (places without reviews: count 0)."""
        found = await self.repo.many(RATINGS, places)
        out = {}
        for place in places:
            body = found[place].body if place in found else {}
            out[place] = {"count": body.get("count", 0), "average": body.get("average")}
        return out
