"""Token validation against real identity providers: the embedded dev issuer and Keycloak.

The same tests run on both (`idp` fixture): what a service accepts and refuses does not
depend on which one issued the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import httpx
import pytest
from fastapi import APIRouter, Depends
from fastapi.testclient import TestClient

from shared.app import create_app
from shared.auth import (
    ClientCredentials,
    CurrentPrincipal,
    InvalidToken,
    JWKSCache,
    Principal,
    ServiceAuth,
    TokenValidator,
    auth_lifespan,
    require_role,
    require_scope,
)
from shared.errors import ServiceUnavailable
from shared.settings import build_settings
from tests.fixtures.identity import SERVICE_CLIENTS, DevIssuer, IdP, dev_idp

EXPECTED = {
    "admin": ({"admin"}, {}),
    "doctor": ({"clinician"}, {"practitioner_id"}),
    "worker": ({"community-worker"}, {"jurisdiction"}),
    "officer": ({"street-officer"}, {"jurisdiction"}),
    "citizen": ({"citizen"}, {"resident_id"}),
    "teacher": ({"educator"}, {}),
    "editor": ({"tourism-editor"}, {}),
    "auditor": ({"auditor"}, {}),
}


@pytest.fixture
async def validator(idp: IdP) -> AsyncIterator[TokenValidator]:
    async with httpx.AsyncClient() as client:
        keys = JWKSCache(idp.issuer, client, min_refresh=0)
        assert await keys.refresh(force=True)
        yield TokenValidator(keys, audience="huimin-api")


@pytest.mark.parametrize("username", sorted(EXPECTED))
async def test_password_grant_tokens_carry_roles_and_claims(idp: IdP, validator, username) -> None:
    principal = await validator.validate(idp.password_token(username))
    roles, attributes = EXPECTED[username]
    assert roles <= principal.roles
    assert principal.username == username
    for name in ("resident_id", "jurisdiction", "practitioner_id"):
        assert (getattr(principal, name) is not None) == (name in attributes), name
    assert not principal.is_service


async def test_dev_users_attributes_are_the_documented_ones(idp: IdP, validator) -> None:
    worker = await validator.validate(idp.password_token("worker"))
    officer = await validator.validate(idp.password_token("officer"))
    assert worker.jurisdiction is not None
    assert officer.jurisdiction is not None
    assert worker.jurisdiction.startswith(officer.jurisdiction + "/")  # community in street


@pytest.mark.parametrize("client_id", SERVICE_CLIENTS)
async def test_client_credentials_for_each_service(idp: IdP, validator, client_id) -> None:
    principal = await validator.validate(idp.client_token(client_id))
    assert principal.is_service
    assert principal.client_id == client_id


async def test_smart_scopes_requested_appear_in_the_token(idp: IdP, validator) -> None:
    token = idp.password_token("citizen", scope="openid patient/*.rs launch/patient")
    principal = await validator.validate(token)
    assert {"patient/*.rs", "launch/patient"} <= principal.scopes
    plain = await validator.validate(idp.password_token("citizen"))
    assert "patient/*.rs" not in plain.scopes


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _bad_tokens(idp: IdP) -> dict[str, str]:
    good = idp.password_token("citizen")
    head, body, sig = good.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims["realm_access"] = {"roles": ["admin"]}
    tampered = f"{head}.{_b64(json.dumps(claims).encode())}.{sig}"
    none = f"{_b64(json.dumps({'alg': 'none', 'typ': 'JWT'}).encode())}.{body}."
    public_pem = idp.trusted_key.as_pem(private=False)
    hs_head = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": idp.trusted_key.kid}).encode())
    hs_sig = hmac.new(public_pem, f"{hs_head}.{body}".encode(), hashlib.sha256).digest()
    return {
        "expired": idp.sign(idp.claims(exp=1_600_000_000, iat=1_599_999_000)),
        "not yet valid": idp.sign(idp.claims(nbf=4_000_000_000)),
        "wrong issuer": idp.sign(idp.claims(iss="https://evil.example/realms/huimin")),
        "wrong audience": idp.sign(idp.claims(aud=["someone-else"])),
        "tampered": tampered,
        "alg none": none,
        "hs256 with public key": f"{hs_head}.{body}.{_b64(hs_sig)}",
        "unknown kid": idp.sign(idp.claims(), kid="no-such-key"),
        "garbage": "not.a.jwt",
    }


async def test_bad_tokens_are_refused(idp: IdP, validator) -> None:
    assert isinstance(await validator.validate(idp.sign(idp.claims())), Principal)
    for name, token in _bad_tokens(idp).items():
        with pytest.raises(InvalidToken):
            await validator.validate(token)
        assert name


def _app(idp: IdP) -> TestClient:
    settings = build_settings(service_name="authtest", oidc_issuer=idp.issuer)
    router = APIRouter()

    @router.get("/me")
    async def me(principal: CurrentPrincipal) -> dict[str, object]:
        return {"sub": principal.subject, "roles": sorted(principal.roles)}

    @router.get("/clinical", dependencies=[Depends(require_scope("user/*.rs"))])
    async def clinical() -> dict[str, str]:
        return {"ok": "yes"}

    @router.get("/admin", dependencies=[Depends(require_role("admin"))])
    async def admin() -> dict[str, str]:
        return {"ok": "yes"}

    app = create_app(
        settings, title="authtest", routers=[router], lifespan_hooks=[auth_lifespan(settings)]
    )
    return TestClient(app)


def test_http_401_403_follow_rfc_6750(idp: IdP) -> None:
    with _app(idp) as client:
        missing = client.get("/me")
        assert missing.status_code == 401
        assert missing.headers["www-authenticate"] == 'Bearer realm="huimin"'
        assert missing.headers["content-type"].startswith("application/problem+json")
        for name, token in _bad_tokens(idp).items():
            r = client.get("/me", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 401, name
            assert 'error="invalid_token"' in r.headers["www-authenticate"], name
        citizen = {"Authorization": f"Bearer {idp.password_token('citizen')}"}
        assert client.get("/me", headers=citizen).json()["roles"]
        lacking = client.get("/clinical", headers=citizen)
        assert lacking.status_code == 403
        assert 'error="insufficient_scope"' in lacking.headers["www-authenticate"]
        assert client.get("/admin", headers=citizen).status_code == 403
        doctor = idp.password_token("doctor", scope="openid user/*.rs")
        assert (
            client.get("/clinical", headers={"Authorization": f"Bearer {doctor}"}).status_code
            == 200
        )
        admin = {"Authorization": f"Bearer {idp.password_token('admin')}"}
        assert client.get("/admin", headers=admin).status_code == 200
        assert client.get("/me", headers={"Authorization": "Basic abc"}).status_code == 401


async def test_service_tokens_are_cached_and_sent_by_httpx(idp: IdP, validator) -> None:
    credentials = ClientCredentials(idp.issuer, "huimin-registry", idp.secrets["huimin-registry"])
    first = await credentials.token()
    assert await credentials.token() == first  # cached until shortly before expiry
    principal = await validator.validate(first)
    assert principal.is_service
    assert principal.client_id == "huimin-registry"
    async with httpx.AsyncClient(auth=ServiceAuth(credentials)) as client:
        response = await client.get(f"{idp.issuer}/protocol/openid-connect/userinfo")
    assert response.status_code == 200, response.text
    bad = ClientCredentials(idp.issuer, "huimin-registry", "wrong-secret")
    with pytest.raises(ServiceUnavailable):
        await bad.token()


async def test_cached_keys_serve_while_the_issuer_is_down(tmp_path) -> None:
    """A dev issuer of its own is stopped; tokens signed by a cached key still validate."""
    server = DevIssuer(tmp_path / "issuer").start()
    try:
        async with httpx.AsyncClient() as client:
            keys = JWKSCache(server.issuer, client, min_refresh=0)
            assert await keys.refresh(force=True)
            idp = dev_idp(server)
            token = idp.password_token("citizen")
            server.stop()
            fresh = TokenValidator(keys, audience="huimin-api")  # nothing cached but keys
            assert (await fresh.validate(token)).username == "citizen"
            assert not await keys.refresh(force=True)  # down: refresh fails, keys stay
            assert (await fresh.validate(idp.sign(idp.claims()))).subject == "crafted"
            with pytest.raises(InvalidToken):
                await fresh.validate(idp.sign(idp.claims(), kid="rotated-meanwhile"))
    finally:
        server.stop()


@pytest.mark.keycloak
async def test_keycloak_key_rotation_is_picked_up_without_restart(keycloak, keycloak_idp) -> None:
    from shared.auth.admin import admin_client

    async with httpx.AsyncClient() as client:
        keys = JWKSCache(keycloak.issuer, client, min_refresh=0)
        assert await keys.refresh(force=True)
        validator = TokenValidator(keys, audience="huimin-api")
        before = keycloak_idp.password_token("citizen")
        assert (await validator.validate(before)).username == "citizen"
        old_kids = set(keys.kids)
        admin = admin_client(
            keycloak.base_url, "huimin", keycloak.admin_username, keycloak.admin_password
        )
        realm = admin.get_realm("huimin")
        providers = admin.get_components(
            query={"parent": realm["id"], "type": "org.keycloak.keys.KeyProvider"}
        )
        signing = [p for p in providers if p["providerId"] == "rsa-generated"]
        admin.create_component(
            {
                "name": "rotated",
                "providerId": "rsa-generated",
                "parentId": realm["id"],
                "providerType": "org.keycloak.keys.KeyProvider",
                "config": {
                    "priority": ["1000"],
                    "enabled": ["true"],
                    "active": ["true"],
                    "algorithm": ["RS256"],
                    "keySize": ["2048"],
                },
            }
        )
        for old in signing:  # the realm's original signing keys are switched off
            admin.update_component(
                old["id"], {**old, "config": {**old["config"], "enabled": ["false"]}}
            )
        after = keycloak_idp.password_token("citizen")
        kid = json.loads(base64.urlsafe_b64decode(after.split(".")[0] + "==="))["kid"]
        assert kid not in old_kids
        assert (await validator.validate(after)).username == "citizen"
        assert kid in keys.kids
