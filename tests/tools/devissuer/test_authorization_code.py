"""Authorization code + PKCE through the login form, as the mobile app and console use it."""

from __future__ import annotations

import pytest

from tests.tools.devissuer import (
    AUTH,
    ISSUER,
    MOBILE_REDIRECT,
    OIDC,
    TOKEN,
    form_action,
    http,
    issuer_app,
    login,
    pkce_pair,
    redirect_params,
    verify,
)

CONSOLE_REDIRECT = "http://127.0.0.1:8000/console/callback"


@pytest.fixture
async def client(tmp_path_factory):
    # One browser per test: the login-session cookie must not leak between tests.
    async with http(issuer_app(tmp_path_factory.mktemp("issuer"))) as client:
        yield client


def auth_params(challenge: str, **extra: str) -> dict[str, str]:
    return {
        "client_id": "huimin-mobile",
        "redirect_uri": MOBILE_REDIRECT,
        "response_type": "code",
        "scope": "openid",
        "state": "st-123",
        "nonce": "n-456",
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        **extra,
    }


def exchange(code: str, verifier: str | None, **extra: str) -> dict[str, str]:
    data = {
        "grant_type": "authorization_code",
        "client_id": "huimin-mobile",
        "code": code,
        "redirect_uri": MOBILE_REDIRECT,
        **extra,
    }
    if verifier is not None:
        data["code_verifier"] = verifier
    return data


async def test_full_flow_with_pkce(client):
    verifier, challenge = pkce_pair()
    response = await login(client, auth_params(challenge), "citizen")
    target, params = redirect_params(response)
    assert target == MOBILE_REDIRECT
    assert params["state"] == "st-123"
    assert params["iss"] == ISSUER  # RFC 9207
    assert params["session_state"]

    tokens = await client.post(TOKEN, data=exchange(params["code"], verifier))
    assert tokens.status_code == 200, tokens.text
    body = tokens.json()
    claims = await verify(client, body["access_token"])
    assert claims["azp"] == "huimin-mobile"
    assert claims["preferred_username"] == "citizen"
    assert claims["resident_id"] == "R-00000001"
    assert claims["sid"] == params["session_state"] == body["session_state"]
    id_token = await verify(client, body["id_token"], audience="huimin-mobile")
    assert id_token["nonce"] == "n-456"
    assert body["refresh_token"]


async def test_wrong_verifier_is_refused(client):
    _, challenge = pkce_pair()
    other_verifier, _ = pkce_pair()
    _, params = redirect_params(await login(client, auth_params(challenge), "citizen"))
    response = await client.post(TOKEN, data=exchange(params["code"], other_verifier))
    assert response.status_code == 400
    assert response.json() == {
        "error": "invalid_grant",
        "error_description": "PKCE verification failed: Code mismatch",
    }


async def test_missing_verifier_is_refused(client):
    _, challenge = pkce_pair()
    _, params = redirect_params(await login(client, auth_params(challenge), "citizen"))
    response = await client.post(TOKEN, data=exchange(params["code"], None))
    assert response.status_code == 400
    assert response.json()["error_description"] == "PKCE code verifier not specified"


async def test_codes_are_single_use(client):
    verifier, challenge = pkce_pair()
    _, params = redirect_params(await login(client, auth_params(challenge), "citizen"))
    first = await client.post(TOKEN, data=exchange(params["code"], verifier))
    second = await client.post(TOKEN, data=exchange(params["code"], verifier))
    assert first.status_code == 200
    assert second.status_code == 400
    assert second.json() == {"error": "invalid_grant", "error_description": "Code not valid"}


async def test_code_is_bound_to_the_redirect_uri_and_client(client):
    verifier, challenge = pkce_pair()
    _, params = redirect_params(await login(client, auth_params(challenge), "citizen"))
    response = await client.post(
        TOKEN, data=exchange(params["code"], verifier, redirect_uri="huimin://other")
    )
    assert response.status_code == 400
    assert response.json()["error_description"] == "Incorrect redirect_uri"

    _, params = redirect_params(await client.get(AUTH, params=auth_params(challenge)))
    stolen = await client.post(
        TOKEN, data=exchange(params["code"], verifier, client_id="huimin-console")
    )
    assert stolen.status_code == 400
    assert stolen.json()["error_description"] == "Code not valid"


@pytest.mark.parametrize(
    "redirect_uri",
    ["huimin://evil", "huimin://callback/", "huimin://callback?x=1", "", "https://evil.example/"],
)
async def test_unregistered_redirect_uri_gets_an_error_page_not_a_redirect(client, redirect_uri):
    _, challenge = pkce_pair()
    response = await client.get(AUTH, params=auth_params(challenge, redirect_uri=redirect_uri))
    assert response.status_code == 400
    assert "location" not in response.headers
    assert "Invalid parameter: redirect_uri" in response.text


async def test_unknown_client_gets_an_error_page(client):
    _, challenge = pkce_pair()
    response = await client.get(AUTH, params=auth_params(challenge, client_id="huimin-evil"))
    assert response.status_code == 400
    assert "Client not found." in response.text


@pytest.mark.parametrize(
    ("change", "error", "description"),
    [
        ({"code_challenge": None}, "invalid_request", "Missing parameter: code_challenge"),
        (
            {"code_challenge_method": "plain"},
            "invalid_request",
            "Invalid parameter: code_challenge_method",
        ),
        ({"code_challenge": "short"}, "invalid_request", "Invalid parameter: code_challenge"),
        ({"response_type": "token"}, "unsupported_response_type", None),
        ({"scope": "openid user/*.cruds"}, "invalid_scope", "Invalid scopes: openid user/*.cruds"),
    ],
)
async def test_bad_requests_go_back_to_the_client(client, change, error, description):
    _, challenge = pkce_pair()
    params = {k: v for k, v in {**auth_params(challenge), **change}.items() if v is not None}
    target, answer = redirect_params(await client.get(AUTH, params=params))
    assert target == MOBILE_REDIRECT
    assert answer["error"] == error
    assert answer.get("error_description") == description
    assert answer["state"] == "st-123"
    assert "code" not in answer


async def test_wrong_password_shows_the_form_again(client):
    _, challenge = pkce_pair()
    response = await login(client, auth_params(challenge), "citizen", "wrong-password")
    assert response.status_code == 200
    assert "Invalid username or password." in response.text
    assert 'value="citizen"' in response.text
    # The same login attempt can go on with the right password.
    retry = await client.post(
        form_action(response), data={"username": "citizen", "password": "huimin-dev"}
    )
    assert redirect_params(retry)[1]["code"]


async def test_login_page_is_escaped_and_unframeable(client):
    _, challenge = pkce_pair()
    response = await login(client, auth_params(challenge), '"><script>x</script>', "x")
    assert "<script>x</script>" not in response.text
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"


async def test_single_sign_on_across_clients(client):
    verifier, challenge = pkce_pair()
    redirect_params(await login(client, auth_params(challenge), "worker"))
    # The console, in the same browser: no form, straight back with a code.
    console = await client.get(
        AUTH,
        params=auth_params(challenge, client_id="huimin-console", redirect_uri=CONSOLE_REDIRECT),
    )
    target, params = redirect_params(console)
    assert target == CONSOLE_REDIRECT
    tokens = await client.post(
        TOKEN,
        data=exchange(
            params["code"], verifier, client_id="huimin-console", redirect_uri=CONSOLE_REDIRECT
        ),
    )
    claims = await verify(client, tokens.json()["access_token"])
    assert (claims["azp"], claims["preferred_username"]) == ("huimin-console", "worker")


async def test_prompt_none_without_a_session_is_login_required(client):
    _, challenge = pkce_pair()
    response = await client.get(AUTH, params=auth_params(challenge, prompt="none"))
    _, params = redirect_params(response)
    assert params["error"] == "login_required"


async def test_logout_ends_the_session(client):
    verifier, challenge = pkce_pair()
    _, params = redirect_params(await login(client, auth_params(challenge), "citizen"))
    body = (await client.post(TOKEN, data=exchange(params["code"], verifier))).json()
    response = await client.get(
        f"{OIDC}/logout",
        params={
            "id_token_hint": body["id_token"],
            "post_logout_redirect_uri": "huimin://logout",
            "state": "bye",
        },
    )
    assert response.status_code == 302
    assert response.headers["location"] == "huimin://logout?state=bye"
    refresh = await client.post(
        TOKEN,
        data={
            "grant_type": "refresh_token",
            "client_id": "huimin-mobile",
            "refresh_token": body["refresh_token"],
        },
    )
    assert refresh.status_code == 400
    assert refresh.json()["error_description"] == "Session not active"
    # The browser session is gone as well: the form is shown again.
    page = await client.get(AUTH, params=auth_params(challenge))
    assert page.status_code == 200


async def test_logout_refuses_unregistered_redirects(client):
    response = await client.get(
        f"{OIDC}/logout",
        params={"client_id": "huimin-mobile", "post_logout_redirect_uri": "https://evil.example"},
    )
    assert response.status_code == 400
    assert "location" not in response.headers


async def test_cors_for_the_console_origin(client):
    allowed = await client.options(
        TOKEN,
        headers={
            "Origin": "http://127.0.0.1:8000",
            "Access-Control-Request-Method": "POST",
        },
    )
    assert allowed.headers["access-control-allow-origin"] == "http://127.0.0.1:8000"
    other = await client.options(
        TOKEN,
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in other.headers


async def test_unknown_or_finished_login_attempts_are_refused(client):
    response = await client.post(
        "/realms/huimin/login-actions/authenticate",
        params={"session_code": "made-up"},
        data={"username": "citizen", "password": "huimin-dev"},
    )
    assert response.status_code == 400
    assert "timed out" in response.text
    assert "location" not in response.headers


async def test_authorization_request_by_post(client):
    _, challenge = pkce_pair()
    page = await client.post(AUTH, data=auth_params(challenge))
    assert page.status_code == 200
    assert form_action(page).startswith("http://127.0.0.1:8080/realms/huimin/login-actions/")
