"""Reference search: `Type/id`, a bare id, an absolute URL, the `:Type` modifier, and chained
parameters (`subject:Patient.name=`, `patient.identifier=`), through fhirpy and httpx."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    TEST_SYSTEM,
    create,
    fhirpy,
    found,
    observation,
    patient,
    raw,
    search,
    tag,
    word,
)


@dataclass
class World:
    """Two patients with observations, an encounter, and a group subject."""

    marker: str
    family: str
    ann: str  # Patient ids
    bob: str
    ann_obs: set[str]  # Observation ids
    bob_obs: str
    group_obs: str
    encounter: str
    encounter_obs: str


@pytest.fixture
def world(fhir: Fhir) -> World:
    marker, family = tag(), word()
    with fhir.client("doctor") as c:
        ann = create(c, patient(marker, name=[{"family": family, "given": ["Ann"]}]))["id"]
        bob = create(c, patient(marker, name=[{"family": word(), "given": ["Bob"]}]))["id"]
        encounter = create(
            c,
            {
                "resourceType": "Encounter",
                "status": "finished",
                "class": {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                    "code": "AMB",
                },
                "subject": {"reference": f"Patient/{ann}"},
            },
        )["id"]
        ann_obs = {create(c, observation(f"Patient/{ann}", marker))["id"] for _ in range(2)}
        encounter_obs = create(
            c,
            observation(
                f"Patient/{ann}", marker, encounter={"reference": f"Encounter/{encounter}"}
            ),
        )["id"]
        bob_obs = create(c, observation(f"Patient/{bob}", marker))["id"]
        # A Group with the same id as Ann's Patient: `subject=<id>` means any type.
        group_obs = create(c, observation(f"Group/{ann}", marker))["id"]
    return World(
        marker,
        family,
        ann,
        bob,
        {*ann_obs, encounter_obs},
        bob_obs,
        group_obs,
        encounter,
        encounter_obs,
    )


def test_reference_forms(fhir: Fhir, world: World) -> None:
    client = fhirpy(fhir)
    ann, w = world.ann, world
    assert found(client, "Observation", subject=f"Patient/{ann}") == w.ann_obs
    assert found(client, "Observation", patient=f"Patient/{ann}") == w.ann_obs
    assert found(client, "Observation", patient=ann) == w.ann_obs
    # A bare id matches every type the parameter may point at (here Patient and Group).
    assert found(client, "Observation", subject=ann) == {*w.ann_obs, w.group_obs}
    assert found(client, "Observation", subject__Patient=ann) == w.ann_obs
    assert found(client, "Observation", subject__Group=ann) == {w.group_obs}
    assert found(client, "Observation", subject=f"{fhir.base}/Patient/{ann}") == w.ann_obs
    assert found(client, "Observation", subject=f"Patient/{ann}/_history/1") == w.ann_obs
    assert found(client, "Observation", subject=f"Patient/{ann},Patient/{w.bob}") == {
        *w.ann_obs,
        w.bob_obs,
    }
    assert found(client, "Observation", encounter=f"Encounter/{w.encounter}") == {w.encounter_obs}
    assert found(client, "Observation", subject=f"Patient/{ann}", encounter=w.encounter) == {
        w.encounter_obs
    }
    assert found(client, "Encounter", patient=ann) == {w.encounter}
    assert found(client, "Observation", subject="Patient/does-not-exist") == set()


def test_fhirpy_references_as_values(fhir: Fhir, world: World) -> None:
    client = fhirpy(fhir)
    ann = client.reference("Patient", world.ann)
    assert found(client, "Observation", subject=ann) == world.ann_obs
    resource = client.resources("Patient").search(_id=world.ann).get()
    assert found(client, "Observation", patient=resource) == world.ann_obs


def test_wrong_type_modifiers_are_refused(fhir: Fhir, world: World) -> None:
    with fhir.client("doctor") as c:
        for params in (
            {"subject:Practitioner": world.ann},  # subject never points at a Practitioner
            {"subject:Group": f"Patient/{world.ann}"},  # modifier and reference disagree
        ):
            response = c.get("/Observation", params=params)
            assert response.status_code == 400, (params, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"


def test_chained_name_and_identifier(fhir: Fhir, world: World) -> None:
    client = fhirpy(fhir)
    w = world
    assert found(client, "Observation", subject__Patient__name=w.family) == w.ann_obs
    assert found(client, "Observation", raw(**{"subject:Patient.family": w.family})) == w.ann_obs
    assert found(client, "Observation", patient__name=w.family) == w.ann_obs
    scope = f"{TEST_SYSTEM}|{w.marker}"
    assert found(client, "Observation", patient__identifier=scope) == {*w.ann_obs, w.bob_obs}
    assert found(client, "Observation", patient__identifier=scope, patient=w.bob) == {w.bob_obs}
    assert found(client, "Encounter", patient__name=w.family) == {w.encounter}
    assert found(client, "Observation", patient__name=word()) == set()
    # A chain and a direct criterion together.
    assert found(
        client, "Observation", patient__name=w.family, encounter=f"Encounter/{w.encounter}"
    ) == {w.encounter_obs}


def test_chain_needs_a_type_when_the_reference_has_several(fhir: Fhir, world: World) -> None:
    with fhir.client("doctor") as c:
        response = c.get("/Observation", params={"subject.name": world.family})
        assert response.status_code == 400, response.text
        assert response.json()["resourceType"] == "OperationOutcome"
        response = c.get("/Observation", params={"subject:Patient.nosuchparam": "x"})
        assert response.status_code == 400, response.text
        # An unknown chain head is an unknown parameter: ignored (and left out of the links).
        bundle = search(c, "/Observation", **{"nosuch.name": "x", "patient": world.bob})
        assert {e["resource"]["id"] for e in bundle["entry"]} == {world.bob_obs}
        assert "nosuch" not in bundle["link"][0]["url"]
