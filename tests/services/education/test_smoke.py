"""The education service process: probes, metrics, OpenAPI and problem+json for unknowns."""

from __future__ import annotations

from tests.fixtures.education import Education
from tests.services.education.helpers import PROBLEM


def test_probes_metrics_and_openapi(education: Education) -> None:
    with education.anonymous() as public:
        health = public.get("/healthz")
        assert health.status_code == 200
        assert health.json()["service"] == "education"
        ready = public.get("/readyz")
        assert ready.status_code == 200, ready.text
        assert set(ready.json()["checks"]) == {"store", "identity"}
        metrics = public.get("/metrics").text
        assert 'feed_consumer_cursor{feed="registry"}' in metrics
        paths = public.get("/openapi.json").json()["paths"]
        for path in ("/resources", "/resources/{id}", "/classes/{id}/enrollments", "/me/progress"):
            assert path in paths
        missing = public.get("/nothing-here")
        assert missing.status_code == 404
        assert missing.headers["content-type"].startswith(PROBLEM)
        bad_id = public.get("/resources/not-an-id")
        assert bad_id.status_code == 422
        assert bad_id.json()["errors"][0]["field"] == "id"
