"""The embedded dev identity provider: an OIDC issuer with Keycloak's URL layout.

`create_issuer_app(settings)` loads the realm export (`HUIMIN_ISSUER_REALM_DIR`), loads or
creates the signing keys (`HUIMIN_ISSUER_DATA_DIR`) and serves, under `/realms/<realm>`:

    /.well-known/openid-configuration     discovery
    /protocol/openid-connect/certs        JWKS (RS256 signing key)
    /protocol/openid-connect/auth         authorization endpoint + login form
    /protocol/openid-connect/token        password, client_credentials, refresh_token,
                                          authorization_code (+PKCE)
    /protocol/openid-connect/userinfo     claims of the bearer token's user
    /protocol/openid-connect/logout       RP-initiated and refresh-token logout

plus the suite's `/healthz`, `/readyz` and `/metrics`. Tokens carry the claims Keycloak
would issue for the same realm file (see tools.devissuer.claims).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.middleware.cors import CORSMiddleware
from starlette.responses import JSONResponse, Response

from shared.app import create_app
from shared.settings import get_settings
from shared.telemetry import Telemetry
from tools.devissuer import grants, login
from tools.devissuer.claims import OPENID, grant_for, mapped_claims, split_scope
from tools.devissuer.keys import SIGNING_ALG, load_or_create_keys
from tools.devissuer.model import Realm
from tools.devissuer.oauth import OAuthError, oauth_error_handler
from tools.devissuer.realm import load_realm
from tools.devissuer.settings import IssuerSettings
from tools.devissuer.state import IssuerDep, IssuerState

OIDC = "/realms/{realm}/protocol/openid-connect"
router = APIRouter(tags=["oidc"])


def create_issuer_app(
    settings: IssuerSettings | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    telemetry: Telemetry | None = None,
) -> FastAPI:
    """Build the issuer app; raises RealmError or KeyFileError when it cannot serve."""
    settings = settings if settings is not None else get_settings(IssuerSettings)
    # The realm file's ${VAR} placeholders are Keycloak's import feature, read from the
    # environment exactly as Keycloak reads them.
    realm = load_realm(
        settings.issuer_realm_dir,
        settings.issuer_realm,
        os.environ if environ is None else environ,
    )
    keys = load_or_create_keys(settings.issuer_data_dir)
    app = create_app(
        settings,
        title="Huimin dev issuer",
        routers=[router, grants.router, login.router],
        telemetry=telemetry,
    )
    app.state.issuer = IssuerState.create(realm, keys, settings.issuer_url)
    app.add_exception_handler(OAuthError, oauth_error_handler)
    # Browser apps (the console) call the token endpoint cross-origin, as with Keycloak.
    app.add_middleware(
        CORSMiddleware,
        allow_origins=_web_origins(realm),
        allow_methods=["GET", "POST"],
        allow_headers=["Authorization", "Content-Type"],
        allow_credentials=True,
    )
    return app


def _web_origins(realm: Realm) -> list[str]:
    origins = {o for c in realm.clients.values() for o in c.allowed_origins()}
    return ["*"] if "*" in origins else sorted(origins)


@router.get("/realms/{realm}/.well-known/openid-configuration", summary="OIDC discovery")
async def discovery(state: IssuerDep) -> dict[str, Any]:
    """The OpenID Provider metadata (RFC 8414 / OIDC Discovery)."""
    base = f"{state.issuer}/protocol/openid-connect"
    return {
        "issuer": state.issuer,
        "authorization_endpoint": f"{base}/auth",
        "token_endpoint": f"{base}/token",
        "userinfo_endpoint": f"{base}/userinfo",
        "end_session_endpoint": f"{base}/logout",
        "jwks_uri": f"{base}/certs",
        "grant_types_supported": sorted(grants.GRANT_TYPES),
        "response_types_supported": ["code"],
        "response_modes_supported": list(login.RESPONSE_MODES),
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": [SIGNING_ALG],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "code_challenge_methods_supported": list(login.PKCE_METHODS),
        "scopes_supported": [OPENID, *sorted(state.realm.scopes)],
        "claims_supported": [
            "iss",
            "sub",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "name",
            "given_name",
            "family_name",
            "preferred_username",
            "email",
            "acr",
            "azp",
            "nonce",
        ],
        "claim_types_supported": ["normal"],
        "prompt_values_supported": ["none", "login"],
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
        "authorization_response_iss_parameter_supported": True,
    }


@router.get(f"{OIDC}/certs", summary="JSON Web Key Set")
async def certs(state: IssuerDep) -> JSONResponse:
    """The public signing keys."""
    return JSONResponse(state.keys.jwks(), headers={"Cache-Control": "no-cache"})


@router.get("/realms/{realm}", summary="Realm information (python-keycloak's public_key())")
async def realm_info(state: IssuerDep) -> dict[str, Any]:
    """Keycloak's public realm document: name, public key, service URLs."""
    der = state.keys.signing.as_der(private=False)
    return {
        "realm": state.realm.name,
        "public_key": base64.b64encode(der).decode("ascii"),
        "token-service": f"{state.issuer}/protocol/openid-connect",
        "account-service": f"{state.issuer}/account",
        "tokens-not-before": 0,
    }


@router.api_route(f"{OIDC}/userinfo", methods=["GET", "POST"], summary="OIDC userinfo")
async def userinfo(request: Request, state: IssuerDep) -> Response:
    """The claims about the bearer token's user that the client's scopes allow."""
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    claims = state.minter.read_access(token.strip()) if scheme.lower() == "bearer" else None
    if claims is None:
        raise _invalid_token(state, "Token verification failed")
    if not state.sessions.active(claims.get("sid")) and claims.get("sid") is not None:
        raise _invalid_token(state, "User session not found")
    user = state.realm.user_by_id(str(claims.get("sub")))
    client = state.realm.clients.get(str(claims.get("azp")))
    if user is None or client is None or not user.enabled:
        raise _invalid_token(state, "User not found or disabled")
    names = split_scope(str(claims.get("scope", "")))
    if OPENID not in names:
        raise OAuthError(403, "insufficient_scope", "Missing openid scope")
    known = {*client.default_scopes, *client.optional_scopes, OPENID}
    grant = grant_for(state.realm, client, user, " ".join(n for n in names if n in known))
    return JSONResponse({"sub": user.id, **mapped_claims(grant, "userinfo")})


def _invalid_token(state: IssuerState, description: str) -> OAuthError:
    challenge = (
        f'Bearer realm="{state.realm.name}", error="invalid_token", '
        f'error_description="{description}"'
    )
    return OAuthError(401, "invalid_token", description, {"WWW-Authenticate": challenge})
