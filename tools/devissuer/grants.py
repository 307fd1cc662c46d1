"""The token endpoint: password, client_credentials, refresh_token and authorization_code.

The checks run in Keycloak's order and answer with Keycloak's errors: the grant type first
(before the client is authenticated), then the client, then the grant's own checks.
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable
from typing import Any

from fastapi import APIRouter, Request
from starlette.responses import JSONResponse

from tools.devissuer.claims import check_scope, grant_for, split_scope
from tools.devissuer.model import Client, User
from tools.devissuer.oauth import (
    NO_STORE,
    PKCE_VERIFIER,
    Form,
    OAuthError,
    authenticate_client,
    read_form,
    s256,
)
from tools.devissuer.state import IssuerDep, IssuerState

# Keycloak up to 26.5 answered a wrong password with 401; 26.6 changed it to 400 (RFC 6749
# §5.2, keycloak/keycloak#46528), and the suite pins Keycloak 26.7 (tools/keycloak.py).
INVALID_CREDENTIALS_STATUS = 400

router = APIRouter(tags=["oidc"])

Handler = Callable[[IssuerState, Client, Form, Request], dict[str, Any]]


@router.post(
    "/realms/{realm}/protocol/openid-connect/token",
    summary="OAuth 2.0 token endpoint",
    response_class=JSONResponse,
)
async def token(request: Request, state: IssuerDep) -> JSONResponse:
    """Exchange a grant for tokens."""
    form = await read_form(request)
    grant_type = form.get("grant_type")
    if not grant_type:
        raise OAuthError(400, "invalid_request", "Missing form parameter: grant_type")
    handler = _GRANTS.get(grant_type)
    if handler is None:
        raise OAuthError(400, "unsupported_grant_type", "Unsupported grant_type")
    client = authenticate_client(state.realm, request, form)
    return JSONResponse(handler(state, client, form, request), headers=NO_STORE)


def _password(state: IssuerState, client: Client, form: Form, request: Request) -> dict[str, Any]:
    realm = state.realm
    if not client.direct_access_grants:
        raise OAuthError(400, "unauthorized_client", "Client not allowed for direct access grants")
    scope = form.get("scope")
    check_scope(realm, client, scope)
    user = realm.find_login(form.require("username"))
    if user is None or not user.check_password(form.get("password") or ""):
        raise OAuthError(INVALID_CREDENTIALS_STATUS, "invalid_grant", "Invalid user credentials")
    _check_usable(user)
    now = int(time.time())
    grant = grant_for(realm, client, user, scope, {"AUTH_TIME": str(now)})
    return state.minter.response(grant, sid=state.sessions.new_id(), auth_time=now)


def _client_credentials(
    state: IssuerState, client: Client, form: Form, request: Request
) -> dict[str, Any]:
    if client.public:
        raise OAuthError(
            401, "unauthorized_client", "Public client not allowed to retrieve service account"
        )
    user = state.realm.service_account(client) if client.service_accounts else None
    if user is None:
        raise OAuthError(
            401, "unauthorized_client", "Client not enabled to retrieve service account"
        )
    now = int(time.time())
    notes = _service_notes(client, request)
    grant = grant_for(
        state.realm, client, user, form.get("scope"), {**notes, "AUTH_TIME": str(now)}
    )
    # Like Keycloak 26: no user session (no sid) and, unless the client asks for one
    # (client_credentials.use_refresh_token), no refresh token.
    return state.minter.response(
        grant, sid=None, auth_time=now, refresh=client.refresh_for_client_credentials
    )


def _refresh_token(
    state: IssuerState, client: Client, form: Form, request: Request
) -> dict[str, Any]:
    claims = state.minter.read_refresh(form.require("refresh_token"))
    if claims.get("azp") != client.client_id:
        raise OAuthError(
            400,
            "invalid_grant",
            "Invalid refresh token. Token client and authorized client don't match",
        )
    sid = claims.get("sid")
    if sid is not None and not state.sessions.active(sid):
        raise OAuthError(400, "invalid_grant", "Session not active")
    user = state.realm.user_by_id(str(claims.get("sub")))
    if user is None:
        raise OAuthError(400, "invalid_grant", "Invalid refresh token")
    if not user.enabled:
        raise OAuthError(400, "invalid_grant", "User disabled")
    original = str(claims.get("scope") or "")
    scope = form.get("scope")
    if scope is not None:
        # A refresh may narrow the scope, never widen it.
        if any(n not in original.split() for n in split_scope(scope)):
            raise OAuthError(400, "invalid_scope", f"Invalid scopes: {scope}")
    else:
        scope = original or None
    auth_time = int(claims.get("auth_time") or time.time())
    notes = {"AUTH_TIME": str(auth_time)}
    if user.service_account_client:
        notes.update(_service_notes(client, request))
    grant = grant_for(state.realm, client, user, scope, notes)
    # revokeRefreshToken: each refresh token works once (refreshTokenMaxReuse extra times
    # is not emulated); spent only once everything else passed.
    if state.realm.revoke_refresh_token and not state.sessions.spend(str(claims.get("jti"))):
        raise OAuthError(400, "invalid_grant", "Maximum allowed refresh token reuse exceeded")
    return state.minter.response(grant, sid=sid, auth_time=auth_time)


def _authorization_code(
    state: IssuerState, client: Client, form: Form, request: Request
) -> dict[str, Any]:
    code = form.require("code")
    issued = state.codes.pop(code)  # spent even if a check below fails, as in Keycloak
    if issued is None or issued.request.client.client_id != client.client_id:
        raise OAuthError(400, "invalid_grant", "Code not valid")
    login = issued.request
    if form.get("redirect_uri") != login.redirect_uri:
        raise OAuthError(400, "invalid_grant", "Incorrect redirect_uri")
    if login.code_challenge is not None:
        verifier = form.get("code_verifier")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "PKCE code verifier not specified")
        if not PKCE_VERIFIER.match(verifier):
            raise OAuthError(400, "invalid_grant", "PKCE invalid code verifier")
        expected = s256(verifier) if login.code_challenge_method == "S256" else verifier
        if not hmac.compare_digest(expected.encode(), login.code_challenge.encode()):
            raise OAuthError(400, "invalid_grant", "PKCE verification failed: Code mismatch")
    if not state.sessions.active(issued.sid):
        raise OAuthError(400, "invalid_grant", "Session not active")
    user = state.realm.users.get(issued.username)
    if user is None or not user.enabled:
        raise OAuthError(400, "invalid_grant", "User disabled")
    grant = grant_for(state.realm, client, user, login.scope, {"AUTH_TIME": str(issued.auth_time)})
    return state.minter.response(
        grant, sid=issued.sid, auth_time=issued.auth_time, nonce=login.nonce
    )


def _service_notes(client: Client, request: Request) -> dict[str, str]:
    # The session notes Keycloak sets for a service account (client_id since 26).
    host = request.client.host if request.client else "127.0.0.1"
    return {
        "client_id": client.client_id,
        "clientId": client.client_id,
        "clientHost": host,
        "clientAddress": host,
    }


def _check_usable(user: User) -> None:
    if not user.enabled:
        raise OAuthError(400, "invalid_grant", "Account disabled")
    if user.required_actions:
        raise OAuthError(400, "invalid_grant", "Account is not fully set up")


_GRANTS: dict[str, Handler] = {
    "password": _password,
    "client_credentials": _client_credentials,
    "refresh_token": _refresh_token,
    "authorization_code": _authorization_code,
}
GRANT_TYPES = tuple(_GRANTS)
