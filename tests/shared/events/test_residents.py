"""The registry's resident event payloads: what the contract accepts and refuses."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from pydantic import ValidationError

from shared.events.residents import (
    RESIDENT_MERGED,
    RESIDENT_MOVED,
    RESIDENT_REGISTERED,
    ResidentMerged,
    ResidentMoved,
    ResidentSnapshot,
    parse_resident_event,
)


def snapshot(**changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resident_id": "R-00000001",
        "version": 3,
        "name": {"zh": "张伟", "latin": "Zhang Wei"},
        "sex": "male",
        "birth_date": "1980-01-02",
        "status": "active",
        "deceased_date": None,
        "community": "110101/002/007",
        "phone": "13800138000",
        "address": "东城区景山前街4号",
    }
    body.update(changes)
    return body


def test_a_snapshot_round_trips_as_the_payload() -> None:
    parsed = parse_resident_event(RESIDENT_REGISTERED, snapshot())
    assert isinstance(parsed, ResidentSnapshot)
    assert parsed.birth_date == date(1980, 1, 2)
    assert parsed.name.zh == "张伟"
    assert parsed.to_payload() == snapshot()


def test_optional_members_and_unknown_members() -> None:
    parsed = parse_resident_event(
        "resident.updated",
        snapshot(name={"zh": None, "latin": "Anna Schmidt"}, phone=None, address=None, extra=1),
    )
    assert isinstance(parsed, ResidentSnapshot)
    assert parsed.name.zh is None
    assert "extra" not in parsed.to_payload()  # added members are ignored: compatible


def test_moved_and_merged() -> None:
    moved = parse_resident_event(RESIDENT_MOVED, snapshot(from_community="110101/001/001"))
    assert isinstance(moved, ResidentMoved)
    assert moved.from_community == "110101/001/001"
    with pytest.raises(ValidationError):
        parse_resident_event(RESIDENT_MOVED, snapshot())  # from_community is required
    merged = parse_resident_event(
        RESIDENT_MERGED, {"resident_id": "R-00000002", "into": "R-00000001", "version": 4}
    )
    assert merged == ResidentMerged(resident_id="R-00000002", into="R-00000001", version=4)
    with pytest.raises(ValidationError):
        ResidentMerged(resident_id="R-00000002", into="R-00000002", version=1)


def test_other_event_types_are_not_resident_events() -> None:
    assert parse_resident_event("household.created", {"anything": 1}) is None


@pytest.mark.parametrize(
    "changes",
    [
        {"resident_id": "00000001"},
        {"version": 0},
        {"sex": "m"},
        {"status": "gone"},
        {"birth_date": "1980-13-01"},
        {"community": "110101-002-007"},
        {"deceased_date": "2020-01-01"},  # but status active
        {"phone": "call me"},
        {"name": {"zh": ""}},
    ],
)
def test_contract_violations_are_refused(changes: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_resident_event(RESIDENT_REGISTERED, snapshot(**changes))


def test_deceased_with_and_without_a_date() -> None:
    dead = parse_resident_event(
        RESIDENT_REGISTERED, snapshot(status="deceased", deceased_date="2020-05-01")
    )
    assert isinstance(dead, ResidentSnapshot)
    assert dead.deceased_date == date(2020, 5, 1)
    assert parse_resident_event(RESIDENT_REGISTERED, snapshot(status="deceased")) is not None
