"""What the issuer keeps per process: realm, keys, token minter, pending logins and codes."""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Annotated, Generic, TypeVar

from fastapi import Depends, Request

from tools.devissuer.keys import IssuerKeys
from tools.devissuer.model import Client, Realm
from tools.devissuer.oauth import OAuthError
from tools.devissuer.tokens import Sessions, TokenMinter

T = TypeVar("T")
MAX_PENDING = 10_000


class Expiring(Generic[T]):
    """Short-lived single-use entries (login attempts, authorization codes), in memory."""

    def __init__(self, capacity: int = MAX_PENDING) -> None:
        self.capacity = capacity
        self._entries: OrderedDict[str, tuple[float, T]] = OrderedDict()

    def add(self, value: T, lifespan: float) -> str:
        """Store `value` for `lifespan` seconds under a new unguessable key."""
        now = time.monotonic()
        while self._entries and (
            len(self._entries) >= self.capacity or next(iter(self._entries.values()))[0] < now
        ):
            self._entries.popitem(last=False)  # the oldest: expired, or over capacity
        key = secrets.token_urlsafe(32)
        self._entries[key] = (now + lifespan, value)
        return key

    def get(self, key: str) -> T | None:
        """The live entry under `key`, left in place."""
        entry = self._entries.get(key)
        return entry[1] if entry is not None and entry[0] >= time.monotonic() else None

    def pop(self, key: str) -> T | None:
        """Take the entry out (it cannot be used twice); None if absent or expired."""
        entry = self._entries.pop(key, None)
        return entry[1] if entry is not None and entry[0] >= time.monotonic() else None


@dataclass(frozen=True)
class LoginRequest:
    """A validated authorization request waiting for the user to log in."""

    client: Client
    redirect_uri: str
    response_mode: str
    state: str | None
    scope: str | None
    nonce: str | None
    code_challenge: str | None
    code_challenge_method: str | None


@dataclass(frozen=True)
class IssuedCode:
    """What an authorization code stands for, until it is exchanged (once)."""

    request: LoginRequest
    username: str
    sid: str
    auth_time: int


@dataclass
class IssuerState:
    """The issuer's per-process objects, on `app.state.issuer`."""

    realm: Realm
    keys: IssuerKeys
    issuer: str
    minter: TokenMinter
    sessions: Sessions = field(default_factory=Sessions)
    logins: Expiring[LoginRequest] = field(default_factory=Expiring)
    codes: Expiring[IssuedCode] = field(default_factory=Expiring)

    @classmethod
    def create(cls, realm: Realm, keys: IssuerKeys, issuer: str) -> IssuerState:
        """Build the state for `realm` signed with `keys` as `issuer`."""
        return cls(realm, keys, issuer, TokenMinter(realm, keys, issuer))


def get_state(request: Request, realm: str) -> IssuerState:
    """The issuer state, for routes under `/realms/{realm}` (Keycloak's 404 otherwise)."""
    state: IssuerState = request.app.state.issuer
    if realm != state.realm.name:
        raise OAuthError(404, "Realm does not exist", None)
    return state


IssuerDep = Annotated[IssuerState, Depends(get_state)]
"""The issuer state of a `/realms/{realm}/...` route."""
