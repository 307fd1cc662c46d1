"""The issuer's signing keys: OIDC discovery and a JWKS cache, created once per process.

Keys are fetched at start (when the issuer is up) and again when a token names an unknown
`kid` (key rotation), at most once per `min_refresh` seconds so that a flood of forged kids
cannot hammer the identity provider. When the provider is unreachable the cached keys keep
serving: tokens signed by a known key still validate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import httpx
from joserfc.jwk import KeySet

log = logging.getLogger(__name__)
SIGNING_KTY = frozenset({"RSA", "EC", "OKP"})


class KeyFetchError(Exception):
    """The issuer's discovery document or key set could not be fetched or read."""


class JWKSCache:
    """Signing keys of one issuer, refreshed on demand."""

    def __init__(
        self,
        issuer: str,
        client: httpx.AsyncClient,
        *,
        min_refresh: float = 10.0,
        jwks_uri: str | None = None,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client = client
        self.min_refresh = min_refresh
        self.jwks_uri = jwks_uri
        self.keys: KeySet = KeySet([])
        self.kids: frozenset[str] = frozenset()
        self.fetched_at = 0.0
        self._attempted_at = float("-inf")
        self._lock = asyncio.Lock()

    async def _discover(self) -> str:
        url = f"{self.issuer}/.well-known/openid-configuration"
        doc = await self._get_json(url)
        if doc.get("issuer", "").rstrip("/") != self.issuer:
            raise KeyFetchError(f"discovery at {url} names issuer {doc.get('issuer')!r}")
        uri = doc.get("jwks_uri")
        if not isinstance(uri, str):
            raise KeyFetchError(f"discovery at {url} has no jwks_uri")
        return uri

    async def _get_json(self, url: str) -> dict[str, Any]:
        try:
            response = await self.client.get(url, timeout=5.0)
            response.raise_for_status()
            data = response.json()
        except (httpx.HTTPError, ValueError) as exc:
            raise KeyFetchError(f"{url}: {exc}") from exc
        if not isinstance(data, dict):
            raise KeyFetchError(f"{url}: not a JSON object")
        return data

    async def refresh(self, *, force: bool = False) -> bool:
        """Fetch the key set again (rate-limited unless forced); False if it could not."""
        async with self._lock:
            now = time.monotonic()
            if not force and now - self._attempted_at < self.min_refresh:
                return False
            self._attempted_at = now
            try:
                if self.jwks_uri is None:
                    self.jwks_uri = await self._discover()
                data = await self._get_json(self.jwks_uri)
                keys = [
                    k
                    for k in data.get("keys", [])
                    if isinstance(k, dict)
                    and k.get("kty") in SIGNING_KTY
                    and k.get("use", "sig") == "sig"
                    and k.get("kid")
                ]
                keyset = KeySet.import_key_set({"keys": keys})
            except (KeyFetchError, ValueError, TypeError) as exc:
                log.warning(
                    "signing keys of %s not refreshed, keeping %d cached: %s",
                    self.issuer,
                    len(self.kids),
                    exc,
                )
                return False
            self.keys = keyset
            self.kids = frozenset(str(k["kid"]) for k in keys)
            self.fetched_at = time.time()
            return True

    async def keys_for(self, kid: str | None) -> KeySet:
        """The key set, refreshed first when `kid` is unknown (rotation)."""
        if kid is None or kid not in self.kids:
            await self.refresh()
        return self.keys
