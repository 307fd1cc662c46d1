"""Routes for residents' citizen accounts (`/residents/{id}/account`).

Kept apart from endpoints.py because they talk to Keycloak, not only to the store; the
rules are the registry's: who may read the record may see the link, who may change the
record may ask for the account (services.registry.accounts).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse

from services.registry.accounts import AccountLink, AccountService
from services.registry.endpoints import CallerDep, ResidentId
from shared.auth.deps import Authenticated
from shared.errors import problem_responses

# Keycloak checks the address properly; this only keeps obvious garbage out of its logs.
EMAIL = r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$"


class AccountRequest(BaseModel):
    """What a worker may give when asking for an account."""

    model_config = ConfigDict(extra="forbid")

    email: str | None = Field(
        default=None,
        max_length=254,
        pattern=EMAIL,
        description="The citizen's email: a login name too, and where Keycloak sends mail."
        " Without it the citizen adds one at first login (the realm's profile needs it).",
    )


class Account(BaseModel):
    """A resident's account link."""

    resident_id: str
    linked: bool
    user_id: str | None = Field(None, description="Keycloak user id (the token's `sub`)")
    username: str | None = None
    linked_at: str | None = None
    linked_by: str | None = None
    created: bool = Field(False, description="The Keycloak user was created by this request")


def _accounts(request: Request) -> AccountService:
    state = request.app.state
    return AccountService(state.registry, getattr(state, "account_admin", None))


AccountsDep = Annotated[AccountService, Depends(_accounts)]

router = APIRouter(
    dependencies=[Authenticated], responses=problem_responses(400, 401, 403, 404, 422)
)


def _body(found: AccountLink) -> dict[str, Any]:
    link = found.link or {}
    return Account(
        resident_id=found.resident_id,
        linked=found.link is not None,
        user_id=link.get("user_id"),
        username=link.get("username"),
        linked_at=link.get("linked_at"),
        linked_by=link.get("linked_by"),
        created=found.created,
    ).model_dump(mode="json")


@router.get(
    "/residents/{resident_id}/account",
    summary="Whether the resident has a linked citizen account",
    response_model=Account,
)
async def get_account(resident_id: ResidentId, caller: CallerDep, accounts: AccountsDep) -> Any:
    return _body(await accounts.status(caller, resident_id))


@router.post(
    "/residents/{resident_id}/account",
    summary="Create or link the resident's Keycloak citizen account (201 new link, 200 as before)",
    response_model=Account,
    status_code=201,
    responses=problem_responses(409, 503),
)
async def ensure_account(
    resident_id: ResidentId,
    caller: CallerDep,
    accounts: AccountsDep,
    body: Annotated[AccountRequest | None, Body()] = None,
) -> JSONResponse:
    found = await accounts.ensure(caller, resident_id, body.email if body else None)
    return JSONResponse(
        _body(found),
        status_code=201 if found.new_link else 200,
        headers={"Location": f"/residents/{resident_id}/account"},
    )
