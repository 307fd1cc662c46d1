"""Who is calling: the claims of a validated access token that services use."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class Principal:
    """The caller behind a validated access token (a person or a service account)."""

    subject: str
    username: str | None
    roles: frozenset[str]
    scopes: frozenset[str]
    client_id: str | None
    resident_id: str | None = None
    jurisdiction: str | None = None
    practitioner_id: str | None = None
    expires_at: int = 0
    claims: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    @classmethod
    def from_claims(cls, claims: Mapping[str, Any]) -> Principal:
        """Build a principal from Keycloak-shaped access-token claims."""
        realm_access = claims.get("realm_access") or {}
        roles = realm_access.get("roles") if isinstance(realm_access, Mapping) else None
        scope = claims.get("scope")
        return cls(
            subject=str(claims.get("sub", "")),
            username=_str(claims.get("preferred_username")),
            roles=frozenset(r for r in roles or () if isinstance(r, str)),
            scopes=frozenset(scope.split()) if isinstance(scope, str) else frozenset(),
            client_id=_str(claims.get("azp")) or _str(claims.get("client_id")),
            resident_id=_str(claims.get("resident_id")),
            jurisdiction=_str(claims.get("jurisdiction")),
            practitioner_id=_str(claims.get("practitioner_id")),
            expires_at=int(claims.get("exp", 0)),
            claims=dict(claims),
        )

    def has_role(self, *roles: str) -> bool:
        """Whether the caller holds any of `roles`."""
        return not self.roles.isdisjoint(roles)

    @property
    def is_service(self) -> bool:
        """A service account (client credentials), not a person."""
        return "service" in self.roles


def _str(value: Any) -> str | None:
    # Keycloak renders a multivalued attribute as a list; the suite's attributes are single.
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value if isinstance(value, str) and value else None
