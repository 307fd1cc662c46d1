"""Which client scopes a request gets, and the claims their protocol mappers produce.

Mirrors Keycloak: a client gets all of its default client scopes, plus the optional ones the
`scope` parameter names; naming anything else is an `invalid_scope` error (Keycloak does not
silently drop unknown scopes). Claims then come from the mappers of the granted scopes and
of the client itself, each mapper writing to the access token, the ID token and/or userinfo
as its `*.token.claim` flags say.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from tools.devissuer.model import Client, ClientScope, ProtocolMapper, Realm, User
from tools.devissuer.oauth import OAuthError

Target = Literal["access", "id", "userinfo"]
OPENID = "openid"
OFFLINE_ACCESS = "offline_access"

_UNESCAPED_DOT = re.compile(r"(?<!\\)\.")


@dataclass(frozen=True)
class Grant:
    """Who a token is for and what it may carry: the input of every token."""

    client: Client
    user: User
    scopes: tuple[ClientScope, ...]
    requested: tuple[str, ...]  # scope names as requested (kept for refreshes)
    roles: frozenset[str]
    client_roles: Mapping[str, frozenset[str]]
    notes: Mapping[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> str:
        """The `scope` value of tokens and responses."""
        names = {s.name for s in self.scopes if s.include_in_token_scope}
        if OPENID in self.requested:
            names.add(OPENID)
        return " ".join(sorted(names))

    @property
    def openid(self) -> bool:
        """Whether this is an OpenID Connect request (an ID token is due)."""
        return OPENID in self.requested

    @property
    def offline(self) -> bool:
        """Whether an offline token was asked for and granted."""
        return any(s.name == OFFLINE_ACCESS for s in self.scopes)


def split_scope(raw: str) -> list[str]:
    """Split a scope parameter like Keycloak (Java's `split(" ")`)."""
    if " " not in raw:
        return [raw]
    parts = raw.split(" ")
    while parts and parts[-1] == "":
        parts.pop()
    return parts


def check_scope(realm: Realm, client: Client, raw_scope: str | None) -> tuple[str, ...]:
    """The requested scope names; `invalid_scope` if one is not the client's to request.

    Allowed are `openid` and the client's default and optional client scopes. An absent
    parameter asks for nothing; an empty one is refused, as Keycloak refuses it.
    """
    if raw_scope is None:
        return ()
    requested = tuple(dict.fromkeys(split_scope(raw_scope)))
    allowed = {n for n in (*client.default_scopes, *client.optional_scopes) if n in realm.scopes}
    if any(n not in allowed for n in requested if n != OPENID):
        raise OAuthError(400, "invalid_scope", f"Invalid scopes: {raw_scope}")
    return requested


def grant_for(
    realm: Realm,
    client: Client,
    user: User,
    raw_scope: str | None,
    notes: Mapping[str, str] | None = None,
) -> Grant:
    """Resolve the scopes, roles and session notes of a token request."""
    requested = check_scope(realm, client, raw_scope)
    defaults = [realm.scopes[n] for n in client.default_scopes if n in realm.scopes]
    optional = {n: realm.scopes[n] for n in client.optional_scopes if n in realm.scopes}
    asked = [optional[n] for n in requested if n in optional]
    roles = realm.user_realm_roles(user)
    # A client scope with role scope mappings applies only to users holding one of those
    # roles; for others Keycloak leaves it out silently (no error).
    unique: dict[str, ClientScope] = {}
    for scope in [*defaults, *asked]:
        unique.setdefault(scope.name, scope)
    scopes = tuple(s for s in unique.values() if not s.realm_roles or s.realm_roles & roles)
    client_roles = realm.user_client_roles(user)
    if not client.full_scope_allowed:
        permitted = set(client.realm_roles)
        for scope in scopes:
            permitted |= scope.realm_roles
        roles &= realm.expand_roles(permitted)
        client_roles = {c: r for c, r in client_roles.items() if c == client.client_id}
    grant = Grant(client, user, scopes, requested, roles, client_roles, dict(notes or {}))
    if OFFLINE_ACCESS in requested and OFFLINE_ACCESS not in roles:
        raise OAuthError(400, "not_allowed", "Offline tokens not allowed for the user or client")
    return grant


def mapped_claims(grant: Grant, target: Target) -> dict[str, Any]:
    """Apply every mapper of the grant for `target`; returns the claims they produce."""
    claims: dict[str, Any] = {}
    mappers = [m for s in grant.scopes for m in s.mappers] + list(grant.client.mappers)
    for mapper in mappers:
        if _applies(mapper, target):
            _apply(mapper, grant, target, claims)
    return claims


def _applies(mapper: ProtocolMapper, target: Target) -> bool:
    if mapper.type in ("oidc-audience-resolve-mapper", "oidc-allowed-origins-mapper"):
        return target == "access"  # access-token-only mappers in Keycloak
    id_token = mapper.flag("id.token.claim")
    if target == "access":
        return mapper.flag("access.token.claim", default=True)
    if target == "id":
        return id_token
    return mapper.type != "oidc-audience-mapper" and mapper.flag(
        "userinfo.token.claim", default=id_token
    )


def _apply(mapper: ProtocolMapper, grant: Grant, target: Target, claims: dict[str, Any]) -> None:
    config, user, kind = mapper.config, grant.user, mapper.type
    if kind == "oidc-audience-mapper":
        audience = config.get("included.client.audience") or config.get("included.custom.audience")
        if audience:
            _add_audience(claims, audience)
    elif kind == "oidc-audience-resolve-mapper":
        for client_id in sorted(grant.client_roles):
            if client_id != grant.client.client_id:
                _add_audience(claims, client_id)
    elif kind == "oidc-allowed-origins-mapper":
        origins = grant.client.allowed_origins()
        if origins:
            claims["allowed-origins"] = list(origins)
    elif kind == "oidc-acr-mapper":
        claims["acr"] = "1"
    elif kind == "oidc-sub-mapper":
        claims["sub"] = user.id
    elif kind == "oidc-usermodel-realm-role-mapper":
        prefix = config.get("usermodel.realmRoleMapping.rolePrefix", "")
        names = sorted(prefix + r for r in grant.roles)
        if names:
            _set(claims, config.get("claim.name") or "realm_access.roles", names, mapper)
    elif kind == "oidc-usermodel-client-role-mapper":
        only = config.get("usermodel.clientRoleMapping.clientId")
        claim = config.get("claim.name") or "resource_access.${client_id}.roles"
        for client_id, held in sorted(grant.client_roles.items()):
            if held and (not only or only == client_id):
                _set(claims, claim.replace("${client_id}", client_id), sorted(held), mapper)
    elif kind == "oidc-full-name-mapper":
        name = " ".join(p for p in (user.first_name, user.last_name) if p)
        if name:
            claims["name"] = name
    elif kind == "oidc-group-membership-mapper":
        full = mapper.flag("full.path", default=True)
        groups = [g if full else g.rsplit("/", 1)[-1] for g in grant.user.groups]
        if groups:
            _set(claims, config.get("claim.name") or "groups", groups, mapper)
    else:
        value = _value(mapper, grant)
        if value is not None and config.get("claim.name"):
            _set(claims, config["claim.name"], value, mapper)


def _value(mapper: ProtocolMapper, grant: Grant) -> Any:
    config, user, kind = mapper.config, grant.user, mapper.type
    if kind == "oidc-usermodel-attribute-mapper":
        attribute = config.get("user.attribute", "")
        if attribute in _PROFILE_ATTRIBUTES:
            # Keycloak's user profile serves these as attributes too.
            return _profile(user).get(attribute)
        values = list(user.attributes.get(attribute, ()))
        if not values:
            return None
        return values if mapper.flag("multivalued") else values[0]
    if kind == "oidc-usermodel-property-mapper":
        return _profile(user).get(config.get("user.attribute", ""))
    if kind == "oidc-hardcoded-claim-mapper":
        return config.get("claim.value")
    if kind == "oidc-usersessionmodel-note-mapper":
        return grant.notes.get(config.get("user.session.note", ""))
    return None


_PROFILE_ATTRIBUTES = frozenset({"username", "email", "firstName", "lastName"})


def _profile(user: User) -> dict[str, Any]:
    return {
        "username": user.username,
        "email": user.email,
        "emailVerified": user.email_verified,
        "firstName": user.first_name,
        "lastName": user.last_name,
        "id": user.id,
    }


def _set(claims: dict[str, Any], name: str, value: Any, mapper: ProtocolMapper) -> None:
    value = _typed(value, mapper.config.get("jsonType.label", "String"))
    parts = [p.replace("\\.", ".") for p in _UNESCAPED_DOT.split(name)]
    node = claims
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[parts[-1]] = value


def _typed(value: Any, json_type: str) -> Any:
    if isinstance(value, list):
        return [_typed(v, json_type) for v in value]
    # Keycloak converts from the attribute's string form; booleans read as "true"/"false".
    text = json.dumps(value) if isinstance(value, bool) else str(value)
    try:
        if json_type in ("long", "int"):
            return int(text)
        if json_type == "boolean":
            return text.strip().lower() == "true"
        if json_type == "JSON":
            return json.loads(text)
    except ValueError:
        return text
    return text


def _add_audience(claims: dict[str, Any], audience: str) -> None:
    current = claims.setdefault("aud", [])
    if audience not in current:
        current.append(audience)
