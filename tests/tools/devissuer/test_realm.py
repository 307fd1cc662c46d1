"""The realm loader: Keycloak's realm-export format and the defaults Keycloak applies."""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from pathlib import Path
from typing import Any

import pytest

from tools.devissuer.claims import grant_for, mapped_claims
from tools.devissuer.realm import RealmError, load_realm
from tools.devissuer.settings import REPO_ROOT

REPO_REALM = REPO_ROOT / "docker" / "keycloak"


def write(directory: Path, name: str, doc: object) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_text(json.dumps(doc))


def minimal_realm(**extra: Any) -> dict[str, Any]:
    return {
        "realm": "demo",
        "clients": [
            {"clientId": "app", "publicClient": True, "directAccessGrantsEnabled": True},
            {"clientId": "svc", "secret": "x", "serviceAccountsEnabled": True},
        ],
        "roles": {
            "realm": [
                {"name": "boss", "composite": True, "composites": {"realm": ["worker"]}},
                {"name": "worker"},
            ]
        },
        "groups": [{"name": "staff", "realmRoles": ["worker"], "subGroups": [{"name": "night"}]}],
        **extra,
    }


def test_repository_realm_files():
    realm = load_realm(REPO_REALM, "huimin", {})
    assert realm.display_name == "Huimin"
    assert {"huimin-mobile", "huimin-console", "huimin-gateway", "huimin-test"} <= set(
        realm.clients
    )
    mobile = realm.clients["huimin-mobile"]
    assert mobile.public
    assert mobile.pkce_method == "S256"
    assert mobile.redirect_uris == ("huimin://callback",)
    assert realm.clients["huimin-health"].secret == "huimin-dev-secret"
    assert realm.clients["huimin-health"].service_accounts
    assert realm.clients["huimin-test"].direct_access_grants  # from dev-clients.json
    assert {"admin", "doctor", "citizen", "service-account-huimin-health"} <= set(realm.users)
    assert realm.users["doctor"].attributes["practitioner_id"] == ("prac-doctor",)
    assert realm.lifespans.access_token == 300
    assert realm.revoke_refresh_token


def test_placeholders_resolve_from_the_environment(tmp_path):
    rep = minimal_realm()
    rep["clients"][1]["secret"] = "${SVC_SECRET:fallback}"
    rep["clients"][0]["description"] = "${UNSET_NO_DEFAULT}"
    write(tmp_path, "realm.json", rep)
    assert load_realm(tmp_path, "demo", {}).clients["svc"].secret == "fallback"
    assert load_realm(tmp_path, "demo", {"SVC_SECRET": "s"}).clients["svc"].secret == "s"


def test_builtin_scopes_when_the_export_defines_none(tmp_path, caplog):
    write(tmp_path, "realm.json", minimal_realm())
    write(
        tmp_path,
        "demo-users-0.json",
        {
            "realm": "demo",
            "users": [
                {
                    "username": "Ann",
                    "enabled": True,
                    "email": "ann@example.org",
                    "firstName": "Ann",
                    "realmRoles": ["boss"],
                    "groups": ["/staff/night"],
                    "credentials": [{"type": "password", "value": "pw"}],
                }
            ],
        },
    )
    with caplog.at_level(logging.WARNING):
        realm = load_realm(tmp_path, "demo", {})
    ann = realm.users["ann"]  # Keycloak lower-cases usernames
    assert ann.check_password("pw")
    assert not ann.check_password("PW")
    app = realm.clients["app"]
    assert set(app.default_scopes) == {"acr", "basic", "email", "profile", "roles", "web-origins"}
    grant = grant_for(realm, app, ann, "openid", {"AUTH_TIME": "5"})
    claims = mapped_claims(grant, "access")
    assert claims["preferred_username"] == "ann"
    assert claims["email"] == "ann@example.org"
    assert claims["auth_time"] == 5
    assert set(claims["realm_access"]["roles"]) == {"boss", "worker"}
    assert grant.scope == "email openid profile"
    # The service account Keycloak would create: default role only, and a warning.
    service = realm.service_account(realm.clients["svc"])
    assert service is not None
    assert service.realm_roles == {"default-roles-demo"}
    assert "no service-account-svc user" in caplog.text


def test_users_without_enabled_are_imported_disabled(tmp_path, caplog):
    write(tmp_path, "realm.json", minimal_realm(users=[{"username": "bob"}]))
    with caplog.at_level(logging.WARNING):
        realm = load_realm(tmp_path, "demo", {})
    assert not realm.users["bob"].enabled
    assert 'user bob has no "enabled"' in caplog.text


def test_pbkdf2_hashed_passwords(tmp_path):
    salt = b"0123456789abcdef"
    digest = hashlib.pbkdf2_hmac("sha256", b"secret-pw", salt, 1000, 64)
    credential = {
        "type": "password",
        "secretData": json.dumps(
            {"value": base64.b64encode(digest).decode(), "salt": base64.b64encode(salt).decode()}
        ),
        "credentialData": json.dumps({"hashIterations": 1000, "algorithm": "pbkdf2-sha256"}),
    }
    user = {"username": "carl", "enabled": True, "credentials": [credential]}
    write(tmp_path, "realm.json", minimal_realm(users=[user]))
    carl = load_realm(tmp_path, "demo", {}).users["carl"]
    assert carl.check_password("secret-pw")
    assert not carl.check_password("secret-pX")


def test_role_bound_client_scopes_and_audience(tmp_path):
    scopes = [
        {
            "name": "api",
            "protocolMappers": [
                {
                    "name": "aud",
                    "protocolMapper": "oidc-audience-mapper",
                    "config": {"included.custom.audience": "my-api", "access.token.claim": "true"},
                },
            ],
        },
        {"name": "read", "attributes": {"include.in.token.scope": "true"}},
    ]
    rep = minimal_realm(
        clientScopes=scopes,
        defaultDefaultClientScopes=["api"],
        defaultOptionalClientScopes=["read"],
        scopeMappings=[{"clientScope": "read", "roles": ["boss"]}],
        users=[
            {"username": "w", "enabled": True, "realmRoles": ["worker"]},
            {"username": "b", "enabled": True, "realmRoles": ["boss"]},
        ],
    )
    write(tmp_path, "realm.json", rep)
    realm = load_realm(tmp_path, "demo", {})
    app = realm.clients["app"]
    # A scope without include.in.token.scope counts as included, as in Keycloak.
    assert grant_for(realm, app, realm.users["w"], "read").scope == "api"
    boss = grant_for(realm, app, realm.users["b"], "read")
    assert boss.scope == "api read"
    assert mapped_claims(boss, "access")["aud"] == ["my-api"]
    assert "aud" not in mapped_claims(boss, "id")


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({}, "no realm file"),
        (
            {"a.json": {"realm": "demo", "clients": []}, "b.json": {"realm": "demo", "roles": {}}},
            "several files",
        ),
        ({"a.json": "{not json"}, "cannot read"),
    ],
)
def test_unusable_realm_directories(tmp_path, files, message):
    tmp_path.mkdir(exist_ok=True)
    for name, doc in files.items():
        (tmp_path / name).write_text(doc if isinstance(doc, str) else json.dumps(doc))
    with pytest.raises(RealmError, match=message):
        load_realm(tmp_path, "demo", {})


def test_missing_directory(tmp_path):
    with pytest.raises(RealmError, match="does not exist"):
        load_realm(tmp_path / "nowhere", "demo", {})
