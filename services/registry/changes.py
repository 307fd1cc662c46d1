"""Change requests: moves, corrections and household changes that the officer above the
submitter decides (docs/registry.md, "Change requests").

States: `draft` → `submitted` → `approved` | `rejected`; `approved` → `applied`; a draft may
be `withdrawn`. Approving applies the change at once, in the same atomic batch as the
decision (resident updates, their events, the request and the audit entries). When a record
the request touches changed since the request was made, nothing of the change is written:
the decision is recorded alone (state `approved`, with the conflict) and answered with 409;
a decider may then apply it against the records as they are now (`rebase`).

Who: community workers and street officers submit (for residents they may change); a
worker's request is decided by the street officer of the resident's street (if every
community involved is in that street) or the district officer, a street officer's by the
district officer. District officers and administrators change records directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Annotated, Any, Literal

from pydantic import Field

from services.registry import national_id
from services.registry.access import STAFF_LEVELS, Access
from services.registry.audit import as_op, entry, now_iso
from services.registry.changes_apply import Plan, parse_changes, plan_change
from services.registry.places import covers, is_code, split
from services.registry.repository import CHANGES, RegistryRepository
from services.registry.schemas import RESIDENT_ID, Strict
from services.registry.service import WRITE_ATTEMPTS, Caller, RegistryService
from services.registry.service import mask_phone as _mask_phone
from shared.auth.errors import InsufficientScope
from shared.errors import Conflict, Forbidden, HuiminError, NotFound, Unprocessable
from shared.etags import check_if_match
from shared.storage import (
    AlreadyExists,
    Create,
    Eq,
    In,
    Page,
    Predicate,
    Record,
    Update,
    VersionConflict,
    WriteOp,
)

State = Literal["draft", "submitted", "approved", "rejected", "applied", "withdrawn"]
STATES: tuple[str, ...] = ("draft", "submitted", "approved", "rejected", "applied", "withdrawn")
ROLE_AT_DEPTH = {depth: role for role, depth in STAFF_LEVELS.items()}
Reason = Annotated[str, Field(min_length=1, max_length=500)]
# Failures of a plan at approval that mean "the data moved on", not a server fault.
_APPLY_FAILURES = (404, 409, 410, 412, 422)


class CreateChange(Strict):
    """Body of `POST /change-requests`."""

    kind: Literal["move", "correction", "household"]
    resident: Annotated[str, Field(pattern=RESIDENT_ID)]
    changes: dict[str, Any]
    note: Reason | None = None


class EditChange(Strict):
    """Body of `PATCH /change-requests/{id}` (drafts only, by their submitter)."""

    changes: dict[str, Any] | None = None
    note: Reason | None = None


class Decision(Strict):
    """Body of submit, withdraw, approve and reject (`reason` required to reject)."""

    reason: Reason | None = None


class ApplyAgain(Strict):
    """Body of `POST /change-requests/{id}/apply`: `rebase` applies the approved change to
    the records as they are now (the decider has looked at them again)."""

    rebase: bool = False


def level(access: Access) -> int | None:
    """1 district, 2 street, 3 community: the depth of a staff caller's jurisdiction."""
    parts = split(access.scope) if access.scope else None
    return len(parts) if parts else None


def decider_key(access: Access) -> str | None:
    """`<role>|<place>` of an officer, as stored in a request's `deciders`."""
    depth = level(access)
    if depth is None or depth == 3:
        return None
    return f"{ROLE_AT_DEPTH[depth]}|{access.scope}"


def deciders_for(depth: int, communities: Sequence[str]) -> list[str]:
    """The officers above a submitter at `depth` who cover every community involved."""
    parts = [c.split("/") for c in communities]
    districts = {p[0] for p in parts}
    streets = {"/".join(p[:2]) for p in parts}
    if len(districts) != 1:
        raise Unprocessable(
            "A change request stays within one district: for a move to another district,"
            " record the resident as moved out here and register them there.",
            errors=[{"pointer": "#/changes", "message": "another district"}],
        )
    out = [f"district-officer|{districts.pop()}"]
    if depth == 3 and len(streets) == 1:
        out.insert(0, f"street-officer|{streets.pop()}")
    return out


class ChangeService:
    """Change requests on top of the resident registry."""

    def __init__(self, residents: RegistryService) -> None:
        self.residents = residents
        self.repo: RegistryRepository = residents.repo

    # reading

    async def load(self, caller: Caller, id: str) -> Record:
        """A request the caller may see: staff whose jurisdiction holds the resident's
        community (at the time of the request), auditors and admins; 404 otherwise."""
        access = caller.access
        access.require_registry()
        if not access.reads_all and access.scope is None:
            raise InsufficientScope("Change requests are for registry staff.")
        record = await self.repo.change_request(id)
        if record is None or not (
            access.reads_all or covers(access.scope or "", record.body["community"])
        ):
            raise NotFound(f"Change request {id} is not known.")
        return record

    async def search(
        self,
        caller: Caller,
        *,
        state: str | None,
        resident: str | None,
        community: str | None,
        awaiting: bool,
        limit: int,
        cursor: str | None,
    ) -> Page:
        """Requests in the caller's reach, newest first (the reach is an index predicate)."""
        access = caller.access
        access.require_registry()
        if not access.reads_all and access.scope is None:
            raise InsufficientScope("Change requests are for registry staff.")
        where: list[Predicate] = list(access.search_scope())
        if community is not None:
            if not is_code(community):
                raise Unprocessable(
                    "Not a place code.",
                    errors=[{"field": "community", "in": "query", "message": "bad code"}],
                )
            where.append(Eq("place", community))
        if resident is not None:
            where.append(Eq("resident", resident))
        if awaiting:
            key = decider_key(access)
            if key is None:
                raise Unprocessable(
                    "Only street and district officers have requests awaiting them.",
                    errors=[{"field": "awaiting", "in": "query", "message": "not an officer"}],
                )
            where += [Eq("decider", key), Eq("state", "submitted")]
        elif state is not None:
            where.append(Eq("state", state))
        if not where:
            where.append(In("state", list(STATES)))  # seek the state index, never the table
        return await self.repo.search_changes(where, limit=limit, cursor=cursor)

    def view(self, caller: Caller, record: Record) -> dict[str, Any]:
        """A request as served; national ID and phone in the changes are masked for callers
        who would see them masked on the record (auditors, admins)."""
        b = record.body
        changes = dict(b["changes"])
        if caller.access.scope is None:
            if changes.get("national_id"):
                changes["national_id"] = national_id.mask(changes["national_id"])
            if changes.get("phone"):
                changes["phone"] = _mask_phone(changes["phone"])
        deciders = [dict(zip(("role", "place"), d.split("|"), strict=True)) for d in b["deciders"]]
        return {
            "id": record.id,
            "version": record.version,
            "kind": b["kind"],
            "resident": b["resident"],
            "residents": b["residents"],
            "community": b["community"],
            "changes": changes,
            "note": b.get("note"),
            "state": b["state"],
            "submitter": b["submitter"],
            "deciders": deciders,
            "transitions": b["transitions"],
            "conflict": b.get("conflict"),
            "created_at": b["created_at"],
            "updated_at": b["updated_at"],
        }

    # the submitter's steps

    async def create(self, caller: Caller, data: CreateChange) -> Record:
        """A new draft about a resident the caller may change."""
        access = caller.access
        depth = self._submitter_depth(access)
        person = await self.residents.load(caller, data.resident, "change-request.create")
        access.require_write_place(person.body["address"]["community"])
        changes = parse_changes(data.kind, data.changes)
        plan = await plan_change(self.repo, data.kind, data.resident, changes)
        at = now_iso()
        body: dict[str, Any] = {
            "kind": data.kind,
            "resident": data.resident,
            "community": person.body["address"]["community"],
            "changes": changes,
            "note": data.note,
            "state": "draft",
            "submitter": {
                "sub": access.principal.subject,
                "username": access.principal.username,
                "role": ROLE_AT_DEPTH[depth],
                "jurisdiction": access.scope,
            },
            "transitions": [_step("draft", access, None, at)],
            "conflict": None,
            "created_at": at,
            "updated_at": at,
        }
        body.update(_derived(plan, depth))
        for _ in range(WRITE_ATTEMPTS):
            cid, counter = await self.repo.allocate("change-request", "CR")
            doc = {"id": cid, **body}
            audit = self._audit(caller, "create", doc, None, status=201)
            try:
                written = await self.repo.write([counter, Create(CHANGES, doc, cid), audit])
                return written[1]
            except (VersionConflict, AlreadyExists):
                continue  # another request took this number first
        raise Conflict("Too many concurrent change requests; try again.")

    async def edit(self, caller: Caller, id: str, data: EditChange, if_match: str | None) -> Record:
        """New changes or note of a draft (re-validated; the versions are taken anew)."""
        record = await self.load(caller, id)
        self._require_submitter(caller, record, "edit")
        self._require_state(record, "draft", "edited")
        check_if_match(if_match, record.version, f"change request {id}")
        body = dict(record.body)
        if data.note is not None:
            body["note"] = data.note
        if data.changes is not None:
            body["changes"] = parse_changes(body["kind"], data.changes)
        plan = await plan_change(self.repo, body["kind"], body["resident"], body["changes"])
        body.update(_derived(plan, self._submitter_depth(caller.access)))
        body["updated_at"] = now_iso()
        return await self._write(caller, record, body, "edit")

    async def submit(self, caller: Caller, id: str, reason: str | None) -> Record:
        """Draft → submitted (still valid against the records as they are)."""
        record = await self.load(caller, id)
        self._require_submitter(caller, record, "submit")
        self._require_state(record, "draft", "submitted")
        b = record.body
        await plan_change(self.repo, b["kind"], b["resident"], b["changes"])
        return await self._write(caller, record, _moved(b, "submitted", caller, reason), "submit")

    async def withdraw(self, caller: Caller, id: str, reason: str | None) -> Record:
        """Draft → withdrawn."""
        record = await self.load(caller, id)
        self._require_submitter(caller, record, "withdraw")
        self._require_state(record, "draft", "withdrawn")
        body = _moved(record.body, "withdrawn", caller, reason)
        return await self._write(caller, record, body, "withdraw")

    # the decider's steps

    async def reject(self, caller: Caller, id: str, reason: str | None) -> Record:
        """Submitted → rejected, with the reason."""
        record = await self.load(caller, id)
        self._require_decider(caller, record)
        self._require_state(record, "submitted", "rejected")
        if not reason or not reason.strip():
            raise Unprocessable(
                "A rejection needs its reason.",
                errors=[{"pointer": "#/reason", "message": "required to reject"}],
            )
        body = _moved(record.body, "rejected", caller, reason)
        return await self._write(caller, record, body, "reject")

    async def approve(self, caller: Caller, id: str, reason: str | None) -> Record:
        """Submitted → approved → applied, atomically; 409 (approved, not applied) when the
        records changed since the request was made."""
        record = await self.load(caller, id)
        self._require_decider(caller, record)
        self._require_state(record, "submitted", "approved")
        approved = _moved(record.body, "approved", caller, reason)
        return await self._apply(caller, record, approved, record.body["base"], "approve")

    async def apply(self, caller: Caller, id: str, rebase: bool) -> Record:
        """Approved → applied, for a request whose first application met a conflict."""
        record = await self.load(caller, id)
        self._require_decider(caller, record)
        self._require_state(record, "approved", "applied")
        base = None if rebase else record.body["base"]
        return await self._apply(caller, record, dict(record.body), base, "apply")

    async def _apply(
        self,
        caller: Caller,
        record: Record,
        approved: dict[str, Any],
        base: Mapping[str, Mapping[str, int]] | None,
        action: str,
    ) -> Record:
        b = record.body
        try:
            plan = await plan_change(self.repo, b["kind"], b["resident"], b["changes"], base)
            applied = _moved(approved, "applied", caller, None)
            applied.update(conflict=None, base=plan.base)
            audits = [self._audit(caller, "apply", applied, None)]
            if action == "approve":
                audits.insert(0, self._audit(caller, "approve", approved, None))
            ops: list[WriteOp] = [Update(CHANGES, record.id, applied, record.version)]
            ops += [*plan.ops, *audits]
            return (await self.repo.write(ops, plan.events))[0]
        except HuiminError as exc:
            if exc.status not in _APPLY_FAILURES:
                raise
            if await self._request_moved_on(record):
                raise Conflict(f"Change request {record.id} was decided meanwhile.") from None
            failure = exc.detail or exc.title
        # Nothing of the change was written: record the decision and the conflict alone.
        approved["conflict"] = {"at": now_iso(), "detail": failure}
        approved["updated_at"] = now_iso()
        audits = [self._audit(caller, "apply", approved, failure, status=409, outcome="failure")]
        if action == "approve":
            audits.insert(0, self._audit(caller, "approve", approved, None))
        written = await self._write(caller, record, approved, audits)
        raise Conflict(
            f"Approved but not applied: {failure}",
            change_request=record.id,
            state=written.body["state"],
            version=written.version,
        )

    async def _request_moved_on(self, record: Record) -> bool:
        current = await self.repo.change_request(record.id)
        return current is None or current.version != record.version

    # rules

    @staticmethod
    def _submitter_depth(access: Access) -> int:
        access.require_writer()
        depth = level(access)
        if depth in (2, 3):
            return depth
        raise Forbidden(
            "District officers and administrators change records directly; change requests"
            " are made by community workers and street officers for the officer above."
        )

    @staticmethod
    def _require_submitter(caller: Caller, record: Record, what: str) -> None:
        if record.body["submitter"]["sub"] != caller.access.principal.subject:
            raise Forbidden(f"Only the submitter may {what} change request {record.id}.")

    @staticmethod
    def _require_decider(caller: Caller, record: Record) -> None:
        access = caller.access
        key = decider_key(access)
        if record.body["submitter"]["sub"] == access.principal.subject:
            raise Forbidden("Nobody decides their own change request.")
        if key is None or key not in record.body["deciders"]:
            who = ", ".join(d.replace("|", " of ") for d in record.body["deciders"])
            raise Forbidden(f"Change request {record.id} is decided by the {who}.")

    @staticmethod
    def _require_state(record: Record, state: str, to: str) -> None:
        if record.body["state"] != state:
            raise Conflict(
                f"Change request {record.id} is {record.body['state']}; only a {state} request"
                f" can be {to}.",
                state=record.body["state"],
            )

    def _audit(
        self,
        caller: Caller,
        action: str,
        body: Mapping[str, Any],
        reason: str | None,
        *,
        status: int = 200,
        outcome: str = "success",
    ) -> Create:
        detail = f"{body['id']} ({body['kind']})" + (f": {reason}" if reason else "")
        record = entry(
            caller.access,
            f"change-request.{action}",
            body["residents"],
            status=status,
            outcome=outcome,
            detail=detail,
            client=caller.client,
        )
        return as_op(record)

    async def _write(
        self, caller: Caller, record: Record, body: dict[str, Any], action: str | list[Create]
    ) -> Record:
        """The request's new state with its audit entries (one per transition)."""
        if isinstance(action, str):
            reason = body["transitions"][-1].get("reason") if action != "edit" else None
            audits = [self._audit(caller, action, body, reason)]
        else:
            audits = action
        try:
            ops: list[WriteOp] = [Update(CHANGES, record.id, body, record.version), *audits]
            return (await self.repo.write(ops))[0]
        except VersionConflict:
            raise Conflict(
                f"Change request {record.id} was changed meanwhile; read it and try again."
            ) from None


def _step(state: str, access: Access, reason: str | None, at: str) -> dict[str, Any]:
    p = access.principal
    return {
        "state": state,
        "at": at,
        "actor": {"sub": p.subject, "username": p.username},
        "reason": reason,
    }


def _moved(
    body: Mapping[str, Any], state: str, caller: Caller, reason: str | None
) -> dict[str, Any]:
    at = now_iso()
    return {
        **body,
        "state": state,
        "transitions": [*body["transitions"], _step(state, caller.access, reason, at)],
        "updated_at": at,
    }


def _derived(plan: Plan, depth: int) -> dict[str, Any]:
    """What a request's changes decide about it: the versions they are made on, the
    residents involved and who decides."""
    return {
        "base": plan.base,
        "residents": list(dict.fromkeys(plan.residents)),
        "deciders": deciders_for(depth, plan.communities),
    }
