"""Synthetic FHIR R4 health records for the health benchmark: deterministic for a seed.

Every patient is generated from its own index (`random.Random` seeded by seed and index), so
any one of them can be regenerated without the others: the load phase and the request
targets agree on ids, names, birth dates and identifiers without keeping a list. Ids are
chosen by the client (`p000001`, `e000001`, `c000001`, `o0000001`) and written with PUT
entries in transaction Bundles.

    Dataset(patients=2_000, observations=20_000).patient(0)["name"][0]["text"]  # e.g. 张伟
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

RESIDENT_ID = "https://huimin.example/sid/resident-id"
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
ICD10 = "http://hl7.org/fhir/sid/icd-10"
OBS_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
BEIJING = timedelta(hours=8)

# (family, pinyin) and (given, pinyin); the most frequent Chinese surnames and given names.
FAMILIES = [
    ("王", "Wang"),
    ("李", "Li"),
    ("张", "Zhang"),
    ("刘", "Liu"),
    ("陈", "Chen"),
    ("杨", "Yang"),
    ("黄", "Huang"),
    ("赵", "Zhao"),
    ("吴", "Wu"),
    ("周", "Zhou"),
    ("徐", "Xu"),
    ("孙", "Sun"),
    ("马", "Ma"),
    ("朱", "Zhu"),
    ("胡", "Hu"),
    ("郭", "Guo"),
    ("何", "He"),
    ("林", "Lin"),
    ("欧阳", "Ouyang"),
    ("司马", "Sima"),
]
GIVENS = [
    ("伟", "Wei"),
    ("芳", "Fang"),
    ("娜", "Na"),
    ("秀英", "Xiuying"),
    ("敏", "Min"),
    ("静", "Jing"),
    ("丽", "Li"),
    ("强", "Qiang"),
    ("磊", "Lei"),
    ("军", "Jun"),
    ("洋", "Yang"),
    ("勇", "Yong"),
    ("艳", "Yan"),
    ("杰", "Jie"),
    ("娟", "Juan"),
    ("涛", "Tao"),
    ("明", "Ming"),
    ("超", "Chao"),
    ("秀兰", "Xiulan"),
    ("霞", "Xia"),
    ("建华", "Jianhua"),
    ("子涵", "Zihan"),
]
LATIN_FAMILIES = [
    "García",
    "Müller",
    "Lefèvre",
    "Novák",
    "Øster",
    "Smith",
    "Rossi",
    "Kowalski",
    "Andersson",
    "O'Brien",
    "Nguyễn",
    "Dubois",
    "Schröder",
    "Fernández",
    "Silva",
]
LATIN_GIVENS = [
    "José",
    "Zoë",
    "François",
    "Anna",
    "Łukasz",
    "Søren",
    "Chloé",
    "Martin",
    "Inès",
    "John",
    "Björn",
    "María",
    "Émile",
    "Lucía",
    "Ivan",
]
# Beijing districts: (name, postal code prefix, street names).
DISTRICTS = [
    ("东城区", "1000", ["东直门内大街", "王府井大街", "建国门内大街"]),
    ("西城区", "1000", ["西单北大街", "金融大街", "德胜门外大街"]),
    ("朝阳区", "1000", ["建国路", "朝阳北路", "望京街", "酒仙桥路"]),
    ("海淀区", "1000", ["中关村大街", "学院路", "知春路", "西三环北路"]),
    ("丰台区", "1000", ["丰台路", "南三环西路", "科学城路"]),
    ("石景山区", "1000", ["石景山路", "鲁谷路"]),
    ("通州区", "1011", ["新华大街", "运河西大街"]),
    ("昌平区", "1022", ["回龙观西大街", "府学路"]),
    ("大兴区", "1026", ["兴华大街", "黄村西大街"]),
    ("顺义区", "1013", ["府前街", "光明南大街"]),
    ("房山区", "1024", ["良乡西路"]),
    ("门头沟区", "1023", ["新桥大街"]),
]
# LOINC vital signs and labs: code, display, category, UCUM unit, (low, high), decimals.
VITALS = [
    ("8867-4", "Heart rate", "vital-signs", "/min", "beats/minute", (52, 118), 0),
    ("8480-6", "Systolic blood pressure", "vital-signs", "mm[Hg]", "mmHg", (95, 175), 0),
    ("8462-4", "Diastolic blood pressure", "vital-signs", "mm[Hg]", "mmHg", (55, 105), 0),
    ("29463-7", "Body weight", "vital-signs", "kg", "kg", (42, 110), 1),
    ("8302-2", "Body height", "vital-signs", "cm", "cm", (148, 192), 1),
    ("8310-5", "Body temperature", "vital-signs", "Cel", "Cel", (36.0, 38.6), 1),
    ("9279-1", "Respiratory rate", "vital-signs", "/min", "breaths/minute", (11, 24), 0),
    ("2708-6", "Oxygen saturation in Arterial blood", "vital-signs", "%", "%", (91, 100), 0),
    ("39156-5", "Body mass index (BMI) [Ratio]", "vital-signs", "kg/m2", "kg/m2", (17, 35), 1),
    ("2339-0", "Glucose [Mass/volume] in Blood", "laboratory", "mg/dL", "mg/dL", (70, 210), 0),
]
# SNOMED CT code, display, ICD-10 code, ICD-10 display.
CONDITIONS = [
    ("38341003", "Hypertensive disorder", "I10", "Essential (primary) hypertension"),
    ("44054006", "Diabetes mellitus type 2", "E11.9", "Type 2 diabetes mellitus"),
    ("195967001", "Asthma", "J45.9", "Asthma, unspecified"),
    ("13645005", "Chronic obstructive lung disease", "J44.9", "Chronic obstructive pulmonary"),
    ("35489007", "Depressive disorder", "F32.9", "Depressive episode, unspecified"),
    ("53741008", "Coronary arteriosclerosis", "I25.1", "Atherosclerotic heart disease"),
    ("55822004", "Hyperlipidemia", "E78.5", "Hyperlipidaemia, unspecified"),
    ("69896004", "Rheumatoid arthritis", "M06.9", "Rheumatoid arthritis, unspecified"),
]
ENCOUNTER_CLASSES = [("AMB", "ambulatory"), ("AMB", "ambulatory"), ("EMER", "emergency")]
ENCOUNTER_CLASSES += [("IMP", "inpatient encounter")]
FIRST_DAY = datetime(2015, 1, 1, tzinfo=UTC)  # 08:00 in Beijing: times of day are added to it
DAYS = (datetime(2025, 12, 31, tzinfo=UTC) - FIRST_DAY).days


def patient_id(i: int) -> str:
    """Id of the i-th patient (0-based): p000001, p000002, ..."""
    return f"p{i + 1:06d}"


def resident_id(i: int) -> str:
    """The resident id of the i-th patient: R- and 8 digits, unique, not sequential."""
    # 7919 is prime and coprime with 10**8, so this is a permutation of the 8-digit numbers.
    return f"R-{(i * 7919 + 12_345_678) % 10**8:08d}"


def _instant(moment: datetime) -> str:
    """An instant with Beijing's offset, to the second: 2021-03-04T09:15:00+08:00."""
    local = (moment + BEIJING).replace(tzinfo=None)
    return local.isoformat(timespec="seconds") + "+08:00"


def _quantity(value: float, unit: str, code: str, decimals: int) -> dict[str, Any]:
    number: float | int = round(value, decimals) if decimals else round(value)
    return {"value": number, "unit": unit, "system": UCUM, "code": code}


@dataclass(frozen=True)
class Record:
    """One patient with everything recorded about them."""

    patient: dict[str, Any]
    encounters: list[dict[str, Any]]
    conditions: list[dict[str, Any]]
    observations: list[dict[str, Any]]

    def resources(self) -> Iterator[dict[str, Any]]:
        """The patient first, then what refers to it."""
        yield self.patient
        yield from self.encounters
        yield from self.conditions
        yield from self.observations


@dataclass(frozen=True)
class Dataset:
    """`patients` patients and exactly `observations` observations spread over them."""

    patients: int
    observations: int
    seed: int = 20_240_501

    def rng(self, i: int, salt: int = 0) -> random.Random:
        """The random source of the i-th patient (salt: an independent stream)."""
        return random.Random((self.seed * 1_000_003 + i) * 7 + salt)

    def observation_range(self, i: int) -> range:
        """Global 0-based numbers of the i-th patient's observations."""
        base, extra = divmod(self.observations, self.patients)
        start = i * base + min(i, extra)
        return range(start, start + base + (1 if i < extra else 0))

    def patient(self, i: int) -> dict[str, Any]:
        """The i-th patient resource (0-based)."""
        r = self.rng(i)
        gender = r.choices(["male", "female", "other", "unknown"], [49, 49, 1, 1])[0]
        names: list[dict[str, Any]]
        if r.random() < 0.85:
            (family, family_py), (given, given_py) = r.choice(FAMILIES), r.choice(GIVENS)
            names = [
                {"use": "official", "text": family + given, "family": family, "given": [given]},
                {"use": "usual", "family": family_py, "given": [given_py]},
            ]
        else:
            family, given = r.choice(LATIN_FAMILIES), r.choice(LATIN_GIVENS)
            text = f"{given} {family}"
            names = [{"use": "official", "text": text, "family": family, "given": [given]}]
        born = date(1930, 1, 1) + timedelta(days=r.randrange(91 * 365))
        district, postal, streets = r.choice(DISTRICTS)
        line = (
            f"{r.choice(streets)}{r.randint(1, 300)}号{r.randint(1, 12)}单元{r.randint(101, 2806)}"
        )
        resource: dict[str, Any] = {
            "resourceType": "Patient",
            "id": patient_id(i),
            "identifier": [
                {
                    "use": "official",
                    "type": {"text": "Resident ID"},
                    "system": RESIDENT_ID,
                    "value": resident_id(i),
                }
            ],
            "active": True,
            "name": names,
            "telecom": [
                {"system": "phone", "value": f"1{r.randint(30, 99)}{r.randrange(10**8):08d}"}
            ],
            "gender": gender,
            "birthDate": born.isoformat(),
            "address": [
                {
                    "use": "home",
                    "line": [line],
                    "city": "北京市",
                    "district": district,
                    "state": "北京市",
                    "postalCode": f"{postal}{r.randint(0, 99):02d}",
                    "country": "CN",
                }
            ],
        }
        if r.random() < 0.7:
            status = r.choice([("M", "Married"), ("S", "Never Married"), ("W", "Widowed")])
            resource["maritalStatus"] = {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus",
                        "code": status[0],
                        "display": status[1],
                    }
                ]
            }
        return resource

    def counts(self, i: int) -> tuple[int, int, int]:
        """How many encounters, conditions and observations the i-th patient has."""
        r = self.rng(i, salt=2)
        return (
            r.choice([0, 0, 1, 1, 2]),
            r.choice([0, 0, 0, 1, 1, 2]),
            len(self.observation_range(i)),
        )

    def record(self, i: int) -> Record:
        """The i-th patient with encounters, conditions and observations."""
        r = self.rng(i, salt=1)
        subject = {"reference": f"Patient/{patient_id(i)}"}
        n_encounters, n_conditions, _ = self.counts(i)
        encounters = []
        for n in range(n_encounters):
            start = FIRST_DAY + timedelta(days=r.randrange(DAYS), minutes=r.randrange(600))
            cls_code, cls_display = r.choice(ENCOUNTER_CLASSES)
            hours = r.randint(1, 4) if cls_code != "IMP" else r.randint(24, 240)
            encounters.append(
                {
                    "resourceType": "Encounter",
                    "id": f"e{i + 1:06d}-{n + 1}",
                    "status": "finished",
                    "class": {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                        "code": cls_code,
                        "display": cls_display,
                    },
                    "subject": subject,
                    "period": {
                        "start": _instant(start),
                        "end": _instant(start + timedelta(hours=hours)),
                    },
                }
            )
        conditions = []
        for n, (sct, sct_name, icd, icd_name) in enumerate(r.sample(CONDITIONS, n_conditions)):
            onset = FIRST_DAY + timedelta(days=r.randrange(DAYS))
            conditions.append(
                {
                    "resourceType": "Condition",
                    "id": f"c{i + 1:06d}-{n + 1}",
                    "clinicalStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-clinical",
                                "code": "active",
                            }
                        ]
                    },
                    "verificationStatus": {
                        "coding": [
                            {
                                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                                "code": "confirmed",
                            }
                        ]
                    },
                    "code": {
                        "coding": [
                            {"system": SNOMED, "code": sct, "display": sct_name},
                            {"system": ICD10, "code": icd, "display": icd_name},
                        ],
                        "text": sct_name,
                    },
                    "subject": subject,
                    "onsetDateTime": onset.date().isoformat(),
                    "recordedDate": _instant(onset + timedelta(hours=10)),
                }
            )
        observations = [self.observation(n, r, i, encounters) for n in self.observation_range(i)]
        return Record(self.patient(i), encounters, conditions, observations)

    def observation(
        self,
        number: int | None,
        r: random.Random,
        i: int,
        encounters: list[dict[str, Any]] | None = None,
    ) -> dict[str, Any]:
        """An observation of the i-th patient; `number` None: no id (for POST)."""
        code, display, category, ucum, unit, (low, high), decimals = r.choice(VITALS)
        when = FIRST_DAY + timedelta(days=r.randrange(DAYS), seconds=r.randrange(12 * 3600))
        resource: dict[str, Any] = {"resourceType": "Observation"}
        if number is not None:
            resource["id"] = f"o{number + 1:07d}"
        resource |= {
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": OBS_CATEGORY,
                            "code": category,
                            "display": "Vital Signs" if category == "vital-signs" else "Laboratory",
                        }
                    ]
                }
            ],
            "code": {
                "coding": [{"system": LOINC, "code": code, "display": display}],
                "text": display,
            },
            "subject": {"reference": f"Patient/{patient_id(i)}"},
            "effectiveDateTime": _instant(when),
            "valueQuantity": _quantity(r.uniform(low, high), unit, ucum, decimals),
        }
        if encounters and r.random() < 0.3:
            resource["encounter"] = {"reference": f"Encounter/{r.choice(encounters)['id']}"}
        return resource

    def records(self, start: int = 0, stop: int | None = None) -> Iterator[Record]:
        """Records of patients start..stop-1 (default: all)."""
        for i in range(start, self.patients if stop is None else stop):
            yield self.record(i)
