"""`Patient/{id}/$everything`: the patient first, then their compartment, paged, `_type`."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    assert_outcome,
    entries_of,
    fhirpy_client,
    follow,
    unique,
)

CODE = {"coding": [{"system": "http://snomed.info/sct", "code": "38341003"}]}


def _compartment(patient: str) -> list[dict[str, Any]]:
    """One or two resources of several compartment types, all about `patient`."""
    ref = {"reference": patient}
    return [
        {"resourceType": "Observation", "status": "final", "code": CODE, "subject": ref},
        {"resourceType": "Observation", "status": "amended", "code": CODE, "subject": ref},
        {"resourceType": "Condition", "code": CODE, "subject": ref},
        {
            "resourceType": "Encounter",
            "status": "finished",
            "class": {"code": "AMB"},
            "subject": ref,
        },
        {"resourceType": "AllergyIntolerance", "patient": ref},
        {
            "resourceType": "MedicationRequest",
            "status": "active",
            "intent": "order",
            "medicationCodeableConcept": CODE,
            "subject": ref,
        },
        {
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": CODE,
            "patient": ref,
            "occurrenceDateTime": "2024-05-01",
        },
    ]


def _record(c: httpx.Client) -> tuple[str, set[tuple[str, str]]]:
    """A new patient with a compartment; the patient's id and every (type, id) expected."""
    pid = c.post("/Patient", json=new_patient()).json()["id"]
    expected = {("Patient", pid)}
    for body in _compartment(f"Patient/{pid}"):
        r = c.post(f"/{body['resourceType']}", json=body)
        assert r.status_code == 201, r.text
        expected.add((body["resourceType"], r.json()["id"]))
    return pid, expected


def _keys(entries: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["resource"]["resourceType"], e["resource"]["id"]) for e in entries]


def test_everything_is_the_patient_and_their_compartment(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid, expected = _record(c)
        _, others = _record(c)  # someone else's record must not show
        r = c.get(f"/Patient/{pid}/$everything", params={"_count": 100})
        assert r.status_code == 200, r.text
        bundle = r.json()
        assert bundle["resourceType"] == "Bundle"
        assert bundle["type"] == "searchset"
        keys = _keys(entries_of(bundle))
        assert keys[0] == ("Patient", pid)
        assert len(keys) == len(set(keys)), f"duplicates: {keys}"
        assert set(keys) == expected
        assert not set(keys) & others
        for e in entries_of(bundle):
            rtype, rid = e["resource"]["resourceType"], e["resource"]["id"]
            assert e["fullUrl"] == f"{fhir.base}/{rtype}/{rid}"


def test_everything_pages_with_next_links(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid, expected = _record(c)
        first = c.get(f"/Patient/{pid}/$everything", params={"_count": 3})
        pages = follow(c, first)
        assert len(pages) == 3  # 8 resources, 3 a page
        assert all(len(entries_of(p)) <= 3 for p in pages)
        keys = [k for p in pages for k in _keys(entries_of(p))]
        assert keys[0] == ("Patient", pid)
        assert keys.count(("Patient", pid)) == 1
        assert len(keys) == len(set(keys)), f"duplicates: {keys}"
        assert set(keys) == expected


def test_everything_type_filter(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid, expected = _record(c)
        r = c.get(f"/Patient/{pid}/$everything", params={"_type": "Observation,Condition"})
        assert r.status_code == 200, r.text
        keys = _keys(entries_of(r.json()))
        wanted = {k for k in expected if k[0] in ("Observation", "Condition")}
        assert {k for k in keys if k[0] != "Patient"} == wanted
        assert len(wanted) == 3
        assert all(k == ("Patient", pid) for k in keys if k[0] == "Patient")
        paged = follow(
            c, c.get(f"/Patient/{pid}/$everything", params={"_type": "Observation", "_count": 1})
        )
        observations = [k for p in paged for k in _keys(entries_of(p)) if k[0] == "Observation"]
        assert sorted(observations) == sorted(k for k in expected if k[0] == "Observation")
        assert_outcome(c.get(f"/Patient/{pid}/$everything", params={"_type": "Practitioner"}), 400)


def test_everything_with_fhirpy(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        pid, expected = _record(c)
    client = fhirpy_client(fhir)
    bundle = client.reference("Patient", pid).execute("$everything", method="get")
    assert bundle["entry"][0]["resource"]["id"] == pid
    assert {(e.resource.resourceType, e.resource.id) for e in bundle.entry} == expected


@pytest.mark.parametrize("state", ["unknown", "deleted"])
def test_everything_of_a_missing_patient(fhir: Fhir, state: str) -> None:
    with fhir.client("doctor") as c:
        if state == "unknown":
            assert_outcome(c.get(f"/Patient/{unique()}/$everything"), 404)
        else:
            pid = c.post("/Patient", json=new_patient()).json()["id"]
            assert c.delete(f"/Patient/{pid}").status_code == 204
            assert_outcome(c.get(f"/Patient/{pid}/$everything"), 410)
