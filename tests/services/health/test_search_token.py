"""Token search: `system|code`, `|code`, `system|`, `code`, `:not` (also matching resources
without the element), `:text`, identifiers and booleans, through fhirpy."""

from __future__ import annotations

from typing import Any

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    LOINC,
    TEST_SYSTEM,
    create,
    fhirpy,
    found,
    observation,
    patient,
    raw,
    tag,
)

SNOMED = "http://snomed.info/sct"
CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"


def _code(system: str | None, code: str, display: str | None = None) -> dict[str, Any]:
    coding: dict[str, Any] = {"code": code}
    if system:
        coding["system"] = system
    if display:
        coding["display"] = display
    return {"coding": [coding]}


def test_system_and_code_forms(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        pid = create(c, patient(marker))["id"]
        subject = f"Patient/{pid}"

        def obs(code: dict[str, Any]) -> str:
            return str(create(c, observation(subject, marker, code=code))["id"])

        loinc = obs(_code(LOINC, "8867-4"))
        snomed = obs(_code(SNOMED, "8867-4"))
        no_system = obs(_code(None, "8867-4"))
        loinc_other = obs(_code(LOINC, "29463-7"))
    client = fhirpy(fhir)
    assert found(client, "Observation", subject=subject, code=f"{LOINC}|8867-4") == {loinc}
    assert found(client, "Observation", subject=subject, code="|8867-4") == {no_system}
    assert found(client, "Observation", subject=subject, code=f"{LOINC}|") == {
        loinc,
        loinc_other,
    }
    assert found(client, "Observation", subject=subject, code="8867-4") == {
        loinc,
        snomed,
        no_system,
    }
    assert found(client, "Observation", subject=subject, code=f"{SNOMED}|29463-7") == set()
    assert found(client, "Observation", subject=subject, code=f"{SNOMED}|8867-4,29463-7") == {
        snomed,
        loinc_other,
    }
    assert found(client, "Observation", subject=subject, code__not=f"{LOINC}|8867-4") == {
        snomed,
        no_system,
        loinc_other,
    }
    # Codes are case-sensitive.
    assert found(client, "Observation", subject=subject, code=f"{LOINC}|8867-4".upper()) == set()


def test_not_includes_resources_without_the_element(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        pid = create(c, patient(marker))["id"]
        subject = f"Patient/{pid}"
        vital = create(c, observation(subject, marker, category=[_code(CATEGORY, "vital-signs")]))[
            "id"
        ]
        lab = create(c, observation(subject, marker, category=[_code(CATEGORY, "laboratory")]))[
            "id"
        ]
        bare = create(c, observation(subject, marker))["id"]
        female = create(c, patient(marker, gender="female"))["id"]
        male = create(c, patient(marker, gender="male"))["id"]
        unknown = create(c, patient(marker))["id"]
    client = fhirpy(fhir)
    assert found(client, "Observation", subject=subject, category="vital-signs") == {vital}
    assert found(client, "Observation", subject=subject, category__not="vital-signs") == {
        lab,
        bare,
    }
    assert found(client, "Observation", subject=subject, category__not=f"{CATEGORY}|") == {bare}
    assert found(
        client, "Observation", subject=subject, category__not="vital-signs,laboratory"
    ) == {bare}
    scope = f"{TEST_SYSTEM}|{marker}"
    assert found(client, "Patient", identifier=scope, gender__not="male") == {pid, female, unknown}
    assert found(client, "Patient", identifier=scope, gender="male") == {male}
    assert found(client, "Patient", identifier=scope, gender="male,female") == {male, female}


def test_text_searches_display_and_concept_text(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        pid = create(c, patient(marker))["id"]
        subject = f"Patient/{pid}"
        heart = create(c, observation(subject, marker, code=_code(LOINC, "8867-4", "Heart rate")))[
            "id"
        ]
        glucose = create(
            c,
            observation(
                subject,
                marker,
                code={**_code(LOINC, "2339-0", "Glucose [Mass/volume] in Blood"), "text": "血糖"},
            ),
        )["id"]
        pressure = create(c, observation(subject, marker, code={"text": "Blood pressure (home)"}))[
            "id"
        ]
    client = fhirpy(fhir)
    assert found(client, "Observation", subject=subject, code__text="heart") == {heart}
    assert found(client, "Observation", subject=subject, code__text="HEART RATE") == {heart}
    assert found(client, "Observation", subject=subject, code__text="blood") == {
        glucose,
        pressure,
    }
    assert found(client, "Observation", subject=subject, code__text="血糖") == {glucose}
    assert found(client, "Observation", subject=subject, code__text="pressure,glucose") == {
        glucose,
        pressure,
    }
    assert found(client, "Observation", subject=subject, code__text="cholesterol") == set()


def test_identifier(fhir: Fhir) -> None:
    marker = tag()
    mrn = "https://hospital.example/mrn"
    value = tag()
    with fhir.client("doctor") as c:
        with_mrn = create(c, patient(marker, identifier=[{"system": mrn, "value": value}]))["id"]
        other_system = create(
            c,
            patient(marker, identifier=[{"system": "https://other.example/id", "value": value}]),
        )["id"]
        no_system = create(c, patient(marker, identifier=[{"value": value}]))["id"]
        second = create(c, patient(marker, identifier=[{"system": mrn, "value": tag()}]))["id"]
    client = fhirpy(fhir)
    assert found(client, "Patient", identifier=f"{mrn}|{value}") == {with_mrn}
    assert found(client, "Patient", identifier=value) == {with_mrn, other_system, no_system}
    assert found(client, "Patient", identifier=f"|{value}") == {no_system}
    assert with_mrn in found(client, "Patient", identifier=f"{mrn}|")
    assert second in found(client, "Patient", identifier=f"{mrn}|")
    assert found(client, "Patient", identifier=f"{mrn}|{value}", _id=second) == set()
    # Identifier values are exact: no prefix matching.
    assert found(client, "Patient", identifier=f"{mrn}|{value[:-1]}") == set()


def test_booleans_and_repeated_parameters(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        active = create(c, patient(marker, active=True, gender="male"))["id"]
        inactive = create(c, patient(marker, active=False, gender="male"))["id"]
        unset = create(c, patient(marker, gender="female"))["id"]
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"
    assert found(client, "Patient", identifier=scope, active=True) == {active}
    assert found(client, "Patient", identifier=scope, active=False) == {inactive}
    assert found(client, "Patient", identifier=scope, active__not=True) == {inactive, unset}
    assert found(client, "Patient", raw(gender=["male", "male,female"]), identifier=scope) == {
        active,
        inactive,
    }
