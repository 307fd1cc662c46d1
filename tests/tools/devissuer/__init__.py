"""Helpers for the dev issuer tests: an app on the repository's realm files, an HTTP client
through the ASGI transport, token verification against the served JWKS, the login form."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import secrets
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx
from fastapi import FastAPI
from joserfc import jwt
from joserfc.jwk import KeySet
from joserfc.jwt import JWTClaimsRegistry

from shared.settings import build_settings
from tools.devissuer import IssuerSettings, create_issuer_app

BASE_URL = "http://127.0.0.1:8080"
ISSUER = f"{BASE_URL}/realms/huimin"
OIDC = "/realms/huimin/protocol/openid-connect"
TOKEN = f"{OIDC}/token"
AUTH = f"{OIDC}/auth"
PASSWORD = "huimin-dev"
SERVICE_SECRET = "huimin-dev-secret"
SERVICE_CLIENTS = (
    "huimin-gateway",
    "huimin-health",
    "huimin-registry",
    "huimin-education",
    "huimin-tourism",
)
MOBILE_REDIRECT = "huimin://callback"


def issuer_app(data_dir: Path, environ: Mapping[str, str] | None = None, **values: Any) -> FastAPI:
    """The issuer on the repository's realm files, keys in `data_dir`, environment ignored."""
    settings = build_settings(IssuerSettings, issuer_data_dir=data_dir, **values)
    return create_issuer_app(settings, environ=environ or {})


@asynccontextmanager
async def http(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """A client talking HTTP to `app` (lifespan running), as if it were on 127.0.0.1:8080."""
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url=BASE_URL) as client,
    ):
        yield client


async def verify(
    client: httpx.AsyncClient, token: str, *, audience: str = "huimin-api"
) -> dict[str, Any]:
    """Check signature (served JWKS), `iss`, `aud` and `exp` of an RS256 token; its claims."""
    jwks = (await client.get(f"{OIDC}/certs")).json()
    decoded = jwt.decode(token, KeySet.import_key_set(jwks), algorithms=["RS256"])
    assert decoded.header["kid"] in {key["kid"] for key in jwks["keys"]}
    JWTClaimsRegistry(
        iss={"essential": True, "value": ISSUER},
        aud={"essential": True, "value": audience},
        exp={"essential": True},
        iat={"essential": True},
    ).validate(decoded.claims)
    return dict(decoded.claims)


async def password_grant(
    client: httpx.AsyncClient,
    username: str,
    password: str = PASSWORD,
    *,
    client_id: str = "huimin-test",
    **extra: str,
) -> httpx.Response:
    """POST a password grant (the dev-only huimin-test client has direct grants)."""
    data = {"grant_type": "password", "client_id": client_id, "username": username}
    return await client.post(TOKEN, data={**data, "password": password, **extra})


def pkce_pair() -> tuple[str, str]:
    """A fresh (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def form_action(page: httpx.Response) -> str:
    """The absolute URL the login form posts to."""
    match = re.search(r'<form method="post" action="([^"]+)"', page.text)
    assert match, page.text
    return urljoin(str(page.url), html.unescape(match.group(1)))


def redirect_params(response: httpx.Response) -> tuple[str, dict[str, str]]:
    """(target without parameters, parameters) of a 302 to the client."""
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    parts = urlsplit(location)
    query = parts.fragment if "#" in location else parts.query
    target = location.split("#", 1)[0].split("?", 1)[0]
    return target, {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}


async def login(
    client: httpx.AsyncClient,
    params: Mapping[str, str],
    username: str,
    password: str = PASSWORD,
) -> httpx.Response:
    """GET the authorization endpoint, fill in the form, return the form POST's response."""
    page = await client.get(AUTH, params=dict(params))
    assert page.status_code == 200, page.text
    assert 'name="password"' in page.text
    return await client.post(
        form_action(page),
        data={"username": username, "password": password},
    )
