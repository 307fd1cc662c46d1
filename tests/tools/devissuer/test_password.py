"""Password grant (huimin-test, the dev-only direct-grant client) for every dev user, and
userinfo. Expected roles and attributes come from the realm files themselves."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.tools.devissuer import ISSUER, OIDC, TOKEN, http, issuer_app, password_grant, verify

REALM_DIR = Path(__file__).resolve().parents[3] / "docker" / "keycloak"
DEV_USERS = {
    u["username"]: u for u in json.loads((REALM_DIR / "dev-users.json").read_text())["users"]
}
# The design brief's dev users and the role each one has.
DESIGN_ROLES = {
    "admin": "admin",
    "doctor": "clinician",
    "worker": "community-worker",
    "officer": "street-officer",
    "citizen": "citizen",
    "teacher": "educator",
    "editor": "tourism-editor",
    "auditor": "auditor",
}
HUIMIN_ATTRIBUTES = ("resident_id", "jurisdiction", "practitioner_id")


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


def test_the_realm_files_hold_the_design_dev_users():
    assert DESIGN_ROLES.keys() <= DEV_USERS.keys()


@pytest.mark.parametrize("username", sorted(DESIGN_ROLES))
async def test_password_grant_issues_keycloak_shaped_tokens(client, username):
    response = await password_grant(client, username, scope="openid")
    assert response.status_code == 200, response.text
    assert response.headers["cache-control"] == "no-store"
    body = response.json()
    assert body["token_type"] == "Bearer"
    assert body["expires_in"] == 300  # accessTokenLifespan of the realm file
    assert body["refresh_token"]
    assert body["session_state"]
    assert body["scope"].split() == ["email", "openid", "profile"]

    claims = await verify(client, body["access_token"])
    assert claims["typ"] == "Bearer"
    assert claims["azp"] == "huimin-test"
    assert claims["preferred_username"] == username
    assert claims["sid"] == body["session_state"]
    assert claims["exp"] - claims["iat"] == 300
    assert claims["scope"] == body["scope"]
    roles = set(claims["realm_access"]["roles"])
    assert DESIGN_ROLES[username] in roles
    assert set(DEV_USERS[username]["realmRoles"]) <= roles
    assert "offline_access" in roles  # from the composite default role
    attributes = DEV_USERS[username].get("attributes") or {}
    for name in HUIMIN_ATTRIBUTES:
        if name in attributes:
            assert claims[name] == attributes[name][0]
        else:
            assert name not in claims

    id_claims = await verify(client, body["id_token"], audience="huimin-test")
    assert id_claims["typ"] == "ID"
    assert id_claims["sub"] == claims["sub"]
    assert id_claims["at_hash"]


async def test_subject_is_stable_and_distinct_per_user(client):
    subs: dict[str, set[str]] = {}
    for username in ("doctor", "citizen", "doctor"):
        token = (await password_grant(client, username)).json()["access_token"]
        subs.setdefault(username, set()).add((await verify(client, token))["sub"])
    assert len(subs["doctor"]) == 1
    assert subs["doctor"] != subs["citizen"]


async def test_email_works_as_the_login_name(client):
    response = await password_grant(client, "doctor@huimin.example")
    assert response.status_code == 200
    claims = await verify(client, response.json()["access_token"])
    assert claims["preferred_username"] == "doctor"


@pytest.mark.parametrize(
    ("username", "password"),
    [("doctor", "wrong-password"), ("nobody", "huimin-dev"), ("doctor", "")],
)
async def test_bad_credentials_are_invalid_grant(client, username, password):
    response = await password_grant(client, username, password)
    # Keycloak 26.6+ (the pinned 26.7.3) answers 400, as RFC 6749 §5.2 says.
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "Invalid user credentials",
    }


async def test_service_accounts_cannot_log_in_with_a_password(client):
    response = await password_grant(client, "service-account-huimin-health", "")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


async def test_clients_without_direct_grants_are_refused(client):
    # huimin-mobile is public with the standard flow only, as in the realm file.
    response = await password_grant(client, "citizen", client_id="huimin-mobile")
    assert response.status_code == 400
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "Client not allowed for direct access grants",
    }


@pytest.mark.parametrize(
    ("data", "status", "error"),
    [
        ({"client_id": "huimin-test"}, 400, "invalid_request"),
        ({"grant_type": "implicit", "client_id": "huimin-test"}, 400, "unsupported_grant_type"),
        ({"grant_type": "password", "client_id": "no-such-client"}, 401, "invalid_client"),
        ({"grant_type": "password", "username": "doctor", "password": "x"}, 400, "invalid_client"),
    ],
)
async def test_malformed_token_requests(client, data, status, error):
    response = await client.post(TOKEN, data=data)
    assert response.status_code == status
    assert response.json()["error"] == error
    assert response.json()["error_description"]


async def test_token_endpoint_wants_a_form(client):
    response = await client.post(TOKEN, json={"grant_type": "password"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


async def test_userinfo_returns_the_users_claims(client):
    token = (await password_grant(client, "worker", scope="openid")).json()["access_token"]
    response = await client.get(f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    info = response.json()
    assert info["preferred_username"] == "worker"
    assert info["jurisdiction"] == DEV_USERS["worker"]["attributes"]["jurisdiction"][0]
    assert info["sub"] == (await verify(client, token))["sub"]
    assert "realm_access" not in info  # the roles mapper is access-token only


async def test_userinfo_refuses_bad_tokens(client):
    response = await client.get(f"{OIDC}/userinfo", headers={"Authorization": "Bearer nope"})
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_token"
    assert 'error="invalid_token"' in response.headers["www-authenticate"]
    no_openid = (await password_grant(client, "worker")).json()["access_token"]
    response = await client.get(
        f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {no_openid}"}
    )
    assert response.status_code == 403
    assert response.json()["error"] == "insufficient_scope"


async def test_tokens_name_this_issuer(client):
    token = (await password_grant(client, "admin")).json()["access_token"]
    assert (await verify(client, token))["iss"] == ISSUER
