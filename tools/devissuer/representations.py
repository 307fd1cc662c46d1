"""Pieces of a Keycloak realm representation: roles, groups, users and their passwords."""

from __future__ import annotations

import base64
import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from tools.devissuer.builtin import BUILTIN_CLIENT_ROLE_COMPOSITES
from tools.devissuer.model import Group, Password, User, stable_user_id

log = logging.getLogger(__name__)


def _composite_roles(rep: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    roles = [r for r in (rep.get("roles") or {}).get("realm") or [] if r.get("composite")]
    default_role = rep.get("defaultRole") or {}
    if default_role.get("name") and all(r["name"] != default_role["name"] for r in roles):
        roles.append(default_role)
    return roles


def realm_composites(rep: Mapping[str, Any]) -> dict[str, frozenset[str]]:
    """Realm role -> the realm roles it contains (the default role included)."""
    return {
        str(r["name"]): frozenset((r.get("composites") or {}).get("realm") or [])
        for r in _composite_roles(rep)
    }


def client_composites(rep: Mapping[str, Any]) -> dict[str, dict[str, frozenset[str]]]:
    """Realm role -> client id -> the client roles it contains."""
    result: dict[str, dict[str, frozenset[str]]] = {}
    for role in _composite_roles(rep):
        clients = (role.get("composites") or {}).get("client") or {}
        if clients:
            result[str(role["name"])] = {c: frozenset(r) for c, r in clients.items()}
    return result


def client_role_composites(rep: Mapping[str, Any]) -> dict[tuple[str, str], frozenset[str]]:
    """(client id, client role) -> the roles of that client it contains."""
    # The export's composite client roles; Keycloak's built-in clients' where it has none.
    result = dict(BUILTIN_CLIENT_ROLE_COMPOSITES)
    for client_id, roles in ((rep.get("roles") or {}).get("client") or {}).items():
        for role in roles:
            if role.get("composite"):
                client_part = (role.get("composites") or {}).get("client") or {}
                result[(client_id, role["name"])] = frozenset(client_part.get(client_id) or [])
            else:
                result.pop((client_id, role["name"]), None)
    return result


def groups(reps: list[Any], parent: str) -> Iterator[tuple[str, Group]]:
    """Every group and subgroup by path."""
    for rep in reps:
        path = rep.get("path") or f"{parent}/{rep['name']}"
        yield (
            path,
            Group(
                path=path,
                realm_roles=frozenset(rep.get("realmRoles") or []),
                client_roles={c: frozenset(r) for c, r in (rep.get("clientRoles") or {}).items()},
            ),
        )
        yield from groups(rep.get("subGroups") or [], path)


def user(realm: str, rep: Mapping[str, Any]) -> User:
    """A user, with Keycloak's import defaults (no `enabled` means disabled)."""
    username = str(rep["username"]).lower()
    if "enabled" not in rep:
        log.warning(
            'realm %s: user %s has no "enabled": Keycloak imports it disabled', realm, username
        )
    attributes = {
        str(k): tuple(str(x) for x in (v if isinstance(v, list) else [v]))
        for k, v in (rep.get("attributes") or {}).items()
    }
    credentials = [
        c for c in rep.get("credentials") or [] if c.get("type", "password") == "password"
    ]
    password = _password(realm, username, credentials[0]) if credentials else None
    required = tuple(rep.get("requiredActions") or [])
    if credentials and flag(credentials[0].get("temporary"), False):
        required = (*required, "UPDATE_PASSWORD")
    return User(
        id=str(rep.get("id") or stable_user_id(realm, username)),
        username=username,
        enabled=flag(rep.get("enabled"), False),
        email=rep.get("email"),
        email_verified=flag(rep.get("emailVerified"), False),
        first_name=rep.get("firstName"),
        last_name=rep.get("lastName"),
        attributes=attributes,
        realm_roles=frozenset(rep.get("realmRoles") or []),
        client_roles={c: frozenset(r) for c, r in (rep.get("clientRoles") or {}).items()},
        groups=tuple(rep.get("groups") or []),
        password=password,
        required_actions=required,
        service_account_client=rep.get("serviceAccountClientId"),
    )


def _password(realm: str, username: str, rep: Mapping[str, Any]) -> Password | None:
    if rep.get("value") is not None:
        return Password(value=str(rep["value"]))
    try:
        secret = json.loads(rep.get("secretData") or "{}")
        data = json.loads(rep.get("credentialData") or "{}")
        return Password(
            algorithm=str(data.get("algorithm")),
            digest=base64.b64decode(secret["value"]),
            salt=base64.b64decode(secret.get("salt") or ""),
            iterations=int(data.get("hashIterations", 0)),
        )
    except (ValueError, KeyError, TypeError):
        log.warning(
            "realm %s: the password of %s cannot be read; it cannot log in", realm, username
        )
        return None


def names(value: Any, default: tuple[str, ...]) -> tuple[str, ...]:
    """A list of names, or `default` when the representation leaves it out."""
    return default if value is None else tuple(str(v) for v in value)


def flag(value: Any, default: bool) -> bool:
    """A boolean that may be written as a JSON boolean or as "true"/"false"."""
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() == "true"


def integer(value: Any, default: int) -> int:
    """An integer, or `default` when missing or unreadable."""
    try:
        return int(value) if value is not None else default
    except (TypeError, ValueError):
        return default
