"""Small helpers shared by the tourism tests."""

from __future__ import annotations

from typing import Any

import httpx

from tests.fixtures.tourism import new_place

PROBLEM = "application/problem+json"


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


def create(
    client: httpx.Client, at: tuple[float, float] = (39.9163, 116.3972), **changes: Any
) -> Any:
    """Create a place (a fresh valid one at `at` with `changes`); asserts 201."""
    return ok(client.post("/places", json=new_place(at, **changes)), 201)


def pointers(response: httpx.Response) -> set[str]:
    """The JSON pointers (or query fields) a problem names."""
    assert response.headers["content-type"].startswith(PROBLEM), response.text
    return {e.get("pointer") or e.get("field") for e in response.json()["errors"]}


def ids(page: dict[str, Any]) -> list[str]:
    """The ids of a page's items, in order."""
    return [item["id"] for item in page["items"]]
