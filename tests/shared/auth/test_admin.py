"""Identity administration against a real Keycloak: realm sync, citizen accounts, and
validation with Keycloak stopped."""

from __future__ import annotations

import uuid

import httpx
import pytest

from shared.auth import JWKSCache, TokenValidator
from shared.auth.admin import admin_client, ensure_citizen_account, load_realm, sync_realm
from shared.cli import REALM_FILE, main
from shared.errors import Conflict
from tools.keycloak import Keycloak, realm_representation

pytestmark = pytest.mark.keycloak


def _admin(keycloak: Keycloak):
    return admin_client(
        keycloak.base_url, "huimin", keycloak.admin_username, keycloak.admin_password
    )


async def test_sync_twice_changes_nothing_the_second_time(keycloak: Keycloak) -> None:
    admin = _admin(keycloak)
    # The dev realm (the realm file plus the dev-only test client), as this Keycloak runs it.
    realm = realm_representation(dev=True)
    assert load_realm(REALM_FILE)["clients"] == realm["clients"][: len(realm["clients"]) - 1]
    # Drift: a role's description edited, a client scope deleted (which also takes it off
    # every client), a client's redirect URIs changed by hand.
    auditor = admin.get_realm_role("auditor")
    admin.update_realm_role("auditor", {**auditor, "description": "edited by hand"})
    scope = next(s for s in admin.get_client_scopes() if s["name"] == "user/*.rs")
    admin.delete_client_scope(scope["id"])
    mobile = next(c for c in admin.get_clients() if c["clientId"] == "huimin-mobile")
    admin.update_client(mobile["id"], {**mobile, "redirectUris": ["https://evil.example/*"]})
    first = await sync_realm(admin, realm)
    assert "updated realm role auditor" in first.changes
    assert "created client scope user/*.rs" in first.changes
    assert "updated client huimin-mobile" in first.changes
    assert "added optional scope user/*.rs to client huimin-console" in first.changes
    assert "added optional scope user/*.rs to client huimin-test" in first.changes
    assert "mapped roles auditor, clinician to scope user/*.rs" in first.changes
    second = await sync_realm(admin, realm)
    assert second.changes == []
    mobile = next(c for c in admin.get_clients() if c["clientId"] == "huimin-mobile")
    wanted = next(c for c in realm["clients"] if c["clientId"] == "huimin-mobile")
    assert sorted(mobile["redirectUris"]) == sorted(wanted["redirectUris"])


def test_cli_sync_reports_nothing_to_change(keycloak: Keycloak, monkeypatch, capsys) -> None:
    monkeypatch.setenv("HUIMIN_KEYCLOAK_ADMIN_PASSWORD", keycloak.admin_password)
    code = main(
        ["identity", "sync", "--issuer", keycloak.issuer, "--admin-user", keycloak.admin_username]
    )
    assert code == 0
    code = main(
        ["identity", "sync", "--issuer", keycloak.issuer, "--admin-user", keycloak.admin_username]
    )
    assert code == 0
    assert capsys.readouterr().out.strip().endswith("nothing to change")


async def test_citizen_account_is_created_once_and_linked(keycloak: Keycloak) -> None:
    admin = _admin(keycloak)
    rid = f"R-{uuid.uuid4().int % 10**8:08d}"  # the realm's user profile: R- and 8 digits
    username = f"resident-{rid.lower()}"
    account = await ensure_citizen_account(
        admin, resident_id=rid, username=username, first_name="Wei", last_name="Zhang"
    )
    assert account.created
    again = await ensure_citizen_account(admin, resident_id=rid, username="other-name")
    assert again.user_id == account.user_id
    assert not again.created
    user = admin.get_user(account.user_id)
    assert user["attributes"]["resident_id"] == [rid]
    assert "UPDATE_PASSWORD" in user["requiredActions"]
    roles = {r["name"] for r in admin.get_realm_roles_of_user(account.user_id)}
    assert "citizen" in roles
    # An existing account without a resident is linked, one with another resident refused.
    plain = admin.create_user({"username": f"plain-{rid.lower()}", "enabled": True})
    rid2 = f"R-{(int(rid[2:]) + 1) % 10**8:08d}"
    linked = await ensure_citizen_account(admin, resident_id=rid2, username=f"plain-{rid.lower()}")
    assert linked.user_id == plain
    assert not linked.created
    with pytest.raises(Conflict):
        await ensure_citizen_account(
            admin, resident_id=f"R-{(int(rid[2:]) + 2) % 10**8:08d}", username=username
        )


async def test_tokens_validate_with_keycloak_stopped(tmp_path) -> None:
    """A Keycloak of its own: keys cached while it runs keep validating once it stops."""
    server = Keycloak(tmp_path / "kc").start()
    try:
        async with httpx.AsyncClient() as client:
            response = await client.post(
                server.token_url,
                timeout=30,
                data={
                    "grant_type": "password",
                    "client_id": "huimin-test",
                    "username": "doctor",
                    "password": "huimin-dev",
                },
            )
            token = response.json()["access_token"]
        async with httpx.AsyncClient() as client:
            keys = JWKSCache(server.issuer, client, min_refresh=0)
            assert await keys.refresh(force=True)
            server.stop()
            validator = TokenValidator(keys, audience="huimin-api")
            principal = await validator.validate(token)
            assert principal.username == "doctor"
            assert not await keys.refresh(force=True)  # Keycloak is really gone
    finally:
        server.stop()
