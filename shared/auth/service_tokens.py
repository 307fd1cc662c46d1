"""Service-to-service calls: client-credentials tokens (python-keycloak), cached until
shortly before they expire, attached to httpx requests as an auth flow."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator
from typing import Any

import httpx
from keycloak import KeycloakOpenID
from keycloak.exceptions import KeycloakError

from shared.errors import ServiceUnavailable

REFRESH_MARGIN = 30.0  # seconds before expiry when a new token is fetched


def split_issuer(issuer: str) -> tuple[str, str]:
    """(server URL, realm) of a Keycloak-style issuer `<server>/realms/<realm>`."""
    server, sep, realm = issuer.rstrip("/").rpartition("/realms/")
    if not sep or not realm:
        raise ValueError(f"not a Keycloak-style issuer URL: {issuer!r}")
    return server + "/", realm


class ClientCredentials:
    """Fetches and caches a client-credentials access token for one confidential client."""

    def __init__(self, issuer: str, client_id: str, client_secret: str) -> None:
        server, realm = split_issuer(issuer)
        self.client_id = client_id
        self._oidc = KeycloakOpenID(
            server_url=server,
            realm_name=realm,
            client_id=client_id,
            client_secret_key=client_secret,
            timeout=10,
        )
        self._token: str | None = None
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def token(self, *, force: bool = False) -> str:
        """A valid access token, fetched again when close to expiry."""
        async with self._lock:
            if force or self._token is None or time.monotonic() > self._expires - REFRESH_MARGIN:
                try:
                    # python-keycloak's default scope ("openid"): an empty scope is refused.
                    data: dict[str, Any] = await self._oidc.a_token(grant_type="client_credentials")
                except KeycloakError as exc:
                    raise ServiceUnavailable(
                        f"no service token for {self.client_id}: {exc}"
                    ) from exc
                self._token = str(data["access_token"])
                self._expires = time.monotonic() + float(data.get("expires_in", 60))
            return self._token


class ServiceAuth(httpx.Auth):
    """httpx auth flow: a bearer service token, fetched anew once after a 401."""

    def __init__(self, credentials: ClientCredentials) -> None:
        self.credentials = credentials

    async def async_auth_flow(
        self, request: httpx.Request
    ) -> AsyncGenerator[httpx.Request, httpx.Response]:
        request.headers["Authorization"] = f"Bearer {await self.credentials.token()}"
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Bearer {await self.credentials.token(force=True)}"
            yield request
