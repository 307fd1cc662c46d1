"""The tourism service process: probes, OpenAPI and problem+json for unknowns."""

from __future__ import annotations

from tests.fixtures.tourism import Tourism
from tests.services.tourism.helpers import PROBLEM


def test_probes_and_openapi(tourism: Tourism) -> None:
    with tourism.anonymous() as public:
        health = public.get("/healthz")
        assert health.status_code == 200
        assert health.json()["service"] == "tourism"
        ready = public.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"store", "identity"}
        paths = public.get("/openapi.json").json()["paths"]
        for path in ("/places", "/places/{id}", "/places/import", "/events", "/events/{id}"):
            assert path in paths
        missing = public.get("/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith(PROBLEM)
        bad_id = public.get("/places/not-an-id")
        assert bad_id.status_code == 422
        assert bad_id.json()["errors"][0]["field"] == "id"
