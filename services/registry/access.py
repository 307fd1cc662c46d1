"""Who may see and change what in the registry: roles and the `jurisdiction` claim.

| role             | reads                             | writes             | sees ID/phone |
|------------------|-----------------------------------|--------------------|---------------|
| community-worker | residents of their community      | their community    | in reach      |
| street-officer   | residents of their street         | their street       | in reach      |
| district-officer | residents of their district       | their district     | in reach      |
| citizen          | own record and own household      | nothing            | own record    |
| auditor          | everything                        | nothing            | never         |
| admin            | everything                        | everything, places | never         |
| service          | everything (events feed, lookups) | nothing            | never         |

Refusals (see docs/registry.md): a role that has no business in the registry at all gets
403 whatever it asks for, since that says nothing about any resident. A record the caller
may not read is 404, exactly as if it did not exist, and so is a write to it: answering 403
there would confirm that the person is registered somewhere. A write *into a place* outside
the caller's jurisdiction (registering or moving someone there) is 403: place codes are
public, so refusing names nothing a caller did not already know.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from services.registry.places import covers, split
from shared.auth.errors import InsufficientScope
from shared.auth.principal import Principal
from shared.storage import Eq, Predicate

# Staff roles and the depth of the place their jurisdiction claim must name.
STAFF_LEVELS = {"community-worker": 3, "street-officer": 2, "district-officer": 1}
READ_ALL = frozenset({"admin", "auditor", "service"})
REGISTRY_ROLES = READ_ALL | STAFF_LEVELS.keys() | {"citizen"}


def staff_scope(principal: Principal) -> str | None:
    """The place a worker or officer answers for: their claim, when it names a place of
    the level their role works at (a malformed or mismatched claim reaches nothing)."""
    claim = principal.jurisdiction
    if not claim:
        return None
    parts = split(claim)
    if parts is None:
        return None
    for role, depth in STAFF_LEVELS.items():
        if principal.has_role(role) and len(parts) == depth:
            return claim
    return None


@dataclass(frozen=True, slots=True)
class Access:
    """The caller's reach in the registry, derived once per request from the token."""

    principal: Principal
    scope: str | None  # staff: the place path they answer for
    citizen_id: str | None  # citizens: their own resident id

    @classmethod
    def of(cls, principal: Principal) -> Access:
        """The reach of a validated principal."""
        citizen = principal.resident_id if principal.has_role("citizen") else None
        return cls(principal, staff_scope(principal), citizen)

    @property
    def reads_all(self) -> bool:
        """Admins, auditors and services read every record."""
        return self.principal.has_role(*READ_ALL)

    @property
    def is_admin(self) -> bool:
        """Admins manage places and may write anywhere."""
        return self.principal.has_role("admin")

    @property
    def is_auditor(self) -> bool:
        """Auditors search the whole trail."""
        return self.principal.has_role("auditor")

    def require_registry(self) -> None:
        """403 for callers with no registry role (or a staff role without a valid place)."""
        if self.reads_all or self.scope is not None or self.citizen_id is not None:
            return
        if self.principal.has_role(*STAFF_LEVELS):
            raise InsufficientScope(
                "Your account's jurisdiction claim does not name a place of your role's level."
            )
        raise InsufficientScope(
            "The registry is open to community workers, officers, citizens, auditors,"
            " administrators and services."
        )

    def require_writer(self) -> None:
        """403 unless the caller may change registry records at all."""
        self.require_registry()
        if not (self.is_admin or self.scope is not None):
            raise InsufficientScope(
                "Only community workers, officers and administrators change registry records."
            )

    def reads_place(self, code: str) -> bool:
        """Whether residents of place `code` are within the caller's reach."""
        if self.reads_all:
            return True
        return self.scope is not None and covers(self.scope, code)

    def writes_place(self, code: str) -> bool:
        """Whether the caller may register residents or households in `code`."""
        if self.is_admin:
            return True
        return self.scope is not None and covers(self.scope, code)

    def require_write_place(self, code: str) -> None:
        """403 when `code` is outside the caller's jurisdiction."""
        if not self.writes_place(code):
            raise InsufficientScope(f"Place {code} is outside your jurisdiction ({self.scope}).")

    def unmasked(self, body: Mapping[str, Any]) -> bool:
        """Whether national ID and phone are shown in full: to the staff whose jurisdiction
        holds the resident (they check identity at the counter) and to the person."""
        if self.citizen_id is not None and body.get("id") == self.citizen_id:
            return True
        return self.scope is not None and covers(self.scope, body["address"]["community"])

    def search_scope(self) -> list[Predicate]:
        """The index predicate that limits a search to the caller's reach (citizens are
        limited by id in the service, which knows their household)."""
        if self.reads_all:
            return []
        if self.scope is not None:
            return [Eq("place", self.scope)]
        return []

    def actor(self) -> dict[str, Any]:
        """Who the caller is, as recorded in the audit trail."""
        p = self.principal
        return {
            "sub": p.subject,
            "username": p.username,
            "roles": sorted(p.roles & (REGISTRY_ROLES | {"clinician", "educator"})),
            "client": p.client_id,
            "jurisdiction": self.scope,
            "resident_id": self.citizen_id,
        }
