"""transaction Bundles: all or nothing, urn:uuid references rewritten to the ids written,
conditional creates and updates inside, answers in request order."""

from __future__ import annotations

from typing import Any

import pytest
from fhirpy.base.exceptions import OperationOutcome

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    PROBE_SYSTEM,
    assert_outcome,
    entry_status,
    fhirpy_client,
    observation,
    post_bundle,
    stored,
    tagged_patient,
    unique,
    urn,
)


def test_transaction_rewrites_urn_uuid_references(fhir: Fhir) -> None:
    value = unique()
    patient_urn, encounter_urn = urn(), urn()
    encounter = {
        "resourceType": "Encounter",
        "status": "finished",
        "class": {"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "AMB"},
        "subject": {"reference": patient_urn},
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            # the Observation comes first: references may point forward
            {
                "fullUrl": urn(),
                "request": {"method": "POST", "url": "Observation"},
                "resource": observation(value, patient_urn, encounter={"reference": encounter_urn}),
            },
            {
                "fullUrl": patient_urn,
                "request": {"method": "POST", "url": "Patient"},
                "resource": tagged_patient(value),
            },
            {
                "fullUrl": encounter_urn,
                "request": {"method": "POST", "url": "Encounter"},
                "resource": encounter,
            },
        ],
    }
    client = fhirpy_client(fhir)
    answer = client.execute("/", method="post", data=bundle)
    assert answer["type"] == "transaction-response"
    obs_entry, patient_entry, encounter_entry = answer["entry"]
    assert [entry_status(e) for e in answer["entry"]] == [201, 201, 201]
    assert obs_entry["resource"]["resourceType"] == "Observation"
    assert patient_entry["resource"]["resourceType"] == "Patient"
    assert encounter_entry["resource"]["resourceType"] == "Encounter"
    pid = patient_entry["resource"]["id"]
    eid = encounter_entry["resource"]["id"]
    assert patient_entry["response"]["location"] == f"Patient/{pid}/_history/1"

    obs = client.reference("Observation", obs_entry["resource"]["id"]).to_resource()
    assert obs["subject"]["reference"] == f"Patient/{pid}"
    assert obs["encounter"]["reference"] == f"Encounter/{eid}"
    assert client.get("Encounter", eid)["subject"]["reference"] == f"Patient/{pid}"
    found = client.resources("Observation").search(subject=f"Patient/{pid}").fetch()
    assert [o.id for o in found] == [obs.id]


def test_urn_uuid_of_a_conditional_update_entry_is_rewritten(fhir: Fhir) -> None:
    """The pattern of IPS and other document-derived bundles: upsert the patient by business
    identifier, reference it by the fullUrl of that entry."""
    value = unique()
    patient_urn = urn()
    criteria = f"Patient?identifier={PROBE_SYSTEM}|{value}"

    def bundle(gender: str) -> dict[str, Any]:
        return {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient_urn,
                    "request": {"method": "PUT", "url": criteria},
                    "resource": tagged_patient(value, gender=gender),
                },
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(value, patient_urn),
                },
            ],
        }

    with fhir.client("doctor") as c:
        first = post_bundle(c, bundle("female"))
        assert first.status_code == 200, first.text
        assert [entry_status(e) for e in first.json()["entry"]] == [201, 201]
        pid = first.json()["entry"][0]["resource"]["id"]
        second = post_bundle(c, bundle("male"))  # the same patient, updated
        assert second.status_code == 200, second.text
        assert [entry_status(e) for e in second.json()["entry"]] == [200, 201]
        assert second.json()["entry"][0]["resource"]["id"] == pid
        assert [p["gender"] for p in stored(c, "Patient", value)] == ["male"]
        subjects = [o["subject"]["reference"] for o in stored(c, "Observation", value)]
        assert subjects == [f"Patient/{pid}", f"Patient/{pid}"]


def test_an_unresolved_urn_uuid_reference_fails_the_transaction(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": tagged_patient(value),
                },
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(value, urn()),  # no entry has this fullUrl
                },
            ],
        }
        assert_outcome(post_bundle(c, bundle), 400, expression="Bundle.entry[1]")
        assert stored(c, "Patient", value) == []
        assert stored(c, "Observation", value) == []


def test_a_failing_transaction_leaves_nothing_behind(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        existing = c.post("/Patient", json=new_patient()).json()
        doomed = c.post("/Patient", json=new_patient()).json()
        patient_urn = urn()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": patient_urn,
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": tagged_patient(value),
                },
                {
                    "request": {"method": "PUT", "url": f"Patient/{existing['id']}"},
                    "resource": {**existing, "gender": "male"},
                },
                {"request": {"method": "DELETE", "url": f"Patient/{doomed['id']}"}},
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(value, patient_urn),
                },
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(value, patient_urn, status="x-not-a-status"),
                },
            ],
        }
        outcome = assert_outcome(post_bundle(c, bundle), 422)
        paths = [x for i in outcome["issue"] for x in i.get("expression", [])]
        assert any(p.startswith("Bundle.entry[4]") for p in paths), outcome
        assert stored(c, "Patient", value) == []
        assert stored(c, "Observation", value) == []
        assert c.get(f"/Patient/{existing['id']}").headers["etag"] == 'W/"1"'
        assert c.get(f"/Patient/{doomed['id']}").status_code == 200

        # the same failure through fhirpy: an OperationOutcome error, and still nothing stored
        client = fhirpy_client(fhir)
        with pytest.raises(OperationOutcome) as caught:
            client.execute("/", method="post", data=bundle)
        assert caught.value.resource["resourceType"] == "OperationOutcome"
        assert stored(c, "Patient", value) == []


def test_a_transaction_with_a_missing_target_fails_whole(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": tagged_patient(value),
                },
                {"request": {"method": "DELETE", "url": f"Patient/{unique()}"}},
            ],
        }
        assert_outcome(post_bundle(c, bundle), 404)
        assert stored(c, "Patient", value) == []


def test_conditional_create_inside_a_transaction(fhir: Fhir) -> None:
    value, fresh = unique(), unique()
    with fhir.client("doctor") as c:
        existing = c.post("/Patient", json=tagged_patient(value)).json()
        known_urn, new_urn = urn(), urn()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {
                    "fullUrl": known_urn,
                    "request": {
                        "method": "POST",
                        "url": "Patient",
                        "ifNoneExist": f"identifier={PROBE_SYSTEM}|{value}",
                    },
                    "resource": tagged_patient(value, gender="male"),
                },
                {
                    "fullUrl": new_urn,
                    "request": {
                        "method": "POST",
                        "url": "Patient",
                        "ifNoneExist": f"identifier={PROBE_SYSTEM}|{fresh}",
                    },
                    "resource": tagged_patient(fresh),
                },
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(value, known_urn),
                },
                {
                    "request": {"method": "POST", "url": "Observation"},
                    "resource": observation(fresh, new_urn),
                },
            ],
        }
        r = post_bundle(c, bundle)
        assert r.status_code == 200, r.text
        entries = r.json()["entry"]
        assert [entry_status(e) for e in entries] == [200, 201, 201, 201]
        assert entries[0]["resource"]["id"] == existing["id"]
        assert entries[0]["resource"]["gender"] == "female"  # the existing one, unchanged
        new_id = entries[1]["resource"]["id"]
        assert [p["id"] for p in stored(c, "Patient", value)] == [existing["id"]]
        assert [p["id"] for p in stored(c, "Patient", fresh)] == [new_id]
        subjects = {
            o["subject"]["reference"] for v in (value, fresh) for o in stored(c, "Observation", v)
        }
        assert subjects == {f"Patient/{existing['id']}", f"Patient/{new_id}"}


def test_transaction_answers_in_request_order(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        updated = c.post("/Patient", json=new_patient()).json()
        deleted = c.post("/Patient", json=new_patient()).json()
        read = c.post("/Patient", json=new_patient()).json()
        bundle = {
            "resourceType": "Bundle",
            "type": "transaction",
            "entry": [
                {"request": {"method": "GET", "url": f"Patient/{read['id']}"}},
                {
                    "request": {"method": "PUT", "url": f"Patient/{updated['id']}"},
                    "resource": {**updated, "gender": "other"},
                },
                {
                    "request": {"method": "POST", "url": "Patient"},
                    "resource": tagged_patient(value),
                },
                {"request": {"method": "DELETE", "url": f"Patient/{deleted['id']}"}},
            ],
        }
        r = post_bundle(c, bundle)
        assert r.status_code == 200, r.text
        entries = r.json()["entry"]
        assert [entry_status(e) for e in entries] == [200, 200, 201, 204]
        assert entries[0]["resource"]["id"] == read["id"]
        assert entries[1]["resource"]["id"] == updated["id"]
        assert entries[1]["response"]["etag"] == 'W/"2"'
        assert entries[2]["resource"]["identifier"][-1]["value"] == value
        assert "resource" not in entries[3]
        assert c.get(f"/Patient/{deleted['id']}").status_code == 410
