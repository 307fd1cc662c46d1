"""Principal: Keycloak-shaped claims to the caller the services reason about."""

from __future__ import annotations

from shared.auth import InsufficientScope, InvalidToken, Principal


def test_claims_of_a_person() -> None:
    p = Principal.from_claims(
        {
            "sub": "u-1",
            "preferred_username": "citizen",
            "azp": "huimin-mobile",
            "realm_access": {"roles": ["citizen", "default-roles-huimin"]},
            "scope": "openid patient/*.rs launch/patient",
            "resident_id": "R-0000001",
            "exp": 1_900_000_000,
        }
    )
    assert p.subject == "u-1"
    assert p.username == "citizen"
    assert p.client_id == "huimin-mobile"
    assert p.has_role("citizen")
    assert not p.has_role("clinician")
    assert not p.is_service
    assert p.scopes == {"openid", "patient/*.rs", "launch/patient"}
    assert p.resident_id == "R-0000001"
    assert p.jurisdiction is None
    assert p.expires_at == 1_900_000_000


def test_claims_of_a_service_account_and_odd_shapes() -> None:
    p = Principal.from_claims(
        {
            "sub": "s",
            "azp": "huimin-registry",
            "realm_access": {"roles": ["service", 7]},
            "jurisdiction": ["110101/002"],
            "scope": 5,
        }
    )
    assert p.is_service
    assert p.roles == {"service"}
    assert p.jurisdiction == "110101/002"  # a one-element list, as Keycloak may render it
    assert p.scopes == frozenset()
    empty = Principal.from_claims({})
    assert empty.roles == frozenset()
    assert empty.username is None


def test_bearer_challenges_follow_rfc_6750() -> None:
    missing = InvalidToken("authentication required", missing=True)
    assert missing.status == 401
    assert missing.headers["WWW-Authenticate"] == 'Bearer realm="huimin"'
    bad = InvalidToken('token "expired"')
    assert 'error="invalid_token"' in bad.headers["WWW-Authenticate"]
    assert "token 'expired'" in bad.headers["WWW-Authenticate"]  # quotes cannot break out
    scope = InsufficientScope("needs it", scope="user/*.cruds")
    assert scope.status == 403
    assert scope.headers["WWW-Authenticate"] == (
        'Bearer realm="huimin", error="insufficient_scope", scope="user/*.cruds"'
    )
