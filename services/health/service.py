"""The FHIR interactions on single resources: create, read, vread, update, patch, delete,
and their conditional forms; versioning (`meta`, ETag, If-Match) and access checks.

Writes are planned first (`plan_*` returns a `Planned` change) and committed second, so a
transaction Bundle can plan all its entries and commit them as one atomic batch.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import jsonpatch

from services.health.access import PATIENT_DATA, RESIDENT_ID_SYSTEM, Access, Reach
from services.health.audit import AuditLog, audit_event, now_instant
from services.health.repository import Change, FhirRepository, compartment_of
from services.health.resources import check_id, check_type, validate
from services.health.search import SearchParser
from services.health.settings import HealthSettings
from shared.auth.principal import Principal
from shared.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    Gone,
    HuiminError,
    MethodNotAllowed,
    NotFound,
    PreconditionFailed,
    Unprocessable,
)
from shared.ids import new_id as make_id
from shared.storage import (
    AlreadyExists,
    Eq,
    Query,
    Record,
    RecordDeleted,
    RecordNotFound,
    VersionConflict,
)
from shared.storage.prepare import MAX_BATCH_OPS

_ETAG = re.compile(r'^(?:W/)?"?(\d+)"?$')
IMMUTABLE = frozenset({"AuditEvent"})  # nobody updates or deletes an audit record


def etag(version: int) -> str:
    """The weak ETag of a version."""
    return f'W/"{version}"'


def parse_etag(value: str) -> int:
    """The version in an If-Match value (`W/"3"`, `"3"` or `3`); 400 otherwise."""
    m = _ETAG.match(value.strip())
    if not m:
        raise BadRequest(f'If-Match must be a version ETag such as W/"3", got {value!r}.')
    return int(m.group(1))


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling, what their token allows, and from where."""

    principal: Principal
    access: Access
    address: str | None = None


@dataclass
class Planned:
    """A write ready to commit (or, for a no-op conditional create, an existing resource)."""

    status: int
    resource_type: str
    id: str
    interaction: str
    change: Change | None
    resource: Mapping[str, Any]
    version: int
    patients: list[str] = field(default_factory=list)


def _stamp(body: Mapping[str, Any], id: str, version: int, at: str) -> dict[str, Any]:
    out = dict(body)
    out["id"] = id
    meta = dict(out.get("meta") or {})
    meta["versionId"] = str(version)
    meta["lastUpdated"] = at
    out["meta"] = meta
    return out


class FhirService:
    """Single-resource interactions, with access checks and audit."""

    def __init__(self, repo: FhirRepository, audit: AuditLog, settings: HealthSettings) -> None:
        self.repo = repo
        self.audit = audit
        self.settings = settings
        self._patients: dict[str, str] = {}

    # --- helpers -----------------------------------------------------------------------

    def parser(self, resource_type: str) -> SearchParser:
        """A search parser with this server's paging limits."""
        return SearchParser(
            resource_type,
            default_count=self.settings.default_count,
            max_count=self.settings.max_count,
        )

    @staticmethod
    def visible(resource_type: str, body: Mapping[str, Any], reach: Reach) -> bool:
        """Whether a resource lies within the caller's reach (their compartment, if any)."""
        if not reach.restricted or resource_type not in PATIENT_DATA:
            return True
        return reach.compartment in compartment_of(resource_type, body)

    def log(
        self,
        caller: Caller,
        interaction: str,
        *,
        resources: Sequence[str] = (),
        patients: Sequence[str] = (),
        query: str | None = None,
        error: HuiminError | None = None,
    ) -> dict[str, Any]:
        """Build an AuditEvent for an interaction by `caller`."""
        outcome = "success"
        if error is not None:
            outcome = "minor" if error.status < 500 else "serious"
        return audit_event(
            principal=caller.principal,
            interaction=interaction,
            resources=resources,
            patients=patients,
            query=query,
            outcome=outcome,
            detail=error.detail if error is not None else None,
            client_address=caller.address,
            self_patient=caller.access.patient_ref if caller.access.needs_patient else None,
        )

    def log_later(
        self, caller: Caller, interaction: str, *, patients: Sequence[str] = (), **kwargs: Any
    ) -> None:
        """Queue the AuditEvent of a read-type interaction: one per patient when the resource
        is in several patients' compartments (see `log_each_patient`)."""
        each: list[list[str]] = [[p] for p in dict.fromkeys(patients)] or [[]]
        for only in each:
            self.audit.add(self.log(caller, interaction, patients=only, **kwargs))

    def log_each_patient(
        self,
        caller: Caller,
        interaction: str,
        touched: Sequence[tuple[str, Sequence[str]]],
        *,
        query: str | None = None,
    ) -> list[dict[str, Any]]:
        """The AuditEvents of an interaction on resources (`touched`: each "Type/id" with its
        patients): one per patient, naming that patient's resources only (as IHE BALP asks).
        One event naming every patient would sit in each of their compartments and show a
        citizen the others' records. Resources of no patient go in every event."""
        shared = [ref for ref, patients in touched if not patients]
        by_patient: dict[str, list[str]] = {}
        for ref, patients in touched:
            for patient in dict.fromkeys(patients):
                by_patient.setdefault(patient, []).append(ref)
        if not by_patient:
            return [self.log(caller, interaction, resources=shared, query=query)]
        return [
            self.log(
                caller, interaction, resources=[*refs, *shared], patients=[patient], query=query
            )
            for patient, refs in by_patient.items()
        ]

    async def find_one(
        self, caller: Caller, resource_type: str, query: str, reach: Reach
    ) -> list[Record]:
        """Matches (at most 2) of a conditional criterion such as `identifier=sys|123`."""
        items = parse_qsl(query, keep_blank_values=True)
        if not items:
            raise BadRequest("A conditional interaction needs search criteria.")
        plan = self.parser(resource_type).parse(items, strict=True)
        if plan.chains:
            raise BadRequest("Conditional interactions do not support chained parameters.")
        if not plan.where:
            # Result parameters (_count, _sort...) and empty values constrain nothing: "the
            # one match" would be whatever resource happens to be alone of its type.
            raise BadRequest(
                f"The criteria {query!r} select nothing in particular; give a search parameter"
                " with a value, e.g. identifier=system|value."
            )
        where = list(plan.where)
        if reach.restricted and resource_type in PATIENT_DATA:
            where.append(Eq("_compartment", str(reach.compartment)))
        page = await self.repo.search(resource_type, Query(where=where, limit=2))
        return list(page.items)

    async def patient_of(self, resident_id: str) -> str | None:
        """ "Patient/<id>" of the Patient linked to a registry resident id (cached once found)."""
        cached = self._patients.get(resident_id)
        if cached is not None:
            return cached
        token = f"{RESIDENT_ID_SYSTEM}|{resident_id}"
        page = await self.repo.search("Patient", Query(where=[Eq("identifier", token)], limit=2))
        if len(page.items) != 1:
            return None  # none yet, or ambiguous: the citizen reaches nothing rather than a guess
        ref = f"Patient/{page.items[0].id}"
        if len(self._patients) > 100_000:
            self._patients.clear()
        self._patients[resident_id] = ref
        return ref

    # --- reads ---------------------------------------------------------------------------

    async def read(self, caller: Caller, resource_type: str, id: str) -> Record:
        """The current version of a resource (404 also when it is outside the caller's reach)."""
        check_type(resource_type)
        check_id(id)
        ref = f"{resource_type}/{id}"
        try:
            # In the try: a read refused by scope or role is audited as a failure too.
            reach = caller.access.require(resource_type, "r")
            record = await self.repo.get(resource_type, id)
            if not self.visible(resource_type, record.body, reach):
                raise NotFound(f"{ref} is not known.")  # existence is not revealed either
        except HuiminError as exc:
            if resource_type in PATIENT_DATA:
                self.log_later(caller, "read", resources=[ref], error=exc)
            raise _fhir_error(exc, ref) from None
        if resource_type in PATIENT_DATA:
            patients = compartment_of(resource_type, record.body)
            self.log_later(caller, "read", resources=[ref], patients=patients)
        return record

    async def vread(self, caller: Caller, resource_type: str, id: str, version: str) -> Record:
        """One version of a resource."""
        check_type(resource_type)
        check_id(id)
        reach = caller.access.require(resource_type, "r")
        ref = f"{resource_type}/{id}/_history/{version}"
        if not version.isdigit():
            raise BadRequest(f"{version!r} is not a version id.")
        try:
            current = await self.repo.get(resource_type, id, include_deleted=True)
            record = await self.repo.get_version(resource_type, id, int(version))
            live = record.body or (await self._last_body(resource_type, id, record.version))
            if not self.visible(resource_type, live, reach) or not self.visible(
                resource_type, current.body or live, reach
            ):
                raise NotFound(f"{ref} is not known.")
            if record.deleted:
                raise RecordDeleted(f"{ref} is the deletion of {resource_type}/{id}.")
        except HuiminError as exc:
            if resource_type in PATIENT_DATA:
                self.log_later(caller, "vread", resources=[ref], error=exc)
            raise _fhir_error(exc, ref) from None
        if resource_type in PATIENT_DATA:
            self.log_later(
                caller, "vread", resources=[ref], patients=compartment_of(resource_type, live)
            )
        return record

    async def _last_body(self, resource_type: str, id: str, before: int) -> Mapping[str, Any]:
        for rec in await self.repo.history(resource_type, id, limit=50, before_version=before):
            if rec.body:
                return rec.body
        return {}

    # --- writes: planning ----------------------------------------------------------------

    async def plan_create(
        self,
        caller: Caller,
        resource_type: str,
        body: Mapping[str, Any],
        *,
        if_none_exist: str | None = None,
        id: str | None = None,
    ) -> Planned:
        """Validate and stamp a new resource; with If-None-Exist, maybe the existing one."""
        check_type(resource_type)
        reach = caller.access.require(resource_type, "c")
        if resource_type in IMMUTABLE and not caller.principal.is_service:
            raise Forbidden("AuditEvents are written by the servers, not by clients.")
        resource = validate(body, resource_type)
        if if_none_exist:
            found = await self.find_one(caller, resource_type, if_none_exist, reach)
            if len(found) > 1:
                raise PreconditionFailed(
                    f"If-None-Exist {if_none_exist!r} matches more than one {resource_type}."
                )
            if found:
                rec = found[0]
                return Planned(200, resource_type, rec.id, "create", None, rec.body, rec.version)
        new_id = id or make_id()
        stamped = _stamp(resource, new_id, 1, now_instant())
        patients = self._check_reach(resource_type, stamped, reach)
        change = Change("POST", resource_type, new_id, stamped, 1, stamped["meta"]["lastUpdated"])
        return Planned(201, resource_type, new_id, "create", change, stamped, 1, patients)

    def _check_reach(self, resource_type: str, body: Mapping[str, Any], reach: Reach) -> list[str]:
        patients = compartment_of(resource_type, body) if resource_type in PATIENT_DATA else []
        if reach.restricted and resource_type in PATIENT_DATA and reach.compartment not in patients:
            raise Forbidden(
                f"This {resource_type} would not belong to your own record; a patient-context"
                " token can only write into its own compartment."
            )
        return patients

    async def plan_update(
        self,
        caller: Caller,
        resource_type: str,
        id: str,
        body: Mapping[str, Any],
        *,
        if_match: str | None = None,
    ) -> Planned:
        """Validate and stamp the next version (or the first, for update-as-create)."""
        check_type(resource_type)
        check_id(id)
        if resource_type in IMMUTABLE:
            raise MethodNotAllowed("AuditEvents cannot be updated.", headers={"Allow": "GET"})
        reach = caller.access.require(resource_type, "u")
        resource = validate(body, resource_type)
        if resource.get("id") != id:
            raise BadRequest(
                f"The resource id ({resource.get('id')!r}) must equal the id in the URL ({id!r}).",
                errors=[{"expression": f"{resource_type}.id", "message": "must match the URL"}],
            )
        try:
            current: Record | None = await self.repo.get(resource_type, id, include_deleted=True)
        except RecordNotFound:
            current = None
        if if_match is not None:
            wanted = parse_etag(if_match)
            if current is None or current.version != wanted:
                have = "no version" if current is None else f"version {current.version}"
                raise PreconditionFailed(
                    f"If-Match expects version {wanted} of {resource_type}/{id}, the server has"
                    f" {have}."
                )
        if current is None:
            caller.access.require(resource_type, "c")
        elif current.body and not self.visible(resource_type, current.body, reach):
            raise NotFound(f"{resource_type}/{id} is not known.")
        version = 1 if current is None else current.version + 1
        stamped = _stamp(resource, id, version, now_instant())
        patients = self._check_reach(resource_type, stamped, reach)
        change = Change(
            "PUT",
            resource_type,
            id,
            stamped,
            version,
            stamped["meta"]["lastUpdated"],
            None if current is None else current.version,
        )
        status = 201 if current is None else 200
        return Planned(status, resource_type, id, "update", change, stamped, version, patients)

    async def plan_patch(
        self,
        caller: Caller,
        resource_type: str,
        id: str,
        operations: Any,
        *,
        if_match: str | None = None,
    ) -> Planned:
        """Apply an RFC 6902 JSON Patch to the current version and plan the result."""
        check_type(resource_type)
        check_id(id)
        if resource_type in IMMUTABLE:
            raise MethodNotAllowed("AuditEvents cannot be changed.", headers={"Allow": "GET"})
        reach = caller.access.require(resource_type, "u")
        if not isinstance(operations, list) or not operations:
            raise BadRequest("A JSON Patch body is a non-empty array of operations.")
        try:
            current = await self.repo.get(resource_type, id)
        except HuiminError as exc:
            raise _fhir_error(exc, f"{resource_type}/{id}") from None
        if not self.visible(resource_type, current.body, reach):
            raise NotFound(f"{resource_type}/{id} is not known.")
        if if_match is not None and parse_etag(if_match) != current.version:
            raise PreconditionFailed(
                f"If-Match expects version {parse_etag(if_match)},"
                f" the server has {current.version}."
            )
        try:
            patched = jsonpatch.JsonPatch(operations).apply(dict(current.body))
        except jsonpatch.JsonPatchTestFailed as exc:
            raise Unprocessable(f"JSON Patch test failed: {exc}") from None
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as exc:
            raise BadRequest(f"The JSON Patch cannot be applied: {exc}") from None
        except (TypeError, ValueError, KeyError) as exc:
            raise BadRequest(f"The JSON Patch is malformed: {exc}") from None
        if not isinstance(patched, dict) or patched.get("resourceType") != resource_type:
            raise Unprocessable("A patch may not change the resourceType.")
        if patched.get("id") != id:
            raise Unprocessable("A patch may not change the id.")
        planned = await self.plan_update(caller, resource_type, id, patched)
        if planned.change is not None and planned.change.expected_version != current.version:
            raise PreconditionFailed(f"{resource_type}/{id} changed while being patched.")
        planned.interaction = "patch"
        return planned

    async def plan_delete(
        self, caller: Caller, resource_type: str, id: str, *, if_match: str | None = None
    ) -> Planned | None:
        """Plan a deletion; None when there is nothing (left) to delete."""
        check_type(resource_type)
        check_id(id)
        if resource_type in IMMUTABLE:
            raise MethodNotAllowed("AuditEvents cannot be deleted.", headers={"Allow": "GET"})
        reach = caller.access.require(resource_type, "d")
        try:
            current = await self.repo.get(resource_type, id, include_deleted=True)
        except RecordNotFound:
            raise NotFound(f"{resource_type}/{id} is not known.") from None
        if current.deleted:
            return None
        if not self.visible(resource_type, current.body, reach):
            raise NotFound(f"{resource_type}/{id} is not known.")
        if if_match is not None and parse_etag(if_match) != current.version:
            raise PreconditionFailed(
                f"If-Match expects version {parse_etag(if_match)},"
                f" the server has {current.version}."
            )
        version = current.version + 1
        at = now_instant()
        change = Change("DELETE", resource_type, id, current.body, version, at, current.version)
        patients = (
            compartment_of(resource_type, current.body) if resource_type in PATIENT_DATA else []
        )
        return Planned(204, resource_type, id, "delete", change, {}, version, patients)

    async def conditional_target(
        self, caller: Caller, resource_type: str, query: str, letter: str
    ) -> Record | None:
        """The single match of a conditional update/delete (None: no match; 412: several)."""
        reach = caller.access.require(resource_type, letter)
        found = await self.find_one(caller, resource_type, query, reach)
        if len(found) > 1:
            raise PreconditionFailed(f"{query!r} matches more than one {resource_type}.")
        return found[0] if found else None

    # --- writes: committing --------------------------------------------------------------

    async def commit(
        self, caller: Caller, planned: Sequence[Planned], *, interaction: str | None = None
    ) -> None:
        """Write planned changes atomically with their AuditEvent(s)."""
        changes = [p.change for p in planned if p.change is not None]
        if not changes:
            return
        audits = []
        if interaction is None:
            for p in planned:
                if p.change is not None and p.resource_type in PATIENT_DATA:
                    touched = [(f"{p.resource_type}/{p.id}", p.patients)]
                    audits.extend(self.log_each_patient(caller, p.interaction, touched))
        else:
            touched = [(f"{p.resource_type}/{p.id}", p.patients) for p in planned if p.change]
            audits = self.log_each_patient(caller, interaction, touched)
        # A store batch holds a write and a history row per change and the AuditEvents; the
        # events of a transaction touching more patients than fit follow within a second.
        room = MAX_BATCH_OPS - 2 * len(changes)
        audits, overflow = audits[:room], audits[room:]
        try:
            await self.repo.write(changes, audits)
        except (VersionConflict, AlreadyExists) as exc:
            raise _conflict(exc) from None
        for event in overflow:
            self.audit.add(event)

    async def write_one(self, caller: Caller, planned: Planned | None) -> Planned | None:
        """Commit one planned change."""
        if planned is not None:
            await self.commit(caller, [planned])
        return planned


def _conflict(exc: HuiminError) -> HuiminError:
    return Conflict(
        f"The resource was changed by someone else meanwhile ({exc.detail}); read it and retry.",
        issue_code="conflict",
    )


def _fhir_error(exc: HuiminError, ref: str) -> HuiminError:
    """Storage errors reworded for FHIR clients."""
    if isinstance(exc, RecordNotFound):
        return NotFound(f"{ref} is not known.", issue_code="not-found")
    if isinstance(exc, RecordDeleted):
        return Gone(f"{ref} has been deleted.", issue_code="deleted")
    return exc
