"""Auth at the edge: public routes, 401 without a valid token, 403 without the role."""

from __future__ import annotations

from pathlib import Path

from tests.fixtures.gateway import ThreadServer, UpstreamState
from tests.gateway.conftest import gateway_client, settings_for

ADMIN_ROUTES = """
[upstreams]
svc = "http://127.0.0.1:1"

[[routes]]
prefix = "/admin"
upstream = "svc"
methods = ["GET"]
roles = ["admin"]

[[routes]]
prefix = "/smart"
upstream = "svc"
methods = ["GET"]
scopes = ["system/*.rs"]
"""


async def test_public_reads_need_no_token(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        tourism = await client.get("/tourism/echo/attractions")
        catalogue = await client.get("/education/resources")
        metadata_head = await client.head("/fhir/metadata")
    assert tourism.status_code == 200
    assert catalogue.status_code == 404  # reached the upstream (which has no such path)
    assert catalogue.headers["content-type"] == "application/json"
    assert metadata_head.status_code in (404, 405)  # the upstream's answer, not a 401


async def test_everything_else_needs_a_token(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        answers = [
            await client.get("/registry/echo/residents"),
            await client.get("/fhir/echo/Patient"),
            await client.get("/education/echo/enrollments"),
            await client.post("/tourism/echo/attractions", json={}),
            await client.post("/education/resources", json={}),
        ]
    for response in answers:
        assert response.status_code == 401, response.request.url
        assert response.headers["www-authenticate"] == 'Bearer realm="huimin"'
        assert response.headers["content-type"] == "application/problem+json"
    assert sum(upstream_state.calls.values()) == 0


async def test_bad_tokens_get_401_invalid_token(idp, upstream: ThreadServer, token):
    bad = {
        "garbage": "not-a-jwt",
        "expired": token(exp=1_000_000),
        "other issuer": token(iss="https://evil.example/realms/huimin"),
        "other audience": token(aud=["someone-else"]),
        "tampered": token()[:-4] + "AAAA",
    }
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        for why, value in bad.items():
            response = await client.get(
                "/registry/echo/x", headers={"Authorization": f"Bearer {value}"}
            )
            assert response.status_code == 401, why
            assert 'error="invalid_token"' in response.headers["www-authenticate"], why
        # A token sent to a public route must be valid too (the services answer so as well).
        public = await client.get("/tourism/echo/x", headers={"Authorization": "Bearer not-a-jwt"})
        basic = await client.get("/registry/echo/x", headers={"Authorization": "Basic eDp5"})
    assert public.status_code == 401
    assert basic.status_code == 401


async def test_the_original_token_is_forwarded(idp, upstream: ThreadServer, token):
    value = token(sub="u-1", realm_access={"roles": ["community-worker"]})
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.get(
            "/registry/echo/residents", headers={"Authorization": f"Bearer {value}"}
        )
    assert response.status_code == 200
    forwarded = [v for k, v in response.json()["headers"] if k == "authorization"]
    assert forwarded == [f"Bearer {value}"]


async def test_required_roles_and_scopes_get_403(
    idp, upstream: ThreadServer, token, tmp_path: Path
):
    routes = tmp_path / "routes.toml"
    routes.write_text(ADMIN_ROUTES)
    settings = settings_for(idp, {"svc": upstream.url}, routes_file=routes)
    async with gateway_client(settings) as (_, client):
        citizen = await client.get("/admin/echo/x", headers={"Authorization": f"Bearer {token()}"})
        admin = await client.get(
            "/admin/echo/x",
            headers={"Authorization": f"Bearer {token(realm_access={'roles': ['admin']})}"},
        )
        no_scope = await client.get(
            "/smart/echo/x", headers={"Authorization": f"Bearer {token(scope='openid')}"}
        )
        scoped = await client.get(
            "/smart/echo/x",
            headers={"Authorization": f"Bearer {token(scope='openid system/*.rs')}"},
        )
    assert citizen.status_code == 403
    assert citizen.headers["content-type"] == "application/problem+json"
    assert 'error="insufficient_scope"' in citizen.headers["www-authenticate"]
    assert admin.status_code == 200
    assert no_scope.status_code == 403
    assert scoped.status_code == 200
