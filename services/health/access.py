"""SMART App Launch v2 scopes, enforced per interaction, resource type and patient.

A token's scopes say what an app may do (`patient/Observation.rs`, `user/*.cruds`,
`system/*.rs`, and the v1 forms `.read` `.write` `.*`); the caller's realm roles say which
kind of scope the caller can hold at all, so a token minted with a scope its holder should
not have still reaches nothing:

| context  | honoured for                    | reach                                       |
|----------|---------------------------------|---------------------------------------------|
| patient/ | citizens with a `resident_id`   | the compartment of their own Patient        |
| user/    | clinicians                      | every patient                               |
| user/    | auditors                        | AuditEvent and Provenance only              |
| system/  | service accounts                | every patient                               |

Community workers, tourism editors, teachers and administrators therefore see no clinical
data. Resources outside the patient compartment (Practitioner, Organization, Location,
PractitionerRole) are directory data: a patient/ scope reads them without restriction.
"""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass

from services.health.searchparams import PATIENT_COMPARTMENT, RESOURCE_TYPES
from shared.auth.errors import InsufficientScope
from shared.auth.principal import Principal

RESIDENT_ID_SYSTEM = "https://huimin.example/sid/resident-id"
AUDIT_TYPES = frozenset({"AuditEvent", "Provenance"})
# Types whose resources belong to patients (the R4 patient CompartmentDefinition) and Patient.
PATIENT_DATA = frozenset(PATIENT_COMPARTMENT) | {"Patient"}
NO_PATIENT = "Patient/-"  # the compartment of a citizen with no health record: matches nothing

_SCOPE = re.compile(
    r"^(?P<ctx>patient|user|system)/(?P<type>\*|[A-Z][A-Za-z]+)\.(?P<perm>[cruds]+|read|write|\*)$"
)
_V1 = {"read": "rs", "write": "cud", "*": "cruds"}


class Context(enum.StrEnum):
    """Whose data a scope is about."""

    PATIENT = "patient"
    USER = "user"
    SYSTEM = "system"


@dataclass(frozen=True, slots=True)
class Grant:
    """One parsed scope: a context, a resource type (or "*") and permission letters."""

    context: Context
    resource_type: str
    permissions: frozenset[str]


def parse_scopes(scopes: Iterable[str]) -> list[Grant]:
    """The resource scopes among `scopes` (others, and v2 scopes narrowed by a query such as
    `patient/Observation.rs?category=...`, which this server does not evaluate, grant nothing)."""
    out = []
    for scope in scopes:
        m = _SCOPE.match(scope)
        if not m:
            continue
        perm = m["perm"]
        letters = _V1.get(perm, perm)
        if list(letters) != sorted(letters, key="cruds".index) or len(set(letters)) != len(letters):
            continue  # v2 requires the letters in c r u d s order, each once
        out.append(Grant(Context(m["ctx"]), m["type"], frozenset(letters)))
    return out


@dataclass(frozen=True, slots=True)
class Reach:
    """What an allowed interaction may touch: everything, or one patient's compartment."""

    compartment: str | None  # "Patient/<id>", or None for no restriction
    context: Context

    @property
    def restricted(self) -> bool:
        """Whether the caller is limited to one patient's compartment."""
        return self.compartment is not None


def _honoured(principal: Principal, grant: Grant) -> bool:
    if grant.context is Context.SYSTEM:
        return principal.is_service
    if grant.context is Context.USER:
        if principal.has_role("clinician"):
            return True
        return principal.has_role("auditor") and grant.resource_type in (AUDIT_TYPES | {"*"})
    return principal.has_role("citizen") and principal.resident_id is not None


class Access:
    """The caller's permissions, checked before every interaction and on every resource."""

    def __init__(self, principal: Principal, patient_ref: str | None = None) -> None:
        self.principal = principal
        self.grants = [g for g in parse_scopes(principal.scopes) if _honoured(principal, g)]
        # The citizen's own Patient ("Patient/<id>"), resolved from the resident id.
        self.patient_ref = patient_ref or NO_PATIENT

    @property
    def needs_patient(self) -> bool:
        """Whether some honoured grant is patient-context (the caller's Patient must be known)."""
        return any(g.context is Context.PATIENT for g in self.grants)

    def reach(self, resource_type: str, letter: str) -> Reach | None:
        """How far `letter` (c r u d s) on `resource_type` reaches, or None if not allowed."""
        best: Reach | None = None
        for g in self.grants:
            if letter not in g.permissions or g.resource_type not in ("*", resource_type):
                continue
            if (
                g.context is Context.USER
                and not self.principal.has_role("clinician")
                and resource_type not in AUDIT_TYPES
            ):
                continue  # an auditor's user/ scopes reach the audit trail only
            if g.context is Context.PATIENT and resource_type in PATIENT_DATA:
                if best is None:
                    best = Reach(self.patient_ref, g.context)
                continue
            return Reach(None, g.context)
        return best

    def require(self, resource_type: str, letter: str) -> Reach:
        """Like `reach`, but a 403 OperationOutcome when the interaction is not allowed."""
        reach = self.reach(resource_type, letter)
        if reach is None:
            verb = {"c": "create", "r": "read", "u": "update", "d": "delete", "s": "search"}
            raise InsufficientScope(
                f"The token does not allow {verb[letter]} on {resource_type}"
                f" (needs a scope such as user/{resource_type}.{letter}).",
                scope=f"user/{resource_type}.{letter}",
            )
        return reach

    def readable_types(self, letter: str = "s") -> list[str]:
        """The resource types this caller may search (or read, with letter "r")."""
        return [t for t in RESOURCE_TYPES if self.reach(t, letter) is not None]
