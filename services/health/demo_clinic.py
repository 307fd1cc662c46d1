"""The larger, generated part of the dev stack's health demo: clinical records for the
registry's generated demo residents (services/registry/demo_town.py, R-00000031 onwards).

Each patient gets a visit to the community health centre (Encounter) with vital signs
measured there (Observations), a seasonal influenza vaccination (Immunization), and some a
chronic condition. Patients are conditional creates carrying only the resident id: the
registry's event feed fills in names, sex and birth date (services/health/residents.py),
whichever of the two comes first. Services never import each other, so the ids are
agreed by number (the dev stack sets both counts), not by shared code. Generated from a
fixed seed; every entry is a conditional create on a demo identifier, so loading twice
writes nothing new. Loaded only with `HUIMIN_DEMO_PATIENTS` above 0.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from services.health.access import RESIDENT_ID_SYSTEM, Access
from services.health.bundles import BundleProcessor
from services.health.demo import DEMO_PRINCIPAL, LOINC, SNOMED, UCUM
from services.health.searching import Base
from services.health.service import Caller

SEED = 20261127
FIRST_NUMBER = 31  # the registry's first generated resident (after its 30 hand-written ones)
PATIENTS_PER_BUNDLE = 50  # six entries at most each: under the 400-entry bundle limit
DEMO_SYSTEM = "https://huimin.example/sid/demo"
CVX = "http://hl7.org/fhir/sid/cvx"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"
CLINICAL = "http://terminology.hl7.org/CodeSystem/condition-clinical"
VITALS = "http://terminology.hl7.org/CodeSystem/observation-category"
CONDITIONS = [
    ("38341003", "Hypertension"),
    ("44054006", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma"),
    ("55822004", "Hyperlipidemia"),
]


def _identifier(value: str) -> list[dict[str, str]]:
    return [{"system": DEMO_SYSTEM, "value": value}]


def _conditional(
    resource: dict[str, Any], ident: str, full_url: str | None = None
) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": resource,
        "request": {
            "method": "POST",
            "url": resource["resourceType"],
            "ifNoneExist": f"identifier={DEMO_SYSTEM}|{ident}",
        },
    }
    if full_url:
        entry["fullUrl"] = full_url
    return entry


def _vital(
    ref: dict[str, str],
    enc: dict[str, str],
    key: str,
    code: str,
    name: str,
    value: float,
    unit: str,
    when: str,
) -> dict[str, Any]:
    return _conditional(
        {
            "resourceType": "Observation",
            "identifier": _identifier(key),
            "status": "final",
            "category": [{"coding": [{"system": VITALS, "code": "vital-signs"}]}],
            "code": {"coding": [{"system": LOINC, "code": code, "display": name}]},
            "subject": ref,
            "encounter": enc,
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        },
        key,
    )


def patient_entries(number: int, rng: random.Random) -> list[dict[str, Any]]:
    """The entries of one generated patient: Patient, Encounter, vitals, Immunization and
    perhaps a Condition."""
    resident = f"R-{number:08d}"
    key = f"demo-town-{number}"
    patient_url = f"urn:uuid:00000000-0000-4000-9000-{number:012d}"
    encounter_url = f"urn:uuid:00000000-0000-4000-a000-{number:012d}"
    ref, enc = {"reference": patient_url}, {"reference": encounter_url}
    start = datetime(2026, 9, 1, 8, 30) + timedelta(
        days=rng.randrange(80), minutes=rng.randrange(480)
    )
    when = start.isoformat() + "+08:00"
    entries = [
        {
            "fullUrl": patient_url,
            "resource": {
                "resourceType": "Patient",
                "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": resident}],
            },
            "request": {
                "method": "POST",
                "url": "Patient",
                "ifNoneExist": f"identifier={RESIDENT_ID_SYSTEM}|{resident}",
            },
        },
        _conditional(
            {
                "resourceType": "Encounter",
                "identifier": _identifier(f"{key}-enc"),
                "status": "finished",
                "class": {"system": ACT_CODE, "code": "AMB", "display": "ambulatory"},
                "subject": ref,
                "period": {
                    "start": when,
                    "end": (start + timedelta(minutes=20)).isoformat() + "+08:00",
                },
                "serviceProvider": {"display": "社区卫生服务中心"},
            },
            f"{key}-enc",
            encounter_url,
        ),
        _vital(ref, enc, f"{key}-hr", "8867-4", "Heart rate", rng.randint(58, 96), "/min", when),
        _vital(
            ref,
            enc,
            f"{key}-sbp",
            "8480-6",
            "Systolic blood pressure",
            rng.randint(105, 165),
            "mm[Hg]",
            when,
        ),
        _conditional(
            {
                "resourceType": "Immunization",
                "identifier": _identifier(f"{key}-imm"),
                "status": "completed",
                "vaccineCode": {
                    "coding": [
                        {"system": CVX, "code": "141", "display": "Influenza, seasonal, injectable"}
                    ]
                },
                "patient": ref,
                "encounter": enc,
                "occurrenceDateTime": when,
            },
            f"{key}-imm",
        ),
    ]
    if rng.random() < 0.4:
        code, name = rng.choice(CONDITIONS)
        onset = datetime(2010, 1, 1) + timedelta(days=rng.randrange(5000))
        entries.append(
            _conditional(
                {
                    "resourceType": "Condition",
                    "identifier": _identifier(f"{key}-cond"),
                    "clinicalStatus": {"coding": [{"system": CLINICAL, "code": "active"}]},
                    "code": {"coding": [{"system": SNOMED, "code": code, "display": name}]},
                    "subject": ref,
                    "onsetDateTime": onset.date().isoformat(),
                },
                f"{key}-cond",
            )
        )
    return entries


def clinic_bundles(count: int) -> list[dict[str, Any]]:
    """Transaction Bundles with the records of the first `count` generated patients."""
    rng = random.Random(SEED)
    bundles = []
    for first in range(0, count, PATIENTS_PER_BUNDLE):
        entries = []
        for number in range(
            FIRST_NUMBER + first, FIRST_NUMBER + min(count, first + PATIENTS_PER_BUNDLE)
        ):
            entries += patient_entries(number, rng)
        bundles.append({"resourceType": "Bundle", "type": "transaction", "entry": entries})
    return bundles


async def load_clinic(bundles: BundleProcessor, base_url: str, count: int) -> int:
    """Load the generated records (idempotent); the number of entries processed."""
    caller = Caller(DEMO_PRINCIPAL, Access(DEMO_PRINCIPAL), None)
    processed = 0
    for bundle in clinic_bundles(count):
        response = await bundles.process(caller, bundle, Base(base_url))
        processed += len(response["entry"])
    return processed
