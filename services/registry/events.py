"""Domain events of the registry, written to the outbox in the same batch as the change.

The payloads are the shared contract of `shared/events/residents.py` (Event.key = resident
id): `resident.registered` and `resident.updated` carry the person as now,
`resident.moved` adds `from_community`. The phone is in clear: the feed is for service
accounts that need it (the health Patient's telecom); the national ID never leaves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.events.residents import RESIDENT_MOVED, ResidentMoved, ResidentSnapshot
from shared.storage import Event


def resident_payload(body: Mapping[str, Any], version: int) -> dict[str, Any]:
    """The state every resident event carries."""
    return {
        "resident_id": body["id"],
        "version": version,
        "name": {"zh": body["name"].get("zh"), "latin": body["name"].get("latin")},
        "sex": body["sex"],
        "birth_date": body["birth_date"],
        "status": body["status"],
        "deceased_date": body.get("deceased_date"),
        "community": body["address"]["community"],
        "phone": body.get("phone"),
        "address": body["address"]["line"],
    }


def resident_event(
    kind: str, body: Mapping[str, Any], version: int, *, from_community: str | None = None
) -> Event:
    """An outbox event for a resident's new version, checked against the shared models."""
    data = resident_payload(body, version)
    payload: ResidentSnapshot
    if kind == RESIDENT_MOVED:
        payload = ResidentMoved.model_validate({**data, "from_community": from_community})
    else:
        payload = ResidentSnapshot.model_validate(data)
    return Event(kind, body["id"], payload.to_payload())
