"""Discovery document, JWKS, realm document and the ops routes of the dev issuer."""

from __future__ import annotations

import pytest
from joserfc.jwk import KeySet

from tests.tools.devissuer import BASE_URL, ISSUER, OIDC, http, issuer_app


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


async def test_discovery_names_keycloak_layout_endpoints(client):
    response = await client.get("/realms/huimin/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER == "http://127.0.0.1:8080/realms/huimin"
    base = f"{ISSUER}/protocol/openid-connect"
    assert doc["authorization_endpoint"] == f"{base}/auth"
    assert doc["token_endpoint"] == f"{base}/token"
    assert doc["userinfo_endpoint"] == f"{base}/userinfo"
    assert doc["end_session_endpoint"] == f"{base}/logout"
    assert doc["jwks_uri"] == f"{base}/certs"
    assert set(doc["grant_types_supported"]) == {
        "authorization_code",
        "client_credentials",
        "password",
        "refresh_token",
    }
    assert doc["response_types_supported"] == ["code"]
    assert "S256" in doc["code_challenge_methods_supported"]
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert {"client_secret_basic", "client_secret_post"} <= set(
        doc["token_endpoint_auth_methods_supported"]
    )
    # Scopes come from the realm file: OIDC ones and the SMART ones.
    assert {"openid", "profile", "offline_access", "patient/*.rs", "user/*.cruds"} <= set(
        doc["scopes_supported"]
    )
    assert doc["authorization_response_iss_parameter_supported"] is True


async def test_jwks_serves_one_public_rs256_signing_key(client):
    response = await client.get(f"{OIDC}/certs")
    assert response.status_code == 200
    (key,) = response.json()["keys"]
    assert key["kty"] == "RSA"
    assert (key["use"], key["alg"]) == ("sig", "RS256")
    assert key["kid"]
    assert not {"d", "p", "q", "dp", "dq", "qi"} & key.keys(), "private parts published"
    KeySet.import_key_set(response.json())  # a valid key set


async def test_unknown_realm_is_404_like_keycloak(client):
    response = await client.get("/realms/master/.well-known/openid-configuration")
    assert response.status_code == 404
    assert response.json() == {"error": "Realm does not exist"}


async def test_realm_document_carries_the_public_key(client):
    doc = (await client.get("/realms/huimin")).json()
    assert doc["realm"] == "huimin"
    assert doc["token-service"] == f"{ISSUER}/protocol/openid-connect"
    assert doc["public_key"].startswith("MIIB")  # DER SubjectPublicKeyInfo, base64


async def test_health_and_readiness(client):
    health = await client.get("/healthz")
    assert health.status_code == 200
    assert health.json() == {"status": "ok", "service": "devissuer"}
    assert (await client.get("/readyz")).status_code == 200


async def test_public_url_moves_the_issuer(tmp_path):
    app = issuer_app(tmp_path, issuer_public_url="http://localhost:9999/")
    async with http(app) as client:
        doc = (await client.get("/realms/huimin/.well-known/openid-configuration")).json()
    assert doc["issuer"] == "http://localhost:9999/realms/huimin"
    assert doc["token_endpoint"].startswith("http://localhost:9999/realms/huimin/")
    assert BASE_URL not in str(doc)
