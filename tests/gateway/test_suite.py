"""The gateway in front of the real services (health, registry, education as processes)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fixtures.identity import IdP
from tests.gateway.test_openapi import refs
from tools._server import free_port
from tools.service_server import ServiceServer


@dataclass
class Suite:
    gateway: ServiceServer
    idp: IdP
    services: dict[str, ServiceServer]

    def client(self, user: str | None = None, scope: str | None = None) -> httpx.Client:
        headers = {}
        if user is not None:
            headers["Authorization"] = f"Bearer {self.idp.password_token(user, scope=scope)}"
        return httpx.Client(base_url=self.gateway.url, headers=headers, timeout=30)


@pytest.fixture(scope="module")
def suite(idp: IdP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Suite]:
    tmp = tmp_path_factory.mktemp("suite")
    gateway_port = free_port()
    # Demo data: the dev issuer's `citizen` is resident R-00000001 with a linked Patient.
    common = {"HUIMIN_OIDC_ISSUER": idp.issuer, "HUIMIN_DEMO_DATA": "true"}
    started: list[ServiceServer] = []
    try:
        for name, extra in (
            ("health", {"HUIMIN_FHIR_BASE_URL": f"http://127.0.0.1:{gateway_port}/fhir"}),
            ("registry", {}),
            ("education", {}),
        ):
            env = {**common, "HUIMIN_STORE_URL": f"sqlite:///{tmp}/{name}.db", **extra}
            started.append(
                ServiceServer(f"services.{name}", tmp / name, env, start_timeout=120).start()
            )
        urls = {s.module.removeprefix("services."): s.url for s in started}
        urls["tourism"] = f"http://127.0.0.1:{free_port()}"  # not running: down
        gateway = ServiceServer(
            "gateway",
            tmp / "gateway",
            {**common, "HUIMIN_UPSTREAM_URLS": json.dumps(urls), "HUIMIN_RETRIES": "0"},
        )
        gateway._port = gateway_port  # the port the health service names in its links
        started.append(gateway.start())
        services = {s.module.removeprefix("services."): s for s in started[:-1]}
        yield Suite(gateway, idp, services)
    finally:
        for server in reversed(started):
            server.stop()


def test_public_and_authenticated_routes_of_the_real_services(suite: Suite):
    with suite.client() as anonymous:
        catalogue = anonymous.get("/education/resources")
        capability = anonymous.get("/fhir/metadata")
        residents = anonymous.get("/registry/residents")
        patients = anonymous.get("/fhir/Patient")
        tourism = anonymous.get("/tourism/attractions")
    assert catalogue.status_code == 200, catalogue.text
    assert capability.status_code == 200
    assert capability.json()["resourceType"] == "CapabilityStatement"
    assert capability.json()["implementation"]["url"] == suite.gateway.url + "/fhir"
    assert residents.status_code == 401
    assert patients.status_code == 401
    assert tourism.status_code == 502  # not running
    with suite.client("doctor", scope="user/*.cruds") as doctor:
        search = doctor.get("/fhir/Patient", params={"_count": "1"})
    assert search.status_code == 200
    assert search.json()["link"][0]["url"].startswith(suite.gateway.url + "/fhir/Patient")


def test_malformed_json_gets_the_services_own_4xx(suite: Suite):
    with suite.client("worker") as worker:
        response = worker.post(
            "/registry/residents",
            content=b'{"name": ',
            headers={"Content-Type": "application/json"},
        )
    assert response.status_code in (400, 422), response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["instance"] == "/residents"  # the registry's own problem


def test_merged_openapi_of_the_real_services(suite: Suite):
    with suite.client() as anonymous:
        document: dict[str, Any] = anonymous.get("/openapi.json").json()
    assert document["x-huimin-unavailable"] == ["tourism"]
    paths = document["paths"]
    assert "/education/resources" in paths
    assert any(path.startswith("/registry/residents") for path in paths)
    assert any(path.startswith("/fhir/") for path in paths)
    for ref in refs(document):
        kind, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][kind], ref


def test_me_of_a_real_citizen_then_with_education_stopped(suite: Suite):
    """Last in the module: it stops the education service."""
    with suite.client("citizen", scope="patient/*.rs") as citizen:
        whole = citizen.get("/me")
        suite.services["education"].stop()
        partial = citizen.get("/me")
    assert whole.status_code == 200, whole.text
    body = whole.json()
    assert body["complete"] is True, body
    assert body["registry"]["record"]["id"] == body["resident_id"]
    assert body["health"]["patient"]["resourceType"] == "Patient"
    assert isinstance(body["education"]["enrollments"], list | dict)
    later = partial.json()
    assert partial.status_code == 200
    assert later["complete"] is False
    assert later["education"]["status"] == "unavailable"
    assert later["registry"]["status"] == "ok"
    assert later["health"]["status"] == "ok"
