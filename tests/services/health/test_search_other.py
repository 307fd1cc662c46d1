"""Quantity and number search (prefixes, implicit precision, units), uri, `_id`,
`_lastUpdated` and `_tag`, through fhirpy and httpx."""

from __future__ import annotations

import time
from typing import Any

from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    TEST_SYSTEM,
    UCUM,
    create,
    fhirpy,
    found,
    observation,
    patient,
    raw,
    tag,
)

VALUES: dict[str, dict[str, Any]] = {
    "mg_5_4": {"value": 5.4, "unit": "mg", "system": UCUM, "code": "mg"},
    "mg_5_35": {"value": 5.35, "unit": "mg", "system": UCUM, "code": "mg"},
    "mg_5_5": {"value": 5.5, "unit": "mg", "system": UCUM, "code": "mg"},
    "mg_6": {"value": 6, "unit": "mg", "system": UCUM, "code": "mg"},
    "g_5_4": {"value": 5.4, "unit": "g", "system": UCUM, "code": "g"},
    "mg_dl_100": {"value": 100, "unit": "mg/dL", "system": UCUM, "code": "mg/dL"},
    "local_mg_5_4": {"value": 5.4, "unit": "milligram", "system": "urn:local", "code": "mg"},
}
MG = f"{UCUM}|mg"

QUANTITY_CASES = [
    # A number stands for the range its digits give: 5.4 is [5.35, 5.45).
    ("5.4", {"mg_5_4", "mg_5_35", "g_5_4", "local_mg_5_4"}),
    ("5.40", {"mg_5_4", "g_5_4", "local_mg_5_4"}),
    ("5", {"mg_5_4", "mg_5_35", "g_5_4", "local_mg_5_4"}),  # [4.5, 5.5)
    ("100", {"mg_dl_100"}),  # [99.5, 100.5)
    ("100.0", {"mg_dl_100"}),
    ("eq5.5", {"mg_5_5"}),
    (f"5.4|{MG}", {"mg_5_4", "mg_5_35"}),
    ("5.4||mg", {"mg_5_4", "mg_5_35", "local_mg_5_4"}),  # any system
    (f"gt5.4|{MG}", {"mg_5_5", "mg_6"}),
    (f"ge5.4|{MG}", {"mg_5_4", "mg_5_5", "mg_6"}),
    (f"lt5.4|{MG}", {"mg_5_35"}),
    (f"le5.4|{MG}", {"mg_5_4", "mg_5_35"}),
    (f"lt6|{MG}", {"mg_5_4", "mg_5_35", "mg_5_5"}),
    ("ne5.4", {"mg_5_5", "mg_6", "mg_dl_100"}),
    ("gt5.4", {"mg_5_5", "mg_6", "mg_dl_100"}),
    ("ap5.4", {"mg_5_4", "mg_5_35", "mg_5_5", "g_5_4", "local_mg_5_4"}),  # within 10%
    (f"5.4|{UCUM}|g", {"g_5_4"}),
    (f"5.4|{MG},6|{MG}", {"mg_5_4", "mg_5_35", "mg_5_5", "mg_6"}),  # 6 is [5.5, 6.5)
    (f"gt99|{UCUM}|mg/dL", {"mg_dl_100"}),
    (f"5.4|{UCUM}|kg", set()),
]


def test_quantity_prefixes_precision_and_units(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        subject = f"Patient/{create(c, patient(marker))['id']}"
        made = {
            k: create(c, observation(subject, marker, valueQuantity=v))["id"]
            for k, v in VALUES.items()
        }
        # No quantity at all: no comparison matches it, `ne` included.
        made["no_quantity"] = create(c, observation(subject, marker, valueString="5.4 mg"))["id"]
    client = fhirpy(fhir)
    name_of = {v: k for k, v in made.items()}
    for value, expected in QUANTITY_CASES:
        got = found(client, "Observation", raw(**{"value-quantity": value}), subject=subject)
        assert {name_of.get(i, i) for i in got} == expected, value
    # fhirpy's own spelling of the same parameter and prefix.
    assert found(client, "Observation", subject=subject, value_quantity__gt=f"5.4|{MG}") == {
        made["mg_5_5"],
        made["mg_6"],
    }


def test_bad_numbers_are_refused(fhir: Fhir) -> None:
    mixed_units = f"5.4|{UCUM}|g,6|{MG}"  # could not pair each number with its own unit
    unit_on_one = f"5.4|{MG},6"
    with fhir.client("doctor") as c:
        for value in ("five", "gt", "5.4.4", "NaN", "inf", mixed_units, unit_on_one):
            response = c.get("/Observation", params={"value-quantity": value})
            assert response.status_code == 400, (value, response.text)
            assert response.json()["resourceType"] == "OperationOutcome"


def test_uri_profile(fhir: Fhir) -> None:
    marker = tag()
    base = f"https://huimin.example/fhir/StructureDefinition/{marker}"
    with fhir.client("doctor") as c:
        plain = create(c, patient(marker, meta={"profile": [f"{base}/patient"]}))["id"]
        child = create(c, patient(marker, meta={"profile": [f"{base}/patient/child"]}))["id"]
        both = create(c, patient(marker, meta={"profile": [f"{base}/other", f"{base}/patient"]}))[
            "id"
        ]
        create(c, patient(marker))
    client = fhirpy(fhir)
    assert found(client, "Patient", _profile=f"{base}/patient") == {plain, both}
    assert found(client, "Patient", _profile=f"{base}/patient/child") == {child}
    assert found(client, "Patient", _profile=f"{base}/pat") == set()  # uris are exact
    assert found(client, "Patient", raw(**{"_profile:below": f"{base}/patient"})) == {
        plain,
        child,
        both,
    }
    assert found(client, "Patient", _profile=f"{base}/patient,{base}/other") == {plain, both}


def test_id(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        a, b, other = (create(c, patient(marker))["id"] for _ in range(3))
    client = fhirpy(fhir)
    assert found(client, "Patient", _id=a) == {a}
    assert found(client, "Patient", _id=f"{a},{b}") == {a, b}
    assert found(client, "Patient", _id=f"{a},{b}", identifier=f"{TEST_SYSTEM}|{marker}") == {
        a,
        b,
    }
    assert found(client, "Patient", _id=a[:-1]) == set()  # ids are exact
    assert found(client, "Observation", _id=a) == set()  # and typed
    assert other not in found(client, "Patient", _id=f"{a},{b}")


def test_last_updated(fhir: Fhir) -> None:
    marker = tag()
    with fhir.client("doctor") as c:
        first = create(c, patient(marker))
        time.sleep(0.05)
        second = create(c, patient(marker))
        time.sleep(0.05)
        third = create(c, patient(marker))
    one, two, three = (r["meta"]["lastUpdated"] for r in (first, second, third))
    assert one < two < three
    a, b, c_ = first["id"], second["id"], third["id"]
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"

    def at(value: str) -> set[str]:
        return found(client, "Patient", identifier=scope, _lastUpdated=value)

    assert at(one) == {a}  # an instant to the millisecond is that millisecond
    assert at(f"eq{two}") == {b}
    assert at(f"gt{one}") == {b, c_}
    assert at(f"ge{two}") == {b, c_}
    assert at(f"lt{two}") == {a}
    assert at(f"le{two}") == {a, b}
    assert at(f"ne{two}") == {a, c_}
    assert at(f"sa{two}") == {c_}
    assert at(f"eb{two}") == {a}
    day = one[:10]
    assert at(day) | at(three[:10]) == {a, b, c_}  # the whole day (or two, around midnight)
    assert at("lt2000") == set()
    assert at("gt2000") == {a, b, c_}
    assert found(
        client, "Patient", raw(_lastUpdated=[f"ge{one}", f"lt{three}"]), identifier=scope
    ) == {a, b}
    # An update moves lastUpdated on.
    with fhir.client("doctor") as http:
        updated = http.put(f"/Patient/{a}", json={**first, "gender": "other"})
        assert updated.status_code == 200, updated.text
    assert at(f"gt{three}") == {a}


def test_tag(fhir: Fhir) -> None:
    marker = tag()
    system = f"https://huimin.example/tags/{marker}"
    with fhir.client("doctor") as c:
        red = create(c, patient(marker, meta={"tag": [{"system": system, "code": "red"}]}))["id"]
        blue = create(c, patient(marker, meta={"tag": [{"system": system, "code": "blue"}]}))["id"]
        both = create(
            c,
            patient(
                marker,
                meta={
                    "tag": [{"system": system, "code": "red"}, {"system": system, "code": "blue"}]
                },
            ),
        )["id"]
        untagged = create(c, patient(marker))["id"]
    client = fhirpy(fhir)
    scope = f"{TEST_SYSTEM}|{marker}"
    assert found(client, "Patient", _tag=f"{system}|red") == {red, both}
    assert found(client, "Patient", _tag=f"{system}|") == {red, blue, both}
    assert found(client, "Patient", _tag=f"{system}|red,{system}|blue") == {red, blue, both}
    assert found(client, "Patient", raw(_tag=[f"{system}|red", f"{system}|blue"])) == {both}
    assert found(client, "Patient", identifier=scope, _tag__not=f"{system}|red") == {
        blue,
        untagged,
    }
