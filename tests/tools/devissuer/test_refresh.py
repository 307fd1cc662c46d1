"""refresh_token grant: rotation (the realm revokes used refresh tokens), offline tokens."""

from __future__ import annotations

import base64
import json

import pytest

from tests.tools.devissuer import OIDC, TOKEN, http, issuer_app, password_grant, verify


@pytest.fixture(scope="module")
async def client(tmp_path_factory):
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


def refresh(token: str, client_id: str = "huimin-test", **extra: str) -> dict[str, str]:
    return {
        "grant_type": "refresh_token",
        "client_id": client_id,
        "refresh_token": token,
        **extra,
    }


def payload(token: str) -> dict[str, object]:
    part = token.split(".")[1]
    claims: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return claims


async def test_refresh_issues_new_tokens_for_the_same_session(client):
    first = (await password_grant(client, "doctor", scope="openid")).json()
    second = await client.post(TOKEN, data=refresh(first["refresh_token"]))
    assert second.status_code == 200, second.text
    body = second.json()
    assert body["refresh_token"] != first["refresh_token"]
    assert body["session_state"] == first["session_state"]
    assert body["scope"] == first["scope"]
    assert body["id_token"]
    claims = await verify(client, body["access_token"])
    assert claims["preferred_username"] == "doctor"
    assert claims["practitioner_id"] == "prac-doctor"
    assert claims["sid"] == first["session_state"]


async def test_a_refresh_token_works_once(client):
    # realm-huimin.json: revokeRefreshToken true, refreshTokenMaxReuse 0.
    first = (await password_grant(client, "doctor")).json()
    assert (await client.post(TOKEN, data=refresh(first["refresh_token"]))).status_code == 200
    again = await client.post(TOKEN, data=refresh(first["refresh_token"]))
    assert again.status_code == 400
    assert again.json()["error"] == "invalid_grant"


async def test_refresh_tokens_are_not_access_tokens(client):
    token = (await password_grant(client, "doctor")).json()["refresh_token"]
    assert payload(token)["typ"] == "Refresh"
    response = await client.get(f"{OIDC}/userinfo", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


async def test_refresh_token_of_another_client_is_refused(client):
    token = (await password_grant(client, "doctor")).json()["refresh_token"]
    response = await client.post(TOKEN, data=refresh(token, "huimin-mobile"))
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("token", ["", "garbage", "a.b.c"])
async def test_garbage_refresh_tokens(client, token):
    response = await client.post(TOKEN, data=refresh(token))
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_request", "invalid_grant")


async def test_refresh_may_narrow_but_not_widen_the_scope(client):
    first = (await password_grant(client, "citizen", scope="openid patient/*.rs")).json()
    assert "patient/*.rs" in first["scope"].split()
    narrowed = await client.post(TOKEN, data=refresh(first["refresh_token"], scope="openid"))
    assert narrowed.status_code == 200
    assert "patient/*.rs" not in narrowed.json()["scope"].split()
    widened = await client.post(
        TOKEN, data=refresh(narrowed.json()["refresh_token"], scope="openid user/*.rs")
    )
    assert widened.status_code == 400
    assert widened.json()["error"] == "invalid_scope"


async def test_offline_access_gives_an_offline_token(client):
    body = (await password_grant(client, "citizen", scope="offline_access")).json()
    assert "offline_access" in body["scope"].split()
    assert payload(body["refresh_token"])["typ"] == "Offline"
    again = await client.post(TOKEN, data=refresh(body["refresh_token"]))
    assert again.status_code == 200
    assert payload(again.json()["refresh_token"])["typ"] == "Offline"


async def test_back_channel_logout_with_the_refresh_token(client):
    body = (await password_grant(client, "teacher")).json()
    logout = await client.post(
        f"{OIDC}/logout",
        data={"client_id": "huimin-test", "refresh_token": body["refresh_token"]},
    )
    assert logout.status_code == 204
    response = await client.post(TOKEN, data=refresh(body["refresh_token"]))
    assert response.status_code == 400
    assert response.json()["error_description"] == "Session not active"
