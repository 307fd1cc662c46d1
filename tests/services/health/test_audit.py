"""The audit trail: every interaction with patient data leaves an AuditEvent saying who did
what to whose record, with what outcome; citizens see the events about themselves (and
only those), auditors see all, and nobody can change the trail.

Reads and searches are audited in batches (a fraction of a second late), so the tests poll.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    TEST_SYSTEM,
    bearer,
    citizen_a,
    citizen_b,
    citizen_b_token,
    create,
    eventually,
    fhirpy,
    found,
    observation,
    search,
    system_token,
    tag,
)

INTERACTION = "http://hl7.org/fhir/restful-interaction"


def _events(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    bundle = search(client, "/AuditEvent", _count=100, **params)
    return [e["resource"] for e in bundle.get("entry", [])]


def _poll(client: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """The AuditEvents matching `params` once there are any (up to a few seconds)."""
    events: list[dict[str, Any]] = eventually(lambda: _events(client, **params))
    assert events, f"no AuditEvent for {params}"
    return events


def _patients(event: dict[str, Any]) -> set[str]:
    return {
        e["what"]["reference"]
        for e in event.get("entity", [])
        if e.get("role", {}).get("code") == "1" and "what" in e
    }


def _entities(event: dict[str, Any]) -> set[str]:
    return {e["what"]["reference"] for e in event.get("entity", []) if "what" in e}


def _subtype(event: dict[str, Any]) -> str:
    codes = [c["code"] for c in event["subtype"] if c.get("system") == INTERACTION]
    assert len(codes) == 1, event["subtype"]
    return str(codes[0])


def _who(event: dict[str, Any]) -> dict[str, Any]:
    requestors = [a for a in event["agent"] if a.get("requestor")]
    assert len(requestors) == 1, event["agent"]
    who: dict[str, Any] = requestors[0]["who"]
    return who


@pytest.fixture
def a_obs(fhir: Fhir) -> str:
    """A fresh Observation of citizen A, made by the doctor."""
    with fhir.client("doctor") as c:
        return str(create(c, observation(f"Patient/{citizen_a(fhir)}", tag()))["id"])


@pytest.fixture
def b_obs(fhir: Fhir) -> str:
    """A fresh Observation of citizen B, made by the doctor."""
    with fhir.client("doctor") as c:
        return str(create(c, observation(f"Patient/{citizen_b(fhir)[0]}", tag()))["id"])


def test_a_read_by_the_doctor_is_audited(fhir: Fhir, a_obs: str) -> None:
    a = citizen_a(fhir)
    doctor_sub = _claim(fhir, "doctor", "sub")
    fhirpy(fhir, "doctor").get("Observation", a_obs)
    with fhir.client("auditor") as auditor:
        (event,) = _poll(auditor, entity=f"Observation/{a_obs}", subtype=f"{INTERACTION}|read")
        assert event["outcome"] == "0"
        assert event["action"] == "R"
        assert event["type"]["code"] == "rest"
        who = _who(event)
        assert who["reference"] == "Practitioner/prac-doctor"
        assert who["identifier"]["value"] == doctor_sub
        assert _patients(event) == {f"Patient/{a}"}
        assert _entities(event) == {f"Patient/{a}", f"Observation/{a_obs}"}
        # The same event through the other search parameters.
        by_agent = _events(
            auditor, agent="Practitioner/prac-doctor", entity=f"Observation/{a_obs}", action="R"
        )
        assert [e["id"] for e in by_agent] == [event["id"]]
        by_patient = _events(auditor, patient=f"Patient/{a}", _id=event["id"])
        assert [e["id"] for e in by_patient] == [event["id"]]
        # The create was audited too, in the same write.
        (created,) = _events(auditor, entity=f"Observation/{a_obs}", subtype="create")
        assert created["action"] == "C"
        assert _patients(created) == {f"Patient/{a}"}

    # Citizen A sees who looked at their record.
    citizen = fhirpy(fhir, "citizen")
    mine = citizen.resources("AuditEvent").search(patient=f"Patient/{a}").sort("-date").limit(100)
    assert event["id"] in {str(e["id"]) for e in mine.fetch()}
    assert found(citizen, "AuditEvent", patient=f"Patient/{a}", entity=f"Observation/{a_obs}") == {
        event["id"],
        created["id"],
    }
    assert fhirpy(fhir, "citizen").get("AuditEvent", event["id"])["id"] == event["id"]


def test_searches_are_audited_with_their_query(fhir: Fhir, a_obs: str) -> None:
    a = citizen_a(fhir)
    with fhir.client("doctor") as c:
        search(c, "/Observation", _id=a_obs, status="final")
    with fhir.client("auditor") as auditor:
        (event,) = _poll(auditor, entity=f"Observation/{a_obs}", subtype="search-type")
    assert event["outcome"] == "0"
    assert event["action"] == "E"
    assert _patients(event) == {f"Patient/{a}"}
    queries = [e["description"] for e in event["entity"] if "query" in e]
    assert len(queries) == 1
    assert queries[0].startswith("Observation?")
    assert f"_id={a_obs}" in queries[0]


def test_citizen_sees_no_events_about_someone_else(fhir: Fhir, b_obs: str) -> None:
    b = citizen_b(fhir)[0]
    fhirpy(fhir, "doctor").get("Observation", b_obs)
    with fhir.client("auditor") as auditor:
        (about_b,) = _poll(auditor, entity=f"Observation/{b_obs}", subtype="read")
    assert _patients(about_b) == {f"Patient/{b}"}
    citizen = fhirpy(fhir, "citizen")
    # Events naming B that A may see are A's own doings, on records that are A's too
    # (an observation about B that A performed); never someone else's look at B's record.
    a = citizen_a(fhir)
    for event in citizen.resources("AuditEvent").search(patient=f"Patient/{b}").fetch_all():
        assert _who(dict(event)).get("reference") == f"Patient/{a}", event
    assert found(citizen, "AuditEvent", entity=f"Observation/{b_obs}") == set()
    assert found(citizen, "AuditEvent", _id=about_b["id"]) == set()
    with fhir.client("citizen") as c:
        response = c.get(f"/AuditEvent/{about_b['id']}")
        assert response.status_code == 404
        assert response.json()["resourceType"] == "OperationOutcome"
    # B, though, sees it.
    b_client = fhirpy(fhir, token=citizen_b_token(fhir))
    assert about_b["id"] in found(b_client, "AuditEvent", entity=f"Observation/{b_obs}")


def test_a_search_across_patients_is_audited_per_patient(fhir: Fhir) -> None:
    a, b = citizen_a(fhir), citizen_b(fhir)[0]
    marker = tag()
    with fhir.client("doctor") as c:
        a_obs = create(c, observation(f"Patient/{a}", marker))["id"]
        b_obs = create(c, observation(f"Patient/{b}", marker))["id"]
        found_both = search(c, "/Observation", identifier=f"{TEST_SYSTEM}|{marker}")
    assert len(found_both["entry"]) == 2
    with fhir.client("auditor") as auditor:
        (about_a,) = _poll(auditor, entity=f"Observation/{a_obs}", subtype="search-type")
        (about_b,) = _poll(auditor, entity=f"Observation/{b_obs}", subtype="search-type")
    # One event per patient (IHE BALP), each naming that patient's records only.
    assert _patients(about_a) == {f"Patient/{a}"}
    assert _entities(about_a) == {f"Patient/{a}", f"Observation/{a_obs}"}
    assert _patients(about_b) == {f"Patient/{b}"}
    assert _entities(about_b) == {f"Patient/{b}", f"Observation/{b_obs}"}
    query = [e["description"] for e in about_a["entity"] if "query" in e]
    assert query == [e["description"] for e in about_b["entity"] if "query" in e]
    citizen = fhirpy(fhir, "citizen")
    assert found(citizen, "AuditEvent", entity=f"Observation/{a_obs}") == {about_a["id"]} | {
        e["id"] for e in _events_of(fhir, f"Observation/{a_obs}", "create")
    }
    assert found(citizen, "AuditEvent", entity=f"Observation/{b_obs}") == set()


def test_a_record_of_two_patients_is_audited_for_each(fhir: Fhir) -> None:
    a, b = citizen_a(fhir), citizen_b(fhir)[0]
    with fhir.client("doctor") as c:
        # About B, performed by A: in both patients' compartments.
        shared = create(
            c,
            observation(f"Patient/{b}", tag(), performer=[{"reference": f"Patient/{a}"}]),
        )["id"]
        assert c.get(f"/Observation/{shared}").status_code == 200
    entity = f"Observation/{shared}"
    created = _events_of(fhir, entity, "create")
    assert sorted(_patients(e) == {f"Patient/{a}"} for e in created) == [False, True]
    with fhir.client("auditor") as auditor:
        reads = eventually(lambda: len(_events(auditor, entity=entity, subtype="read")) == 2)
        assert reads, "no read events"
        read = _events(auditor, entity=entity, subtype="read")
    assert [_patients(e) for e in read] in (
        [{f"Patient/{a}"}, {f"Patient/{b}"}],
        [{f"Patient/{b}"}, {f"Patient/{a}"}],
    )
    citizen = fhirpy(fhir, "citizen")
    mine = citizen.resources("AuditEvent").search(entity=entity).fetch_all()
    assert len(mine) == 2  # the create and the read, as told to A
    for event in mine:
        assert _patients(dict(event)) == {f"Patient/{a}"}
        assert f"Patient/{b}" not in json.dumps(dict(event), default=str)


def test_a_transaction_across_patients_is_audited_per_patient(fhir: Fhir) -> None:
    a, b = citizen_a(fhir), citizen_b(fhir)[0]
    marker = tag()
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {
                "resource": observation(f"Patient/{who}", marker),
                "request": {"method": "POST", "url": "Observation"},
            }
            for who in (a, b)
        ],
    }
    with fhir.client("doctor") as c:
        response = c.post("/", json=bundle)
    assert response.status_code == 200, response.text
    a_obs, b_obs = (e["response"]["location"].split("/")[1] for e in response.json()["entry"])
    # Written with the change itself: there at once, no polling.
    (about_a,) = _events_of(fhir, f"Observation/{a_obs}", "transaction")
    (about_b,) = _events_of(fhir, f"Observation/{b_obs}", "transaction")
    assert _entities(about_a) == {f"Patient/{a}", f"Observation/{a_obs}"}
    assert _entities(about_b) == {f"Patient/{b}", f"Observation/{b_obs}"}
    assert about_a["action"] == about_b["action"] == "E"
    citizen = fhirpy(fhir, "citizen")
    assert found(citizen, "AuditEvent", entity=f"Observation/{b_obs}") == set()
    assert found(citizen, "AuditEvent", entity=f"Observation/{a_obs}") == {about_a["id"]}


def _events_of(fhir: Fhir, entity: str, subtype: str) -> list[dict[str, Any]]:
    with fhir.client("auditor") as auditor:
        return _events(auditor, entity=entity, subtype=subtype)


def test_auditor_sees_every_patient(fhir: Fhir, a_obs: str, b_obs: str) -> None:
    a, b = citizen_a(fhir), citizen_b(fhir)[0]
    doctor = fhirpy(fhir, "doctor")
    doctor.get("Observation", a_obs)
    doctor.get("Observation", b_obs)
    with fhir.client("auditor") as auditor:
        (read_a,) = _poll(auditor, entity=f"Observation/{a_obs}", subtype="read")
        (read_b,) = _poll(auditor, entity=f"Observation/{b_obs}", subtype="read")
        both = _events(
            auditor,
            patient=f"Patient/{a},Patient/{b}",
            entity=f"Observation/{a_obs},Observation/{b_obs}",
            subtype="read",
        )
        assert {e["id"] for e in both} == {read_a["id"], read_b["id"]}
        assert auditor.get(f"/AuditEvent/{read_b['id']}").status_code == 200


def _clients(fhir: Fhir) -> dict[str, Callable[[], httpx.Client]]:
    return {
        "doctor": lambda: fhir.client("doctor"),
        "citizen": lambda: fhir.client("citizen"),
        "auditor": lambda: fhir.client("auditor"),
        "worker": lambda: fhir.client("worker"),
        "service": lambda: bearer(fhir, system_token(fhir)),
    }


def test_nobody_changes_the_trail(fhir: Fhir, a_obs: str) -> None:
    fhirpy(fhir, "citizen").get("Observation", a_obs)
    with fhir.client("auditor") as auditor:
        (event,) = _poll(auditor, entity=f"Observation/{a_obs}", subtype="read")
    url = f"/AuditEvent/{event['id']}"
    changed = {**event, "outcome": "8"}
    for name, make in _clients(fhir).items():
        with make() as c:
            for response in (
                c.put(url, json=changed),
                c.delete(url),
                c.patch(
                    url,
                    json=[{"op": "replace", "path": "/outcome", "value": "8"}],
                    headers={"Content-Type": "application/json-patch+json"},
                ),
            ):
                assert response.status_code == 405, (name, response.request.method, response.text)
                assert response.json()["resourceType"] == "OperationOutcome"
                assert "GET" in response.headers.get("allow", "")
    with fhir.client("doctor") as c:
        response = c.post("/AuditEvent", json={k: v for k, v in event.items() if k != "id"})
        assert response.status_code == 403, response.text
    with fhir.client("auditor") as auditor:
        stored = auditor.get(url).json()
        assert stored == event


def test_a_read_outside_the_compartment_is_audited_as_a_failure(fhir: Fhir, b_obs: str) -> None:
    a = citizen_a(fhir)
    with fhir.client("citizen") as c:
        assert c.get(f"/Observation/{b_obs}").status_code == 404
    with fhir.client("auditor") as auditor:
        (event,) = _poll(auditor, entity=f"Observation/{b_obs}", outcome="4")
    assert _subtype(event) == "read"
    assert _who(event)["reference"] == f"Patient/{a}"
    assert "outcomeDesc" in event
    # The failure says nothing about whose the resource is.
    assert _patients(event) == set()
    # A sees their own failed attempt (they were the agent).
    assert event["id"] in found(
        fhirpy(fhir, "citizen"), "AuditEvent", patient=f"Patient/{a}", outcome="4"
    )


def test_a_read_refused_by_scope_is_audited_as_a_failure(fhir: Fhir, a_obs: str) -> None:
    worker_sub = _claim(fhir, "worker", "sub")
    with fhir.client("worker") as c:
        assert c.get(f"/Observation/{a_obs}").status_code == 403
    with fhir.client("auditor") as auditor:
        (event,) = _poll(auditor, entity=f"Observation/{a_obs}", outcome="4")
    assert _subtype(event) == "read"
    assert _who(event)["identifier"]["value"] == worker_sub
    assert _patients(event) == set()  # the record was never opened


def _claim(fhir: Fhir, user: str, name: str) -> Any:
    """A claim of a dev user's access token."""
    payload = fhir.token(user).split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[name]
