"""Create, read, update, delete and JSON Patch, driven by fhirpy (a real FHIR client) and, for
what a client library does not expose (status lines, headers, Prefer, If-Match), by httpx."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import pytest
from fhirpy import AsyncFHIRClient, SyncFHIRClient
from fhirpy.base.exceptions import AuthorizationError, ResourceNotFound

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    FHIR_JSON,
    assert_outcome,
    fhirpy_client,
    probe_identifier,
    stored,
    unique,
)

PATCH_JSON = {"Content-Type": "application/json-patch+json"}


def _instant(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def _check_written(r: httpx.Response, fhir: Fhir, status: int, version: int) -> dict[str, Any]:
    """A create/update answer: status, ETag, Location, Last-Modified, a server-stamped body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = r.json()
    assert body["meta"]["versionId"] == str(version)
    assert r.headers["etag"] == f'W/"{version}"'
    assert r.headers["location"] == f"{fhir.base}/Patient/{body['id']}/_history/{version}"
    modified = parsedate_to_datetime(r.headers["last-modified"])
    updated = _instant(body["meta"]["lastUpdated"])
    assert abs(modified - updated) < timedelta(seconds=1)  # HTTP dates have whole seconds
    assert abs(datetime.now(UTC) - updated) < timedelta(minutes=5)
    return body


def test_fhirpy_create_read_update(fhir: Fhir) -> None:
    client = fhirpy_client(fhir)
    patient = client.resource("Patient", **new_patient())
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    read = client.reference("Patient", patient.id).to_resource()
    assert read["name"] == patient["name"]
    assert read["meta"]["versionId"] == "1"

    read["gender"] = "male"
    read.save()
    assert read["meta"]["versionId"] == "2"
    again = client.get("Patient", patient.id)
    assert again["gender"] == "male"
    assert again["meta"]["versionId"] == "2"
    found = client.resources("Patient").search(_id=patient.id).fetch()
    assert [p.id for p in found] == [patient.id]


def test_fhirpy_refresh_sees_another_clients_update(fhir: Fhir) -> None:
    client = fhirpy_client(fhir)
    patient = client.resource("Patient", **new_patient())
    patient.save()
    with fhir.client("doctor") as c:
        current = c.get(f"/Patient/{patient.id}").json()
        assert (
            c.put(f"/Patient/{patient.id}", json={**current, "gender": "male"}).status_code == 200
        )
    patient.refresh()  # fhirpy sends If-None-Match with the version it holds
    assert patient["gender"] == "male"
    assert patient["meta"]["versionId"] == "2"


async def test_async_fhirpy_client(fhir: Fhir) -> None:
    client = AsyncFHIRClient(fhir.base, authorization=f"Bearer {fhir.token('doctor')}")
    patient = client.resource("Patient", **new_patient())
    await patient.save()
    assert patient["meta"]["versionId"] == "1"
    found = await client.resources("Patient").search(_id=patient.id).fetch_all()
    assert [p.id for p in found] == [patient.id]
    patient["gender"] = "unknown"
    await patient.save()
    assert (await client.get("Patient", patient.id))["meta"]["versionId"] == "2"
    await client.delete("Patient", patient.id)
    with pytest.raises(ResourceNotFound):
        await client.get("Patient", patient.id)


def test_create_answers_201_with_location_etag_and_last_modified(fhir: Fhir) -> None:
    sent = new_patient(id="client-chosen-id-is-ignored", meta={"versionId": "7"})
    with fhir.client("doctor") as c:
        r = c.post("/Patient", json=sent, headers={"Content-Type": FHIR_JSON})
        body = _check_written(r, fhir, 201, 1)
        assert body["id"] != "client-chosen-id-is-ignored"  # create assigns the id
        assert body["name"] == sent["name"]
        assert body["birthDate"] == "1990-01-01"

        read = c.get(f"/Patient/{body['id']}")
        assert read.status_code == 200
        assert read.headers["etag"] == 'W/"1"'
        assert read.headers["content-type"].startswith(FHIR_JSON)
        assert parsedate_to_datetime(read.headers["last-modified"]) == parsedate_to_datetime(
            r.headers["last-modified"]
        )
        assert read.json() == body


def test_update_increments_the_version(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        created = c.post("/Patient", json=new_patient()).json()
        pid = created["id"]
        for version in (2, 3):
            body = {**created, "birthDate": f"198{version}-02-03"}
            r = c.put(f"/Patient/{pid}", json=body)
            updated = _check_written(r, fhir, 200, version)
            assert updated["birthDate"] == f"198{version}-02-03"
            assert _instant(updated["meta"]["lastUpdated"]) >= _instant(
                created["meta"]["lastUpdated"]
            )
        read = c.get(f"/Patient/{pid}")
        assert read.headers["etag"] == 'W/"3"'
        assert read.json()["birthDate"] == "1983-02-03"


def test_update_with_a_new_client_id_creates(fhir: Fhir) -> None:
    pid = f"client-{unique()[:20]}"
    with fhir.client("doctor") as c:
        r = c.put(f"/Patient/{pid}", json=new_patient(id=pid))
        body = _check_written(r, fhir, 201, 1)
        assert body["id"] == pid
        assert c.get(f"/Patient/{pid}").json()["meta"]["versionId"] == "1"
    # fhirpy saves a resource that has an id with PUT: the same update-as-create.
    client = fhirpy_client(fhir)
    other = client.resource("Patient", **new_patient(id=f"fhirpy-{unique()[:20]}"))
    other.save()
    assert other["meta"]["versionId"] == "1"
    assert client.get("Patient", other.id)["name"] == other["name"]


def test_update_with_an_id_other_than_the_url_is_refused(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        pid = c.post("/Patient", json=new_patient()).json()["id"]
        body = new_patient(id="someone-else", identifier=[probe_identifier(value)])
        assert_outcome(c.put(f"/Patient/{pid}", json=body), 400, expression="id")
        assert c.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'
        assert stored(c, "Patient", value) == []


def test_delete_then_gone_with_history(fhir: Fhir) -> None:
    client = fhirpy_client(fhir)
    patient = client.resource("Patient", **new_patient())
    patient.save()
    pid = patient.id
    client.delete("Patient", pid)

    with pytest.raises(ResourceNotFound):
        client.get("Patient", pid)
    with fhir.client("doctor") as c:
        assert_outcome(c.get(f"/Patient/{pid}"), 410, code="deleted")
        old = c.get(f"/Patient/{pid}/_history/1")
        assert old.status_code == 200
        assert old.json()["id"] == pid
        assert old.headers["etag"] == 'W/"1"'
        # the deletion is version 2: a vread of it is 410, the history lists it first
        assert_outcome(c.get(f"/Patient/{pid}/_history/2"), 410)
        history = c.get(f"/Patient/{pid}/_history").json()
        assert history["type"] == "history"
        first, second = history["entry"]
        assert first["request"] == {"method": "DELETE", "url": f"Patient/{pid}"}
        assert "resource" not in first
        assert first["response"]["etag"] == 'W/"2"'
        assert second["resource"]["meta"]["versionId"] == "1"
        # deleting again is not an error (idempotent), and no new version is made
        again = c.delete(f"/Patient/{pid}")
        assert again.status_code == 204
        assert again.content == b""
        assert len(c.get(f"/Patient/{pid}/_history").json()["entry"]) == 2
        assert c.get("/Patient", params={"_id": pid}).json().get("entry", []) == []


def test_delete_answers_204_with_the_etag_of_the_deletion(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid = c.post("/Patient", json=new_patient()).json()["id"]
        r = c.delete(f"/Patient/{pid}")
        assert r.status_code == 204
        assert r.content == b""
        assert r.headers["etag"] == 'W/"2"'
        # recreating a deleted resource by update makes its next version
        revived = c.put(f"/Patient/{pid}", json=new_patient(id=pid))
        assert revived.status_code in (200, 201), revived.text
        assert revived.headers["etag"] == 'W/"3"'
        assert c.get(f"/Patient/{pid}").status_code == 200


def test_missing_resources_are_404(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        assert_outcome(c.get(f"/Patient/{unique()}"), 404, code="not-found")
        assert_outcome(c.get(f"/Patient/{unique()}/_history/1"), 404)
        assert_outcome(c.delete(f"/Patient/{unique()}"), 404)
        assert_outcome(c.get("/Spaceship/1"), 404, code="not-supported")
        assert_outcome(c.get("/Patient/not_a valid id!"), 400)


def test_json_patch(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid = c.post("/Patient", json=new_patient()).json()["id"]
        ops = [
            {"op": "test", "path": "/gender", "value": "female"},
            {"op": "replace", "path": "/gender", "value": "other"},
            {"op": "add", "path": "/telecom", "value": [{"system": "phone", "value": "123"}]},
            {"op": "remove", "path": "/birthDate"},
        ]
        r = c.patch(f"/Patient/{pid}", json=ops, headers=PATCH_JSON)
        body = _check_written(r, fhir, 200, 2)
        assert body["gender"] == "other"
        assert body["telecom"][0]["value"] == "123"
        assert "birthDate" not in body
        assert c.get(f"/Patient/{pid}").json() == body


def test_json_patch_failing_test_op_is_422_and_changes_nothing(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid = c.post("/Patient", json=new_patient()).json()["id"]
        ops = [
            {"op": "replace", "path": "/gender", "value": "male"},
            {"op": "test", "path": "/birthDate", "value": "2000-01-01"},
        ]
        assert_outcome(c.patch(f"/Patient/{pid}", json=ops, headers=PATCH_JSON), 422)
        read = c.get(f"/Patient/{pid}")
        assert read.headers["etag"] == 'W/"1"'
        assert read.json()["gender"] == "female"


def test_json_patch_may_not_change_id_or_type_or_break_validity(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid = c.post("/Patient", json=new_patient()).json()["id"]
        for ops in (
            [{"op": "replace", "path": "/id", "value": "another-id"}],
            [{"op": "replace", "path": "/resourceType", "value": "Practitioner"}],
            [{"op": "replace", "path": "/gender", "value": "x"}],
        ):
            assert_outcome(c.patch(f"/Patient/{pid}", json=ops, headers=PATCH_JSON), 422)
        assert_outcome(c.get("/Patient/another-id"), 404)
        for bad in ({"op": "replace"}, [{"op": "jump", "path": "/gender"}], []):
            assert_outcome(c.patch(f"/Patient/{pid}", json=bad, headers=PATCH_JSON), 400)
        assert_outcome(
            c.patch(f"/Patient/{pid}", content=b"[{", headers=PATCH_JSON), 400, code="invalid"
        )
        assert c.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'


def test_if_match_mismatch_is_412(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        created = c.post("/Patient", json=new_patient()).json()
        pid = created["id"]
        stale = {"If-Match": 'W/"5"'}
        changed = {**created, "gender": "male"}
        assert_outcome(c.put(f"/Patient/{pid}", json=changed, headers=stale), 412)
        ops = [{"op": "replace", "path": "/gender", "value": "male"}]
        assert_outcome(c.patch(f"/Patient/{pid}", json=ops, headers={**PATCH_JSON, **stale}), 412)
        assert_outcome(c.delete(f"/Patient/{pid}", headers=stale), 412)
        read = c.get(f"/Patient/{pid}")
        assert read.headers["etag"] == 'W/"1"'
        assert read.json()["gender"] == "female"

        ok = c.put(f"/Patient/{pid}", json=changed, headers={"If-Match": read.headers["etag"]})
        assert ok.status_code == 200
        assert ok.headers["etag"] == 'W/"2"'
        # the ETag of version 1 is now stale: a lost update is refused
        assert_outcome(c.put(f"/Patient/{pid}", json=created, headers={"If-Match": 'W/"1"'}), 412)
        assert_outcome(c.put(f"/Patient/{pid}", json=created, headers={"If-Match": "two"}), 400)
        assert c.delete(f"/Patient/{pid}", headers={"If-Match": 'W/"2"'}).status_code == 204


@pytest.mark.parametrize("method", ["create", "update"])
def test_prefer_return(fhir: Fhir, method: str) -> None:
    with fhir.client("doctor") as c:

        def write(prefer: str) -> Any:
            headers = {"Prefer": prefer}
            if method == "create":
                return c.post("/Patient", json=new_patient(), headers=headers)
            pid = c.post("/Patient", json=new_patient()).json()["id"]
            return c.put(f"/Patient/{pid}", json=new_patient(id=pid), headers=headers)

        status, version = (201, "1") if method == "create" else (200, "2")
        minimal = write("return=minimal")
        assert minimal.status_code == status
        assert minimal.content == b""
        assert minimal.headers["etag"] == f'W/"{version}"'
        location = minimal.headers["location"]
        assert c.get(location).json()["meta"]["versionId"] == version

        full = write("return=representation")
        assert full.status_code == status
        assert full.json()["resourceType"] == "Patient"
        assert full.json()["meta"]["versionId"] == version

        outcome = write("return=OperationOutcome")
        assert outcome.status_code == status
        assert outcome.headers["content-type"].startswith(FHIR_JSON)
        assert outcome.json()["resourceType"] == "OperationOutcome"
        assert outcome.json()["issue"][0]["severity"] == "information"
        assert c.get(outcome.headers["location"]).status_code == 200


def test_no_token_is_401_outcome_and_nothing_is_stored(fhir: Fhir) -> None:
    value = unique()
    body = new_patient(identifier=[probe_identifier(value)])
    with fhir.client("doctor") as doctor:
        pid = doctor.post("/Patient", json=new_patient()).json()["id"]
    requests: list[tuple[str, str, dict[str, Any] | None]] = [
        ("GET", f"/Patient/{pid}", None),
        ("GET", "/Patient", None),
        ("POST", "/Patient", body),
        ("PUT", f"/Patient/{pid}", {**body, "id": pid}),
        ("DELETE", f"/Patient/{pid}", None),
        ("GET", f"/Patient/{pid}/_history", None),
        ("POST", "/", {"resourceType": "Bundle", "type": "batch", "entry": []}),
    ]
    for headers in ({}, {"Authorization": "Bearer not-a-jwt"}, {"Authorization": "Basic eDp5"}):
        with httpx.Client(base_url=fhir.base, headers=headers, timeout=60) as anon:
            for method, path, json in requests:
                r = anon.request(method, path, json=json)
                assert_outcome(r, 401)
                assert r.headers["www-authenticate"].startswith("Bearer"), r.headers
    with pytest.raises(AuthorizationError):
        SyncFHIRClient(fhir.base).get("Patient", pid)
    with fhir.client("doctor") as doctor:
        assert stored(doctor, "Patient", value) == []
        assert doctor.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'
