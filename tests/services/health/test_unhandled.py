"""An unexpected error on the FHIR server is still an OperationOutcome (500, no internals)."""

from __future__ import annotations

from pathlib import Path

import httpx

from services.health.app import create_health_app
from services.health.settings import HealthSettings


async def test_unexpected_error_is_an_operation_outcome(tmp_path: Path) -> None:
    settings = HealthSettings(env="test", store_url=f"sqlite:///{tmp_path}/h.db")
    app = create_health_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("secret internals")

    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        response = await client.get("/boom")
    assert response.status_code == 500
    assert response.headers["content-type"].startswith("application/fhir+json")
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["code"] == "exception"
    assert "secret" not in response.text
