"""The Keycloak realm (docker/keycloak) and its launcher (tools/keycloak.py), on a real server.

Tests marked `keycloak` use the session's server (tests/fixtures/keycloak.py); the others
check the realm files themselves and need no server.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from keycloak import KeycloakAdmin

from tests.fixtures.keycloak import client_credentials, password_grant, verified_claims
from tools.keycloak import (
    DEV_CLIENTS_FILE,
    DEV_PASSWORD,
    DEV_USERS_FILE,
    REALM,
    REALM_FILE,
    TEST_CLIENT_ID,
    Keycloak,
    client_secret,
    dist_path,
    write_import_dir,
)

HUIMIN_ROLES = {
    "citizen",
    "clinician",
    "community-worker",
    "street-officer",
    "district-officer",
    "educator",
    "tourism-editor",
    "auditor",
    "admin",
    "service",
}
HUIMIN_ATTRIBUTES = ("resident_id", "jurisdiction", "practitioner_id")
# username -> (its one Huimin role, the Huimin attributes it carries)
DEV_USERS: dict[str, tuple[str, dict[str, str]]] = {
    "admin": ("admin", {}),
    "doctor": ("clinician", {"practitioner_id": "prac-doctor"}),
    "worker": ("community-worker", {"jurisdiction": "110101/002/007"}),
    "officer": ("street-officer", {"jurisdiction": "110101/002"}),
    "citizen": ("citizen", {"resident_id": "R-00000001"}),
    "teacher": ("educator", {}),
    "editor": ("tourism-editor", {}),
    "auditor": ("auditor", {}),
}
SERVICE_CLIENTS = (
    "huimin-gateway",
    "huimin-health",
    "huimin-registry",
    "huimin-education",
    "huimin-tourism",
)
PUBLIC_CLIENTS = {
    "huimin-mobile": "huimin://callback",
    "huimin-console": "http://127.0.0.1:8000/console/callback",
}


def _realm_file() -> dict[str, Any]:
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    return realm


def _clients() -> dict[str, dict[str, Any]]:
    return {client["clientId"]: client for client in _realm_file()["clients"]}


def _scopes(token_response: httpx.Response) -> set[str]:
    assert token_response.status_code == httpx.codes.OK, token_response.text
    return set(token_response.json()["scope"].split())


# -- the realm files (no server) ---------------------------------------------------------------


def test_realm_file_declares_the_roles_and_no_dev_artifacts() -> None:
    realm = _realm_file()
    assert realm["realm"] == REALM
    roles = {role["name"] for role in realm["roles"]["realm"]}
    assert roles >= HUIMIN_ROLES
    assert TEST_CLIENT_ID not in _clients()
    # Only service-account users live in the production realm; dev users have their own file.
    assert all(user.get("serviceAccountClientId") for user in realm["users"])
    assert "credentials" not in json.dumps(realm["users"])


@pytest.mark.parametrize(("client_id", "redirect_uri"), PUBLIC_CLIENTS.items())
def test_public_clients_use_pkce_and_exact_redirects(client_id: str, redirect_uri: str) -> None:
    client = _clients()[client_id]
    assert client["publicClient"] is True
    assert client["standardFlowEnabled"] is True
    assert client["implicitFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client["serviceAccountsEnabled"] is False
    assert client["attributes"]["pkce.code.challenge.method"] == "S256"
    assert client["redirectUris"] == [redirect_uri]
    assert not any("*" in uri for uri in client["redirectUris"] + client["webOrigins"])


@pytest.mark.parametrize("client_id", SERVICE_CLIENTS)
def test_service_client_secrets_are_environment_placeholders(client_id: str) -> None:
    client = _clients()[client_id]
    variable = f"HUIMIN_{client_id.removeprefix('huimin-').upper()}_CLIENT_SECRET"
    assert client["secret"] == f"${{{variable}:huimin-dev-secret}}"
    assert client["publicClient"] is False
    assert client["serviceAccountsEnabled"] is True
    assert client["standardFlowEnabled"] is False
    assert client["directAccessGrantsEnabled"] is False
    assert client_secret(client_id, {}) == "huimin-dev-secret"
    assert client_secret(client_id, {variable: "from-the-environment"}) == "from-the-environment"
    account = next(u for u in _realm_file()["users"] if u["serviceAccountClientId"] == client_id)
    assert "service" in account["realmRoles"]


def test_every_client_gets_the_huimin_claims() -> None:
    realm = _realm_file()
    assert "huimin-claims" in realm["defaultDefaultClientScopes"]
    clients = [*realm["clients"], *json.loads(DEV_CLIENTS_FILE.read_text())]
    for client in clients:
        assert "huimin-claims" in client["defaultClientScopes"], client["clientId"]


def test_dev_users_file_is_a_keycloak_users_file() -> None:
    data = json.loads(DEV_USERS_FILE.read_text())
    assert data["realm"] == REALM
    users = {user["username"]: user for user in data["users"]}
    assert set(users) == set(DEV_USERS)
    for username, (role, attributes) in DEV_USERS.items():
        user = users[username]
        assert user["credentials"] == [
            {"type": "password", "value": DEV_PASSWORD, "temporary": False}
        ]
        assert HUIMIN_ROLES & set(user["realmRoles"]) == {role}
        assert user["attributes"] == {name: [value] for name, value in attributes.items()}


def test_import_dir_holds_dev_extras_only_in_dev(tmp_path: Path) -> None:
    dev = write_import_dir(tmp_path / "dev")
    assert [path.name for path in dev] == ["huimin-realm.json", "huimin-users-0.json"]
    dev_clients = {c["clientId"] for c in json.loads(dev[0].read_text())["clients"]}
    assert TEST_CLIENT_ID in dev_clients

    production = write_import_dir(tmp_path / "production", dev=False)
    assert [path.name for path in production] == ["huimin-realm.json"]
    clients = {c["clientId"] for c in json.loads(production[0].read_text())["clients"]}
    assert clients == {*PUBLIC_CLIENTS, *SERVICE_CLIENTS}


# -- the server --------------------------------------------------------------------------------


@pytest.mark.keycloak
def test_distribution_is_cached_outside_the_repo(keycloak: Keycloak) -> None:
    repo = Path(__file__).resolve().parents[2]
    assert (dist_path() / "bin" / "kc.sh").is_file()
    assert not dist_path().is_relative_to(repo)
    assert (keycloak.home_dir / "data" / "h2").is_dir()  # the instance's own database
    assert "Listening on: http://127.0.0.1:" in keycloak.log_path.read_text()


@pytest.mark.keycloak
def test_discovery_document(keycloak: Keycloak) -> None:
    response = httpx.get(f"{keycloak.issuer}/.well-known/openid-configuration", timeout=30.0)
    assert response.status_code == httpx.codes.OK
    discovery = response.json()
    assert discovery["issuer"] == keycloak.issuer == f"{keycloak.base_url}/realms/huimin"
    assert "S256" in discovery["code_challenge_methods_supported"]
    assert {"patient/*.rs", "user/*.cruds", "system/*.rs", "launch/patient"} <= set(
        discovery["scopes_supported"]
    )


@pytest.mark.keycloak
@pytest.mark.parametrize("username", DEV_USERS)
def test_dev_user_password_grant(keycloak: Keycloak, username: str) -> None:
    role, attributes = DEV_USERS[username]
    response = password_grant(keycloak, username)
    assert response.status_code == httpx.codes.OK, response.text
    claims = verified_claims(keycloak, response.json()["access_token"])
    assert claims["iss"] == keycloak.issuer
    assert claims["preferred_username"] == username
    assert claims["sub"]
    assert "huimin-api" in claims["aud"]
    assert HUIMIN_ROLES & set(claims["realm_access"]["roles"]) == {role}
    for name in HUIMIN_ATTRIBUTES:
        assert claims.get(name) == attributes.get(name), name
    assert claims["exp"] - claims["iat"] == 300


@pytest.mark.keycloak
@pytest.mark.parametrize("client_id", SERVICE_CLIENTS)
def test_service_client_credentials(keycloak: Keycloak, client_id: str) -> None:
    response = client_credentials(keycloak, client_id, scope="system/*.rs")
    assert response.status_code == httpx.codes.OK, response.text
    assert "refresh_token" not in response.json()
    claims = verified_claims(keycloak, response.json()["access_token"])
    assert HUIMIN_ROLES & set(claims["realm_access"]["roles"]) == {"service"}
    assert "huimin-api" in claims["aud"]
    assert claims["azp"] == claims["client_id"] == client_id
    assert "system/*.rs" in claims["scope"].split()


@pytest.mark.keycloak
def test_wrong_client_secret_is_refused(keycloak: Keycloak) -> None:
    response = client_credentials(keycloak, "huimin-health", secret="not-the-secret")
    assert response.status_code == httpx.codes.UNAUTHORIZED
    assert "access_token" not in response.json()


@pytest.mark.keycloak
def test_smart_scopes_follow_the_roles(keycloak: Keycloak) -> None:
    asked = "openid patient/*.rs launch/patient user/*.cruds user/*.rs system/*.rs"
    citizen = _scopes(password_grant(keycloak, "citizen", scope=asked))
    assert {"patient/*.rs", "launch/patient"} <= citizen
    assert not citizen & {"user/*.cruds", "user/*.rs", "system/*.rs"}
    doctor = _scopes(password_grant(keycloak, "doctor", scope=asked))
    assert {"user/*.cruds", "user/*.rs"} <= doctor
    assert not doctor & {"patient/*.rs", "launch/patient", "system/*.rs"}
    auditor = _scopes(password_grant(keycloak, "auditor", scope=asked))
    assert "user/*.rs" in auditor
    assert "user/*.cruds" not in auditor


@pytest.mark.keycloak
def test_refresh_tokens_rotate(keycloak: Keycloak) -> None:
    first = password_grant(keycloak, "teacher").json()["refresh_token"]
    refresh = {"grant_type": "refresh_token", "client_id": TEST_CLIENT_ID}
    second = httpx.post(keycloak.token_url, data={**refresh, "refresh_token": first})
    assert second.status_code == httpx.codes.OK
    reused = httpx.post(keycloak.token_url, data={**refresh, "refresh_token": first})
    assert reused.status_code == httpx.codes.BAD_REQUEST
    assert reused.json()["error"] == "invalid_grant"


# -- authorization code + PKCE, as an app's browser does it -------------------------------------


def _authorize(
    server: Keycloak,
    browser: httpx.Client,
    client_id: str,
    redirect_uri: str,
    scope: str,
    *,
    challenge: str | None,
) -> httpx.Response:
    params = {
        "client_id": client_id,
        "response_type": "code",
        "redirect_uri": redirect_uri,
        "scope": scope,
        "state": secrets.token_urlsafe(16),
    }
    if challenge is not None:
        params |= {"code_challenge": challenge, "code_challenge_method": "S256"}
    return browser.get(f"{server.issuer}/protocol/openid-connect/auth", params=params)


def _login_form_action(page: str) -> str:
    form = re.search(r"<form\b[^>]*\bid=\"kc-form-login\"[^>]*>", page)
    assert form is not None, page[:2000]
    action = re.search(r"\baction=\"([^\"]+)\"", form.group(0))
    assert action is not None
    return html.unescape(action.group(1))


def _trust_loopback(browser: httpx.Client) -> None:
    # Keycloak marks its login cookies Secure. Browsers send those to http://127.0.0.1 (a
    # potentially trustworthy origin); Python's cookie jar does not, so clear the flag here.
    for cookie in browser.cookies.jar:
        cookie.secure = False


def authorization_code_flow(
    server: Keycloak, client_id: str, username: str, scope: str
) -> httpx.Response:
    """Log in through Keycloak's login form with PKCE (S256); return the token response."""
    redirect_uri = PUBLIC_CLIENTS[client_id]
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode()).digest()
    challenge = base64.urlsafe_b64encode(digest).decode().rstrip("=")
    with httpx.Client(timeout=30.0) as browser:
        page = _authorize(server, browser, client_id, redirect_uri, scope, challenge=challenge)
        assert page.status_code == httpx.codes.OK, page.text[:2000]
        _trust_loopback(browser)
        answer = browser.post(
            _login_form_action(page.text), data={"username": username, "password": DEV_PASSWORD}
        )
        assert answer.status_code == httpx.codes.FOUND, answer.text[:2000]
        location = urlsplit(answer.headers["location"])
        assert f"{location.scheme}://{location.netloc}{location.path}" == redirect_uri
        query = parse_qs(location.query)
        assert parse_qs(urlsplit(str(page.request.url)).query)["state"] == query["state"]
        return browser.post(
            server.token_url,
            data={
                "grant_type": "authorization_code",
                "client_id": client_id,
                "code": query["code"][0],
                "redirect_uri": redirect_uri,
                "code_verifier": verifier,
            },
        )


@pytest.mark.keycloak
def test_mobile_login_with_pkce_gets_smart_patient_scopes(keycloak: Keycloak) -> None:
    response = authorization_code_flow(
        keycloak, "huimin-mobile", "citizen", "openid patient/*.rs launch/patient offline_access"
    )
    assert response.status_code == httpx.codes.OK, response.text
    tokens = response.json()
    assert {"openid", "profile", "patient/*.rs", "launch/patient", "offline_access"} <= set(
        tokens["scope"].split()
    )
    claims = verified_claims(keycloak, tokens["access_token"])
    assert {"patient/*.rs", "launch/patient"} <= set(claims["scope"].split())
    assert claims["azp"] == "huimin-mobile"
    assert claims["resident_id"] == "R-00000001"
    assert "huimin-api" in claims["aud"]
    assert tokens["refresh_token"]
    assert tokens["id_token"]


@pytest.mark.keycloak
def test_console_login_with_pkce_gets_smart_user_scopes(keycloak: Keycloak) -> None:
    response = authorization_code_flow(keycloak, "huimin-console", "doctor", "openid user/*.cruds")
    assert response.status_code == httpx.codes.OK, response.text
    claims = verified_claims(keycloak, response.json()["access_token"])
    assert "user/*.cruds" in claims["scope"].split()
    assert claims["practitioner_id"] == "prac-doctor"


@pytest.mark.keycloak
@pytest.mark.parametrize("client_id", PUBLIC_CLIENTS)
def test_public_clients_refuse_logins_without_pkce(keycloak: Keycloak, client_id: str) -> None:
    redirect_uri = PUBLIC_CLIENTS[client_id]
    with httpx.Client(timeout=30.0) as browser:
        response = _authorize(keycloak, browser, client_id, redirect_uri, "openid", challenge=None)
    assert response.status_code == httpx.codes.FOUND
    error = parse_qs(urlsplit(response.headers["location"]).query)
    assert error["error"] == ["invalid_request"]
    assert "code_challenge" in error["error_description"][0]


@pytest.mark.keycloak
@pytest.mark.parametrize("client_id", PUBLIC_CLIENTS)
def test_public_clients_refuse_other_redirects_and_passwords(
    keycloak: Keycloak, client_id: str
) -> None:
    evil = f"{PUBLIC_CLIENTS[client_id]}/../evil"
    with httpx.Client(timeout=30.0) as browser:
        response = _authorize(keycloak, browser, client_id, evil, "openid", challenge="x" * 43)
    assert response.status_code == httpx.codes.BAD_REQUEST
    refused = password_grant(keycloak, "citizen", client_id=client_id)
    assert refused.status_code in {httpx.codes.BAD_REQUEST, httpx.codes.UNAUTHORIZED}
    assert refused.json()["error"] == "unauthorized_client"


# -- admin API: realm settings, users made by the registry, brute force ------------------------


@pytest.fixture
def admin(keycloak: Keycloak) -> KeycloakAdmin:
    """python-keycloak's admin client on realm huimin, logged in as the bootstrap admin."""
    return KeycloakAdmin(
        server_url=f"{keycloak.base_url}/",
        username=keycloak.admin_username,
        password=keycloak.admin_password,
        realm_name=REALM,
        user_realm_name="master",
    )


@pytest.fixture
def new_citizen(admin: KeycloakAdmin) -> Iterator[tuple[str, str, str]]:
    """A citizen created through the admin API, as the registry will: (username, id, password)."""
    username = f"resident-{uuid.uuid4().hex[:10]}"
    password = secrets.token_urlsafe(16)
    user_id = admin.create_user(
        {
            "username": username,
            "enabled": True,
            "email": f"{username}@huimin.example",
            "emailVerified": True,
            "firstName": "New",
            "lastName": "Resident",
            "attributes": {"resident_id": ["R-12345678"], "jurisdiction": ["110101/002/007"]},
            "credentials": [{"type": "password", "value": password, "temporary": False}],
        }
    )
    admin.assign_realm_roles(user_id, [admin.get_realm_role("citizen")])
    yield username, user_id, password
    admin.delete_user(user_id)


@pytest.mark.keycloak
def test_realm_settings(admin: KeycloakAdmin) -> None:
    realm = admin.get_realm(REALM)
    assert realm["bruteForceProtected"] is True
    assert realm["permanentLockout"] is False
    assert realm["failureFactor"] == 5
    assert realm["accessTokenLifespan"] == 300
    assert realm["ssoSessionIdleTimeout"] == 1800
    assert realm["ssoSessionMaxLifespan"] == 36000
    assert realm["revokeRefreshToken"] is True
    profile = {a["name"]: a for a in admin.get_realm_users_profile()["attributes"]}
    for name in HUIMIN_ATTRIBUTES:
        assert profile[name]["permissions"]["edit"] == ["admin"]


@pytest.mark.keycloak
def test_admin_created_citizen_gets_its_claims(
    keycloak: Keycloak, new_citizen: tuple[str, str, str]
) -> None:
    username, _, password = new_citizen
    response = password_grant(keycloak, username, password=password)
    assert response.status_code == httpx.codes.OK, response.text
    claims = verified_claims(keycloak, response.json()["access_token"])
    assert claims["resident_id"] == "R-12345678"
    assert claims["jurisdiction"] == "110101/002/007"
    assert HUIMIN_ROLES & set(claims["realm_access"]["roles"]) == {"citizen"}


@pytest.mark.keycloak
def test_users_cannot_change_their_own_huimin_attributes(
    keycloak: Keycloak, new_citizen: tuple[str, str, str]
) -> None:
    username, _, password = new_citizen
    token = password_grant(keycloak, username, password=password).json()["access_token"]
    account_url = f"{keycloak.issuer}/account/"
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
    me = httpx.get(account_url, headers=headers, timeout=30.0).json()
    me["attributes"] = {"resident_id": ["R-99999999"], "jurisdiction": ["110101"]}
    me.pop("userProfileMetadata", None)
    response = httpx.post(account_url, headers=headers, json=me, timeout=30.0)
    assert response.status_code == httpx.codes.BAD_REQUEST
    assert "error-user-attribute-read-only" in response.text
    claims = verified_claims(
        keycloak, password_grant(keycloak, username, password=password).json()["access_token"]
    )
    assert claims["resident_id"] == "R-12345678"


@pytest.mark.keycloak
def test_wrong_password_is_refused_and_repeated_failures_lock_the_account(
    keycloak: Keycloak, admin: KeycloakAdmin, new_citizen: tuple[str, str, str]
) -> None:
    username, user_id, password = new_citizen
    wrong = password_grant(keycloak, username, password="not-" + password)
    assert wrong.status_code == httpx.codes.BAD_REQUEST  # RFC 6749 5.2: invalid_grant is a 400
    assert wrong.json()["error"] == "invalid_grant"
    assert "access_token" not in wrong.json()
    for _ in range(4):
        password_grant(keycloak, username, password="not-" + password)
    # Locked now (temporarily): even the right password is refused, and the admin API says so.
    locked = password_grant(keycloak, username, password=password)
    assert locked.status_code != httpx.codes.OK
    assert admin.get_bruteforce_detection_status(user_id)["disabled"] is True
    admin.clear_bruteforce_attempts_for_user(user_id)
    assert password_grant(keycloak, username, password=password).status_code == httpx.codes.OK


# -- a production-like realm: no dev users, secrets from the environment -----------------------


@pytest.mark.keycloak
@pytest.mark.slow
def test_production_realm_reads_secrets_from_the_environment(
    keycloak: Keycloak, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A dedicated server (~30-60 s): the shared one has the dev users and the dev client.
    monkeypatch.setenv("HUIMIN_HEALTH_CLIENT_SECRET", "health-secret-from-the-environment")
    with Keycloak(tmp_path / "production", dev=False) as server:
        assert server.client_secret("huimin-health") == "health-secret-from-the-environment"
        assert client_credentials(server, "huimin-health").status_code == httpx.codes.OK
        dev_secret = client_credentials(server, "huimin-health", secret="huimin-dev-secret")
        assert dev_secret.status_code == httpx.codes.UNAUTHORIZED
        no_test_client = password_grant(server, "citizen")
        assert no_test_client.json()["error"] in {"invalid_client", "unauthorized_client"}
        admin = KeycloakAdmin(
            server_url=f"{server.base_url}/",
            username=server.admin_username,
            password=server.admin_password,
            realm_name=REALM,
            user_realm_name="master",
        )
        people = [u for u in admin.get_users({}) if not u["username"].startswith("service-")]
        assert people == []
        assert admin.get_user_id("citizen") is None
