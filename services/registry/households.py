"""Households: members with their relationship to the head, exactly one head, and each
resident in at most one household.

Membership is stored on the resident record (`household: {id, relationship}`), so "at most
one household" holds by construction: a resident has one such member, and two concurrent
changes to the same person collide on the record's version. The household document holds
the community, the address and the head (one field: one head). A change writes the
household, every resident it touches, their `resident.updated` events and the audit entry
in one atomic batch. A household lives in one community, and so do its members.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.registry.audit import as_op, entry, now_iso
from services.registry.events import resident_event
from services.registry.repository import HOUSEHOLDS, RESIDENTS, RegistryRepository
from services.registry.schemas import AddMember, CreateHousehold, MoveMember, UpdateHousehold
from services.registry.service import WRITE_ATTEMPTS, Caller, RegistryService, backoff
from shared.errors import Conflict, NotFound, Unprocessable
from shared.etags import check_if_match
from shared.storage import (
    AlreadyExists,
    Create,
    Delete,
    Event,
    Record,
    Update,
    VersionConflict,
    WriteOp,
)


class HouseholdService:
    """Household rules on top of the resident registry."""

    def __init__(self, residents: RegistryService) -> None:
        self.residents = residents
        self.repo: RegistryRepository = residents.repo

    async def readable(self, caller: Caller, body: Mapping[str, Any]) -> bool:
        """Staff in reach of its community, everyone who reads all, and its own members."""
        if caller.access.reads_place(body["community"]):
            return True
        return (
            caller.access.citizen_id is not None
            and await self.residents.own_household(caller) == body["id"]
        )

    async def load(self, caller: Caller, id: str, *, write: bool = False) -> Record:
        """A household the caller may see (404 otherwise), and may change when `write`."""
        caller.access.require_registry()
        record = await self.repo.household(id)
        if record is None or not await self.readable(caller, record.body):
            raise NotFound(f"Household {id} is not known.")
        if write:
            caller.access.require_writer()
            caller.access.require_write_place(record.body["community"])
        return record

    async def read(self, caller: Caller, id: str) -> tuple[Record, list[Record]]:
        """A household and its members (audited as a read of the members' data)."""
        await self.residents.audit.room()
        record = await self.load(caller, id)
        members = await self.repo.members(id)
        self.residents.audit.add(
            entry(caller.access, "household.read", [m.id for m in members], client=caller.client)
        )
        return record, members

    async def of_resident(self, caller: Caller, resident: str) -> tuple[Record, list[Record]]:
        """The household a resident belongs to (404 when none or not readable)."""
        person = await self.residents.load(caller, resident, "household.read")
        hh = (person.body.get("household") or {}).get("id")
        if hh is None:
            raise NotFound(f"Resident {resident} belongs to no household.")
        return await self.read(caller, hh)

    async def _candidates(
        self, caller: Caller, ids: Sequence[str], community: str, pointer: str
    ) -> dict[str, Record]:
        found = await self.repo.residents(ids)
        errors = []
        for i, rid in enumerate(ids):
            at = pointer.format(i=i)
            r = found.get(rid)
            if r is None or not await self.residents.readable(caller, r.body):
                errors.append({"pointer": at, "message": f"no resident {rid} in your reach"})
            elif r.body["address"]["community"] != community:
                errors.append({"pointer": at, "message": f"{rid} lives in another community"})
            elif r.body.get("merged_into"):
                # A retired duplicate: the survivor is the person to put in a household.
                into = r.body["merged_into"]
                errors.append({"pointer": at, "message": f"{rid} was merged into {into}"})
            elif r.body.get("household"):
                hh = r.body["household"]["id"]
                raise Conflict(
                    f"Resident {rid} already belongs to household {hh}.",
                    errors=[{"pointer": at, "message": f"already in household {hh}"}],
                    household=hh,
                )
        if errors:
            raise Unprocessable("Some members cannot be put in this household.", errors=errors)
        return found

    async def _commit(
        self,
        caller: Caller,
        action: str,
        ops: list[WriteOp],
        people: Sequence[tuple[Record, dict[str, Any]]],
    ) -> list[Record]:
        events: list[Event] = []
        for old, new in people:
            ops.append(Update(RESIDENTS, old.id, new, old.version))
            events.append(resident_event("resident.updated", new, old.version + 1))
        audit = entry(caller.access, action, [p.id for p, _ in people], client=caller.client)
        ops.append(as_op(audit))
        try:
            return await self.repo.write(ops, events)
        except (VersionConflict, AlreadyExists):
            raise Conflict(
                "The household or one of its members was changed meanwhile; read it and retry."
            ) from None

    async def create(self, caller: Caller, data: CreateHousehold) -> Record:
        """A new household with its members (exactly one head)."""
        access = caller.access
        access.require_writer()
        await self.residents.check_community(data.community, "#/community")
        access.require_write_place(data.community)
        ids = [m.resident_id for m in data.members]
        found = await self._candidates(caller, ids, data.community, "#/members/{i}/resident_id")
        head = next(m.resident_id for m in data.members if m.relationship == "head")
        for attempt in range(WRITE_ATTEMPTS):
            hid, counter = await self.repo.allocate("household", "H")
            body = {
                "id": hid,
                "community": data.community,
                "address": data.address,
                "head": head,
                "created_at": now_iso(),
                "updated_at": now_iso(),
            }
            people = [
                (found[m.resident_id], _joined(found[m.resident_id], hid, m.relationship))
                for m in data.members
            ]
            ops: list[WriteOp] = [counter, Create(HOUSEHOLDS, body, hid)]
            try:
                return (await self._commit(caller, "household.create", ops, people))[1]
            except Conflict:
                if await self.repo.household(hid) is None and all(
                    not (r.body.get("household")) for r in (await self.repo.residents(ids)).values()
                ):
                    await backoff(attempt)  # only the household number was taken meanwhile
                    continue
                raise
        raise Conflict("Too many concurrent household registrations; try again.")

    async def add_member(
        self, caller: Caller, id: str, data: AddMember, if_match: str | None
    ) -> Record:
        """Add a resident (not as head: the head changes through PATCH)."""
        record = await self.load(caller, id, write=True)
        check_if_match(if_match, record.version, f"household {id}")
        if data.relationship == "head":
            raise Unprocessable(
                "The household already has a head; change the head with PATCH.",
                errors=[{"pointer": "#/relationship", "message": "household already has a head"}],
            )
        found = await self._candidates(
            caller, [data.resident_id], record.body["community"], "#/resident_id"
        )
        person = found[data.resident_id]
        ops: list[WriteOp] = [_touch(record)]
        people = [(person, _joined(person, id, data.relationship))]
        return (await self._commit(caller, "household.add-member", ops, people))[0]

    async def remove_member(
        self, caller: Caller, id: str, resident: str, if_match: str | None
    ) -> Record | None:
        """Remove a member; removing the last one dissolves the household (None)."""
        record = await self.load(caller, id, write=True)
        check_if_match(if_match, record.version, f"household {id}")
        members = {m.id: m for m in await self.repo.members(id)}
        if resident not in members:
            raise NotFound(f"Resident {resident} is not a member of household {id}.")
        dissolve = self._leaving(record, resident, members)
        ops: list[WriteOp] = [
            Delete(HOUSEHOLDS, id, record.version) if dissolve else _touch(record)
        ]
        people = [(members[resident], _left(members[resident]))]
        written = await self._commit(caller, "household.remove-member", ops, people)
        return None if dissolve else written[0]

    @staticmethod
    def _leaving(record: Record, resident: str, members: dict[str, Record]) -> bool:
        """Whether `resident` leaving dissolves the household; 409 for a head with others."""
        if record.body["head"] != resident:
            return False
        if len(members) > 1:
            raise Conflict(
                f"Resident {resident} is the head of household {record.id}: make another"
                " member the head first (PATCH relationships)."
            )
        return True

    async def move_member(
        self, caller: Caller, id: str, resident: str, data: MoveMember, if_match: str | None
    ) -> Record:
        """Move a member to another household of the same community, atomically."""
        source = await self.load(caller, id, write=True)
        check_if_match(if_match, source.version, f"household {id}")
        if data.to == id:
            raise Unprocessable(
                "The resident is already in this household.",
                errors=[{"pointer": "#/to", "message": "same household"}],
            )
        target = await self.load(caller, data.to, write=True)
        if data.relationship == "head":
            raise Unprocessable(
                "The target household already has a head.",
                errors=[{"pointer": "#/relationship", "message": "household already has a head"}],
            )
        if target.body["community"] != source.body["community"]:
            raise Unprocessable(
                "Households of another community are reached by moving the resident first.",
                errors=[{"pointer": "#/to", "message": "household in another community"}],
            )
        members = {m.id: m for m in await self.repo.members(id)}
        if resident not in members:
            raise NotFound(f"Resident {resident} is not a member of household {id}.")
        dissolve = self._leaving(source, resident, members)
        ops: list[WriteOp] = [
            Delete(HOUSEHOLDS, id, source.version) if dissolve else _touch(source),
            _touch(target),
        ]
        person = members[resident]
        people = [(person, _joined(person, data.to, data.relationship))]
        return (await self._commit(caller, "household.move-member", ops, people))[1]

    async def update(
        self, caller: Caller, id: str, data: UpdateHousehold, if_match: str | None
    ) -> Record:
        """New address and/or relationships; exactly one head must remain."""
        record = await self.load(caller, id, write=True)
        check_if_match(if_match, record.version, f"household {id}")
        body = dict(record.body)
        if data.address is not None:
            body["address"] = data.address
        people: list[tuple[Record, dict[str, Any]]] = []
        if data.relationships:
            members = {m.id: m for m in await self.repo.members(id)}
            unknown = [r for r in data.relationships if r not in members]
            if unknown:
                raise Unprocessable(
                    "Relationships name residents who are not members.",
                    errors=[
                        {"pointer": f"#/relationships/{r}", "message": "not a member"}
                        for r in unknown
                    ],
                )
            final = {
                m: data.relationships.get(m, r.body["household"]["relationship"])
                for m, r in members.items()
            }
            heads = [m for m, rel in final.items() if rel == "head"]
            if len(heads) != 1:
                raise Unprocessable(
                    "A household has exactly one head.",
                    errors=[{"pointer": "#/relationships", "message": f"{len(heads)} heads"}],
                )
            body["head"] = heads[0]
            for m, rel in data.relationships.items():
                if rel != members[m].body["household"]["relationship"]:
                    people.append((members[m], _joined(members[m], id, rel)))
        if body == record.body and not people:
            return record
        body["updated_at"] = now_iso()
        ops: list[WriteOp] = [Update(HOUSEHOLDS, id, body, record.version)]
        return (await self._commit(caller, "household.update", ops, people))[0]


def _touch(record: Record) -> Update:
    # Membership changes bump the household's version too, so its ETag covers its members.
    return Update(HOUSEHOLDS, record.id, {**record.body, "updated_at": now_iso()}, record.version)


def _joined(person: Record, household: str, relationship: str) -> dict[str, Any]:
    return {
        **person.body,
        "household": {"id": household, "relationship": relationship},
        "updated_at": now_iso(),
    }


def _left(person: Record) -> dict[str, Any]:
    return {**person.body, "household": None, "updated_at": now_iso()}
