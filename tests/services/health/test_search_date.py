"""Date search with every prefix, at the precision each value is written in: birth dates
(year, month, day) and Observation dates (instants with zones, periods, open periods).

A value stands for a range ("1990" is the whole year); `eq` means the search range holds the
resource's, `gt`/`lt` that the resource's range reaches past it, `sa`/`eb` that it lies
wholly after/before it, `ne` the opposite of `eq`, `ap` within about 10% of the distance
from now.
"""

from __future__ import annotations

from typing import Any

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
)
from tests.services.health.helpers import tag as new_tag

BIRTHS = {
    "late_1989": "1989-12-31",
    "new_year_1990": "1990-01-01",
    "june_15_1990": "1990-06-15",
    "june_1990": "1990-06",  # month precision
    "year_1990": "1990",  # year precision
    "march_1991": "1991-03-03",
    "far_before": "1980-01-01",
    "far_after": "2000-05-05",
    "unknown": None,  # no birth date: no comparison matches it, `ne` included
}

BIRTHDATE_CASES = [
    ("1990", {"new_year_1990", "june_15_1990", "june_1990", "year_1990"}),
    ("eq1990", {"new_year_1990", "june_15_1990", "june_1990", "year_1990"}),
    ("1990-06", {"june_15_1990", "june_1990"}),
    ("1990-06-15", {"june_15_1990"}),
    ("1990-06-16", set()),
    ("ne1990", {"late_1989", "march_1991", "far_before", "far_after"}),
    ("gt1990", {"march_1991", "far_after"}),
    ("gt1990-06", {"march_1991", "far_after", "year_1990"}),
    ("lt1990-06", {"late_1989", "new_year_1990", "year_1990", "far_before"}),
    ("ge1990-06", {"june_15_1990", "june_1990", "year_1990", "march_1991", "far_after"}),
    (
        "le1990-06",
        {"late_1989", "new_year_1990", "june_15_1990", "june_1990", "year_1990", "far_before"},
    ),
    ("sa1990-06", {"march_1991", "far_after"}),
    ("eb1990-06", {"late_1989", "new_year_1990", "far_before"}),
    ("le1989-12-31", {"late_1989", "far_before"}),
    ("lt1989-12-31", {"far_before"}),
    ("ge1991-03-03", {"march_1991", "far_after"}),
    ("gt1991-03-03", {"far_after"}),
    # ap: about 10% of the distance from now (a few years around 1990); 1980 and 2000 are out.
    ("ap1990-06-15", set(BIRTHS) - {"far_before", "far_after", "unknown"}),
]


@pytest.fixture
def births(fhir: Fhir) -> tuple[str, dict[str, str]]:
    """Patients born on each of BIRTHS, and the test identifier that scopes them."""
    marker = new_tag()
    with fhir.client("doctor") as c:
        made = {
            k: create(c, patient(marker, **({"birthDate": v} if v else {})))["id"]
            for k, v in BIRTHS.items()
        }
    return marker, made


def test_birthdate_prefixes_and_precision(fhir: Fhir, births: tuple[str, dict[str, str]]) -> None:
    marker, made = births
    client = fhirpy(fhir)
    name_of = {v: k for k, v in made.items()}
    for value, expected in BIRTHDATE_CASES:
        got = found(client, "Patient", identifier=f"{TEST_SYSTEM}|{marker}", birthdate=value)
        assert {name_of.get(i, i) for i in got} == expected, value


def test_birthdate_range_and_or(fhir: Fhir, births: tuple[str, dict[str, str]]) -> None:
    marker, made = births
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"
    between = found(
        client, "Patient", raw(birthdate=["ge1990-01-01", "lt1990-07"]), identifier=scope
    )
    assert between == {made[k] for k in ("new_year_1990", "june_15_1990", "june_1990", "year_1990")}
    either = found(client, "Patient", identifier=scope, birthdate="1980-01-01,2000-05")
    assert either == {made["far_before"], made["far_after"]}
    # fhirpy's operator spelling produces the same query.
    assert found(client, "Patient", identifier=scope, birthdate__sa="1990-12-31") == {
        made["march_1991"],
        made["far_after"],
    }


def test_bad_dates_are_refused(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        for value in ("1990-13", "gt19900101", "2021-06-15T10:30:00", "yesterday"):
            response = c.get("/Patient", params={"birthdate": value})
            assert response.status_code == 400, (value, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"


EFFECTIVE: dict[str, dict[str, Any]] = {
    # 10:30 in Beijing is 02:30 UTC on the same day.
    "beijing_morning": {"effectiveDateTime": "2021-06-15T10:30:00+08:00"},
    # 23:30 on the 14th in Bogotá is 04:30 UTC on the 15th.
    "bogota_evening": {"effectiveDateTime": "2021-06-14T23:30:00-05:00"},
    "ten_days": {"effectivePeriod": {"start": "2021-06-10", "end": "2021-06-20"}},
    "open_from_july": {"effectivePeriod": {"start": "2021-07-01T00:00:00Z"}},
    "may": {"effectiveDateTime": "2021-05"},
    "long_before": {"effectiveDateTime": "2019-01-01"},
    "long_after": {"effectiveInstant": "2024-01-01T00:00:00.000Z"},
    "undated": {},  # no effective[x]: no comparison matches it, `ne` included
}

OBSERVATION_CASES = [
    ("2021-06-15", {"beijing_morning", "bogota_evening"}),
    ("2021-06-15T10:30:00+08:00", {"beijing_morning"}),
    ("2021-06-15T02:30:00Z", {"beijing_morning"}),
    ("2021-06-15T04:30:00+00:00", {"bogota_evening"}),
    ("2021-06", {"beijing_morning", "bogota_evening", "ten_days"}),
    ("2021", {"beijing_morning", "bogota_evening", "ten_days", "may"}),
    ("ne2021-06", {"open_from_july", "may", "long_before", "long_after"}),
    ("gt2021-06-15", {"ten_days", "open_from_july", "long_after"}),
    ("lt2021-06-15", {"ten_days", "may", "long_before"}),
    (
        "ge2021-06-15",
        {"beijing_morning", "bogota_evening", "ten_days", "open_from_july", "long_after"},
    ),
    ("le2021-06-15", {"beijing_morning", "bogota_evening", "ten_days", "may", "long_before"}),
    ("sa2021-06-15", {"open_from_july", "long_after"}),
    ("eb2021-06-15", {"may", "long_before"}),
    ("ge2021-06-15T03:00:00Z", {"bogota_evening", "ten_days", "open_from_july", "long_after"}),
    ("lt2021-06-15T12:00:00+08:00", {"beijing_morning", "ten_days", "may", "long_before"}),
    ("gt2030", {"open_from_july"}),  # a period with no end goes on for ever
    ("sa2021-06-20", {"open_from_july", "long_after"}),
    ("eb2021-06-10", {"may", "long_before"}),
    # ap: within about 10% of the distance from now (months around mid 2021).
    (
        "ap2021-06-15",
        {"beijing_morning", "bogota_evening", "ten_days", "open_from_july", "may"},
    ),
]


@pytest.fixture
def effective(fhir: Fhir) -> tuple[str, dict[str, str]]:
    """Observations of one new patient at each of EFFECTIVE; the subject and their ids."""
    marker = new_tag()
    with fhir.client("doctor") as c:
        subject = f"Patient/{create(c, patient(marker))['id']}"
        made = {k: create(c, observation(subject, marker, **v))["id"] for k, v in EFFECTIVE.items()}
    return subject, made


def test_observation_date_prefixes_zones_and_periods(
    fhir: Fhir, effective: tuple[str, dict[str, str]]
) -> None:
    subject, made = effective
    client = fhirpy(fhir)
    name_of = {v: k for k, v in made.items()}
    for value, expected in OBSERVATION_CASES:
        got = found(client, "Observation", subject=subject, date=value)
        assert {name_of.get(i, i) for i in got} == expected, value


def test_observation_date_window(fhir: Fhir, effective: tuple[str, dict[str, str]]) -> None:
    subject, made = effective
    client = fhirpy(fhir)
    window = found(
        client, "Observation", raw(date=["ge2021-06-01", "lt2021-06-16"]), subject=subject
    )
    assert window == {made[k] for k in ("beijing_morning", "bogota_evening", "ten_days")}
    # `subject` given as a fhirpy reference and the dates as operators: the same query.
    during = found(
        client, "Observation", subject=subject, date__ge="2021-06-11", date__le="2021-06-11"
    )
    assert during == {made["ten_days"]}
