"""Minting and reading tokens, shaped like Keycloak's.

- Access token (RS256, `typ: Bearer`) and ID token (RS256, `typ: ID`): claim order and
  shape as Keycloak emits them; `aud` is absent, a string or a list, as Keycloak renders it.
- Refresh token (`typ: Refresh`, or `Offline` with `offline_access`) and the login-session
  cookie: HS256 with the issuer's private secret key; stateless, so both survive a restart.
  What needs state (ended sessions, spent refresh tokens when the realm revokes them) is
  kept in memory by `Sessions`.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from collections import OrderedDict
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError

from tools.devissuer.claims import Grant, mapped_claims
from tools.devissuer.keys import SECRET_ALG, SIGNING_ALG, IssuerKeys
from tools.devissuer.model import Realm
from tools.devissuer.oauth import OAuthError

REFRESH = "Refresh"
OFFLINE = "Offline"
SESSION = "Session"
# Claims the issuer sets itself; a mapper may not replace them.
_RESERVED = frozenset({"exp", "iat", "jti", "iss", "typ", "azp", "sid", "nbf", "scope"})
_MAX_REMEMBERED = 100_000


class Sessions:
    """In-memory session state: ended sessions and spent refresh tokens (lost on restart)."""

    def __init__(self) -> None:
        self._ended: OrderedDict[str, None] = OrderedDict()
        self._spent: OrderedDict[str, None] = OrderedDict()

    @staticmethod
    def new_id() -> str:
        """A new session id (`sid`, `session_state`)."""
        return str(uuid.uuid4())

    def end(self, sid: str) -> None:
        """Log a session out: its refresh tokens and cookie stop working."""
        _remember(self._ended, sid)

    def active(self, sid: str | None) -> bool:
        """Whether `sid` has not been logged out."""
        return sid is not None and sid not in self._ended

    def spend(self, jti: str) -> bool:
        """Mark a refresh token used; False if it already was."""
        if jti in self._spent:
            return False
        _remember(self._spent, jti)
        return True


def _remember(store: OrderedDict[str, None], key: str) -> None:
    store[key] = None
    if len(store) > _MAX_REMEMBERED:
        store.popitem(last=False)


class TokenMinter:
    """Issues and reads the tokens of one realm."""

    def __init__(self, realm: Realm, keys: IssuerKeys, issuer: str) -> None:
        self.realm = realm
        self.keys = keys
        self.issuer = issuer

    def response(
        self,
        grant: Grant,
        *,
        sid: str | None,
        auth_time: int,
        nonce: str | None = None,
        refresh: bool = True,
    ) -> dict[str, Any]:
        """The token endpoint's success body, in Keycloak's member order."""
        now = int(time.time())
        access, expires_in = self.access_token(grant, sid=sid, auth_time=auth_time, now=now)
        body: dict[str, Any] = {"access_token": access, "expires_in": expires_in}
        if refresh:
            token, refresh_in = self.refresh_token(grant, sid=sid, auth_time=auth_time, now=now)
            body.update(refresh_expires_in=refresh_in, refresh_token=token)
        else:
            body["refresh_expires_in"] = 0
        body["token_type"] = "Bearer"  # noqa: S105 - the token type, not a secret
        if grant.openid:
            body["id_token"] = self.id_token(
                grant, sid=sid, auth_time=auth_time, now=now, nonce=nonce, access_token=access
            )
        body["not-before-policy"] = 0
        if sid is not None:
            body["session_state"] = sid
        body["scope"] = grant.scope
        return body

    def access_token(
        self, grant: Grant, *, sid: str | None, auth_time: int, now: int
    ) -> tuple[str, int]:
        """An RS256 access token and its lifetime in seconds."""
        lifespan = grant.client.access_token_lifespan or self.realm.lifespans.access_token
        exp = now + lifespan
        if sid is not None and not grant.offline:
            # Keycloak never lets an access token outlive its SSO session.
            exp = min(exp, auth_time + self.realm.lifespans.sso_max)
        mapped = mapped_claims(grant, "access")
        claims = self._base(exp, now, mapped.pop("aud", []))
        claims.update(sub=grant.user.id, typ="Bearer", azp=grant.client.client_id)
        if sid is not None:
            claims["sid"] = sid
        _merge(claims, mapped, last=("scope", grant.scope))
        return self._sign(claims), exp - now

    def id_token(
        self,
        grant: Grant,
        *,
        sid: str | None,
        auth_time: int,
        now: int,
        nonce: str | None,
        access_token: str,
    ) -> str:
        """An RS256 ID token for `grant.client`, with `at_hash` and the request's nonce."""
        lifespan = grant.client.access_token_lifespan or self.realm.lifespans.access_token
        mapped = mapped_claims(grant, "id")
        audience = [grant.client.client_id, *mapped.pop("aud", [])]
        claims = self._base(now + lifespan, now, list(dict.fromkeys(audience)))
        claims.update(sub=grant.user.id, typ="ID", azp=grant.client.client_id)
        if nonce:
            claims["nonce"] = nonce
        if sid is not None:
            claims["sid"] = sid
        claims["at_hash"] = _left_hash(access_token)
        _merge(claims, mapped)
        return self._sign(claims)

    def refresh_token(
        self, grant: Grant, *, sid: str | None, auth_time: int, now: int
    ) -> tuple[str, int]:
        """An HS256 refresh token (offline when `offline_access` was granted)."""
        spans = self.realm.lifespans
        if grant.offline:
            exp, typ = now + spans.offline_idle, OFFLINE
            if spans.offline_max:
                exp = min(exp, auth_time + spans.offline_max)
        else:
            exp, typ = min(now + spans.sso_idle, auth_time + spans.sso_max), REFRESH
        claims = {
            "exp": exp,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "iss": self.issuer,
            "aud": self.issuer,
            "sub": grant.user.id,
            "typ": typ,
            "azp": grant.client.client_id,
            "sid": sid,
            "scope": " ".join(grant.requested),
            "auth_time": auth_time,
        }
        return self.seal(claims), exp - now

    def read_refresh(self, token: str) -> dict[str, Any]:
        """The claims of a valid refresh token; `invalid_grant` otherwise."""
        claims = self.unseal(token)
        if claims is None or claims.get("typ") not in (REFRESH, OFFLINE):
            raise OAuthError(400, "invalid_grant", "Invalid refresh token")
        return claims

    def read_access(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid access token of this issuer, or None."""
        claims = self.read_signed(token)
        if claims is None or claims.get("typ") != "Bearer" or not self._current(claims):
            return None
        return claims

    def read_signed(self, token: str) -> dict[str, Any] | None:
        """The claims of any token this issuer signed (expired or not), or None."""
        try:
            claims = jwt.decode(token, self.keys.signing, algorithms=[SIGNING_ALG]).claims
        except (JoseError, ValueError):
            return None
        return claims if claims.get("iss") == self.issuer else None

    def seal(self, claims: dict[str, Any]) -> str:
        """Sign claims only this issuer reads back (HS256, secret key)."""
        header = {"alg": SECRET_ALG, "typ": "JWT", "kid": str(self.keys.secret.kid)}
        return jwt.encode(header, claims, self.keys.secret, algorithms=[SECRET_ALG])

    def unseal(self, token: str) -> dict[str, Any] | None:
        """The claims of a token made by `seal`, if valid, of this issuer and not expired."""
        try:
            claims = jwt.decode(token, self.keys.secret, algorithms=[SECRET_ALG]).claims
        except (JoseError, ValueError):
            return None
        return claims if self._current(claims) else None

    def _current(self, claims: dict[str, Any]) -> bool:
        exp = claims.get("exp")
        return claims.get("iss") == self.issuer and isinstance(exp, int) and exp > time.time()

    def _base(self, exp: int, now: int, audience: list[str]) -> dict[str, Any]:
        claims: dict[str, Any] = {"exp": exp, "iat": now, "jti": str(uuid.uuid4())}
        claims["iss"] = self.issuer
        if audience:
            claims["aud"] = audience[0] if len(audience) == 1 else audience
        return claims

    def _sign(self, claims: dict[str, Any]) -> str:
        header = {"alg": SIGNING_ALG, "typ": "JWT", "kid": self.keys.kid}
        return jwt.encode(header, claims, self.keys.signing, algorithms=[SIGNING_ALG])


def _merge(
    claims: dict[str, Any], mapped: dict[str, Any], last: tuple[str, Any] | None = None
) -> None:
    # Keycloak's order: the standard claims, then scope, then what mappers add.
    if last is not None:
        claims[last[0]] = last[1]
    for name, value in mapped.items():
        if name not in _RESERVED:
            claims[name] = value


def _left_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[: len(digest) // 2]).rstrip(b"=").decode("ascii")
