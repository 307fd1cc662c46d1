"""Demo records for the dev stack (`make run`): a few patients and their records.

One patient carries resident id R-00000001, the dev user `citizen`'s, so the README's
examples work for both a clinician and a citizen. Loaded as one transaction Bundle of
conditional creates, so restarting the dev stack does not duplicate anything.
"""

from __future__ import annotations

from typing import Any

from services.health.access import RESIDENT_ID_SYSTEM, Access
from services.health.bundles import BundleProcessor
from services.health.searching import Base
from services.health.service import Caller
from shared.auth.principal import Principal

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
DEMO_PRINCIPAL = Principal(
    subject="huimin-health-demo",
    username="demo-loader",
    roles=frozenset({"service"}),
    scopes=frozenset({"system/*.cruds"}),
    client_id="huimin-health",
)

_PATIENTS: list[tuple[str, str, str, str, str, str]] = [
    # resident id, family, given, text, gender, birthDate
    ("R-00000001", "张", "伟", "张伟", "male", "1980-05-03"),
    ("R-00000002", "王", "芳", "王芳", "female", "1975-11-20"),
    ("R-00000003", "Müller", "José", "José Müller", "male", "1992-02-29"),
]


def _patient(i: int, row: tuple[str, str, str, str, str, str]) -> dict[str, Any]:
    resident, family, given, text, gender, birth = row
    return {
        "fullUrl": f"urn:uuid:00000000-0000-4000-8000-00000000000{i}",
        "resource": {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": resident}],
            "name": [{"use": "official", "family": family, "given": [given], "text": text}],
            "gender": gender,
            "birthDate": birth,
            "address": [{"city": "北京市", "district": "东城区", "country": "CN"}],
        },
        "request": {
            "method": "POST",
            "url": "Patient",
            "ifNoneExist": f"identifier={RESIDENT_ID_SYSTEM}|{resident}",
        },
    }


def _observation(
    patient: int, n: int, code: str, display: str, value: float, unit: str, when: str
) -> dict[str, Any]:
    ident = f"demo-obs-{patient}-{n}"
    return {
        "resource": {
            "resourceType": "Observation",
            "identifier": [{"system": "https://huimin.example/sid/demo", "value": ident}],
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "vital-signs",
                        }
                    ]
                }
            ],
            "code": {"coding": [{"system": LOINC, "code": code, "display": display}]},
            "subject": {"reference": f"urn:uuid:00000000-0000-4000-8000-00000000000{patient}"},
            "effectiveDateTime": when,
            "valueQuantity": {"value": value, "unit": unit, "system": UCUM, "code": unit},
        },
        "request": {
            "method": "POST",
            "url": "Observation",
            "ifNoneExist": f"identifier=https://huimin.example/sid/demo|{ident}",
        },
    }


def demo_bundle() -> dict[str, Any]:
    """The demo records as one transaction Bundle."""
    entries = [_patient(i, row) for i, row in enumerate(_PATIENTS, start=1)]
    entries += [
        _observation(1, 1, "8867-4", "Heart rate", 72, "/min", "2026-10-01T09:30:00+08:00"),
        _observation(
            1, 2, "8480-6", "Systolic blood pressure", 128, "mm[Hg]", "2026-10-01T09:30:00+08:00"
        ),
        _observation(1, 3, "29463-7", "Body weight", 71.5, "kg", "2026-10-01T09:30:00+08:00"),
        _observation(2, 1, "8867-4", "Heart rate", 80, "/min", "2026-09-12T15:00:00+08:00"),
        _observation(
            3,
            1,
            "2339-0",
            "Glucose [Mass/volume] in Blood",
            5.4,
            "mmol/L",
            "2026-08-30T08:00:00+02:00",
        ),
    ]
    entries.append(
        {
            "resource": {
                "resourceType": "Condition",
                "identifier": [
                    {"system": "https://huimin.example/sid/demo", "value": "demo-cond-1"}
                ],
                "clinicalStatus": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                            "code": "active",
                        }
                    ]
                },
                "code": {
                    "coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]
                },
                "subject": {"reference": "urn:uuid:00000000-0000-4000-8000-000000000001"},
                "onsetDateTime": "2024-03-01",
            },
            "request": {
                "method": "POST",
                "url": "Condition",
                "ifNoneExist": "identifier=https://huimin.example/sid/demo|demo-cond-1",
            },
        }
    )
    return {"resourceType": "Bundle", "type": "transaction", "entry": entries}


async def load_demo(bundles: BundleProcessor, base_url: str) -> int:
    """Load the demo records (idempotent); the number of entries processed."""
    caller = Caller(DEMO_PRINCIPAL, Access(DEMO_PRINCIPAL), None)
    response = await bundles.process(caller, demo_bundle(), Base(base_url))
    return len(response["entry"])
