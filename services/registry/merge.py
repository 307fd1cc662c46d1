"""Merging duplicates: `POST /residents/{survivor}/merge {"duplicate": id}` retires the
duplicate into the survivor (docs/registry.md, "Merge").

One atomic batch: the retired record becomes status `merged` with `merged_into` (its
history stays under its id; reads of it answer 301 to the survivor), the survivor records
`merged_from` and takes over the duplicate's household place when it has none, both review
flags are resolved, and the feed gets `resident.merged` for the retired id and
`resident.updated` for the survivor, with the audit entry.

The national ID never moves between the two records: the survivor must be the record that
holds it. A move would be one value leaving one document and joining another in one batch,
which the MongoDB adapter cannot make atomic (it claims a value before releasing it, see
docs/registry.md, "Households"); so when only the duplicate has a number, the answer is 409
naming the merge the other way round, which the caller can send instead.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from pydantic import Field

from services.registry.audit import as_op, entry, now_iso
from services.registry.events import resident_event
from services.registry.guards import MERGED
from services.registry.places import split
from services.registry.repository import HOUSEHOLDS, RESIDENTS, RegistryRepository
from services.registry.schemas import RESIDENT_ID, Strict
from services.registry.service import Caller, RegistryService
from shared.errors import Conflict, Forbidden, Unprocessable
from shared.etags import check_if_match
from shared.events.residents import RESIDENT_MERGED, ResidentMerged
from shared.storage import Delete, Event, Record, UniqueViolation, Update, VersionConflict, WriteOp


class MergeRequest(Strict):
    """Body of `POST /residents/{id}/merge`: the duplicate to retire into `{id}`."""

    duplicate: Annotated[str, Field(pattern=RESIDENT_ID)]


class MergeService:
    """Retires duplicate residents into the record that stays."""

    def __init__(self, residents: RegistryService) -> None:
        self.residents = residents
        self.repo: RegistryRepository = residents.repo

    async def merge(
        self, caller: Caller, survivor_id: str, duplicate_id: str, if_match: str | None
    ) -> Record:
        """Retire `duplicate_id` into `survivor_id`; the survivor's new version."""
        access = caller.access
        if survivor_id == duplicate_id:
            raise Unprocessable(
                "A resident cannot be merged into itself.",
                errors=[{"pointer": "#/duplicate", "message": "same resident"}],
            )
        # Both must be readable (404 otherwise, as for any record out of reach); an officer
        # who reads both covers both, so the write below stays within their jurisdiction.
        survivor = await self.residents.load(caller, survivor_id, "resident.merge")
        retired = await self.residents.load(caller, duplicate_id, "resident.merge")
        _require_officer(caller)
        for r in (survivor, retired):
            access.require_write_place(r.body["address"]["community"])
        check_if_match(if_match, survivor.version, f"resident {survivor_id}")
        _check_mergeable(survivor, retired)
        s_new, r_new = dict(survivor.body), dict(retired.body)
        ops: list[WriteOp] = await self._households(survivor, retired, s_new)
        at = now_iso()
        if not s_new.get("phone") and r_new.get("phone"):
            s_new["phone"] = r_new["phone"]  # fill a gap; the survivor's own data wins
        s_new["review"] = _resolved(s_new.get("review"), duplicate_id)
        s_new["merged_from"] = [*(s_new.get("merged_from") or []), duplicate_id]
        s_new["updated_at"] = at
        r_new.update(
            status=MERGED,
            merged_into=survivor_id,
            household=None,
            # Whatever else it was suspected to duplicate, a merged record is settled.
            review={**r_new["review"], "status": "resolved"} if r_new.get("review") else None,
            updated_at=at,
        )
        ops += [
            Update(RESIDENTS, survivor_id, s_new, survivor.version),
            Update(RESIDENTS, duplicate_id, r_new, retired.version),
        ]
        audit = entry(
            access,
            "resident.merge",
            [duplicate_id, survivor_id],
            client=caller.client,
            detail=f"{duplicate_id} merged into {survivor_id}",
        )
        ops.append(as_op(audit))
        merged = ResidentMerged(
            resident_id=duplicate_id, into=survivor_id, version=retired.version + 1
        )
        events = [
            Event(RESIDENT_MERGED, duplicate_id, merged.to_payload()),
            resident_event("resident.updated", s_new, survivor.version + 1),
        ]
        try:
            written = await self.repo.write(ops, events)
        except (VersionConflict, UniqueViolation):
            raise Conflict(
                "One of the residents or their household changed meanwhile; read them and retry."
            ) from None
        return next(r for r in written if r.id == survivor_id)

    async def _households(
        self, survivor: Record, retired: Record, s_new: dict[str, Any]
    ) -> list[WriteOp]:
        """The retired record's household place goes to the survivor when the survivor has
        none and lives in the same community; otherwise the retired record just leaves."""
        ref = retired.body.get("household")
        if not ref:
            return []
        hh = await self.repo.household(ref["id"])
        if hh is None:
            return []
        takes_over = (
            not survivor.body.get("household")
            and survivor.body["address"]["community"] == hh.body["community"]
        )
        body = {**hh.body, "updated_at": now_iso()}
        if takes_over:
            s_new["household"] = dict(ref)
            if hh.body["head"] == retired.id:
                body["head"] = survivor.id
            return [Update(HOUSEHOLDS, hh.id, body, hh.version)]
        if hh.body["head"] == retired.id:
            if len(await self.repo.members(hh.id)) > 1:
                raise Conflict(
                    f"Resident {retired.id} is the head of household {hh.id}, and"
                    f" {survivor.id} cannot take the place (already in a household, or in"
                    " another community): make another member the head first."
                )
            return [Delete(HOUSEHOLDS, hh.id, hh.version)]
        return [Update(HOUSEHOLDS, hh.id, body, hh.version)]


def _require_officer(caller: Caller) -> None:
    access = caller.access
    access.require_writer()
    parts = split(access.scope) if access.scope else None
    if access.is_admin or (parts is not None and len(parts) <= 2):
        return
    raise Forbidden(
        "Duplicates are merged by the street officer or district officer of both residents."
    )


def _check_mergeable(survivor: Record, retired: Record) -> None:
    s, r = survivor.body, retired.body
    if r["status"] == MERGED:
        raise Conflict(
            f"Resident {retired.id} was already merged into {r['merged_into']}.",
            merged_into=r["merged_into"],
        )
    if s["status"] != "active":
        into = f" into {s['merged_into']}" if s["status"] == MERGED else ""
        raise Conflict(
            f"Resident {survivor.id} is {s['status']}{into}; the record that stays must be active."
        )
    s_id, r_id = s.get("national_id"), r.get("national_id")
    if s_id and r_id and s_id != r_id:
        raise Conflict(
            "The two residents have different national IDs, so they are not the same person"
            " (or one number is wrong: correct it first).",
            errors=[{"pointer": "#/duplicate", "message": "different national ID"}],
        )
    if r_id and not s_id:
        raise Conflict(
            f"Only {retired.id} has a national ID: keep that record, merging {survivor.id}"
            f" into it (POST /residents/{retired.id}/merge).",
            errors=[{"pointer": "#/duplicate", "message": "holds the national ID"}],
            merge_instead=f"/residents/{retired.id}/merge",
        )


def _resolved(review: Mapping[str, Any] | None, other: str) -> dict[str, Any] | None:
    """A review with `other` no longer a candidate; resolved when none remain."""
    if review is None:
        return None
    left = [c for c in review.get("candidates", []) if c["resident_id"] != other]
    status = review["status"] if left else "resolved"
    return {"status": status, "candidates": left}
