"""Access-token validation: signature, issuer, audience, expiry; verified tokens cached.

Only asymmetric algorithms are accepted, so `alg: none` and HS256 "signed" with the
issuer's public key are refused before any key is touched. A verified token is cached until
it expires (RS256 verification costs about 50 µs; a cache hit about 1 µs).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any

from joserfc import jws, jwt
from joserfc.errors import JoseError

from shared.auth.errors import InvalidToken
from shared.auth.jwks import JWKSCache
from shared.auth.principal import Principal

ALGORITHMS = (
    "RS256",
    "RS384",
    "RS512",
    "PS256",
    "PS384",
    "PS512",
    "ES256",
    "ES384",
    "ES512",
    "EdDSA",
)
MAX_TOKEN_BYTES = 16 * 1024


class TokenValidator:
    """Validates bearer tokens of one issuer for one audience."""

    def __init__(
        self, keys: JWKSCache, *, audience: str, leeway: int = 30, cache_size: int = 10_000
    ) -> None:
        self.keys = keys
        self.issuer = keys.issuer
        self.audience = audience
        self.leeway = leeway
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Principal] = OrderedDict()

    async def validate(self, token: str) -> Principal:
        """The principal of a valid token; InvalidToken (401) otherwise."""
        now = int(time.time())
        cached = self._cache.get(token)
        if cached is not None:
            if cached.expires_at + self.leeway > now:
                return cached
            del self._cache[token]
        if not token or len(token) > MAX_TOKEN_BYTES:
            raise InvalidToken("malformed token")
        try:
            header = jws.extract_compact(token.encode("ascii")).protected
        except (JoseError, ValueError, UnicodeError) as exc:
            raise InvalidToken("malformed token") from exc
        if header.get("alg") not in ALGORITHMS:
            raise InvalidToken(f"algorithm {header.get('alg')!r} is not accepted")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        keys = await self.keys.keys_for(kid)
        if kid is not None and kid not in self.keys.kids:
            raise InvalidToken("token signed by an unknown key")
        try:
            decoded = jwt.decode(token, keys, algorithms=list(ALGORITHMS))
        except (JoseError, ValueError) as exc:
            raise InvalidToken("bad signature or malformed token") from exc
        claims = decoded.claims
        self._check(claims, now)
        principal = Principal.from_claims(claims)
        self._remember(token, principal)
        return principal

    def _check(self, claims: Mapping[str, Any], now: int) -> None:
        if str(claims.get("iss", "")).rstrip("/") != self.issuer:
            raise InvalidToken("token from another issuer")
        aud = claims.get("aud")
        audiences = aud if isinstance(aud, list) else [aud]
        if self.audience not in audiences:
            raise InvalidToken(f"token not meant for {self.audience}")
        exp, nbf = claims.get("exp"), claims.get("nbf")
        if not isinstance(exp, int | float) or exp + self.leeway <= now:
            raise InvalidToken("token expired")
        if isinstance(nbf, int | float) and nbf - self.leeway > now:
            raise InvalidToken("token not valid yet")
        if not claims.get("sub") and not claims.get("azp"):
            raise InvalidToken("token names no subject")

    def _remember(self, token: str, principal: Principal) -> None:
        self._cache[token] = principal
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)  # the oldest entry
