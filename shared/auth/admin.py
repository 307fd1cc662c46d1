"""Keycloak administration with python-keycloak's async admin API.

- `sync_realm`: bring a running Keycloak in line with the realm file (roles, client scopes
  with their mappers, clients with their scopes, service-account roles). Idempotent: it
  compares before it writes, so a second run changes nothing and reports no change.
- `ensure_citizen_account`: create or link the Keycloak account of a registry resident
  (attribute `resident_id`, realm role `citizen`, required action to set a password); the
  registry calls it when a resident asks for an account.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keycloak import KeycloakAdmin, KeycloakOpenIDConnection, urls_patterns
from keycloak.exceptions import (
    KeycloakDeleteError,
    KeycloakGetError,
    KeycloakPostError,
    raise_error_from_response,
)

from shared.auth.service_tokens import split_issuer
from shared.errors import Conflict

# Fields of the realm file this tool manages; anything else on the server is left alone.
CLIENT_FIELDS = (
    "name",
    "description",
    "enabled",
    "publicClient",
    "protocol",
    "standardFlowEnabled",
    "implicitFlowEnabled",
    "directAccessGrantsEnabled",
    "serviceAccountsEnabled",
    "redirectUris",
    "webOrigins",
    "attributes",
    "fullScopeAllowed",
    "consentRequired",
    "frontchannelLogout",
    "bearerOnly",
    "rootUrl",
    "baseUrl",
    "clientAuthenticatorType",
)
SCOPE_FIELDS = ("name", "description", "protocol", "attributes")
MAPPER_FIELDS = ("name", "protocol", "protocolMapper", "config")


def admin_client(server_url: str, realm: str, username: str, password: str) -> KeycloakAdmin:
    """An admin client for `realm`, authenticated as a master-realm administrator."""
    connection = KeycloakOpenIDConnection(
        server_url=server_url,
        username=username,
        password=password,
        realm_name=realm,
        user_realm_name="master",
        client_id="admin-cli",
        timeout=30,
    )
    return KeycloakAdmin(connection=connection)


def admin_from_issuer(issuer: str, username: str, password: str) -> KeycloakAdmin:
    """An admin client for the realm of a Keycloak issuer URL."""
    server, realm = split_issuer(issuer)
    return admin_client(server, realm, username, password)


def _differs(
    wanted: Mapping[str, Any], current: Mapping[str, Any], fields: tuple[str, ...]
) -> bool:
    for field in fields:
        if field not in wanted:
            continue
        have = current.get(field)
        want = wanted[field]
        if isinstance(want, Mapping) and isinstance(have, Mapping):
            # Keycloak adds attributes of its own; only ours must match.
            if any(str(have.get(k)) != str(v) for k, v in want.items()):
                return True
        elif isinstance(want, list) and isinstance(have, list):
            if sorted(map(str, want)) != sorted(map(str, have)):
                return True
        elif want != have:
            return True
    return False


@dataclass
class SyncReport:
    """What a sync changed (empty when the server already matched the file)."""

    changes: list[str]

    def __bool__(self) -> bool:
        return bool(self.changes)


def load_realm(path: Path) -> dict[str, Any]:
    """A realm export file as a dict."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data


async def sync_realm(admin: KeycloakAdmin, realm: Mapping[str, Any]) -> SyncReport:
    """Create or update roles, client scopes, clients and service-account roles from a
    realm export in the realm `admin` is bound to."""
    changes: list[str] = []
    await _sync_roles(admin, realm, changes)
    scope_ids = await _sync_scopes(admin, realm, changes)
    await _sync_scope_roles(admin, realm, scope_ids, changes)
    await _sync_clients(admin, realm, scope_ids, changes)
    return SyncReport(changes)


async def _sync_roles(admin: KeycloakAdmin, realm: Mapping[str, Any], changes: list[str]) -> None:
    current = {r["name"]: r for r in await admin.a_get_realm_roles(brief_representation=False)}
    for role in realm.get("roles", {}).get("realm", []):
        payload = {"name": role["name"], "description": role.get("description", "")}
        have = current.get(role["name"])
        if have is None:
            await admin.a_create_realm_role(payload)
            changes.append(f"created realm role {role['name']}")
        elif (have.get("description") or "") != payload["description"]:
            await admin.a_update_realm_role(role["name"], payload)
            changes.append(f"updated realm role {role['name']}")


async def _sync_scopes(
    admin: KeycloakAdmin, realm: Mapping[str, Any], changes: list[str]
) -> dict[str, str]:
    current = {s["name"]: s for s in await admin.a_get_client_scopes()}
    for scope in realm.get("clientScopes", []):
        payload = {k: scope[k] for k in SCOPE_FIELDS if k in scope}
        have = current.get(scope["name"])
        if have is None:
            await admin.a_create_client_scope(payload)
            changes.append(f"created client scope {scope['name']}")
            current = {s["name"]: s for s in await admin.a_get_client_scopes()}
            have = current[scope["name"]]
        elif _differs(payload, have, SCOPE_FIELDS):
            await admin.a_update_client_scope(have["id"], {**have, **payload})
            changes.append(f"updated client scope {scope['name']}")
        await _sync_mappers(admin, have["id"], scope, changes)
    return {name: s["id"] for name, s in current.items()}


async def _sync_scope_roles(
    admin: KeycloakAdmin,
    realm: Mapping[str, Any],
    scope_ids: Mapping[str, str],
    changes: list[str],
) -> None:
    """Role scope mappings: a client scope with mappings is granted only to users holding
    one of its roles (how SMART scopes follow the roles). The file is authoritative for the
    scopes it maps: missing roles are added, others removed."""
    for mapping in realm.get("scopeMappings", []):
        name = mapping.get("clientScope")
        if name not in scope_ids:
            continue
        wanted = set(mapping.get("roles", []))
        # python-keycloak has no call for a client *scope's* role mappings: raw requests.
        path = urls_patterns.URL_ADMIN_CLIENT_SCOPE_ROLE_MAPPINGS_REALM.format(
            **{"realm-name": admin.connection.realm_name, "scope-id": scope_ids[name]}
        )
        current = raise_error_from_response(
            await admin.connection.a_raw_get(path), KeycloakGetError
        )
        if not isinstance(current, list):
            raise KeycloakGetError(f"unexpected answer from {path}")
        have = {r["name"] for r in current}
        if missing := sorted(wanted - have):
            roles = [await admin.a_get_realm_role(r) for r in missing]
            raise_error_from_response(
                await admin.connection.a_raw_post(path, data=json.dumps(roles)),
                KeycloakPostError,
                expected_codes=[204],
            )
            changes.append(f"mapped roles {', '.join(missing)} to scope {name}")
        if extra := sorted(have - wanted):
            roles = [r for r in current if r["name"] in extra]
            raise_error_from_response(
                await admin.connection.a_raw_delete(path, data=json.dumps(roles)),
                KeycloakDeleteError,
                expected_codes=[204],
            )
            changes.append(f"unmapped roles {', '.join(extra)} from scope {name}")


async def _sync_mappers(
    admin: KeycloakAdmin, scope_id: str, scope: Mapping[str, Any], changes: list[str]
) -> None:
    wanted = scope.get("protocolMappers", [])
    if not wanted:
        return
    have = {m["name"]: m for m in await admin.a_get_mappers_from_client_scope(scope_id)}
    for mapper in wanted:
        payload = {k: mapper[k] for k in MAPPER_FIELDS if k in mapper}
        existing = have.get(mapper["name"])
        if existing is None:
            await admin.a_add_mapper_to_client_scope(scope_id, payload)
            changes.append(f"added mapper {mapper['name']} to scope {scope['name']}")
        elif _differs(payload, existing, MAPPER_FIELDS):
            await admin.a_update_mapper_in_client_scope(
                scope_id, existing["id"], {**existing, **payload}
            )
            changes.append(f"updated mapper {mapper['name']} of scope {scope['name']}")


async def _sync_clients(
    admin: KeycloakAdmin, realm: Mapping[str, Any], scope_ids: Mapping[str, str], changes: list[str]
) -> None:
    current = {c["clientId"]: c for c in await admin.a_get_clients()}
    for client in realm.get("clients", []):
        cid = client["clientId"]
        payload = {k: client[k] for k in CLIENT_FIELDS if k in client}
        have = current.get(cid)
        if have is None:
            create = {"clientId": cid, **payload}
            if "secret" in client:
                create["secret"] = client["secret"]
            await admin.a_create_client(create)
            changes.append(f"created client {cid}")
            have = {c["clientId"]: c for c in await admin.a_get_clients()}[cid]
        elif _differs(payload, have, CLIENT_FIELDS):
            await admin.a_update_client(have["id"], {**have, **payload})
            changes.append(f"updated client {cid}")
        await _sync_client_scopes(admin, have["id"], cid, client, scope_ids, changes)
        if client.get("serviceAccountsEnabled"):
            await _sync_service_roles(admin, have["id"], cid, realm, changes)
            await _sync_service_client_roles(admin, have["id"], cid, realm, changes)


async def _sync_client_scopes(
    admin: KeycloakAdmin,
    client_uuid: str,
    cid: str,
    client: Mapping[str, Any],
    scope_ids: Mapping[str, str],
    changes: list[str],
) -> None:
    for kind, get, add in (
        (
            "default",
            admin.a_get_client_default_client_scopes,
            admin.a_add_client_default_client_scope,
        ),
        (
            "optional",
            admin.a_get_client_optional_client_scopes,
            admin.a_add_client_optional_client_scope,
        ),
    ):
        wanted = client.get(f"{kind}ClientScopes", [])
        if not wanted:
            continue
        have = {s["name"] for s in await get(client_uuid)}
        for name in wanted:
            if name not in have and name in scope_ids:
                await add(
                    client_uuid,
                    scope_ids[name],
                    {
                        "realm": admin.connection.realm_name,
                        "client": client_uuid,
                        "clientScopeId": scope_ids[name],
                    },
                )
                changes.append(f"added {kind} scope {name} to client {cid}")


async def _sync_service_roles(
    admin: KeycloakAdmin, client_uuid: str, cid: str, realm: Mapping[str, Any], changes: list[str]
) -> None:
    wanted: list[str] = []
    for user in realm.get("users", []):
        if user.get("serviceAccountClientId") == cid:
            wanted = list(user.get("realmRoles", []))
    if not wanted:
        return
    account = await admin.a_get_client_service_account_user(client_uuid)
    have = {r["name"] for r in await admin.a_get_realm_roles_of_user(account["id"])}
    missing = [r for r in wanted if r not in have]
    if missing:
        roles = [await admin.a_get_realm_role(r) for r in missing]
        await admin.a_assign_realm_roles(account["id"], roles)
        changes.append(f"gave service account of {cid} the roles {', '.join(missing)}")


async def _sync_service_client_roles(
    admin: KeycloakAdmin, client_uuid: str, cid: str, realm: Mapping[str, Any], changes: list[str]
) -> None:
    """Client roles of a service account (the registry's realm-management manage-users):
    missing ones are granted; extra ones are left alone, like extra realm roles."""
    wanted: dict[str, list[str]] = {}
    for user in realm.get("users", []):
        if user.get("serviceAccountClientId") == cid:
            wanted = dict(user.get("clientRoles") or {})
    if not wanted:
        return
    account = await admin.a_get_client_service_account_user(client_uuid)
    owners = {c["clientId"]: c["id"] for c in await admin.a_get_clients()}
    for owner, names in sorted(wanted.items()):
        owner_uuid = owners.get(owner)
        if owner_uuid is None:
            continue
        have = {
            r["name"] for r in await admin.a_get_client_roles_of_user(account["id"], owner_uuid)
        }
        if missing := [n for n in names if n not in have]:
            roles = [await admin.a_get_client_role(owner_uuid, n) for n in missing]
            await admin.a_assign_client_role(account["id"], owner_uuid, roles)
            changes.append(f"gave service account of {cid} the roles {owner}: {', '.join(missing)}")


@dataclass(frozen=True)
class CitizenAccount:
    """The Keycloak account of a resident."""

    user_id: str
    username: str
    created: bool


async def ensure_citizen_account(
    admin: KeycloakAdmin,
    *,
    resident_id: str,
    username: str,
    email: str | None = None,
    first_name: str | None = None,
    last_name: str | None = None,
) -> CitizenAccount:
    """Create the resident's citizen account, or link an existing one by username; an
    account already linked to this resident is returned as it is. The new account must set
    its password at first login (required action UPDATE_PASSWORD)."""
    linked = await admin.a_get_users({"q": f"resident_id:{resident_id}", "exact": True})
    linked = [
        u for u in linked if resident_id in (u.get("attributes") or {}).get("resident_id", [])
    ]
    if linked:
        return CitizenAccount(linked[0]["id"], linked[0]["username"], False)
    named = [
        u
        for u in await admin.a_get_users({"username": username, "exact": True})
        if u.get("username") == username.lower()
    ]
    if named:
        user = await admin.a_get_user(named[0]["id"])
        attributes = dict(user.get("attributes") or {})
        other = attributes.get("resident_id")
        if other and resident_id not in other:
            raise Conflict(
                f"account {username!r} belongs to another resident",
                errors=[{"field": "username", "message": "already linked"}],
            )
        attributes["resident_id"] = [resident_id]
        await admin.a_update_user(user["id"], {**_profile(user), "attributes": attributes})
        user_id, created = user["id"], False
    else:
        payload: dict[str, Any] = {
            "username": username,
            "enabled": True,
            "emailVerified": False,
            "attributes": {"resident_id": [resident_id]},
            "requiredActions": ["UPDATE_PASSWORD"],
        }
        if email:
            payload["email"] = email
        if first_name:
            payload["firstName"] = first_name
        if last_name:
            payload["lastName"] = last_name
        user_id, created = await admin.a_create_user(payload), True
    await _grant_citizen_role(admin, user_id)
    return CitizenAccount(user_id, username.lower(), created)


async def _grant_citizen_role(admin: KeycloakAdmin, user_id: str) -> None:
    # The role is looked up among the user's mappable roles, not read from the realm: that
    # needs only the user permissions the registry's service account has (manage-users,
    # view-users), not view-realm. A role already held is not offered again.
    available = await admin.a_get_available_realm_roles_of_user(user_id)
    citizen = [r for r in available if r.get("name") == "citizen"]
    if citizen:
        await admin.a_assign_realm_roles(user_id, citizen)
        return
    held = await admin.a_get_realm_roles_of_user(user_id)
    if not any(r.get("name") == "citizen" for r in held):
        raise KeycloakGetError("the realm has no role citizen that can be granted")


def _profile(user: Mapping[str, Any]) -> dict[str, Any]:
    # Keycloak 26 validates the user profile on update: send the profile fields back.
    return {
        k: user[k] for k in ("username", "email", "firstName", "lastName", "enabled") if k in user
    }
