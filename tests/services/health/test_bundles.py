"""batch Bundles (independent entries) and what any Bundle must be: well formed, not too big,
one entry per resource (transactions in detail: test_transactions.py)."""

from __future__ import annotations

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    PROBE_SYSTEM,
    assert_outcome,
    entry_status,
    post_bundle,
    stored,
    tagged_patient,
    unique,
)


def test_batch_entries_are_independent(fhir: Fhir) -> None:
    good, bad = unique(), unique()
    with fhir.client("doctor") as c:
        existing = c.post("/Patient", json=new_patient()).json()
        doomed = c.post("/Patient", json=new_patient()).json()
        bundle = {
            "resourceType": "Bundle",
            "type": "batch",
            "entry": [
                {"request": {"method": "POST", "url": "Patient"}, "resource": tagged_patient(good)},
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": tagged_patient(bad, birthDate="1999-13-40"),
                },
                {"request": {"method": "GET", "url": f"Patient/{existing['id']}"}},
                {"request": {"method": "GET", "url": f"Patient/{unique()}"}},
                {
                    "request": {"method": "PUT", "url": f"Patient/{existing['id']}"},
                    "resource": {**existing, "gender": "male"},
                },
                {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
                {"request": {"method": "GET", "url": f"Patient?identifier={PROBE_SYSTEM}|{good}"}},
            ],
        }
        r = post_bundle(c, bundle)
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["resourceType"] == "Bundle"
        assert answer["type"] == "batch-response"
        entries = answer["entry"]
        assert [entry_status(e) for e in entries] == [201, 422, 200, 404, 200, 204, 200]
        created = entries[0]
        assert created["response"]["etag"] == 'W/"1"'
        pid = created["resource"]["id"]
        assert created["response"]["location"] == f"Patient/{pid}/_history/1"
        outcome = entries[1]["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert any("birthDate" in x for i in outcome["issue"] for x in i.get("expression", []))
        assert entries[2]["resource"]["id"] == existing["id"]
        assert entries[3]["response"]["outcome"]["resourceType"] == "OperationOutcome"
        assert entries[4]["resource"]["meta"]["versionId"] == "2"
        # the batch's GET ran after its POST: it finds the resource the batch created
        assert [e["resource"]["id"] for e in entries[6]["resource"]["entry"]] == [pid]

        assert [p["id"] for p in stored(c, "Patient", good)] == [pid]
        assert stored(c, "Patient", bad) == []
        assert c.get(f"/Patient/{existing['id']}").json()["gender"] == "male"
        assert c.get(f"/Patient/{doomed['id']}").status_code == 410


def test_two_entries_on_one_resource_are_refused(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        p = c.post("/Patient", json=new_patient()).json()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "request": {"method": "PUT", "url": f"Patient/{p['id']}"},
                    "resource": {**p, "gender": "male"},
                },
                {"request": {"method": "DELETE", "url": f"Patient/{p['id']}"}},
            ],
        }
        assert_outcome(post_bundle(c, bundle), 400)
        assert c.get(f"/Patient/{p['id']}").headers["etag"] == 'W/"1"'


def test_oversize_bundle_is_refused(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        for kind in ("transaction", "batch"):
            bundle = {
                "resourceType": "Bundle",
                "type": kind,
                "entry": [
                    {
                        "request": {"method": "POST", "url": "Patient"},
                        "resource": tagged_patient(value),
                    }
                    for _ in range(1001)
                ],
            }
            assert_outcome(post_bundle(c, bundle), 400)
        assert stored(c, "Patient", value) == []


def test_malformed_bundles_are_400(fhir: Fhir) -> None:
    value = unique()
    entry = {"request": {"method": "POST", "url": "Patient"}, "resource": tagged_patient(value)}
    with fhir.client("doctor") as c:
        for bad in (
            {"resourceType": "Bundle", "type": "collection", "entry": [entry]},
            {"resourceType": "Bundle", "entry": [entry]},
            {"resourceType": "Bundle", "type": "transaction", "entry": {"not": "a list"}},
            {"resourceType": "Bundle", "type": "transaction", "entry": [entry, {"resource": {}}]},
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [entry, {"request": {"method": "TRACE", "url": "Patient"}}],
            },
            {"resourceType": "Bundle", "type": "batch", "entry": [entry, None]},
            {
                "resourceType": "Bundle",
                "type": "batch",
                "entry": [{**entry, "request": {**entry["request"], "ifNoneExist": 5}}],
            },
            {
                "resourceType": "Bundle",
                "type": "transaction",
                "entry": [{**entry, "request": {**entry["request"], "ifMatch": ["1"]}}],
            },
            tagged_patient(value),
        ):
            assert_outcome(post_bundle(c, bad), 400)
        assert stored(c, "Patient", value) == []
