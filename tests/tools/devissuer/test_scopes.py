"""Scopes like Keycloak: defaults always, optional ones on request, SMART scope strings
only for users holding the scope's roles (others silently dropped), anything else the
client may not request refused with invalid_scope."""

from __future__ import annotations

import pytest

from tests.tools.devissuer import (
    MOBILE_REDIRECT,
    TOKEN,
    http,
    issuer_app,
    login,
    password_grant,
    pkce_pair,
    redirect_params,
    verify,
)


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


async def scopes_of(client, response) -> set[str]:
    assert response.status_code == 200, response.text
    claims = await verify(client, response.json()["access_token"])
    assert claims["scope"] == response.json()["scope"]
    return set(claims["scope"].split())


async def test_without_a_scope_parameter_the_defaults_are_granted(client):
    granted = await scopes_of(client, await password_grant(client, "citizen"))
    # Default scopes with include.in.token.scope=true; roles, basic, huimin-claims... are not.
    assert granted == {"email", "profile"}


async def test_smart_patient_scopes_for_a_citizen_in_the_mobile_app(client):
    verifier, challenge = pkce_pair()
    wanted = "openid fhirUser launch/patient patient/*.rs patient/Observation.rs"
    response = await login(
        client,
        {
            "client_id": "huimin-mobile",
            "redirect_uri": MOBILE_REDIRECT,
            "response_type": "code",
            "scope": wanted,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        },
        "citizen",
    )
    code = redirect_params(response)[1]["code"]
    tokens = await client.post(
        TOKEN,
        data={
            "grant_type": "authorization_code",
            "client_id": "huimin-mobile",
            "code": code,
            "redirect_uri": MOBILE_REDIRECT,
            "code_verifier": verifier,
        },
    )
    assert set(wanted.split()) <= await scopes_of(client, tokens)


async def test_smart_user_scopes_for_a_clinician(client):
    response = await password_grant(client, "doctor", scope="user/*.cruds user/*.rs fhirUser")
    assert {"user/*.cruds", "user/*.rs", "fhirUser"} <= await scopes_of(client, response)


@pytest.mark.parametrize(
    ("username", "scope"),
    [("doctor", "patient/*.rs"), ("citizen", "user/*.cruds"), ("teacher", "user/*.rs")],
)
async def test_role_bound_scopes_are_dropped_for_users_without_the_role(client, username, scope):
    # The realm maps patient/* to citizen and user/* to clinician (and auditor for .rs);
    # Keycloak leaves such a scope out of the token for anyone else, without an error.
    granted = await scopes_of(client, await password_grant(client, username, scope=scope))
    assert scope not in granted
    assert {"email", "profile"} <= granted


async def test_auditor_may_read_but_not_write(client):
    response = await password_grant(client, "auditor", scope="user/*.rs user/*.cruds")
    granted = await scopes_of(client, response)
    assert "user/*.rs" in granted
    assert "user/*.cruds" not in granted


@pytest.mark.parametrize(
    ("client_id", "scope"),
    [
        ("huimin-test", "made-up"),
        ("huimin-test", "service_account"),  # a realm scope, not one of the test client's
        ("huimin-test", "openid  profile"),  # doubled space: Keycloak sees an empty name
        ("huimin-test", ""),
    ],
)
async def test_scopes_the_client_may_not_request_are_refused(client, client_id, scope):
    response = await password_grant(client, "doctor", client_id=client_id, scope=scope)
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_scope",
        "error_description": f"Invalid scopes: {scope}",
    }
