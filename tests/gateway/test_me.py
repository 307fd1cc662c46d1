"""`GET /me`: the resident-360 view, in parallel, partial when a service is down or slow."""

from __future__ import annotations

import time

from tests.fixtures.gateway import ThreadServer, UpstreamState
from tests.gateway.conftest import SERVICES, closed_url, gateway_client, settings_for


async def test_me_assembles_every_section_with_the_callers_token(
    idp, upstream: ThreadServer, token
):
    value = token(sub="c-1", resident_id="R-77")
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.get("/me", headers={"Authorization": f"Bearer {value}"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["resident_id"] == "R-77"
    assert body["complete"] is True
    assert body["registry"]["status"] == "ok"
    assert body["registry"]["record"] == {"id": "R-77", "authorization": f"Bearer {value}"}
    assert body["registry"]["household"]["members"] == ["R-77"]
    health = body["health"]
    assert health["patient"]["identifier"] == ["https://huimin.example/sid/resident-id|R-77"]
    assert health["conditions"][0]["query"]["patient"] == "Patient/p-1"
    assert health["observations"][0]["query"]["_sort"] == "-date"
    assert health["observations"][0]["query"]["_count"] == "5"
    assert health["allergies"][0]["resourceType"] == "AllergyIntolerance"
    assert health["immunizations"][0]["resourceType"] == "Immunization"
    assert body["education"]["enrollments"][0]["authorization"] == f"Bearer {value}"
    assert "ratelimit-remaining" in response.headers


async def test_me_marks_a_stopped_service_and_returns_the_rest(idp, upstream: ThreadServer, token):
    urls = {name: upstream.url for name in SERVICES} | {"education": closed_url()}
    async with gateway_client(settings_for(idp, urls)) as (_, client):
        response = await client.get(
            "/me", headers={"Authorization": f"Bearer {token(resident_id='R-1')}"}
        )
    body = response.json()
    assert response.status_code == 200
    assert body["complete"] is False
    assert body["education"]["status"] == "unavailable"
    assert body["registry"]["status"] == "ok"
    assert body["health"]["status"] == "ok"


async def test_me_answers_by_its_deadline(
    idp, upstream: ThreadServer, upstream_state: UpstreamState, token
):
    upstream_state.delay = 3.0
    settings = settings_for(idp, upstream.url, me_deadline_seconds=0.3)
    async with gateway_client(settings) as (_, client):
        started = time.monotonic()
        response = await client.get(
            "/me", headers={"Authorization": f"Bearer {token(resident_id='R-1')}"}
        )
        elapsed = time.monotonic() - started
    body = response.json()
    assert elapsed < 2.5
    assert body["complete"] is False
    assert {body[s]["status"] for s in ("registry", "health", "education")} == {"timeout"}


async def test_me_needs_a_resident(idp, upstream: ThreadServer, token):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        anonymous = await client.get("/me")
        worker = await client.get("/me", headers={"Authorization": f"Bearer {token()}"})
    assert anonymous.status_code == 401
    assert worker.status_code == 403
    assert worker.headers["content-type"] == "application/problem+json"
