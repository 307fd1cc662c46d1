"""Who may do what: SMART scopes checked against the caller's roles, and a citizen confined
to their own record through every way of reaching data (read, search, `_include`,
`_revinclude`, chains, history, `$everything`).

Citizen A is the dev user `citizen`; citizen B has no dev account, so B's tokens are signed
with the dev issuer's trusted key. Refusals by scope are 403 OperationOutcomes; another
patient's resource is 404, as if it did not exist.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fhirpy.base.exceptions import ForbiddenError, ResourceNotFound

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    bearer,
    citizen_a,
    citizen_b,
    citizen_b_token,
    crafted,
    create,
    fhirpy,
    found,
    ids,
    observation,
    raw,
    search,
    system_token,
    tag,
    word,
)

CODE_SYSTEM = "https://huimin.example/test-code"


@dataclass
class Records:
    """Observations of citizens A and B (all with one fresh code) and a practitioner."""

    code: str  # `code=` value matching every observation below
    a: str  # Patient ids
    b: str
    a_family: str
    b_family: str
    a_obs: str  # subject A, performed by the practitioner
    b_obs: str  # subject B, performed by the practitioner
    cross_obs: str  # subject B, performed by A: in both compartments
    practitioner: str


@pytest.fixture
def records(fhir: Fhir) -> Records:
    a = citizen_a(fhir)
    b, _ = citizen_b(fhir)
    marker = tag()
    coded = {"coding": [{"system": CODE_SYSTEM, "code": marker}]}
    with fhir.client("doctor") as c:
        a_family = c.get(f"/Patient/{a}").json()["name"][0]["family"]
        b_family = c.get(f"/Patient/{b}").json()["name"][0]["family"]
        prac = create(c, {"resourceType": "Practitioner", "name": [{"family": word()}]})["id"]
        by_prac = [{"reference": f"Practitioner/{prac}"}]
        a_obs = create(c, observation(f"Patient/{a}", marker, code=coded, performer=by_prac))
        b_obs = create(c, observation(f"Patient/{b}", marker, code=coded, performer=by_prac))
        cross = create(
            c,
            observation(
                f"Patient/{b}", marker, code=coded, performer=[{"reference": f"Patient/{a}"}]
            ),
        )
    return Records(
        f"{CODE_SYSTEM}|{marker}",
        a,
        b,
        a_family,
        b_family,
        a_obs["id"],
        b_obs["id"],
        cross["id"],
        prac,
    )


def _refused(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["resourceType"] == "OperationOutcome"
    assert body["issue"][0]["severity"] in ("error", "fatal")


# --- clinicians ------------------------------------------------------------------------------


def test_doctor_reads_and_writes_every_record(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, "doctor")
    assert found(client, "Observation", code=records.code) == {
        records.a_obs,
        records.b_obs,
        records.cross_obs,
    }
    assert client.get("Patient", records.b)["id"] == records.b
    made = client.resource(
        "Observation",
        status="preliminary",
        code={"text": "note"},
        subject={"reference": f"Patient/{records.b}"},
    )
    made.save()
    made["status"] = "final"
    made.save()
    assert client.get("Observation", str(made["id"]))["meta"]["versionId"] == "2"
    client.delete("Observation", str(made["id"]))
    with pytest.raises(ResourceNotFound):
        client.get("Observation", str(made["id"]))


# --- citizens --------------------------------------------------------------------------------


def test_citizen_reads_their_own_record(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, "citizen")
    assert client.get("Patient", records.a)["id"] == records.a
    assert found(client, "Patient") == {records.a}
    assert client.get("Observation", records.a_obs)["id"] == records.a_obs
    # An observation A performed is in A's compartment too (R4 CompartmentDefinition).
    assert found(client, "Observation", code=records.code) == {records.a_obs, records.cross_obs}
    assert found(client, "Observation", patient=records.a, code=records.code) == {records.a_obs}
    # Directory data is readable.
    assert client.get("Practitioner", records.practitioner)["id"] == records.practitioner


def test_citizen_cannot_read_another_patient(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, "citizen")
    for rtype, rid in (("Patient", records.b), ("Observation", records.b_obs)):
        with pytest.raises(ResourceNotFound):
            client.get(rtype, rid)
    with fhir.client("citizen") as c:
        _refused(c.get(f"/Observation/{records.b_obs}"), 404)
        _refused(c.get(f"/Observation/{records.b_obs}/_history/1"), 404)
        _refused(c.get(f"/Patient/{records.b}/_history/1"), 404)
    assert found(client, "Patient", _id=records.b) == set()
    assert found(client, "Observation", _id=records.b_obs) == set()
    assert found(client, "Observation", subject=f"Patient/{records.b}", code=records.code) == {
        records.cross_obs
    }


def test_citizen_b_sees_only_b(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, token=citizen_b_token(fhir))
    assert client.get("Patient", records.b)["id"] == records.b
    assert found(client, "Patient") == {records.b}
    assert found(client, "Observation", code=records.code) == {records.b_obs, records.cross_obs}
    with pytest.raises(ResourceNotFound):
        client.get("Patient", records.a)
    with pytest.raises(ResourceNotFound):
        client.get("Observation", records.a_obs)


def test_include_does_not_leak_another_patient(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, "citizen")
    bundle = (
        client.resources("Observation")
        .search(code=records.code)
        .include("Observation", "subject")
        .fetch_raw()
    )
    # cross_obs is A's (A performed it) but its subject is B: B's Patient stays out.
    assert ids(bundle) == {f"Observation/{records.a_obs}", f"Observation/{records.cross_obs}"}
    assert ids(bundle, "include") == {f"Patient/{records.a}"}
    with fhir.client("citizen") as c:
        only_cross = search(
            c, "/Observation", _id=records.cross_obs, _include="Observation:subject:Patient"
        )
        assert ids(only_cross, None) == {f"Observation/{records.cross_obs}"}
    with fhir.client("doctor") as c:  # the same search by a clinician does include B
        doctor = search(c, "/Observation", _id=records.cross_obs, _include="Observation:subject")
        assert ids(doctor, "include") == {f"Patient/{records.b}"}


def test_revinclude_does_not_leak_another_patient(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, "citizen")
    # The practitioner performed observations of both A and B.
    bundle = (
        client.resources("Practitioner")
        .search(_id=records.practitioner)
        .revinclude("Observation", "performer")
        .fetch_raw()
    )
    assert ids(bundle) == {f"Practitioner/{records.practitioner}"}
    assert ids(bundle, "include") == {f"Observation/{records.a_obs}"}
    with fhir.client("citizen") as c:
        patients = search(
            c, "/Patient", _id=f"{records.a},{records.b}", _revinclude="Observation:subject"
        )
        assert ids(patients) == {f"Patient/{records.a}"}
        assert f"Observation/{records.b_obs}" not in ids(patients, "include")
        assert f"Observation/{records.a_obs}" in ids(patients, "include")
    with fhir.client("doctor") as c:
        doctor = search(
            c, "/Practitioner", _id=records.practitioner, _revinclude="Observation:performer"
        )
        assert ids(doctor, "include") == {
            f"Observation/{records.a_obs}",
            f"Observation/{records.b_obs}",
        }


def test_chained_search_does_not_reach_another_patient(fhir: Fhir, records: Records) -> None:
    citizen = fhirpy(fhir, "citizen")
    doctor = fhirpy(fhir, "doctor")
    by_name = raw(**{"subject:Patient.name": records.b_family})
    assert found(doctor, "Observation", by_name, code=records.code) == {
        records.b_obs,
        records.cross_obs,
    }
    assert found(citizen, "Observation", by_name, code=records.code) == set()
    assert found(citizen, "Observation", by_name) == set()
    assert found(citizen, "Observation", patient__name=records.a_family, code=records.code) == {
        records.a_obs
    }


def test_history_does_not_reach_another_patient(fhir: Fhir, records: Records) -> None:
    with fhir.client("citizen") as c:
        _refused(c.get(f"/Observation/{records.b_obs}/_history"), 404)
        _refused(c.get(f"/Patient/{records.b}/_history"), 404)
        own = search(c, f"/Observation/{records.a_obs}/_history")
        assert {e["resource"]["id"] for e in own["entry"]} == {records.a_obs}
        history = search(c, "/Observation/_history", _count=500)
        seen = {e["resource"]["id"] for e in history["entry"] if "resource" in e}
        assert {records.a_obs, records.cross_obs} <= seen
        assert records.b_obs not in seen
        for entry in history["entry"]:
            body = entry.get("resource")
            if body is not None:
                refs = [body["subject"]["reference"]] + [
                    p["reference"] for p in body.get("performer", [])
                ]
                assert f"Patient/{records.a}" in refs, body["id"]
        patients = search(c, "/Patient/_history", _count=500)
        assert {e["resource"]["id"] for e in patients["entry"] if "resource" in e} == {records.a}


def test_everything_of_another_patient_is_not_found(fhir: Fhir, records: Records) -> None:
    with fhir.client("citizen") as c:
        _refused(c.get(f"/Patient/{records.b}/$everything"), 404)
        own = search(
            c, f"/Patient/{records.a}/$everything", _type="Patient,Observation", _count=500
        )
        got = ids(own)
        assert {f"Patient/{records.a}", f"Observation/{records.a_obs}"} <= got
        assert f"Observation/{records.cross_obs}" in got
        assert f"Observation/{records.b_obs}" not in got
        assert f"Patient/{records.b}" not in got
    with fhir.client("doctor") as c:
        everything_b = search(c, f"/Patient/{records.b}/$everything", _type="Observation")
        assert f"Observation/{records.b_obs}" in ids(everything_b)


def test_batch_reads_follow_the_same_rules(fhir: Fhir, records: Records) -> None:
    batch = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            {"request": {"method": "GET", "url": f"Observation/{records.b_obs}"}},
            {"request": {"method": "GET", "url": f"Observation/{records.a_obs}"}},
            {
                "request": {
                    "method": "GET",
                    "url": f"Observation?code={records.code}&_include=Observation:subject",
                }
            },
            {"request": {"method": "GET", "url": f"Patient/{records.b}/$everything"}},
        ],
    }
    with fhir.client("citizen") as c:
        response = c.post("/", json=batch)
    assert response.status_code == 200, response.text
    b_read, a_read, searched, everything = response.json()["entry"]
    assert b_read["response"]["status"].startswith("404")
    assert "resource" not in b_read or b_read["resource"]["resourceType"] == "OperationOutcome"
    assert a_read["response"]["status"].startswith("200")
    assert a_read["resource"]["id"] == records.a_obs
    assert ids(searched["resource"]) == {
        f"Observation/{records.a_obs}",
        f"Observation/{records.cross_obs}",
    }
    assert ids(searched["resource"], "include") == {f"Patient/{records.a}"}
    assert not everything["response"]["status"].startswith("2")
    assert f"Observation/{records.b_obs}" not in str(everything)


def test_citizen_cannot_write(fhir: Fhir, records: Records) -> None:
    own = observation(f"Patient/{records.a}", tag())
    with fhir.client("citizen") as c:
        _refused(c.post("/Observation", json=own), 403)
        current = c.get(f"/Observation/{records.a_obs}").json()
        _refused(c.put(f"/Observation/{records.a_obs}", json={**current, "status": "amended"}), 403)
        _refused(
            c.patch(
                f"/Observation/{records.a_obs}",
                json=[{"op": "replace", "path": "/status", "value": "amended"}],
                headers={"Content-Type": "application/json-patch+json"},
            ),
            403,
        )
        _refused(c.delete(f"/Observation/{records.a_obs}"), 403)
        _refused(c.put(f"/Patient/{records.a}", json=c.get(f"/Patient/{records.a}").json()), 403)
    client = fhirpy(fhir, "citizen")
    with pytest.raises(ForbiddenError):
        client.resource("Observation", **own).save()
    with fhir.client("doctor") as c:
        after = c.get(f"/Observation/{records.a_obs}").json()
        assert after["meta"]["versionId"] == "1"
        assert after["status"] == "final"


def test_patient_scope_for_one_type(fhir: Fhir, records: Records) -> None:
    with fhir.client("citizen", "patient/Observation.rs") as c:
        assert c.get(f"/Observation/{records.a_obs}").status_code == 200
        _refused(c.get(f"/Patient/{records.a}"), 403)
        _refused(c.get("/Condition"), 403)
        _refused(c.get(f"/Observation/{records.b_obs}"), 404)


def test_citizen_without_a_health_record_sees_nothing(fhir: Fhir, records: Records) -> None:
    token = crafted(
        fhir, roles=["citizen"], scope="patient/*.rs", resident_id="R-" + tag()[:8].upper()
    )
    with bearer(fhir, token) as c:
        assert search(c, "/Observation", code=records.code)["entry"] == []
        assert search(c, "/Patient")["entry"] == []
        _refused(c.get(f"/Observation/{records.a_obs}"), 404)


# --- people who are not clinicians -----------------------------------------------------------

NON_CLINICAL = {
    "worker": "community-worker",
    "editor": "tourism-editor",
    "admin": "admin",
    "teacher": "educator",
    "officer": "street-officer",
}


@pytest.mark.parametrize("user", sorted(NON_CLINICAL))
def test_no_clinical_data_for_other_roles(fhir: Fhir, records: Records, user: str) -> None:
    realm_token = fhir.token(user)
    # Even with the broadest user/ scope in the token: their role does not honour it.
    widest = crafted(fhir, roles=[NON_CLINICAL[user]], scope="user/*.cruds system/*.cruds")
    for token in (realm_token, widest):
        with bearer(fhir, token) as c:
            _refused(c.get(f"/Observation/{records.a_obs}"), 403)
            _refused(c.get(f"/Patient/{records.a}"), 403)
            _refused(c.get("/Observation", params={"code": records.code}), 403)
            _refused(c.get(f"/Patient/{records.a}/$everything"), 403)
            _refused(c.get("/Observation/_history"), 403)
            _refused(c.post("/Observation", json=observation(f"Patient/{records.a}", tag())), 403)
            _refused(c.delete(f"/Observation/{records.a_obs}"), 403)
            _refused(c.get("/AuditEvent"), 403)
    with pytest.raises(ForbiddenError):
        fhirpy(fhir, token=widest).get("Observation", records.a_obs)


def test_scopes_outside_the_role_grant_nothing(fhir: Fhir, records: Records) -> None:
    cases = [
        (["citizen"], "user/*.cruds"),  # a citizen's user/ scope
        (["citizen"], "system/*.rs"),  # a citizen's system/ scope
        (["clinician"], "system/*.rs"),  # system/ is for service accounts
        (["service"], "user/*.rs"),  # user/ is for people
        (["clinician"], "openid profile"),  # no resource scope at all
    ]
    for roles, scope in cases:
        token = crafted(fhir, roles=roles, scope=scope, resident_id="R-00000001")
        with bearer(fhir, token) as c:
            _refused(c.get(f"/Observation/{records.a_obs}"), 403)
            _refused(c.get("/Observation", params={"code": records.code}), 403)


def test_auditor_reads_the_audit_trail_only(fhir: Fhir, records: Records) -> None:
    widest = crafted(fhir, roles=["auditor"], scope="user/*.cruds")
    for token in (fhir.token("auditor"), widest):
        with bearer(fhir, token) as c:
            assert c.get("/AuditEvent", params={"_count": 1}).status_code == 200
            assert c.get("/Provenance", params={"_count": 1}).status_code == 200
            _refused(c.get(f"/Observation/{records.a_obs}"), 403)
            _refused(c.get("/Observation", params={"code": records.code}), 403)
            _refused(c.get(f"/Patient/{records.a}"), 403)
            _refused(c.get(f"/Practitioner/{records.practitioner}"), 403)
            # The trail is written by the servers, never by a person.
            _refused(c.post("/AuditEvent", json=_audit_event()), 403)


def test_service_account(fhir: Fhir, records: Records) -> None:
    client = fhirpy(fhir, token=system_token(fhir))
    assert found(client, "Observation", code=records.code) == {
        records.a_obs,
        records.b_obs,
        records.cross_obs,
    }
    assert client.get("Patient", records.b)["id"] == records.b
    with bearer(fhir, system_token(fhir)) as c:
        _refused(c.post("/Observation", json=observation(f"Patient/{records.a}", tag())), 403)
        _refused(c.delete(f"/Observation/{records.a_obs}"), 403)
    with fhir.service_client() as c:  # a service token without any SMART scope
        _refused(c.get(f"/Observation/{records.a_obs}"), 403)


def test_unauthenticated(fhir: Fhir, records: Records) -> None:
    with httpx.Client(base_url=fhir.base, timeout=30.0) as c:
        assert c.get("/metadata").status_code == 200
        for headers in ({}, {"Authorization": "Bearer not-a-token"}):
            response = c.get(f"/Observation/{records.a_obs}", headers=headers)
            assert response.status_code == 401
            assert response.headers["www-authenticate"].lower().startswith("bearer")
        expired = crafted(fhir, roles=["clinician"], scope="user/*.cruds", exp=1)
        response = c.get(
            f"/Observation/{records.a_obs}", headers={"Authorization": f"Bearer {expired}"}
        )
        assert response.status_code == 401


def _audit_event() -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "type": {"system": "http://dicom.nema.org/resources/ontology/DCM", "code": "110110"},
        "recorded": "2024-01-01T00:00:00Z",
        "agent": [{"requestor": True, "who": {"display": "someone"}}],
        "source": {"observer": {"display": "somewhere"}},
    }
