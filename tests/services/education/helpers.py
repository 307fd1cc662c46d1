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


def ok(response: httpx.Response, status: int = 200) -> Any:
    """The JSON body of a response that must have `status`."""
    assert response.status_code == status, response.text
    return response.json()


def new_class(admin: httpx.Client, teacher: httpx.Client, **changes: Any) -> Any:
    """An organisation and session (by an admin), a course and class (by `teacher`)."""
    org = ok(admin.post("/orgs", json={"name": {"zh": "测试学校"}, "type": "school"}), 201)
    session = ok(
        admin.post(
            "/sessions",
            json={
                "title": "2026 秋",
                "type": "term",
                "start_date": "2026-09-01",
                "end_date": "2027-01-15",
            },
        ),
        201,
    )
    course = ok(
        teacher.post(
            "/courses",
            json={"title": {"en": "Test course"}, "course_code": "T-1", "org": org["id"]},
        ),
        201,
    )
    body = {
        "title": "Evening class",
        "class_code": "T-1-A",
        "course": course["id"],
        "sessions": [session["id"]],
        "self_enroll": True,
        **changes,
    }
    return ok(teacher.post("/classes", json=body), 201)
