"""The registry's resident events: one typed definition for the publisher and every consumer.

The registry (the master person index) publishes these on its `GET /events` feed; the
event `key` is the resident id. Payloads:

- `resident.registered`, `resident.updated`: a `ResidentSnapshot`, the resident as now;
- `resident.moved`: a `ResidentMoved`, the snapshot plus `from_community`;
- `resident.merged`: a `ResidentMerged`, one resident id retired into another.

`version` is the resident's version in the registry (1, 2, ...): consumers keep the version
they applied and ignore an event whose version they already have (at-least-once delivery).
Unknown members are ignored, so adding one is a compatible change; removing or changing one
is not (docs/events.md).
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from shared.events.feed import FeedEvent

logger = logging.getLogger(__name__)

RESIDENT_REGISTERED = "resident.registered"
RESIDENT_UPDATED = "resident.updated"
RESIDENT_MOVED = "resident.moved"
RESIDENT_MERGED = "resident.merged"
RESIDENT_EVENT_TYPES = frozenset(
    {RESIDENT_REGISTERED, RESIDENT_UPDATED, RESIDENT_MOVED, RESIDENT_MERGED}
)

ResidentId = Annotated[str, StringConstraints(pattern=r"^R-[0-9]{8,12}$")]
"""A registry resident id, e.g. `R-00000001`."""
CommunityCode = Annotated[str, StringConstraints(pattern=r"^[0-9]{6}/[0-9]{3}/[0-9]{3}$")]
"""district/street/community, e.g. `110101/002/007` (the token claim `jurisdiction` format)."""
Sex = Literal["male", "female", "unknown"]
Status = Literal["active", "moved-out", "deceased"]
_Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]


class _Payload(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_payload(self) -> dict[str, Any]:
        """The JSON payload to put in an `Event` (dates as ISO strings)."""
        return self.model_dump(mode="json")


class ResidentName(BaseModel):
    """A resident's name as registered: in Chinese characters and/or in Latin letters."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    zh: _Text | None = Field(default=None, description="e.g. 张伟 (family name first)")
    latin: _Text | None = Field(default=None, description="e.g. Zhang Wei, or a foreign name")


class ResidentSnapshot(_Payload):
    """Payload of `resident.registered` and `resident.updated`: the resident as now."""

    resident_id: ResidentId
    version: int = Field(ge=1)
    name: ResidentName
    sex: Sex
    birth_date: date
    status: Status
    deceased_date: date | None = None
    community: CommunityCode
    phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9][0-9 -]{2,30}$")] | None = None
    address: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
        | None
    ) = None

    @model_validator(mode="after")
    def _deceased_date_only_when_deceased(self) -> ResidentSnapshot:
        if self.deceased_date is not None and self.status != "deceased":
            raise ValueError("deceased_date is given but status is not deceased")
        return self


class ResidentMoved(ResidentSnapshot):
    """Payload of `resident.moved`: the snapshot after the move, and where from."""

    from_community: CommunityCode


class ResidentMerged(_Payload):
    """Payload of `resident.merged`: `resident_id` (a duplicate) is retired into `into`."""

    resident_id: ResidentId
    into: ResidentId
    version: int = Field(ge=1, description="The retired resident's version after the merge.")

    @model_validator(mode="after")
    def _not_into_itself(self) -> ResidentMerged:
        if self.resident_id == self.into:
            raise ValueError("a resident cannot be merged into itself")
        return self


ResidentEvent = ResidentSnapshot | ResidentMerged

_MODELS: dict[str, type[ResidentSnapshot] | type[ResidentMerged]] = {
    RESIDENT_REGISTERED: ResidentSnapshot,
    RESIDENT_UPDATED: ResidentSnapshot,
    RESIDENT_MOVED: ResidentMoved,
    RESIDENT_MERGED: ResidentMerged,
}


def parse_resident_event(event_type: str, payload: Any) -> ResidentEvent | None:
    """The typed payload of a resident event; None for other event types.

    Raises `pydantic.ValidationError` when the payload breaks the contract.
    """
    model = _MODELS.get(event_type)
    return None if model is None else model.model_validate(payload)


def resident_event_or_skip(event: FeedEvent) -> ResidentEvent | None:
    """A feed event as a typed resident event; None for other event types, and for a
    payload that breaks the contract, which is logged as an error and skipped: it will
    never become valid, and stopping the feed for it would stop every later resident."""
    try:
        return parse_resident_event(event.type, event.payload)
    except ValidationError as exc:
        logger.error(
            "registry event %d (%s %s) breaks the contract, skipped: %s",
            event.seq,
            event.type,
            event.key,
            exc.errors(include_url=False),
        )
        return None
