"""Shared identity end to end (issue 5's acceptance test), everything real: Keycloak with
the huimin realm, FerretDB under both services, the registry and the health service as
processes validating Keycloak's tokens and talking to each other over HTTP with their own
client credentials.

A community worker registers a resident and asks for an account; the health service
creates the linked Patient from the registry's feed; an administrator sets the new
citizen's password through the admin API; the citizen logs in (password grant) and reads
their own Patient and registry record, and nothing of anyone else's.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from tests.fixtures.e2e import (
    Tokens,
    api,
    drop_citizen_accounts,
    kc_admin,
    mongo_database,
    start_health,
    start_registry,
    wait_until,
)
from tests.fixtures.ferretdb import drop_database
from tests.fixtures.registry import new_resident
from tools.ferretdb import FerretDB
from tools.keycloak import Keycloak
from tools.service_server import ServiceServer

pytestmark = [pytest.mark.keycloak, pytest.mark.mongo, pytest.mark.slow]

RESIDENT_SYSTEM = "https://huimin.example/sid/resident-id"
CITIZEN_PASSWORD = "Citizen-e2e-2024!"
OTHER_RESIDENT = "R-00000002"  # a demo resident of the same community, no relation
# The health service creates Patients from the feed in the background: bounded wait.
PATIENT_TIMEOUT = 90.0


@dataclass
class Suite:
    registry: ServiceServer
    health: ServiceServer
    tokens: Tokens


@pytest.fixture(scope="module")
def suite(
    keycloak: Keycloak, ferretdb: FerretDB, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Suite]:
    """Registry (demo data, citizen accounts) and health (consuming the registry's feed),
    each in its own FerretDB database, both on the session's Keycloak."""
    drop_citizen_accounts(keycloak)
    registry_db, registry_url = mongo_database(ferretdb, "e2ereg")
    health_db, health_url = mongo_database(ferretdb, "e2ehealth")
    registry = start_registry(
        keycloak, tmp_path_factory.mktemp("e2e-registry"), registry_url, accounts=True
    )
    try:
        health = start_health(
            keycloak, tmp_path_factory.mktemp("e2e-health"), health_url, f"{registry.url}/events"
        )
        try:
            yield Suite(registry, health, Tokens(keycloak))
        finally:
            health.stop()
    finally:
        registry.stop()
        drop_citizen_accounts(keycloak)
        drop_database(ferretdb, registry_db)
        drop_database(ferretdb, health_db)


def _patients(bundle: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        e["resource"]
        for e in bundle.get("entry", [])
        if e.get("search", {}).get("mode") != "include"
    ]


def _resident_ids(patient: dict[str, Any]) -> set[str]:
    return {i["value"] for i in patient.get("identifier", []) if i.get("system") == RESIDENT_SYSTEM}


def test_registered_resident_gets_one_login_to_registry_and_health(
    suite: Suite, keycloak: Keycloak
) -> None:
    tokens = suite.tokens
    # 1. The worker registers a resident of their community and asks for an account.
    body = new_resident(name={"zh": "赵敏", "latin": "Zhao Min"})
    with api(suite.registry.url, tokens.get("worker")) as worker:
        r = worker.post("/residents", json=body)
        assert r.status_code == 201, r.text
        rid = r.json()["id"]
        email = f"{rid.lower()}@citizens.test.huimin.example"
        r = worker.post(f"/residents/{rid}/account", json={"email": email})
        assert r.status_code == 201, r.text
        account = r.json()
        assert account["username"] == rid.lower()

    # 2. The health service shows a Patient linked to the resident (from the feed).
    with api(suite.health.url, tokens.get("doctor", scope="user/*.cruds")) as doctor:

        def linked() -> list[dict[str, Any]]:
            r = doctor.get("/Patient", params={"identifier": f"{RESIDENT_SYSTEM}|{rid}"})
            assert r.status_code == 200, r.text
            return _patients(r.json())

        found = wait_until(linked, timeout=PATIENT_TIMEOUT)
        assert len(found) == 1, f"no Patient for {rid} within {PATIENT_TIMEOUT:.0f}s"
        patient = found[0]
        assert patient["birthDate"] == body["birth_date"]
        other = doctor.get("/Patient", params={"identifier": f"{RESIDENT_SYSTEM}|{OTHER_RESIDENT}"})
        assert other.status_code == 200
        others = _patients(other.json())
        assert len(others) == 1, "the demo residents' Patients came through the feed too"
        other_patient = others[0]

    # 3. An administrator sets the password through the admin API (the registry never does:
    # the account was created with the required action UPDATE_PASSWORD).
    admin = kc_admin(keycloak)
    user = admin.get_user(account["user_id"])
    assert user["requiredActions"] == ["UPDATE_PASSWORD"]
    admin.set_user_password(account["user_id"], CITIZEN_PASSWORD, temporary=False)

    # 4. The citizen logs in once; the token names their resident id and role.
    registry_token = tokens.get(rid.lower(), CITIZEN_PASSWORD)
    fhir_token = tokens.get(email, CITIZEN_PASSWORD, scope="patient/*.rs")  # email login too

    # ... reads their own Patient, and no one else's.
    with api(suite.health.url, fhir_token) as citizen_fhir:
        own = citizen_fhir.get(f"/Patient/{patient['id']}")
        assert own.status_code == 200, own.text
        assert _resident_ids(own.json()) == {rid}
        everyone = citizen_fhir.get("/Patient")
        assert everyone.status_code == 200, everyone.text
        assert [p["id"] for p in _patients(everyone.json())] == [patient["id"]]
        assert citizen_fhir.get(f"/Patient/{other_patient['id']}").status_code in (403, 404)
        search_other = citizen_fhir.get(
            "/Patient", params={"identifier": f"{RESIDENT_SYSTEM}|{OTHER_RESIDENT}"}
        )
        assert search_other.status_code in (200, 403)
        if search_other.status_code == 200:
            assert _patients(search_other.json()) == []
        by_id = citizen_fhir.get("/Patient", params={"_id": other_patient["id"]})
        assert by_id.status_code in (200, 403)
        if by_id.status_code == 200:
            assert _patients(by_id.json()) == []

    # ... reads their own registry record in full, and no one else's.
    with api(suite.registry.url, registry_token) as citizen:
        me = citizen.get(f"/residents/{rid}")
        assert me.status_code == 200, me.text
        assert me.json()["masked"] is False
        assert me.json()["national_id"] == body["national_id"]
        assert citizen.get(f"/residents/{rid}/account").json()["user_id"] == account["user_id"]
        assert citizen.get(f"/residents/{OTHER_RESIDENT}").status_code == 404
        assert citizen.get("/residents/R-00000001").status_code == 404
        listed = citizen.get("/residents")
        assert listed.status_code == 200, listed.text
        assert [item["id"] for item in listed.json()["items"]] == [rid]
        # A citizen may not make accounts, not even their own again.
        assert citizen.post(f"/residents/{rid}/account").status_code == 403
