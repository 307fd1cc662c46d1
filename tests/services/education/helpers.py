"""Small helpers shared by the education tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.education import new_resource

PROBLEM = "application/problem+json"


def create(client: httpx.Client, **changes: Any) -> Any:
    """Create a draft (a fresh valid one with `changes`); asserts 201."""
    r = client.post("/resources", json=new_resource(**changes))
    assert r.status_code == 201, r.text
    return r.json()


def publish(client: httpx.Client, resource: dict[str, Any]) -> Any:
    """Publish a draft; asserts 200."""
    r = client.post(f"/resources/{resource['id']}/publish")
    assert r.status_code == 200, r.text
    assert r.json()["state"] == "published"
    return r.json()


def published(client: httpx.Client, **changes: Any) -> Any:
    """A new published resource."""
    return publish(client, create(client, **changes))


def pointers(response: httpx.Response) -> set[str]:
    """The JSON pointers (or query fields) a problem names."""
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e.get("pointer") or e.get("field") for e in response.json()["errors"]}
