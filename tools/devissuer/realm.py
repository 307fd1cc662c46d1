"""Load a Keycloak realm export (the files Keycloak imports) into `tools.devissuer.model`.

The directory may hold the realm file and separate user files (`<realm>-users-<n>.json`,
`{"realm": ..., "users": [...]}`), as Keycloak's directory import does; every `*.json` file
naming the realm is read. `${NAME}` and `${NAME:default}` placeholders are replaced from
the environment, as Keycloak's `--import-realm` does.

What Keycloak would fill in when the export leaves it out is filled in the same way:
client flags, realm default client scopes, and the built-in client scopes (`profile`,
`email`, `roles`, ...) when the export defines none.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from tools.devissuer import representations as parts
from tools.devissuer.builtin import BUILTIN_DEFAULT_SCOPES, BUILTIN_OPTIONAL_SCOPES, builtin_scopes
from tools.devissuer.model import (
    DEFAULT_ACCESS_TOKEN_LIFESPAN,
    DEFAULT_CODE_LIFESPAN,
    DEFAULT_LOGIN_LIFESPAN,
    DEFAULT_OFFLINE_IDLE,
    DEFAULT_SSO_IDLE,
    DEFAULT_SSO_MAX,
    Client,
    ClientScope,
    Lifespans,
    ProtocolMapper,
    Realm,
    User,
    stable_user_id,
)

log = logging.getLogger(__name__)

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_.]*)(?::([^}]*))?\}")
# Mappers the issuer understands (tools.devissuer.claims); others are reported at load.
KNOWN_MAPPERS = frozenset(
    {
        "oidc-usermodel-attribute-mapper",
        "oidc-usermodel-property-mapper",
        "oidc-full-name-mapper",
        "oidc-usermodel-realm-role-mapper",
        "oidc-usermodel-client-role-mapper",
        "oidc-audience-mapper",
        "oidc-audience-resolve-mapper",
        "oidc-hardcoded-claim-mapper",
        "oidc-allowed-origins-mapper",
        "oidc-acr-mapper",
        "oidc-sub-mapper",
        "oidc-usersessionmodel-note-mapper",
        "oidc-group-membership-mapper",
    }
)


class RealmError(Exception):
    """The realm files are missing or cannot be read."""


def load_realm(directory: Path, name: str, environ: Mapping[str, str] | None = None) -> Realm:
    """Read realm `name` from the Keycloak export files in `directory`.

    Files holding `{"realm": name, ...}` are the realm (exactly one with more than users)
    and its user files; a file holding a JSON array of client representations adds those
    clients (the dev-only clients, which tools.keycloak imports into dev Keycloaks too).
    """
    mains: list[tuple[Path, dict[str, Any]]] = []
    users: list[Any] = []
    extra_clients: list[Any] = []
    for path, doc in _documents(directory, environ or {}):
        if isinstance(doc, list) and all(isinstance(c, dict) and "clientId" in c for c in doc):
            extra_clients.extend(doc)
        elif isinstance(doc, dict) and doc.get("realm") == name:
            users.extend(doc.get("users") or [])
            if set(doc) - {"realm", "users", "id"}:
                mains.append((path, doc))
    if not mains:
        raise RealmError(f"no realm file for realm {name!r} in {directory}")
    if len(mains) > 1:
        raise RealmError(
            f"realm {name!r} is defined in several files: {', '.join(str(p) for p, _ in mains)}"
        )
    rep = {**mains[0][1], "clients": [*(mains[0][1].get("clients") or []), *extra_clients]}
    return _realm(name, rep, users)


def _documents(directory: Path, environ: Mapping[str, str]) -> Iterator[tuple[Path, Any]]:
    if not directory.is_dir():
        raise RealmError(f"realm directory {directory} does not exist")
    for path in sorted(directory.glob("*.json")):
        try:
            text = _PLACEHOLDER.sub(lambda m: _resolve(m, environ), path.read_text())
            yield path, json.loads(text)
        except (OSError, UnicodeError, ValueError) as exc:
            raise RealmError(f"cannot read {path}: {exc}") from exc


def _resolve(match: re.Match[str], environ: Mapping[str, str]) -> str:
    # Like Keycloak: an unset variable without a default stays as written, which keeps
    # mapper templates (${client_id}) and message keys (${role_offline-access}) intact.
    name, default = match[1], match[2]
    return environ.get(name, default if default is not None else match[0])


def _realm(name: str, rep: Mapping[str, Any], users_rep: list[Any]) -> Realm:
    scopes = _scopes(rep)
    default_scopes = parts.names(rep.get("defaultDefaultClientScopes"), BUILTIN_DEFAULT_SCOPES)
    optional_scopes = parts.names(rep.get("defaultOptionalClientScopes"), BUILTIN_OPTIONAL_SCOPES)
    scope_roles = _scope_mappings(rep)
    clients = {}
    for client_rep in rep.get("clients") or []:
        if client_rep.get("protocol", "openid-connect") != "openid-connect":
            continue
        client_defaults = default_scopes
        if rep.get("clientScopes") is None and client_rep.get("serviceAccountsEnabled"):
            # Keycloak 26 gives service-account clients its built-in service_account scope.
            client_defaults = (*default_scopes, "service_account")
        client = _client(client_rep, client_defaults, optional_scopes, scope_roles)
        clients[client.client_id] = client
    realm = Realm(
        name=name,
        display_name=str(rep.get("displayName") or name),
        clients=clients,
        scopes={s.name: _with_roles(s, scope_roles) for s in scopes},
        users={},
        composites=parts.realm_composites(rep),
        client_composites=parts.client_composites(rep),
        client_role_composites=parts.client_role_composites(rep),
        groups=dict(parts.groups(rep.get("groups") or [], "")),
        lifespans=_lifespans(rep),
        revoke_refresh_token=parts.flag(rep.get("revokeRefreshToken"), False),
        refresh_token_max_reuse=parts.integer(rep.get("refreshTokenMaxReuse"), 0),
    )
    users = {u.username: u for u in (parts.user(name, u) for u in users_rep)}
    for client in clients.values():
        if client.service_accounts and client.service_account_username not in users:
            # Keycloak creates the account with the realm's default role only.
            log.warning(
                "realm %s: client %s has a service account but no %s user in the realm "
                "files; it gets the default roles only",
                name,
                client.client_id,
                client.service_account_username,
            )
            users[client.service_account_username] = User(
                id=stable_user_id(name, client.service_account_username),
                username=client.service_account_username,
                realm_roles=frozenset({f"default-roles-{name}"}),
                service_account_client=client.client_id,
            )
    _report_unknown_mappers(name, realm)
    return dataclasses.replace(realm, users=users)


def _lifespans(rep: Mapping[str, Any]) -> Lifespans:
    def seconds(key: str, default: int) -> int:
        return parts.integer(rep.get(key), default)

    offline_max_enabled = parts.flag(rep.get("offlineSessionMaxLifespanEnabled"), False)
    return Lifespans(
        access_token=seconds("accessTokenLifespan", DEFAULT_ACCESS_TOKEN_LIFESPAN),
        sso_idle=seconds("ssoSessionIdleTimeout", DEFAULT_SSO_IDLE),
        sso_max=seconds("ssoSessionMaxLifespan", DEFAULT_SSO_MAX),
        offline_idle=seconds("offlineSessionIdleTimeout", DEFAULT_OFFLINE_IDLE),
        offline_max=seconds("offlineSessionMaxLifespan", 0) if offline_max_enabled else 0,
        code=seconds("accessCodeLifespan", DEFAULT_CODE_LIFESPAN),
        login=seconds("accessCodeLifespanLogin", DEFAULT_LOGIN_LIFESPAN),
    )


def _scopes(rep: Mapping[str, Any]) -> list[ClientScope]:
    reps = rep.get("clientScopes")
    if reps is None:
        # A realm imported without clientScopes gets Keycloak's built-in ones.
        return builtin_scopes()
    scopes = []
    for scope in reps:
        if scope.get("protocol", "openid-connect") != "openid-connect":
            continue
        attributes = scope.get("attributes") or {}
        scopes.append(
            ClientScope(
                name=str(scope["name"]),
                include_in_token_scope=parts.flag(attributes.get("include.in.token.scope"), True),
                mappers=_mappers(scope.get("protocolMappers")),
            )
        )
    return scopes


def _with_roles(scope: ClientScope, roles: Mapping[str, frozenset[str]]) -> ClientScope:
    extra = roles.get("scope:" + scope.name)
    if not extra:
        return scope
    return ClientScope(scope.name, scope.include_in_token_scope, scope.mappers, extra)


def _scope_mappings(rep: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    # Realm-role scope mappings, keyed "client:<id>" or "scope:<name>".
    result: dict[str, set[str]] = {}
    for entry in rep.get("scopeMappings") or []:
        key = (
            f"client:{entry['client']}"
            if "client" in entry
            else f"scope:{entry.get('clientScope')}"
        )
        result.setdefault(key, set()).update(entry.get("roles") or [])
    return {k: frozenset(v) for k, v in result.items()}


def _client(
    rep: Mapping[str, Any],
    default_scopes: tuple[str, ...],
    optional_scopes: tuple[str, ...],
    scope_roles: Mapping[str, frozenset[str]],
) -> Client:
    attributes = {str(k): str(v) for k, v in (rep.get("attributes") or {}).items()}
    client_id = str(rep["clientId"])
    lifespan = attributes.get("access.token.lifespan", "")
    return Client(
        client_id=client_id,
        enabled=parts.flag(rep.get("enabled"), True),
        public=parts.flag(rep.get("publicClient"), False),
        bearer_only=parts.flag(rep.get("bearerOnly"), False),
        secret=str(rep["secret"]) if rep.get("secret") is not None else None,
        redirect_uris=tuple(str(u) for u in rep.get("redirectUris") or []),
        post_logout_redirect_uris=tuple(
            u for u in attributes.get("post.logout.redirect.uris", "").split("##") if u
        ),
        web_origins=tuple(str(o) for o in rep.get("webOrigins") or []),
        root_url=str(rep["rootUrl"]) if rep.get("rootUrl") else None,
        standard_flow=parts.flag(rep.get("standardFlowEnabled"), True),
        direct_access_grants=parts.flag(rep.get("directAccessGrantsEnabled"), False),
        service_accounts=parts.flag(rep.get("serviceAccountsEnabled"), False),
        full_scope_allowed=parts.flag(rep.get("fullScopeAllowed"), True),
        pkce_method=attributes.get("pkce.code.challenge.method") or None,
        access_token_lifespan=int(lifespan) if lifespan.isdigit() and int(lifespan) > 0 else None,
        refresh_for_client_credentials=parts.flag(
            attributes.get("client_credentials.use_refresh_token"), False
        ),
        default_scopes=parts.names(rep.get("defaultClientScopes"), default_scopes),
        optional_scopes=parts.names(rep.get("optionalClientScopes"), optional_scopes),
        mappers=_mappers(rep.get("protocolMappers")),
        realm_roles=scope_roles.get("client:" + client_id, frozenset()),
    )


def _mappers(reps: Any) -> tuple[ProtocolMapper, ...]:
    return tuple(
        ProtocolMapper(
            name=str(m.get("name", "")),
            type=str(m.get("protocolMapper", "")),
            config={str(k): _config_value(v) for k, v in (m.get("config") or {}).items()},
        )
        for m in reps or []
        if m.get("protocol", "openid-connect") == "openid-connect"
    )


def _config_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _report_unknown_mappers(name: str, realm: Realm) -> None:
    mappers = [m for s in realm.scopes.values() for m in s.mappers]
    mappers += [m for c in realm.clients.values() for m in c.mappers]
    for mapper_type in sorted({m.type for m in mappers} - KNOWN_MAPPERS):
        log.warning("realm %s: protocol mapper type %s is not emulated", name, mapper_type)
