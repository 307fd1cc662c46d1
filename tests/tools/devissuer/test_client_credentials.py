"""client_credentials for the services' confidential clients, and client authentication."""

from __future__ import annotations

import base64

import pytest

from tests.tools.devissuer import (
    SERVICE_CLIENTS,
    SERVICE_SECRET,
    TOKEN,
    http,
    issuer_app,
    verify,
)


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


def credentials(client_id: str, secret: str = SERVICE_SECRET, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "client_credentials",
        "client_id": client_id,
        "client_secret": secret,
        **extra,
    }


@pytest.mark.parametrize("client_id", SERVICE_CLIENTS)
async def test_service_account_token(client, client_id):
    response = await client.post(TOKEN, data=credentials(client_id))
    assert response.status_code == 200, response.text
    body = response.json()
    # Keycloak 26: no refresh token, no session for client_credentials.
    assert "refresh_token" not in body
    assert "session_state" not in body
    assert body["refresh_expires_in"] == 0
    claims = await verify(client, body["access_token"])
    assert claims["azp"] == client_id
    assert claims["client_id"] == client_id  # the service_account client scope
    assert claims["preferred_username"] == f"service-account-{client_id}"
    assert "service" in claims["realm_access"]["roles"]
    assert "sid" not in claims
    for person_claim in ("resident_id", "jurisdiction", "practitioner_id", "email"):
        assert person_claim not in claims


async def test_secret_override_from_the_environment(tmp_path):
    # The realm file's ${HUIMIN_HEALTH_CLIENT_SECRET:huimin-dev-secret}, as Keycloak reads it.
    app = issuer_app(tmp_path, environ={"HUIMIN_HEALTH_CLIENT_SECRET": "s3cret-from-env-0123"})
    async with http(app) as client:
        old = await client.post(TOKEN, data=credentials("huimin-health"))
        new = await client.post(TOKEN, data=credentials("huimin-health", "s3cret-from-env-0123"))
    assert old.status_code == 401
    assert new.status_code == 200


async def test_http_basic_client_authentication(client):
    basic = base64.b64encode(f"huimin-registry:{SERVICE_SECRET}".encode()).decode()
    response = await client.post(
        TOKEN,
        data={"grant_type": "client_credentials"},
        headers={"Authorization": f"Basic {basic}"},
    )
    assert response.status_code == 200
    assert (await verify(client, response.json()["access_token"]))["azp"] == "huimin-registry"


@pytest.mark.parametrize("secret", ["wrong", ""])
async def test_wrong_or_missing_secret_is_refused(client, secret):
    response = await client.post(TOKEN, data=credentials("huimin-health", secret))
    assert response.status_code == 401
    # Keycloak's answer for a confidential client with bad credentials.
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "Invalid client or Invalid client credentials",
    }


async def test_unknown_client_is_invalid_client(client):
    response = await client.post(TOKEN, data=credentials("huimin-nothing"))
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"


@pytest.mark.parametrize("client_id", ["huimin-mobile", "huimin-console", "huimin-test"])
async def test_public_clients_cannot_use_client_credentials(client, client_id):
    response = await client.post(
        TOKEN, data={"grant_type": "client_credentials", "client_id": client_id}
    )
    assert response.status_code == 401
    assert response.json() == {
        "error": "unauthorized_client",
        "error_description": "Public client not allowed to retrieve service account",
    }


async def test_system_scope_for_services(client):
    response = await client.post(TOKEN, data=credentials("huimin-health", scope="system/*.rs"))
    assert response.status_code == 200
    assert "system/*.rs" in response.json()["scope"].split()
    claims = await verify(client, response.json()["access_token"])
    assert "system/*.rs" in claims["scope"].split()


@pytest.mark.parametrize("scope", ["", "patient/*.rs", "made-up"])
async def test_scopes_the_client_may_not_request_are_invalid_scope(client, scope):
    # Keycloak refuses an empty scope= too ("Invalid scopes: "): send none to get defaults.
    response = await client.post(TOKEN, data=credentials("huimin-health", scope=scope))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": f"Invalid scopes: {scope}",
    }
