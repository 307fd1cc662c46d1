"""`GET /metadata`: a public CapabilityStatement that says exactly what the server serves."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhirpy import SyncFHIRClient

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import FHIR_JSON, assert_outcome, entries_of, unique

TYPES = {
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
    "CarePlan",
    "Consent",
    "AuditEvent",
    "Provenance",
}
ALL = {
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
}
# A valid value of each search parameter type that no test data matches.
SAMPLE = {
    "string": "zz-nobody",
    "token": "http://example.org|zz-none",
    "date": "lt1801-01-01",
    "reference": "Patient/zz-none",
    "quantity": "-98765.4321",
    "uri": "http://example.org/zz-none",
    "number": "-98765.4321",
}


def _statement(fhir: Fhir) -> dict[str, Any]:
    r = httpx.get(f"{fhir.base}/metadata", timeout=60)  # no token: /metadata is public
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith(FHIR_JSON)
    body: dict[str, Any] = r.json()
    return body


def _resources(statement: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["type"]: r for r in statement["rest"][0]["resource"]}


def test_metadata_is_public_and_valid(fhir: Fhir) -> None:
    statement = _statement(fhir)
    CapabilityStatement.model_validate(statement)  # a well-formed R4B CapabilityStatement
    assert statement["resourceType"] == "CapabilityStatement"
    assert statement["kind"] == "instance"
    assert statement["status"] == "active"
    assert statement["fhirVersion"].startswith("4.")
    assert "application/fhir+json" in statement["format"]
    assert statement["patchFormat"] == ["application/json-patch+json"]
    (rest,) = statement["rest"]
    assert rest["mode"] == "server"
    assert {i["code"] for i in rest["interaction"]} == {"transaction", "batch"}
    assert {o["name"] for o in rest["operation"]} == {"validate"}
    codes = [c["code"] for s in rest["security"]["service"] for c in s["coding"]]
    assert "SMART-on-FHIR" in codes
    assert statement["implementation"]["url"] == fhir.base


def test_fhirpy_reads_the_capability_statement(fhir: Fhir) -> None:
    statement = SyncFHIRClient(fhir.base).execute("metadata", method="get")
    assert statement.resourceType == "CapabilityStatement"
    assert {r.type for r in statement.rest[0].resource} == TYPES


def test_every_type_with_its_interactions(fhir: Fhir) -> None:
    resources = _resources(_statement(fhir))
    assert set(resources) == TYPES
    for rtype, resource in resources.items():
        interactions = {i["code"] for i in resource["interaction"]}
        expected = ALL - {"update", "patch", "delete"} if rtype == "AuditEvent" else ALL
        assert interactions == expected, rtype
        assert resource["versioning"] == "versioned-update"
        assert resource["conditionalCreate"] is True
        assert resource["readHistory"] is True
    assert {o["name"] for o in resources["Patient"]["operation"]} == {"everything"}
    assert resources["AuditEvent"]["conditionalDelete"] == "not-supported"


def test_the_declared_interactions_are_served(fhir: Fhir) -> None:
    resources = _resources(_statement(fhir))
    with fhir.client("doctor") as c:
        for rtype in resources:
            search = c.get(f"/{rtype}", params={"_count": 1})
            assert search.status_code == 200, (rtype, search.text)
            assert search.json()["type"] == "searchset"
            history = c.get(f"/{rtype}/_history", params={"_count": 1})
            assert history.status_code == 200, (rtype, history.text)
            assert history.json()["type"] == "history"
        # and what AuditEvent does not declare is refused as such
        assert_outcome(c.put("/AuditEvent/x", json={"resourceType": "AuditEvent", "id": "x"}), 405)
        assert_outcome(c.delete("/AuditEvent/x"), 405)


@pytest.mark.parametrize("rtype", sorted(TYPES))
def test_every_declared_search_parameter_is_understood(fhir: Fhir, rtype: str) -> None:
    params = _resources(_statement(fhir))[rtype]["searchParam"]
    assert {"_id", "_lastUpdated"} <= {p["name"] for p in params}
    strict = {"Prefer": "handling=strict"}  # an unknown parameter would be a 400
    with fhir.client("doctor") as c:
        for p in params:
            r = c.get(f"/{rtype}", params={p["name"]: SAMPLE[p["type"]]}, headers=strict)
            assert r.status_code == 200, (rtype, p, r.text)
            assert entries_of(r.json()) == [], (rtype, p["name"])  # matches nothing of ours
        assert_outcome(c.get(f"/{rtype}", params={"zz-undeclared": "1"}, headers=strict), 400)
        for include in _resources(_statement(fhir))[rtype]["searchInclude"]:
            r = c.get(f"/{rtype}", params={"_include": include, "_count": 1})
            assert r.status_code == 200, (include, r.text)


def test_declared_parameters_find_what_they_should(fhir: Fhir) -> None:
    family = f"Meta{unique()[:10]}"
    patient = new_patient(name=[{"family": family}], birthDate="1971-06-05", gender="other")
    with fhir.client("doctor") as c:
        created = c.post("/Patient", json=patient).json()
        pid, updated = created["id"], created["meta"]["lastUpdated"]
        obs = {
            "resourceType": "Observation",
            "status": "final",
            "code": {"coding": [{"system": "http://loinc.org", "code": "29463-7"}]},
            "subject": {"reference": f"Patient/{pid}"},
            "valueQuantity": {"value": 81.5, "unit": "kg"},
        }
        oid = c.post("/Observation", json=obs).json()["id"]

        def ids(rtype: str, **params: str) -> list[str]:
            r = c.get(f"/{rtype}", params=params)
            assert r.status_code == 200, r.text
            return [e["resource"]["id"] for e in entries_of(r.json())]

        assert ids("Patient", family=family) == [pid]
        assert ids("Patient", family=family, birthdate="1971-06-05") == [pid]
        assert ids("Patient", family=family, birthdate="lt1971-06-05") == []
        assert ids("Patient", family=family, gender="other") == [pid]
        assert ids("Patient", family=family, gender="male") == []
        assert ids("Patient", family=family, _lastUpdated=f"ge{updated}") == [pid]
        assert ids("Patient", family=family, _lastUpdated=f"lt{updated}") == []
        assert ids("Patient", family=family, _lastUpdated=updated[:10]) == [pid]
        assert ids("Observation", subject=f"Patient/{pid}", code="http://loinc.org|29463-7") == [
            oid
        ]
        assert ids("Observation", subject=f"Patient/{pid}", code="http://loinc.org|1") == []
        included = ids("Observation", subject=f"Patient/{pid}", _include="Observation:subject")
        assert included == [oid, pid]
        assert ids("Observation", **{"subject:Patient.family": family}) == [oid]
