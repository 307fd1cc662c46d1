"""Business rules of the resident registry: registration with duplicate detection,
reads with masking, versioned updates and moves, history, search and counts.

Every change is one atomic store batch: the record, the counter that numbered it, its
audit entry and its domain event (`resident.registered`, `resident.updated`,
`resident.moved`), so the feed and the trail never disagree with the data.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from services.registry import national_id
from services.registry.access import Access
from services.registry.audit import AuditQueue, as_op, entry, now_iso
from services.registry.events import resident_event
from services.registry.guards import redirect_merged, refuse_merged, require_direct_edit
from services.registry.names import match_forms, romanize
from services.registry.repository import RESIDENTS, RegistryRepository
from services.registry.schemas import NameIn, RegisterResident, UpdateResident
from shared.errors import Conflict, NotFound, ServiceUnavailable, Unprocessable
from shared.etags import check_if_match
from shared.storage import (
    AlreadyExists,
    Create,
    Record,
    UniqueViolation,
    Update,
    VersionConflict,
    WriteOp,
)

# Concurrent registrations race for the counter; a loser retries after a short random
# pause (so that the same writers do not collide again in lockstep).
WRITE_ATTEMPTS = 20


async def backoff(attempt: int) -> None:
    """Sleep a random while, longer after each lost race (at most about 0.2 s)."""
    await asyncio.sleep(random.uniform(0, 0.01 * min(attempt + 1, 20)))


@dataclass
class Caller:
    """Who is calling, their reach, and what was looked up for them in this request."""

    access: Access
    client: str | None = None
    _household: dict[str, str | None] = field(default_factory=dict)


class RegistryService:
    """Residents: registration, reads, updates, history."""

    def __init__(self, repo: RegistryRepository, audit: AuditQueue) -> None:
        self.repo = repo
        self.audit = audit

    # reach

    async def own_household(self, caller: Caller) -> str | None:
        """A citizen's household id (looked up once per request)."""
        own = caller.access.citizen_id
        if own is None:
            return None
        if own not in caller._household:
            record = await self.repo.resident(own)
            hh = (record.body.get("household") or {}).get("id") if record else None
            caller._household[own] = hh
        return caller._household[own]

    async def readable(self, caller: Caller, body: Mapping[str, Any]) -> bool:
        """Whether the caller may read this resident record."""
        access = caller.access
        if access.reads_place(body["address"]["community"]):
            return True
        if access.citizen_id is None:
            return False
        if body["id"] == access.citizen_id:
            return True
        hh = (body.get("household") or {}).get("id")
        return hh is not None and hh == await self.own_household(caller)

    async def load(self, caller: Caller, id: str, action: str) -> Record:
        """A resident the caller may read; 404 otherwise (and the attempt is audited)."""
        caller.access.require_registry()
        record = await self.repo.resident(id)
        if record is None or not await self.readable(caller, record.body):
            if record is not None:
                self.audit.add(
                    entry(
                        caller.access,
                        action,
                        [id],
                        outcome="denied",
                        status=404,
                        client=caller.client,
                    )
                )
            raise NotFound(f"Resident {id} is not known.")
        return record

    def view(
        self, caller: Caller, record: Record, readable: set[str] | None = None
    ) -> dict[str, Any]:
        """A record as the caller may see it (masking; review candidates in reach only)."""
        b = record.body
        full = caller.access.unmasked(b)
        nid, phone = b.get("national_id"), b.get("phone")
        review = b.get("review")
        if review is not None:
            if caller.access.citizen_id is not None and caller.access.scope is None:
                review = None  # an internal matter of the registry staff
            else:
                shown = [
                    {"resident_id": c["resident_id"], "reasons": c["reasons"]}
                    for c in review.get("candidates", [])
                    if caller.access.reads_place(c["community"])
                ]
                review = {"status": review["status"], "candidates": shown}
        return {
            "id": record.id,
            "version": record.version,
            "name": b["name"],
            "sex": b["sex"],
            "birth_date": b["birth_date"],
            "national_id": nid if full or nid is None else national_id.mask(nid),
            "phone": phone if full or phone is None else mask_phone(phone),
            "address": b["address"],
            "status": b["status"],
            "deceased_date": b.get("deceased_date"),
            "household": b.get("household"),
            "review": review,
            "merged_into": b.get("merged_into"),
            "account": _account_ref(b.get("account")),
            "masked": not full,
            "registered_at": b["registered_at"],
            "updated_at": b["updated_at"],
        }

    # registration

    async def check_community(self, code: str, pointer: str) -> Mapping[str, Any]:
        """The community document; 422 naming the field when there is no such community."""
        place = await self.repo.place(code)
        if place is None or place.body.get("level") != "community":
            raise Unprocessable(
                f"There is no community {code}.",
                errors=[{"pointer": pointer, "message": f"unknown community {code}"}],
            )
        return place.body

    async def register(
        self, caller: Caller, data: RegisterResident, *, resident_id: str | None = None
    ) -> Record:
        """Register a resident (201), flagged for review when probable duplicates exist."""
        access = caller.access
        access.require_writer()
        community = data.address.community
        await self.check_community(community, "#/address/community")
        access.require_write_place(community)
        cross_check(data.birth_date, data.sex, data.national_id)
        if data.national_id:
            await self._refuse_taken_id(caller, data.national_id)
        name = _stored_name(data.name)
        birth = data.birth_date.isoformat()
        forms = [f"{f}|{birth}" for f in match_forms(name.get("zh"), name.get("latin"))]
        candidates = await self.repo.probable_duplicates(forms, data.phone)
        at = now_iso()
        body: dict[str, Any] = {
            "name": name,
            "sex": data.sex,
            "birth_date": birth,
            "national_id": data.national_id,
            "phone": data.phone,
            "address": data.address.model_dump(),
            "status": "active",
            "deceased_date": None,
            "household": None,
            "review": _review(candidates, forms, data.phone),
            "registered_at": at,
            "updated_at": at,
        }
        for attempt in range(WRITE_ATTEMPTS):
            if resident_id is None:
                rid = await self.repo.next_number("resident", "R")
                counter_ops: list[WriteOp] = []
            else:
                rid = resident_id
                bump = await self.repo.bump_counter("resident", int(rid[2:]))
                counter_ops = [bump] if bump else []
            doc = {"id": rid, **body}
            audit = entry(access, "resident.register", [rid], status=201, client=caller.client)
            ops = [*counter_ops, Create(RESIDENTS, doc, rid), as_op(audit)]
            event = resident_event("resident.registered", doc, 1)
            try:
                return (await self.repo.write(ops, [event]))[len(counter_ops)]
            except UniqueViolation:
                await self._refuse_taken_id(caller, data.national_id or "")
                raise
            except (VersionConflict, AlreadyExists):
                if resident_id is not None:
                    raise
                await backoff(attempt)  # the number was taken otherwise (an explicit id)
        raise ServiceUnavailable("Too many concurrent registrations; try again.")

    async def _refuse_taken_id(self, caller: Caller, number: str) -> None:
        existing = await self.repo.by_national_id(number) if number else None
        if existing is None:
            return
        if await self.readable(caller, existing.body):
            raise Conflict(
                f"National ID already registered as resident {existing.id}.",
                errors=[{"pointer": "#/national_id", "message": "already registered"}],
                resident_id=existing.id,
            )
        # Outside the caller's reach: say that the number is taken, not by whom or where.
        raise Conflict(
            "This national ID is already registered; ask the street office to resolve it.",
            errors=[{"pointer": "#/national_id", "message": "already registered"}],
        )

    # reads

    async def read(self, caller: Caller, id: str) -> Record:
        """A full record (audited)."""
        await self.audit.room()
        record = await self.load(caller, id, "resident.read")
        redirect_merged(record.body)  # a retired id now names the survivor
        self.audit.add(entry(caller.access, "resident.read", [id], client=caller.client))
        return record

    async def history(
        self, caller: Caller, id: str, *, limit: int, before: int | None
    ) -> list[Record]:
        """Versions of a record, newest first (audited as a read)."""
        await self.audit.room()
        await self.load(caller, id, "resident.history")
        versions = await self.repo.resident_history(id, limit=limit, before_version=before)
        self.audit.add(entry(caller.access, "resident.history", [id], client=caller.client))
        return versions

    # changes

    async def update(
        self, caller: Caller, id: str, patch: UpdateResident, if_match: str | None
    ) -> Record:
        """Apply the members given; a new community is a move (`resident.moved`)."""
        record = await self.load(caller, id, "resident.update")
        access = caller.access
        access.require_writer()
        current = record.body
        access.require_write_place(current["address"]["community"])
        refuse_merged(current)
        check_if_match(if_match, record.version, f"resident {id}")
        given = patch.model_fields_set
        new = dict(current)
        if "name" in given and patch.name is not None:
            new["name"] = _stored_name(patch.name)
        for key in ("sex", "birth_date", "status"):
            value = getattr(patch, key)
            if key in given and value is not None:
                new[key] = value.isoformat() if isinstance(value, date) else value
        for key in ("national_id", "phone"):
            if key in given:
                new[key] = getattr(patch, key)
        if "deceased_date" in given:
            dd = patch.deceased_date
            new["deceased_date"] = dd.isoformat() if dd else None
        old_place = current["address"]["community"]
        if "address" in given and patch.address is not None:
            new["address"] = patch.address.model_dump()
        place = new["address"]["community"]
        if place != old_place:
            await self.check_community(place, "#/address/community")
            access.require_write_place(place)
            if current.get("household"):
                raise Conflict(
                    f"Resident {id} belongs to household {current['household']['id']}:"
                    " remove them from it before moving them to another community."
                )
        _check_status(current, new)
        require_direct_edit(access, current, new)
        cross_check(date.fromisoformat(new["birth_date"]), new["sex"], new.get("national_id"))
        if new.get("national_id") and new["national_id"] != current.get("national_id"):
            await self._refuse_taken_id(caller, new["national_id"])
        if new == current:
            return record
        new["updated_at"] = now_iso()
        moved = place != old_place
        kind = "resident.moved" if moved else "resident.updated"
        audit = entry(
            access,
            kind,
            [id],
            client=caller.client,
            detail=f"{old_place} -> {place}" if moved else None,
        )
        event = resident_event(
            kind, new, record.version + 1, from_community=old_place if moved else None
        )
        ops: list[WriteOp] = [Update(RESIDENTS, id, new, record.version), as_op(audit)]
        try:
            return (await self.repo.write(ops, [event]))[0]
        except UniqueViolation:
            await self._refuse_taken_id(caller, new.get("national_id") or "")
            raise
        except VersionConflict:
            raise Conflict(
                f"Resident {id} was changed by someone else meanwhile; read it and try again."
            ) from None


def _account_ref(link: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not link:
        return None
    return {"username": link["username"], "linked_at": link["linked_at"]}


def mask_phone(phone: str) -> str:
    """`138****8000`."""
    return phone[:3] + "*" * max(0, len(phone) - 7) + phone[-4:] if len(phone) > 7 else "****"


def _stored_name(name: NameIn) -> dict[str, str | None]:
    latin = name.latin or (romanize(name.zh) if name.zh else None) or None
    return {"zh": name.zh, "latin": latin}


def cross_check(birth: date, sex: str, number: str | None) -> None:
    """422 when the national ID disagrees with the birth date or sex given beside it."""
    if not number:
        return
    decoded = national_id.parse(number)
    errors = []
    if decoded.birth_date != birth:
        errors.append(
            {
                "pointer": "#/birth_date",
                "message": f"does not match the birth date in the national ID"
                f" ({decoded.birth_date.isoformat()})",
            }
        )
    if sex in ("male", "female") and decoded.sex != sex:
        errors.append(
            {"pointer": "#/sex", "message": f"the national ID is that of a {decoded.sex} person"}
        )
    if errors:
        raise Unprocessable("The national ID does not match the person's data.", errors=errors)


def _check_status(current: Mapping[str, Any], new: dict[str, Any]) -> None:
    if current["status"] == "deceased" and new["status"] != "deceased":
        raise Conflict("A deceased resident's status cannot be changed back here.")
    errors = []
    if new["status"] == "deceased":
        if not new.get("deceased_date"):
            errors.append({"pointer": "#/deceased_date", "message": "required for deceased"})
        elif new["deceased_date"] < new["birth_date"]:
            errors.append({"pointer": "#/deceased_date", "message": "before the birth date"})
    elif new.get("deceased_date"):
        errors.append({"pointer": "#/deceased_date", "message": "only for status deceased"})
    if errors:
        raise Unprocessable("The status and dates do not fit together.", errors=errors)


def _review(
    candidates: Sequence[Record], forms: Sequence[str], phone: str | None
) -> dict[str, Any] | None:
    if not candidates:
        return None
    listed = []
    for c in candidates:
        b = c.body
        theirs = {
            f"{f}|{b['birth_date']}"
            for f in match_forms(b["name"].get("zh"), b["name"].get("latin"))
        }
        reasons = []
        if theirs & set(forms):
            reasons.append("name+birth_date")
        if phone and b.get("phone") == phone:
            reasons.append("phone")
        listed.append(
            {"resident_id": c.id, "reasons": reasons, "community": b["address"]["community"]}
        )
    return {"status": "pending", "candidates": listed}
