"""Signing keys: generated once per data directory, private, kept across restarts."""

from __future__ import annotations

import stat

import pytest

from tests.tools.devissuer import OIDC, TOKEN, http, issuer_app, password_grant, verify
from tools.devissuer.keys import KEY_FILE, KeyFileError, load_or_create_keys


def mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_tokens_stay_valid_after_a_restart(tmp_path):
    async with http(issuer_app(tmp_path)) as client:
        body = (await password_grant(client, "citizen")).json()
        kid = (await client.get(f"{OIDC}/certs")).json()["keys"][0]["kid"]
    async with http(issuer_app(tmp_path)) as client:
        assert (await client.get(f"{OIDC}/certs")).json()["keys"][0]["kid"] == kid
        claims = await verify(client, body["access_token"])
        assert claims["preferred_username"] == "citizen"
        # Refresh tokens are stateless too (only their single use is forgotten).
        refreshed = await client.post(
            TOKEN,
            data={
                "grant_type": "refresh_token",
                "client_id": "huimin-test",
                "refresh_token": body["refresh_token"],
            },
        )
        assert refreshed.status_code == 200


def test_key_file_is_private(tmp_path):
    data_dir = tmp_path / "issuer"
    load_or_create_keys(data_dir)
    assert mode(data_dir / KEY_FILE) == 0o600
    assert mode(data_dir) == 0o700
    assert [p.name for p in data_dir.iterdir()] == [KEY_FILE]  # no temporary file left


def test_loose_permissions_are_tightened(tmp_path):
    load_or_create_keys(tmp_path)
    (tmp_path / KEY_FILE).chmod(0o644)
    load_or_create_keys(tmp_path)
    assert mode(tmp_path / KEY_FILE) == 0o600


def test_each_data_directory_has_its_own_keys(tmp_path):
    first = load_or_create_keys(tmp_path / "a")
    second = load_or_create_keys(tmp_path / "b")
    again = load_or_create_keys(tmp_path / "a")
    assert first.kid != second.kid
    assert again.kid == first.kid
    assert first.jwks() == again.jwks()


@pytest.mark.parametrize("content", ["", "{}", '{"signing": {"kty": "RSA"}, "secret": {}}'])
def test_unusable_key_file_is_a_clear_error(tmp_path, content):
    (tmp_path / KEY_FILE).write_text(content)
    with pytest.raises(KeyFileError, match="delete it"):
        load_or_create_keys(tmp_path)
