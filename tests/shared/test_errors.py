"""Problem+json rendering of every kind of error."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, HTTPException
from pydantic import BaseModel

from shared import errors
from shared.errors import (
    PROBLEM_CONTENT_TYPE,
    Conflict,
    HuiminError,
    NotFound,
    install_error_handlers,
    json_pointer,
    problem_type,
)


class VersionConflict(Conflict):
    """The shape the storage errors take."""

    type = problem_type("version-conflict")
    title = "Version Conflict"


class Person(BaseModel):
    name: str
    phones: list[int]


def make_app() -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.get("/people/{person_id}")
    async def read(person_id: int, limit: int = 10) -> dict[str, Any]:
        raise NotFound(f"Person {person_id} does not exist", person_id=person_id)

    @app.post("/people")
    async def create(person: Person) -> dict[str, Any]:
        return person.model_dump()

    @app.put("/people/{person_id}")
    async def update(person_id: int) -> None:
        raise VersionConflict("Expected version 2, found 3", expected=2, actual=3)

    @app.get("/raise/{status}")
    async def raise_status(status: int) -> None:
        cls = errors._CLASS_BY_STATUS[status]
        raise cls()

    @app.get("/http/{status}")
    async def http_error(status: int) -> None:
        raise HTTPException(status, "from HTTPException", headers={"X-Extra": "kept"})

    @app.get("/http-structured")
    async def http_structured() -> None:
        raise HTTPException(400, {"reason": "structured"})

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("db password is hunter2 at /srv/secret.py")

    return app


@pytest.fixture
async def client():
    transport = httpx.ASGITransport(app=make_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM_CONTENT_TYPE
    body: dict[str, Any] = response.json()
    assert {"type", "title", "status", "detail", "instance", "errors"} <= body.keys()
    assert body["status"] == status
    return body


async def test_domain_error_renders_rfc9457_problem(client):
    body = assert_problem(await client.get("/people/42"), 404)
    assert body == {
        "type": "https://huimin.example/problems/not-found",
        "title": "Not Found",
        "status": 404,
        "detail": "Person 42 does not exist",
        "instance": "/people/42",
        "errors": [],
        "person_id": 42,
    }


async def test_subclass_keeps_parent_status_with_its_own_type(client):
    body = assert_problem(await client.put("/people/1"), 409)
    assert body["type"] == problem_type("version-conflict")
    assert body["title"] == "Version Conflict"
    assert (body["expected"], body["actual"]) == (2, 3)


@pytest.mark.parametrize(
    ("status", "slug"),
    [
        (400, "bad-request"),
        (401, "unauthorized"),
        (403, "forbidden"),
        (404, "not-found"),
        (409, "conflict"),
        (410, "gone"),
        (412, "precondition-failed"),
        (413, "payload-too-large"),
        (422, "validation-error"),
        (429, "too-many-requests"),
        (503, "service-unavailable"),
    ],
)
async def test_each_error_class_has_its_status_and_type(client, status, slug):
    body = assert_problem(await client.get(f"/raise/{status}"), status)
    assert body["type"] == problem_type(slug)
    # Without a detail the title stands in, so clients always have a sentence to show.
    assert body["detail"] == body["title"]


async def test_unauthorized_names_the_bearer_scheme(client):
    response = await client.get("/raise/401")
    assert response.headers["www-authenticate"].startswith("Bearer")


def test_extension_members_may_not_replace_standard_ones():
    with pytest.raises(TypeError, match="status"):
        NotFound("x", status=200)


def test_error_keeps_detail_errors_and_extra():
    error = Conflict("taken", errors=[{"field": "email", "message": "in use"}], holder="p1")
    assert str(error) == "taken"
    problem = error.to_problem("/people")
    assert problem["errors"] == [{"field": "email", "message": "in use"}]
    assert problem["holder"] == "p1"
    assert problem["instance"] == "/people"
    assert isinstance(error, HuiminError)


async def test_body_validation_error_points_at_each_field(client):
    response = await client.post("/people", json={"phones": [1, "not a number"]})
    body = assert_problem(response, 422)
    assert body["type"] == problem_type("validation-error")
    pointers = {e["pointer"]: e for e in body["errors"]}
    assert set(pointers) == {"#/name", "#/phones/1"}
    assert pointers["#/name"]["code"] == "missing"
    assert pointers["#/phones/1"]["message"]
    assert "2 invalid fields" in body["detail"]


async def test_query_and_path_errors_name_the_parameter(client):
    body = assert_problem(await client.get("/people/abc?limit=many"), 422)
    fields = {(e["in"], e["field"]) for e in body["errors"]}
    assert fields == {("path", "person_id"), ("query", "limit")}


async def test_malformed_json_is_a_422_for_the_whole_body(client):
    response = await client.post(
        "/people", content=b'{"name": ', headers={"content-type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["pointer"] == "#"
    assert body["errors"][0]["message"].startswith("Invalid JSON at character")


async def test_routing_errors_are_problems(client):
    body = assert_problem(await client.get("/nowhere"), 404)
    assert body["type"] == problem_type("not-found")
    response = await client.delete("/people")
    body = assert_problem(response, 405)
    assert "allow" in response.headers


async def test_http_exception_keeps_detail_and_headers(client):
    response = await client.get("/http/409")
    body = assert_problem(response, 409)
    assert body["detail"] == "from HTTPException"
    assert body["type"] == problem_type("conflict")
    assert response.headers["x-extra"] == "kept"


async def test_http_exception_with_unknown_status_is_about_blank(client):
    body = assert_problem(await client.get("/http/418"), 418)
    assert body["type"] == "about:blank"
    assert body["title"] == "I'm a Teapot"


async def test_structured_http_exception_detail_is_kept_as_data(client):
    body = assert_problem(await client.get("/http-structured"), 400)
    assert body["data"] == {"reason": "structured"}


async def test_unexpected_exception_is_a_500_problem_without_internals(client, caplog):
    with caplog.at_level(logging.ERROR, logger="shared.errors"):
        response = await client.get("/boom")
    body = assert_problem(response, 500)
    assert body["type"] == problem_type("internal-error")
    for leak in ("hunter2", "RuntimeError", "Traceback", "secret.py"):
        assert leak not in response.text
    # The full story goes to the log instead.
    [record] = [r for r in caplog.records if r.name == "shared.errors"]
    assert record.exc_info is not None
    assert "hunter2" in str(record.exc_info[1])


def test_json_pointer_escapes_per_rfc6901():
    assert json_pointer([]) == "#"
    assert json_pointer(["a/b", "m~n", "0"]) == "#/a~1b/m~0n/0"


def test_problem_responses_document_the_media_type():
    documented = errors.problem_responses(404, 409)
    assert set(documented) == {404, 409}
    assert PROBLEM_CONTENT_TYPE in documented[404]["content"]
