"""`GET /events`: a service's outbox served as a feed to the other services.

Each service writes its domain events in the same atomic store batch as the change
(`Store.write(ops, events)`); this router serves them, oldest first, to service accounts:

    GET /events?after=41&limit=100
    {"events": [{"seq": 42, "type": "resident.registered", "key": "R-00000001",
                 "payload": {...}, "at": "2025-05-03T10:00:00Z"}, ...],
     "next": 42}

`next` is the cursor to send as `after` next time (the last `seq` served, or `after` itself
when there was nothing new). See docs/events.md for the contract.
"""

# No `from __future__ import annotations`: FastAPI must resolve the route's Annotated
# parameters, one of which names `store`, a local of events_router.
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field

from shared.app import get_store
from shared.auth.deps import require_role
from shared.errors import problem_responses
from shared.storage import Store, StoredEvent

SERVICE_ROLE = "service"
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000  # the most either store adapter returns per call
# Both stores keep seq in a signed 64-bit integer; a larger cursor would be a 500, not a 422.
MAX_SEQ = 2**63 - 1

StoreProvider = Callable[..., Store]
"""A FastAPI dependency returning the store whose outbox is served."""


class FeedEvent(BaseModel):
    """One event of a feed, as served and as handed to a consumer's handler."""

    seq: int = Field(ge=1, description="Position in the feed; strictly increasing.")
    type: str = Field(description="Event type, e.g. `resident.registered`.")
    key: str = Field(description="The entity the event is about, e.g. a resident id.")
    payload: dict[str, Any] = Field(description="Type-specific body (docs/events.md).")
    at: datetime = Field(description="When the change was committed (UTC).")

    @classmethod
    def of(cls, event: StoredEvent) -> "FeedEvent":
        """The wire form of a stored outbox event."""
        return cls(
            seq=event.seq, type=event.type, key=event.key, payload=dict(event.payload), at=event.at
        )


class FeedPage(BaseModel):
    """One page of a feed and the cursor to continue from."""

    events: list[FeedEvent]
    next: int = Field(ge=0, description="Pass as `after` on the next call.")


def events_router(*, store: StoreProvider = get_store, path: str = "/events") -> APIRouter:
    """A router serving the outbox of `store` (default: the app's store, `app.state.store`).

    Needs `shared.auth.auth_lifespan` among the app's lifespan hooks (token validation).
    Only service accounts (realm role `service`) may read: 401 without a valid token,
    403 for anyone else.
    """
    router = APIRouter(tags=["events"], dependencies=[Depends(require_role(SERVICE_ROLE))])

    @router.get(
        path,
        summary="Domain events after a cursor (service accounts only)",
        response_model=FeedPage,
        responses=problem_responses(401, 403, 422),
    )
    async def read_events(
        response: Response,
        source: Annotated[Store, Depends(store)],
        after: Annotated[
            int, Query(ge=0, le=MAX_SEQ, description="Cursor: serve events with seq > after.")
        ] = 0,
        limit: Annotated[
            int, Query(ge=1, le=MAX_LIMIT, description="At most this many events.")
        ] = DEFAULT_LIMIT,
    ) -> FeedPage:
        events = await source.events(after, limit)
        # A cached page would hide events written since; every poll must reach the store.
        response.headers["Cache-Control"] = "no-store"
        return FeedPage(
            events=[FeedEvent.of(e) for e in events], next=events[-1].seq if events else after
        )

    return router
