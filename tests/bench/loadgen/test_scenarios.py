"""Scenario targets: varied, deterministic, well-formed FHIR requests."""

from __future__ import annotations

import base64
import json
from urllib.parse import parse_qs, urlsplit

from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.patient import Patient

from bench.health_data import RESIDENT_ID, Dataset, resident_id
from bench.loadgen.scenarios import BY_NAME, SCENARIOS
from bench.loadgen.vegeta import Target

DATA = Dataset(patients=300, observations=3000)
BASE = "http://127.0.0.1:9"


def targets(name: str, count: int = 200) -> list[Target]:
    return list(BY_NAME[name].targets(DATA, BASE, count, seed=1))


def query(target: Target) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(target.url).query).items()}


def test_targets_are_deterministic_and_varied():
    for scenario in SCENARIOS:
        first = list(scenario.targets(DATA, BASE, 100, seed=1))
        assert first == list(scenario.targets(DATA, BASE, 100, seed=1)), scenario.name
        assert len({(t.url, t.body) for t in first}) > 50, scenario.name


def test_identifier_search_names_existing_resident_ids():
    known = {resident_id(i) for i in range(DATA.patients)}
    for target in targets("search-identifier"):
        system, _, value = query(target)["identifier"].rpartition("|")
        assert system == RESIDENT_ID
        assert value in known


def test_name_prefixes_start_a_name_of_some_patient():
    names = [
        str(part).lower()
        for i in range(DATA.patients)
        for name in DATA.patient(i)["name"]
        for part in (name.get("text", ""), name["family"])
    ]
    for target in targets("search-name"):
        prefix = query(target)["name"].lower()
        assert any(n.startswith(prefix) for n in names), prefix


def test_observation_search_and_everything():
    params = query(targets("search-observation")[0])
    assert params["code"] == "http://loinc.org|8867-4"
    assert params["date"] == "ge2020-01-01"
    assert params["patient"].startswith("Patient/p")
    assert targets("everything")[0].url.endswith("/$everything")


def test_writes_carry_valid_resources():
    for target in targets("create", 20):
        assert target.method == "POST"
        assert target.url == f"{BASE}/Observation"
        body = json.loads(target.body or b"null")
        assert "id" not in body
        Observation.model_validate(body)
    for target in targets("update", 20):
        body = json.loads(target.body or b"null")
        assert target.method == "PUT"
        assert target.url.endswith(f"/Patient/{body['id']}")
        Patient.model_validate(body)
        assert target.headers["Content-Type"] == "application/fhir+json"
        line = json.loads(target.line())
        assert json.loads(base64.b64decode(line["body"])) == body
