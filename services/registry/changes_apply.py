"""What applying a change request writes: the record updates and resident events of one
request, computed from the stored data and checked against the versions the request was
made on (optimistic concurrency).

The same plan validates a request when it is created, edited or submitted (nothing is
written then) and produces the batch when it is approved; so a request that was valid when
submitted and whose records have not changed since is still valid when it is applied.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from services.registry.audit import now_iso
from services.registry.events import resident_event
from services.registry.guards import refuse_merged
from services.registry.names import romanize
from services.registry.repository import HOUSEHOLDS, RESIDENTS, RegistryRepository
from services.registry.schemas import (
    HOUSEHOLD_ID,
    AddressIn,
    NameIn,
    NationalIdStr,
    PastDate,
    PhoneStr,
    Relationship,
    Sex,
    Status,
    Strict,
)
from services.registry.service import cross_check
from shared.errors import Conflict, Unprocessable
from shared.storage import Delete, Event, Record, Update, WriteOp

Kind = Literal["move", "correction", "household"]


class MoveChanges(Strict):
    """A move: a new address (another community is a move there) and/or a new status."""

    address: AddressIn | None = None
    status: Status | None = None
    deceased_date: PastDate | None = None

    @model_validator(mode="after")
    def _something(self) -> MoveChanges:
        if self.address is None and self.status is None:
            raise ValueError("give a new address, a new status or both")
        return self


class CorrectionChanges(Strict):
    """Corrected identity facts (`null` clears phone or national ID)."""

    name: NameIn | None = None
    sex: Sex | None = None
    birth_date: PastDate | None = None
    national_id: NationalIdStr | None = None
    phone: PhoneStr | None = None

    @model_validator(mode="after")
    def _something(self) -> CorrectionChanges:
        if not self.model_fields_set:
            raise ValueError("give at least one corrected field")
        for key in ("name", "sex", "birth_date"):
            if key in self.model_fields_set and getattr(self, key) is None:
                raise ValueError(f"{key} cannot be cleared")
        return self


class HouseholdChanges(Strict):
    """`new-head`: the resident becomes head of their household, the former head takes
    `former_head_relationship`. `move-member`: the resident moves to household `to` as
    `relationship` (a household of another community moves them there too)."""

    action: Literal["new-head", "move-member"]
    former_head_relationship: Relationship | None = None
    to: Annotated[str, Field(pattern=HOUSEHOLD_ID)] | None = None
    relationship: Relationship | None = None

    @model_validator(mode="after")
    def _complete(self) -> HouseholdChanges:
        if self.action == "new-head":
            if self.former_head_relationship in (None, "head"):
                raise ValueError("new-head needs former_head_relationship (not head)")
        else:
            if self.to is None:
                raise ValueError("move-member needs `to`, a household id such as H-00000001")
            if self.relationship in (None, "head"):
                raise ValueError("move-member needs a relationship other than head")
        return self


MODELS: dict[str, type[Strict]] = {
    "move": MoveChanges,
    "correction": CorrectionChanges,
    "household": HouseholdChanges,
}


def parse_changes(kind: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The validated changes of a request as stored (422 with `#/changes/...` pointers)."""
    try:
        model = MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        errors = [
            {
                "pointer": "#/changes" + "".join(f"/{p}" for p in e["loc"] if p != "__root__"),
                "message": e["msg"],
            }
            for e in exc.errors()
        ]
        raise Unprocessable("The changes are not valid.", errors=errors) from None
    return model.model_dump(mode="json", exclude_unset=True)


class StaleRequest(Conflict):
    """A record the request touches changed since the request was made."""


@dataclass
class Plan:
    """The writes of one request and what it touched."""

    ops: list[WriteOp] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    residents: list[str] = field(default_factory=list)
    communities: list[str] = field(default_factory=list)
    base: dict[str, dict[str, int]] = field(default_factory=lambda: {RESIDENTS: {}, HOUSEHOLDS: {}})


class Planner:
    """Builds the plan of one request; with `base`, every record it reads must still be at
    the version the request was made on."""

    def __init__(self, repo: RegistryRepository, base: Mapping[str, Mapping[str, int]] | None):
        self.repo = repo
        self.expected = base
        self.plan = Plan()

    def seen(self, record: Record) -> Record:
        """Note a record's version (and compare it with the request's)."""
        self.plan.base[record.collection][record.id] = record.version
        if self.expected is not None:
            was = self.expected.get(record.collection, {}).get(record.id)
            if was != record.version:
                what = "Resident" if record.collection == RESIDENTS else "Household"
                raise StaleRequest(
                    f"{what} {record.id} changed since the request was made"
                    f" (version {was} then, {record.version} now).",
                    record=record.id,
                    expected_version=was,
                    current_version=record.version,
                )
        return record

    async def resident(self, id: str) -> Record:
        """A resident the request touches (409 when gone or merged)."""
        record = await self.repo.resident(id)
        if record is None:
            raise Conflict(f"Resident {id} is not known.")
        refuse_merged(record.body)
        return self.seen(record)

    async def household(self, id: str, pointer: str) -> Record:
        """A household the request touches (422 when there is none)."""
        record = await self.repo.household(id)
        if record is None:
            raise Unprocessable(
                f"There is no household {id}.",
                errors=[{"pointer": pointer, "message": f"no household {id}"}],
            )
        return self.seen(record)

    def update(
        self, old: Record, new: dict[str, Any], *, from_community: str | None = None
    ) -> None:
        """Write a resident's new state with its event (`resident.moved` from elsewhere)."""
        new["updated_at"] = now_iso()
        self.plan.ops.append(Update(RESIDENTS, old.id, new, old.version))
        kind = "resident.moved" if from_community else "resident.updated"
        self.plan.events.append(
            resident_event(kind, new, old.version + 1, from_community=from_community)
        )
        self.plan.residents.append(old.id)

    async def leave(self, person: Record) -> None:
        """Take a resident out of their household: refused for a head with other members,
        and a household left empty is dissolved."""
        hh_id = person.body["household"]["id"]
        hh = await self.household(hh_id, "#/resident")
        if hh.body["head"] == person.id:
            if len(await self.repo.members(hh_id)) > 1:
                raise Conflict(
                    f"Resident {person.id} is the head of household {hh_id}: make another"
                    " member the head first (a household change request, action new-head)."
                )
            self.plan.ops.append(Delete(HOUSEHOLDS, hh_id, hh.version))
        else:
            self.plan.ops.append(touch(hh))


async def plan_change(
    repo: RegistryRepository,
    kind: str,
    resident: str,
    changes: Mapping[str, Any],
    base: Mapping[str, Mapping[str, int]] | None = None,
) -> Plan:
    """The writes that apply a request now (nothing is written here)."""
    planner = Planner(repo, base)
    person = await planner.resident(resident)
    planner.plan.communities.append(person.body["address"]["community"])
    if kind == "correction":
        await _correction(planner, person, CorrectionChanges.model_validate(changes))
    elif kind == "move":
        await _move(planner, person, MoveChanges.model_validate(changes))
    else:
        await _household(planner, person, HouseholdChanges.model_validate(changes))
    return planner.plan


async def _correction(p: Planner, person: Record, c: CorrectionChanges) -> None:
    cur = person.body
    new = dict(cur)
    given = c.model_fields_set
    if c.name is not None:
        latin = c.name.latin or (romanize(c.name.zh) if c.name.zh else None) or None
        new["name"] = {"zh": c.name.zh, "latin": latin}
    if c.sex is not None:
        new["sex"] = c.sex
    if c.birth_date is not None:
        new["birth_date"] = c.birth_date.isoformat()
    for key in ("national_id", "phone"):
        if key in given:
            new[key] = getattr(c, key)
    cross_check(date.fromisoformat(new["birth_date"]), new["sex"], new.get("national_id"))
    number = new.get("national_id")
    if number and number != cur.get("national_id"):
        holder = await p.repo.by_national_id(number)
        if holder is not None and holder.id != person.id:
            # Not naming the holder: they may be outside the submitter's reach.
            raise Conflict(
                "This national ID is already registered; ask the street office to resolve it.",
                errors=[{"pointer": "#/changes/national_id", "message": "already registered"}],
            )
    _require_change(cur, new)
    p.update(person, new)


async def _move(p: Planner, person: Record, m: MoveChanges) -> None:
    cur = person.body
    new = dict(cur)
    if m.address is not None:
        new["address"] = m.address.model_dump()
    if m.status is not None:
        new["status"] = m.status
    if "deceased_date" in m.model_fields_set:
        new["deceased_date"] = m.deceased_date.isoformat() if m.deceased_date else None
    elif new["status"] != "deceased":
        new["deceased_date"] = None
    _check_status(cur, new)
    old_place, place = cur["address"]["community"], new["address"]["community"]
    if place != old_place:
        await _check_community(p.repo, place)
        p.plan.communities.append(place)
        if cur.get("household"):
            await p.leave(person)
            new["household"] = None
    _require_change(cur, new)
    p.update(person, new, from_community=old_place if place != old_place else None)


async def _household(p: Planner, person: Record, h: HouseholdChanges) -> None:
    cur = person.body
    if not cur.get("household"):
        raise Unprocessable(
            f"Resident {person.id} belongs to no household.",
            errors=[{"pointer": "#/resident", "message": "in no household"}],
        )
    hh_id = cur["household"]["id"]
    if h.action == "new-head":
        hh = await p.household(hh_id, "#/resident")
        if hh.body["head"] == person.id:
            raise Unprocessable(
                f"Resident {person.id} is already the head of household {hh_id}.",
                errors=[{"pointer": "#/resident", "message": "already the head"}],
            )
        former = await p.resident(hh.body["head"])
        p.plan.ops.append(
            Update(
                HOUSEHOLDS,
                hh_id,
                {**hh.body, "head": person.id, "updated_at": now_iso()},
                hh.version,
            )
        )
        p.update(person, _joined(cur, hh_id, "head"))
        rel = h.former_head_relationship or "other"
        p.update(former, _joined(former.body, hh_id, rel))
        return
    to, relationship = h.to or "", h.relationship or "other"  # both checked by the model
    if to == hh_id:
        raise Unprocessable(
            "The resident is already in this household.",
            errors=[{"pointer": "#/changes/to", "message": "same household"}],
        )
    target = await p.household(to, "#/changes/to")
    await p.leave(person)
    p.plan.ops.append(touch(target))
    new = _joined(cur, to, relationship)
    old_place, place = cur["address"]["community"], target.body["community"]
    if place != old_place:
        # A household and its members live in one community: joining one elsewhere is a move.
        new["address"] = {"line": target.body["address"], "community": place}
        p.plan.communities.append(place)
    p.update(person, new, from_community=old_place if place != old_place else None)


async def _check_community(repo: RegistryRepository, code: str) -> None:
    place = await repo.place(code)
    if place is None or place.body.get("level") != "community":
        raise Unprocessable(
            f"There is no community {code}.",
            errors=[{"pointer": "#/changes/address/community", "message": "unknown community"}],
        )


def _check_status(cur: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    # The same rules as a direct status change (service._check_status), with pointers into
    # the request's changes.
    if cur["status"] == "deceased" and new["status"] != "deceased":
        raise Conflict("A deceased resident's status cannot be changed back.")
    at = "#/changes/deceased_date"
    if new["status"] == "deceased":
        if not new.get("deceased_date"):
            raise Unprocessable(
                "A death needs its date.", errors=[{"pointer": at, "message": "required"}]
            )
        if new["deceased_date"] < new["birth_date"]:
            raise Unprocessable(
                "Death before birth.", errors=[{"pointer": at, "message": "before the birth date"}]
            )
    elif new.get("deceased_date"):
        raise Unprocessable(
            "A death date needs status deceased.",
            errors=[{"pointer": at, "message": "only for status deceased"}],
        )


def _require_change(cur: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    if dict(cur) == dict(new):
        raise Unprocessable(
            "The request changes nothing: the record already says so.",
            errors=[{"pointer": "#/changes", "message": "no change"}],
        )


def touch(record: Record) -> Update:
    """A household's new version (membership changes bump it, as in households.py)."""
    return Update(HOUSEHOLDS, record.id, {**record.body, "updated_at": now_iso()}, record.version)


def _joined(body: Mapping[str, Any], household: str, relationship: str) -> dict[str, Any]:
    return {**body, "household": {"id": household, "relationship": relationship}}
