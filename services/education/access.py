"""Who may see and change what in the education service.

| caller           | catalogue reads        | catalogue writes | roster                         |
|------------------|------------------------|------------------|--------------------------------|
| anyone, no token | published resources    | -                | -                              |
| citizen          | published resources    | -                | own enrollments and progress   |
| educator         | published + their own  | their own        | classes they teach             |
| admin            | everything             | everything       | everything                     |
| service          | published resources    | -                | -                              |

A resource or class the caller may not see is 404, exactly as if it did not exist (a draft
is nobody's business but its author's). Writing something the caller can see but not
change is 403.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from shared.auth.deps import CurrentPrincipal, optional_principal
from shared.auth.errors import InsufficientScope
from shared.auth.principal import Principal
from shared.storage import AnyOf, Eq, Predicate


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of a request (None principal: an anonymous catalogue reader)."""

    principal: Principal | None

    @property
    def sub(self) -> str | None:
        """The caller's subject (None when anonymous)."""
        return self.principal.subject if self.principal else None

    @property
    def is_admin(self) -> bool:
        """Admins see and change everything."""
        return self.principal is not None and self.principal.has_role("admin")

    @property
    def is_educator(self) -> bool:
        """Educators write resources and teach classes."""
        return self.principal is not None and self.principal.has_role("educator")

    @property
    def resident_id(self) -> str | None:
        """A citizen's own resident id (the learner they are)."""
        p = self.principal
        return p.resident_id if p is not None and p.has_role("citizen") else None

    def owner(self) -> dict[str, Any]:
        """The caller as the owner of something they create."""
        assert self.principal is not None
        return {"sub": self.principal.subject, "username": self.principal.username}

    def require_author(self) -> None:
        """403 unless the caller may create resources and courses."""
        if not (self.is_admin or self.is_educator):
            raise InsufficientScope("Only educators and administrators write the catalogue.")

    def sees_resource(self, body: Mapping[str, Any]) -> bool:
        """Published resources are public; others only to their owner and admins."""
        return body["state"] == "published" or self.is_admin or self.owns(body)

    def owns(self, body: Mapping[str, Any]) -> bool:
        """Whether the caller created this document."""
        return self.sub is not None and body["owner"]["sub"] == self.sub

    def may_edit(self, body: Mapping[str, Any]) -> bool:
        """Admins, and the educator who owns it."""
        return self.is_admin or (self.is_educator and self.owns(body))

    def resource_scope(self) -> list[Predicate]:
        """The index predicate that limits a catalogue search to what the caller may see."""
        if self.is_admin:
            return []
        if self.is_educator and self.sub:
            return [AnyOf([Eq("state", "published"), Eq("owner", self.sub)])]
        return [Eq("state", "published")]


async def get_viewer(request: Request) -> Viewer:
    """The caller, or an anonymous viewer when no token is sent (a bad token is still 401)."""
    return Viewer(await optional_principal(request))


async def get_signed_in(principal: CurrentPrincipal) -> Viewer:
    """The caller, who must present a valid token (401 otherwise)."""
    return Viewer(principal)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
SignedInDep = Annotated[Viewer, Depends(get_signed_in)]
