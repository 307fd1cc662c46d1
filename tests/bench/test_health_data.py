"""The health benchmark's synthetic data: deterministic, valid FHIR R4 (R4B models), and
consistent ids and references."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from fhir.resources.R4B import get_fhir_model_class

from bench.health_data import LOINC, RESIDENT_ID, UCUM, Dataset, patient_id, resident_id

SMALL = Dataset(patients=80, observations=900)


def everything(data: Dataset) -> list[dict[str, Any]]:
    return [resource for record in data.records() for resource in record.resources()]


def test_same_seed_same_data_other_seed_other_data():
    again = Dataset(patients=80, observations=900)
    assert everything(again) == everything(SMALL)
    other = Dataset(patients=80, observations=900, seed=1)
    assert everything(other) != everything(SMALL)
    assert [other.patient(i)["name"] for i in range(80)] != [
        SMALL.patient(i)["name"] for i in range(80)
    ]


def test_one_patient_is_generated_alike_alone_and_in_sequence():
    assert SMALL.record(41) == next(iter(SMALL.records(41, 42)))
    assert SMALL.record(41).patient == SMALL.patient(41)


def test_every_resource_is_valid_r4():
    resources = everything(Dataset(patients=60, observations=600))
    for resource in resources:  # a ValidationError names the resource type and field
        model = get_fhir_model_class(resource["resourceType"])
        assert model.model_validate(resource).model_dump()["id"] == resource["id"]
    assert len(resources) > 700


def test_counts_ids_and_references():
    resources = everything(SMALL)
    types = Counter(r["resourceType"] for r in resources)
    assert types["Patient"] == 80
    assert types["Observation"] == 900
    assert types["Encounter"] > 0
    assert types["Condition"] > 0
    ids = {f"{r['resourceType']}/{r['id']}" for r in resources}
    assert len(ids) == len(resources)
    for resource in resources:
        for field in ("subject", "encounter"):
            if field in resource:
                assert resource[field]["reference"] in ids


def test_observation_ranges_cover_every_observation_once():
    data = Dataset(patients=7, observations=30)
    numbers = [n for i in range(7) for n in data.observation_range(i)]
    assert numbers == list(range(30))


def test_patients_look_real():
    patients = [SMALL.patient(i) for i in range(SMALL.patients)]
    assert patient_id(0) == "p000001" == patients[0]["id"]
    values = [p["identifier"][0]["value"] for p in patients]
    assert all(p["identifier"][0]["system"] == RESIDENT_ID for p in patients)
    assert all(re.fullmatch(r"R-\d{8}", v) for v in values)
    assert len(set(values)) == len(values)
    assert values[5] == resident_id(5)
    texts = [p["name"][0]["text"] for p in patients]
    assert any(re.fullmatch(r"[\u4e00-\u9fff]{2,4}", t) for t in texts)  # 汉字 names
    assert any(re.search(r"[À-ž]", t) for t in texts)  # Latin names with accents
    assert {p["address"][0]["city"] for p in patients} == {"北京市"}
    assert all(p["address"][0]["district"].endswith("区") for p in patients)
    assert {p["gender"] for p in patients} >= {"male", "female"}


def test_observations_are_loinc_with_ucum_quantities_over_years():
    observations = [o for r in SMALL.records() for o in r.observations]
    codes = {o["code"]["coding"][0]["code"] for o in observations}
    assert {"8867-4", "8480-6", "8462-4", "29463-7", "8310-5", "2339-0"} <= codes
    assert all(o["code"]["coding"][0]["system"] == LOINC for o in observations)
    assert all(o["valueQuantity"]["system"] == UCUM for o in observations)
    years = {o["effectiveDateTime"][:4] for o in observations}
    assert len(years) >= 8
