"""Small helpers shared by the registry tests."""

from __future__ import annotations

import time
from typing import Any

import httpx

from tests.fixtures.registry import new_resident

PROBLEM = "application/problem+json"


def register(client: httpx.Client, body: dict[str, Any] | None = None, **extra: Any) -> Any:
    """Register a resident (a fresh one unless `body` is given); asserts 201."""
    r = client.post("/residents", json=body or new_resident(**extra))
    assert r.status_code == 201, r.text
    return r.json()


def pointers(response: httpx.Response) -> set[str]:
    """The JSON pointers (or query fields) a problem names."""
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e.get("pointer") or e.get("field") for e in response.json()["errors"]}


def wait_for(check: Any, timeout: float = 10.0) -> Any:
    """Poll `check()` until it returns something truthy (read audit entries are batched)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.1)
