"""FastAPI dependencies: the current principal, and required roles or scopes.

Routers are authenticated by default: `APIRouter(dependencies=[Authenticated])`; public
routes are the visible exception. The validator is created once per process by
`auth_lifespan` and kept on `app.state.token_validator`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Annotated, Any

import httpx
from fastapi import Depends, FastAPI, Request

from shared.auth.errors import InsufficientScope, InvalidToken
from shared.auth.jwks import JWKSCache
from shared.auth.principal import Principal
from shared.auth.validator import TokenValidator
from shared.settings import Settings


def auth_lifespan(settings: Settings) -> Callable[[FastAPI], Any]:
    """A lifespan hook for `create_app`: one JWKS cache and validator per process, keys
    fetched at start (a missing issuer is retried on the first token, not fatal)."""

    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        async with httpx.AsyncClient() as client:
            keys = JWKSCache(settings.oidc_issuer, client)
            await keys.refresh(force=True)
            app.state.token_validator = TokenValidator(keys, audience=settings.oidc_audience)
            checks = getattr(app.state, "readiness_checks", None)
            if isinstance(checks, dict):
                checks["identity"] = lambda: _keys_loaded(keys)
            yield

    return hook


async def _keys_loaded(keys: JWKSCache) -> None:
    if not keys.kids and not await keys.refresh():
        raise RuntimeError("no signing keys from the identity provider")


def bearer_token(request: Request) -> str:
    """The bearer token of the request (InvalidToken without one)."""
    return parse_bearer(request.headers.get("authorization"))


def parse_bearer(header: str | None) -> str:
    """The token of an `Authorization: Bearer` header value (InvalidToken otherwise)."""
    if not header:
        raise InvalidToken("authentication required", missing=True)
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise InvalidToken("expected an Authorization: Bearer token")
    return token.strip()


async def _validated(request: Request) -> Principal:
    # Validates the bearer token and keeps the principal on the request (for the access
    # log and later dependencies).
    validator: TokenValidator = request.app.state.token_validator
    principal = await validator.validate(bearer_token(request))
    request.state.principal = principal
    return principal


async def get_principal(request: Request) -> Principal:
    """The validated caller; 401 when there is no valid token."""
    cached = getattr(request.state, "principal", None)
    if isinstance(cached, Principal):
        return cached
    return await _validated(request)


async def optional_principal(request: Request) -> Principal | None:
    """The validated caller, or None when no token is sent (a bad token is still 401): for
    routes that anonymous callers may use too."""
    if "authorization" not in request.headers:
        return None
    return await _validated(request)


CurrentPrincipal = Annotated[Principal, Depends(get_principal)]
Authenticated = Depends(get_principal)


def require_role(*roles: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting callers that hold any of `roles` (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        if not principal.has_role(*roles):
            raise InsufficientScope(f"requires one of the roles {', '.join(sorted(roles))}")
        return principal

    return check


def require_scope(*scopes: str) -> Callable[[Principal], Awaitable[Principal]]:
    """A dependency admitting tokens that carry every one of `scopes` (403 otherwise)."""

    async def check(principal: CurrentPrincipal) -> Principal:
        missing = [s for s in scopes if s not in principal.scopes]
        if missing:
            raise InsufficientScope(
                f"token lacks scope {' '.join(missing)}", scope=" ".join(scopes)
            )
        return principal

    return check
