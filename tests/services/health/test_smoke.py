"""The health server starts on each store and answers a create, a read and a search."""

from __future__ import annotations

from tests.fixtures.health import Fhir, new_patient


def test_create_read_search(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        created = c.post("/Patient", json=new_patient())
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        assert created.headers["etag"] == 'W/"1"'
        read = c.get(f"/Patient/{pid}")
        assert read.status_code == 200
        assert read.json()["meta"]["versionId"] == "1"
        family = read.json()["name"][0]["given"][0]
        found = c.get("/Patient", params={"given": family})
        assert [e["resource"]["id"] for e in found.json()["entry"]] == [pid]
