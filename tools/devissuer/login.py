"""The browser side: authorization endpoint, login form, login session cookie, logout.

Errors follow Keycloak's two families: while the client or its redirect URI is unknown the
browser gets an error page (400); after that every error is a redirect to the client with
`error`, `error_description`, `state` and `iss`. A successful login sets a session cookie,
so the next authorization request (another app of the suite) skips the form: single
sign-on, as with Keycloak.
"""

from __future__ import annotations

import time
from typing import Annotated
from urllib.parse import parse_qs, urlencode

from fastapi import APIRouter, Query, Request
from starlette.responses import RedirectResponse, Response

from tools.devissuer.claims import check_scope
from tools.devissuer.model import Client, User
from tools.devissuer.oauth import PKCE_VERIFIER, OAuthError, authenticate_client, read_form
from tools.devissuer.pages import login_page, message_page
from tools.devissuer.state import IssuedCode, IssuerDep, IssuerState, LoginRequest

COOKIE = "HUIMIN_DEVISSUER_SESSION"
RESPONSE_MODES = ("query", "fragment")
PKCE_METHODS = ("plain", "S256")

router = APIRouter(tags=["oidc"])
Params = dict[str, list[str]]


@router.api_route(
    "/realms/{realm}/protocol/openid-connect/auth",
    methods=["GET", "POST"],
    summary="OpenID Connect authorization endpoint (login form)",
)
async def authorize(request: Request, state: IssuerDep) -> Response:
    """Validate an authorization request, then log the user in (form or session cookie)."""
    params = await _params(request)
    client = state.realm.clients.get(_first(params, "client_id") or "")
    if client is None or not client.enabled:
        return message_page(400, "Client not found.")
    if client.bearer_only:
        return message_page(403, "Bearer-only clients cannot log users in.")
    redirect_uri = _first(params, "redirect_uri") or ""
    if not client.allows_redirect(redirect_uri):
        return message_page(400, "Invalid parameter: redirect_uri")
    mode = _first(params, "response_mode") or "query"
    if mode not in RESPONSE_MODES:
        return message_page(400, f"Invalid parameter: response_mode ({mode} is not supported)")
    client_state = _first(params, "state")
    try:
        login = _validate(state, client, params, redirect_uri, mode)
    except OAuthError as exc:
        error = [("error", exc.error)]
        if exc.description:
            error.append(("error_description", exc.description))
        return _back_to_client(state, redirect_uri, mode, client_state, error)
    prompt = (_first(params, "prompt") or "").split()
    session = _session(request, state)
    if session is not None and "login" not in prompt:
        return _issue_code(state, login, *session)
    if "none" in prompt:
        return _back_to_client(
            state, redirect_uri, mode, client_state, [("error", "login_required")]
        )
    key = state.logins.add(login, state.realm.lifespans.login)
    return login_page(state.realm, login.client, _action("../../login-actions/", key))


@router.post(
    "/realms/{realm}/login-actions/authenticate",
    summary="Login form submission",
)
async def authenticate(
    request: Request, state: IssuerDep, session_code: Annotated[str, Query()] = ""
) -> Response:
    """Check the submitted username and password; on success redirect with a code."""
    login = state.logins.get(session_code)
    if login is None:
        return message_page(400, "Your login attempt timed out. Start again from the application.")
    form = await read_form(request)
    username = form.get("username") or ""
    user = state.realm.find_login(username)
    error = None
    if user is None or not user.check_password(form.get("password") or ""):
        error = "Invalid username or password."
    elif not user.enabled:
        error = "Account is disabled, contact your administrator."
    elif user.required_actions:
        error = "Account is not fully set up (required actions are not supported here)."
    if error is not None or user is None:
        action = _action("", session_code)
        return login_page(state.realm, login.client, action, error=error, username=username)
    state.logins.pop(session_code)
    sid, now = state.sessions.new_id(), int(time.time())
    response = _issue_code(state, login, user, sid, now)
    cookie = state.minter.seal(
        {
            "iss": state.issuer,
            "typ": "Session",
            "sid": sid,
            "sub": user.id,
            "auth_time": now,
            "exp": now + state.realm.lifespans.sso_max,
        }
    )
    response.set_cookie(
        COOKIE,
        cookie,
        max_age=state.realm.lifespans.sso_max,
        path=f"/realms/{state.realm.name}/",
        httponly=True,
        samesite="lax",
        secure=state.issuer.startswith("https://"),
    )
    return response


@router.api_route(
    "/realms/{realm}/protocol/openid-connect/logout",
    methods=["GET", "POST"],
    summary="End the login session (browser, or a client with its refresh token)",
)
async def logout(request: Request, state: IssuerDep) -> Response:
    """Log out: by refresh token (back channel, 204) or in the browser (redirect or page)."""
    params = await _params(request)
    if request.method == "POST" and _first(params, "refresh_token"):
        form = await read_form(request)
        caller = authenticate_client(state.realm, request, form)
        claims = state.minter.read_refresh(form.require("refresh_token"))
        if claims.get("azp") != caller.client_id:
            raise OAuthError(400, "invalid_grant", "Invalid refresh token")
        if claims.get("sid"):
            state.sessions.end(str(claims["sid"]))
        return Response(status_code=204)
    hint = state.minter.read_signed(_first(params, "id_token_hint") or "")
    session = _session(request, state)
    for sid in (hint or {}).get("sid"), session[1] if session else None:
        if sid:
            state.sessions.end(str(sid))
    target = _first(params, "post_logout_redirect_uri")
    response: Response
    if target:
        client = state.realm.clients.get(
            _first(params, "client_id") or str((hint or {}).get("azp"))
        )
        if client is None or not client.allows_post_logout_redirect(target):
            return message_page(400, "Invalid redirect uri")
        extra = [("state", s) for s in [_first(params, "state")] if s is not None]
        response = RedirectResponse(_append(target, "?", extra) if extra else target, 302)
    else:
        response = message_page(200, "You are logged out.")
    response.delete_cookie(COOKIE, path=f"/realms/{state.realm.name}/")
    return response


def _validate(
    state: IssuerState, client: Client, params: Params, redirect_uri: str, mode: str
) -> LoginRequest:
    response_type = _first(params, "response_type")
    if response_type is None:
        raise OAuthError(400, "invalid_request", "Missing parameter: response_type")
    if response_type.split() != ["code"]:
        raise OAuthError(400, "unsupported_response_type", None)
    if not client.standard_flow:
        raise OAuthError(
            400,
            "unauthorized_client",
            "Client is not allowed to initiate browser login with given response_type. "
            "Standard flow is disabled for the client.",
        )
    if any(len(values) > 1 for values in params.values()):
        raise OAuthError(400, "invalid_request", "duplicated parameter")
    scope = _first(params, "scope")
    check_scope(state.realm, client, scope)
    challenge = _first(params, "code_challenge")
    method = _first(params, "code_challenge_method")
    # Keycloak requires PKCE where the client says so; public clients here always need S256.
    required = client.pkce_method or ("S256" if client.public else None)
    if challenge is None and (method is not None or required is not None):
        raise OAuthError(400, "invalid_request", "Missing parameter: code_challenge")
    if challenge is not None:
        method = method or "plain"
        if method not in PKCE_METHODS or (required is not None and method != required):
            raise OAuthError(400, "invalid_request", "Invalid parameter: code_challenge_method")
        if not PKCE_VERIFIER.match(challenge):
            raise OAuthError(400, "invalid_request", "Invalid parameter: code_challenge")
    return LoginRequest(
        client=client,
        redirect_uri=redirect_uri,
        response_mode=mode,
        state=_first(params, "state"),
        scope=scope,
        nonce=_first(params, "nonce"),
        code_challenge=challenge,
        code_challenge_method=method if challenge is not None else None,
    )


def _issue_code(
    state: IssuerState, login: LoginRequest, user: User, sid: str, auth_time: int
) -> Response:
    code = state.codes.add(
        IssuedCode(login, user.username, sid, auth_time), state.realm.lifespans.code
    )
    extra = [("session_state", sid), ("iss", state.issuer), ("code", code)]
    params = ([("state", login.state)] if login.state is not None else []) + extra
    separator = "#" if login.response_mode == "fragment" else "?"
    return RedirectResponse(_append(login.redirect_uri, separator, params), 302)


def _back_to_client(
    state: IssuerState,
    redirect_uri: str,
    mode: str,
    client_state: str | None,
    error: list[tuple[str, str]],
) -> Response:
    params = error + ([("state", client_state)] if client_state is not None else [])
    params.append(("iss", state.issuer))
    return RedirectResponse(_append(redirect_uri, "#" if mode == "fragment" else "?", params), 302)


def _session(request: Request, state: IssuerState) -> tuple[User, str, int] | None:
    claims = state.minter.unseal(request.cookies.get(COOKIE, ""))
    if claims is None or claims.get("typ") != "Session":
        return None
    sid = str(claims.get("sid"))
    user = state.realm.user_by_id(str(claims.get("sub")))
    if user is None or not user.enabled or not state.sessions.active(sid):
        return None
    return user, sid, int(claims.get("auth_time", 0))


async def _params(request: Request) -> Params:
    if request.method == "POST":
        return dict((await read_form(request)).values)
    return parse_qs(request.url.query, keep_blank_values=True)


def _first(params: Params, name: str) -> str | None:
    values = params.get(name)
    return values[0] if values else None


def _action(prefix: str, key: str) -> str:
    # Relative, so the form also works behind a proxy that mounts the issuer under a path.
    return f"{prefix}authenticate?{urlencode({'session_code': key})}"


def _append(uri: str, separator: str, params: list[tuple[str, str]]) -> str:
    if separator == "?" and "?" in uri:
        separator = "&"
    return uri + separator + urlencode(params)
