"""`/openapi.json` merges the services' documents under their prefixes; `/docs` shows it."""

from __future__ import annotations

from typing import Any

from tests.fixtures.gateway import ThreadServer
from tests.gateway.conftest import SERVICES, closed_url, gateway_client, settings_for


def refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "$ref"] + [
            r for v in node.values() for r in refs(v)
        ]
    if isinstance(node, list):
        return [r for v in node for r in refs(v)]
    return []


async def test_services_documents_are_merged_under_their_prefixes(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.get("/openapi.json")
        docs = await client.get("/docs")
    assert response.status_code == 200
    document = response.json()
    paths = document["paths"]
    for prefix in ("/fhir", "/registry", "/education", "/tourism"):
        assert f"{prefix}/items/{{item_id}}" in paths
    assert "/healthz" in paths  # the gateway's own
    assert "/tourism/healthz" not in paths  # the services' probes are not the public API
    item = paths["/registry/items/{item_id}"]["get"]
    assert item["tags"] == ["registry"]
    assert item["operationId"].startswith("registry_")
    # Component names carry the service, and every reference resolves.
    schemas = document["components"]["schemas"]
    assert "tourism_HTTPValidationError" in schemas
    for ref in refs(document):
        kind, name = ref.removeprefix("#/components/").split("/")
        assert name in document["components"][kind], ref
    fhir = next(t for t in document["tags"] if t["name"] == "health")
    assert fhir["externalDocs"]["url"] == "/fhir/metadata"
    assert "x-huimin-unavailable" not in document
    assert docs.status_code == 200
    assert "/openapi.json" in docs.text


async def test_a_service_that_is_down_is_named_and_the_rest_still_served(
    idp, upstream: ThreadServer
):
    urls = {name: upstream.url for name in SERVICES} | {"education": closed_url()}
    async with gateway_client(settings_for(idp, urls, retries=0)) as (_, client):
        document = (await client.get("/openapi.json")).json()
    assert document["x-huimin-unavailable"] == ["education"]
    assert "/tourism/items/{item_id}" in document["paths"]
    assert not any(path.startswith("/education/") for path in document["paths"])
