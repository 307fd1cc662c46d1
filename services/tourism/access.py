"""Who may see and change what in the tourism service.

| caller            | reads                         | writes                                   |
|-------------------|-------------------------------|------------------------------------------|
| anyone, no token  | active places and events      | -                                        |
| citizen           | active places and events      | their own review of a place (resident id) |
| tourism-editor    | also retired ones             | places, events, imports                  |
| admin             | also retired ones             | everything                               |

A retired place or event is 404 for those who may not see it, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from shared.auth.deps import CurrentPrincipal, optional_principal
from shared.auth.errors import InsufficientScope
from shared.auth.principal import Principal

EDITOR_ROLES = ("tourism-editor", "admin")


@dataclass(frozen=True, slots=True)
class Viewer:
    """The caller of a request (None principal: an anonymous visitor)."""

    principal: Principal | None

    @property
    def is_editor(self) -> bool:
        """Tourism editors and admins keep the information right."""
        return self.principal is not None and self.principal.has_role(*EDITOR_ROLES)

    @property
    def resident_id(self) -> str | None:
        """A citizen's resident id (who a review is by)."""
        p = self.principal
        return p.resident_id if p is not None and p.has_role("citizen") else None

    def require_editor(self) -> None:
        """403 unless the caller edits tourism information."""
        if not self.is_editor:
            raise InsufficientScope("Only tourism editors and administrators change this.")

    def require_resident(self) -> str:
        """The caller's resident id; 403 for anyone who is not a citizen with one."""
        rid = self.resident_id
        if rid is None:
            raise InsufficientScope("Only citizens with a resident id write reviews.")
        return rid

    def editor(self) -> dict[str, Any]:
        """The caller as the last editor of something."""
        assert self.principal is not None
        return {"sub": self.principal.subject, "username": self.principal.username}


async def get_viewer(request: Request) -> Viewer:
    """The caller, or an anonymous viewer when no token is sent (a bad token is still 401)."""
    return Viewer(await optional_principal(request))


async def get_signed_in(principal: CurrentPrincipal) -> Viewer:
    """The caller, who must present a valid token (401 otherwise)."""
    return Viewer(principal)


ViewerDep = Annotated[Viewer, Depends(get_viewer)]
SignedInDep = Annotated[Viewer, Depends(get_signed_in)]
