"""The realm as the dev issuer sees it: clients, client scopes, users and roles.

Built by `tools.devissuer.realm.load_realm` from a Keycloak realm export; every default
below is the one Keycloak applies when the export leaves the field out.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit

# Keycloak's per-realm defaults (RealmRepresentation), in seconds.
DEFAULT_ACCESS_TOKEN_LIFESPAN = 300
DEFAULT_SSO_IDLE = 1800
DEFAULT_SSO_MAX = 36000
DEFAULT_OFFLINE_IDLE = 2_592_000
DEFAULT_CODE_LIFESPAN = 60
DEFAULT_LOGIN_LIFESPAN = 1800

SERVICE_ACCOUNT_PREFIX = "service-account-"


@dataclass(frozen=True, slots=True)
class ProtocolMapper:
    """One OIDC protocol mapper (`protocolMapper` type and its string config)."""

    name: str
    type: str
    config: Mapping[str, str]

    def flag(self, key: str, default: bool = False) -> bool:
        """Read a boolean config entry (Keycloak stores them as strings)."""
        value = self.config.get(key)
        return default if value is None else value.strip().lower() == "true"


@dataclass(frozen=True, slots=True)
class ClientScope:
    """A client scope: a name clients may request, and the mappers it brings."""

    name: str
    include_in_token_scope: bool = True
    mappers: tuple[ProtocolMapper, ...] = ()
    realm_roles: frozenset[str] = frozenset()  # scope mappings (used when fullScopeAllowed=false)


@dataclass(frozen=True, slots=True)
class Client:
    """An OIDC client of the realm."""

    client_id: str
    enabled: bool = True
    public: bool = False
    bearer_only: bool = False
    secret: str | None = None
    redirect_uris: tuple[str, ...] = ()
    post_logout_redirect_uris: tuple[str, ...] = ()
    web_origins: tuple[str, ...] = ()
    root_url: str | None = None
    standard_flow: bool = True
    direct_access_grants: bool = False
    service_accounts: bool = False
    full_scope_allowed: bool = True
    pkce_method: str | None = None
    access_token_lifespan: int | None = None
    refresh_for_client_credentials: bool = False
    default_scopes: tuple[str, ...] = ()
    optional_scopes: tuple[str, ...] = ()
    mappers: tuple[ProtocolMapper, ...] = ()
    realm_roles: frozenset[str] = frozenset()  # scope mappings (used when fullScopeAllowed=false)

    @property
    def service_account_username(self) -> str:
        """The username Keycloak gives this client's service account."""
        return (SERVICE_ACCOUNT_PREFIX + self.client_id).lower()

    def allows_redirect(self, uri: str) -> bool:
        """Match `uri` against the registered redirect URIs the way Keycloak does.

        A plain entry matches only the identical string (no normalisation at all); an entry
        ending in `*` (and holding no `?`) matches any URI with that prefix once the query
        and fragment are cut off.
        """
        return bool(uri) and any(_redirect_matches(p, uri) for p in self._absolute_uris())

    def allows_post_logout_redirect(self, uri: str) -> bool:
        """Match a post-logout redirect; `+` means "the same as the redirect URIs"."""
        patterns = list(self.post_logout_redirect_uris)
        if "+" in patterns:
            patterns = [p for p in patterns if p != "+"] + list(self._absolute_uris())
        return bool(uri) and any(_redirect_matches(p, uri) for p in patterns)

    def allowed_origins(self) -> tuple[str, ...]:
        """Web origins for CORS and `allowed-origins`; `+` means those of the redirect URIs."""
        origins: list[str] = []
        for origin in self.web_origins:
            if origin == "+":
                origins.extend(_origin(uri) for uri in self._absolute_uris() if _origin(uri))
            else:
                origins.append(origin.rstrip("/"))
        return tuple(dict.fromkeys(origins))

    def _absolute_uris(self) -> tuple[str, ...]:
        root = (self.root_url or "").rstrip("/")
        return tuple(root + u if u.startswith("/") and root else u for u in self.redirect_uris)


def _redirect_matches(pattern: str, uri: str) -> bool:
    if not pattern.endswith("*") or "?" in pattern:
        return pattern == uri
    prefix = pattern[:-1]
    bare = uri.split("#", 1)[0].split("?", 1)[0]
    return bare.startswith(prefix) or (prefix.endswith("/") and bare == prefix[:-1])


def _origin(uri: str) -> str:
    parts = urlsplit(uri)
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


@dataclass(frozen=True, slots=True)
class Password:
    """A password credential: plain (as written in a realm file) or a PBKDF2 hash."""

    value: str | None = None
    algorithm: str | None = None
    digest: bytes = b""
    salt: bytes = b""
    iterations: int = 0

    def matches(self, candidate: str) -> bool:
        """Check `candidate` in constant time."""
        if self.value is not None:
            return hmac.compare_digest(self.value.encode(), candidate.encode())
        hash_name = _PBKDF2_HASHES.get(self.algorithm or "")
        if hash_name is None:
            return False
        derived = hashlib.pbkdf2_hmac(
            hash_name, candidate.encode(), self.salt, self.iterations, len(self.digest)
        )
        return hmac.compare_digest(derived, self.digest)


# Keycloak's PBKDF2 providers; argon2 (its default since 24) has no standard-library
# implementation, so realm files for the dev issuer carry plain `value` passwords.
_PBKDF2_HASHES = {"pbkdf2": "sha1", "pbkdf2-sha256": "sha256", "pbkdf2-sha512": "sha512"}


@dataclass(frozen=True, slots=True)
class User:
    """A user of the realm (a person, or a client's service account)."""

    id: str
    username: str
    enabled: bool = True
    email: str | None = None
    email_verified: bool = False
    first_name: str | None = None
    last_name: str | None = None
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    realm_roles: frozenset[str] = frozenset()
    client_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)
    groups: tuple[str, ...] = ()
    password: Password | None = None
    required_actions: tuple[str, ...] = ()
    service_account_client: str | None = None

    def check_password(self, candidate: str) -> bool:
        """Whether `candidate` is this user's password."""
        return self.password is not None and self.password.matches(candidate)


def stable_user_id(realm: str, username: str) -> str:
    """The `sub` of a user whose realm entry has no `id`: a UUIDv5 of realm and username."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:huimin:realm:{realm}:user:{username}"))


@dataclass(frozen=True, slots=True)
class Group:
    """A group: members inherit its roles and those of its parents."""

    path: str
    realm_roles: frozenset[str] = frozenset()
    client_roles: Mapping[str, frozenset[str]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Lifespans:
    """Token and session lifetimes of the realm, in seconds."""

    access_token: int = DEFAULT_ACCESS_TOKEN_LIFESPAN
    sso_idle: int = DEFAULT_SSO_IDLE
    sso_max: int = DEFAULT_SSO_MAX
    offline_idle: int = DEFAULT_OFFLINE_IDLE
    offline_max: int = 0  # 0: offline sessions have no maximum lifespan
    code: int = DEFAULT_CODE_LIFESPAN
    login: int = DEFAULT_LOGIN_LIFESPAN


@dataclass(frozen=True, slots=True)
class Realm:
    """Everything the issuer needs from the realm file."""

    name: str
    display_name: str
    clients: Mapping[str, Client]
    scopes: Mapping[str, ClientScope]
    users: Mapping[str, User]  # by username (lower case, like Keycloak)
    composites: Mapping[str, frozenset[str]]  # realm role -> realm roles it contains
    client_composites: Mapping[str, Mapping[str, frozenset[str]]]  # realm role -> client roles
    client_role_composites: Mapping[tuple[str, str], frozenset[str]]  # (client, role) -> roles
    groups: Mapping[str, Group]  # by path
    lifespans: Lifespans = Lifespans()
    revoke_refresh_token: bool = False
    refresh_token_max_reuse: int = 0

    def find_login(self, login: str) -> User | None:
        """The person who logs in as `login`: a username, or an e-mail address (as Keycloak
        allows by default); never a service account."""
        login = login.lower()
        user = self.users.get(login) or next(
            (u for u in self.users.values() if u.email and u.email.lower() == login), None
        )
        return None if user is None or user.service_account_client else user

    def user_by_id(self, user_id: str) -> User | None:
        """Find a user by `sub`."""
        return next((u for u in self.users.values() if u.id == user_id), None)

    def service_account(self, client: Client) -> User | None:
        """The service-account user of `client`."""
        return self.users.get(client.service_account_username)

    def expand_roles(self, roles: Iterable[str]) -> frozenset[str]:
        """Add every role contained (transitively) in composite roles."""
        seen: set[str] = set()
        pending = list(roles)
        while pending:
            role = pending.pop()
            if role not in seen:
                seen.add(role)
                pending.extend(self.composites.get(role, ()))
        return frozenset(seen)

    def user_realm_roles(self, user: User) -> frozenset[str]:
        """The user's effective realm roles: direct, from groups (and their parents)."""
        roles = set(user.realm_roles)
        for group in self._groups_of(user):
            roles |= group.realm_roles
        return self.expand_roles(roles)

    def user_client_roles(self, user: User) -> dict[str, frozenset[str]]:
        """The user's client roles by client id: direct, from groups and from composite realm
        roles (the default role holds account roles), composites expanded."""
        granted = [*user.client_roles.items()]
        granted += [item for group in self._groups_of(user) for item in group.client_roles.items()]
        for realm_role in self.user_realm_roles(user):
            granted += self.client_composites.get(realm_role, {}).items()
        result: dict[str, set[str]] = {}
        for client_id, roles in granted:
            held = result.setdefault(client_id, set())
            pending = list(roles)
            while pending:
                role = pending.pop()
                if role not in held:
                    held.add(role)
                    pending.extend(self.client_role_composites.get((client_id, role), ()))
        return {c: frozenset(r) for c, r in result.items() if r}

    def _groups_of(self, user: User) -> list[Group]:
        found: list[Group] = []
        for path in user.groups:
            parts = path.strip("/").split("/")
            for depth in range(1, len(parts) + 1):
                group = self.groups.get("/" + "/".join(parts[:depth]))
                if group is not None:
                    found.append(group)
        return found
