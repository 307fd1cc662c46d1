"""Bad input gets a clear 4xx OperationOutcome (never a 500) and stores nothing; `$validate`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from fhirpy.base.exceptions import OperationOutcome

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    PROBE_SYSTEM,
    assert_outcome,
    entries_of,
    fhirpy_client,
    probe_identifier,
    stored,
    tagged_patient,
    unique,
)

MIB = 1024 * 1024


def _writes(c: httpx.Client, pid: str) -> list[tuple[str, str]]:
    """The write requests that take a resource body: create, update, transaction."""
    return [("POST", "/Patient"), ("PUT", f"/Patient/{pid}"), ("POST", "/")]


@pytest.fixture
def pid(fhir: Fhir) -> str:
    """An existing Patient (bad updates must leave it at version 1)."""
    with fhir.client("doctor") as c:
        r = c.post("/Patient", json=new_patient())
        assert r.status_code == 201
        created: str = r.json()["id"]
        return created


def _unchanged(c: httpx.Client, pid: str, value: str) -> None:
    assert c.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'
    assert stored(c, "Patient", value) == []


def test_malformed_json_is_400(fhir: Fhir, pid: str) -> None:
    value = unique()
    good = json.dumps(tagged_patient(value, id=pid))
    with fhir.client("doctor") as c:
        for raw in (
            good[:-1],  # truncated
            good.replace('"gender"', "gender"),  # unquoted key
            good.replace('"female"', "NaN"),
            good + good,
            "",
            "[]",
            '"Patient"',
            b'{"resourceType": "Patient", "name": [{"family": "\xff\xfe"}]}',
        ):
            for method, path in _writes(c, pid):
                headers = {"Content-Type": "application/fhir+json"}
                assert_outcome(c.request(method, path, content=raw, headers=headers), 400)
        _unchanged(c, pid, value)


def test_wrong_resource_type_for_the_url_is_400(fhir: Fhir, pid: str) -> None:
    value = unique()
    practitioner = {"resourceType": "Practitioner", "identifier": [probe_identifier(value)]}
    with fhir.client("doctor") as c:
        assert_outcome(c.post("/Patient", json=practitioner), 400, expression="resourceType")
        assert_outcome(c.put(f"/Patient/{pid}", json={**practitioner, "id": pid}), 400)
        assert_outcome(c.post("/Patient", json={"identifier": [probe_identifier(value)]}), 400)
        assert_outcome(
            c.post("/Patient", json={**tagged_patient(value), "resourceType": "Bogus"}), 400
        )
        assert stored(c, "Practitioner", value) == []
        _unchanged(c, pid, value)


@pytest.mark.parametrize(
    ("change", "expression"),
    [
        ({"birthDate": "1999-13-40"}, "Patient.birthDate"),
        ({"birthDate": 19991231}, "Patient.birthDate"),
        ({"gender": "x"}, "Patient.gender"),
        ({"active": "yes"}, "Patient.active"),
        ({"name": [{"family": "Li", "use": "bogus"}]}, "Patient.name[0].use"),
        ({"name": {"family": "not a list"}}, "Patient.name"),
        ({"telecom": [{"system": "pigeon", "value": "1"}]}, "Patient.telecom[0].system"),
        ({"deceasedDateTime": "yesterday"}, "Patient.deceasedDateTime"),
    ],
)
def test_invalid_element_values_are_422(
    fhir: Fhir, pid: str, change: dict[str, Any], expression: str
) -> None:
    value = unique()
    body = tagged_patient(value, **change)
    with fhir.client("doctor") as c:
        assert_outcome(c.post("/Patient", json=body), 422, expression=expression)
        assert_outcome(
            c.put(f"/Patient/{pid}", json={**body, "id": pid}), 422, expression=expression
        )
        _unchanged(c, pid, value)


def test_unknown_elements_are_422(fhir: Fhir, pid: str) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        for body, expression in (
            (tagged_patient(value, favouriteColour="blue"), "Patient.favouriteColour"),
            (
                tagged_patient(value, name=[{"family": "Li", "nickname": "x"}]),
                "Patient.name[0].nickname",
            ),
            (tagged_patient(value, **{"$where": "1 == 1"}), "Patient.$where"),
        ):
            assert_outcome(c.post("/Patient", json=body), 422, expression=expression)
            assert_outcome(c.put(f"/Patient/{pid}", json={**body, "id": pid}), 422)
        _unchanged(c, pid, value)


def _oversize(value: str) -> bytes:
    body = tagged_patient(
        value, text={"status": "generated", "div": "<div>" + "x" * MIB + "</div>"}
    )
    return json.dumps(body).encode()


def test_oversize_payload_is_413_with_content_length(fhir: Fhir, pid: str) -> None:
    value = unique()
    raw = _oversize(value)
    assert len(raw) > MIB
    with fhir.client("doctor") as c:
        for method, path in _writes(c, pid):
            r = c.request(method, path, content=raw, headers={"Content-Type": "application/json"})
            assert_outcome(r, 413)
        _unchanged(c, pid, value)


def test_oversize_payload_is_413_when_chunked(fhir: Fhir, pid: str) -> None:
    value = unique()
    raw = _oversize(value)

    def chunks() -> Iterator[bytes]:
        for i in range(0, len(raw), 64 * 1024):
            yield raw[i : i + 64 * 1024]

    with fhir.client("doctor") as c:
        for method, path in _writes(c, pid):
            request = c.build_request(
                method, path, content=chunks(), headers={"Content-Type": "application/fhir+json"}
            )
            assert "content-length" not in request.headers
            assert request.headers["transfer-encoding"] == "chunked"
            assert_outcome(c.send(request), 413)
        _unchanged(c, pid, value)


def _nested(depth: int) -> dict[str, Any]:
    inner: dict[str, Any] = {"url": "http://example.org/leaf", "valueString": "deep"}
    for _ in range(depth - 1):
        inner = {"url": "http://example.org/level", "extension": [inner]}
    return inner


def test_deep_nesting_is_400(fhir: Fhir, pid: str) -> None:
    value = unique()
    body = tagged_patient(value, extension=[_nested(100)])
    with fhir.client("doctor") as c:
        for method, path in _writes(c, pid):
            payload = body if path != f"/Patient/{pid}" else {**body, "id": pid}
            if path == "/":
                entry = {"request": {"method": "POST", "url": "Patient"}, "resource": body}
                payload = {"resourceType": "Bundle", "type": "transaction", "entry": [entry]}
            assert_outcome(c.request(method, path, json=payload), 400)
        # raw nesting far beyond any parser's comfort is refused the same way
        deep = b'{"resourceType": "Patient", "extension": ' + b"[" * 5000 + b"]" * 5000 + b"}"
        assert_outcome(
            c.post("/Patient", content=deep, headers={"Content-Type": "application/json"}), 400
        )
        _unchanged(c, pid, value)
        # nesting that FHIR resources really use is fine
        assert (
            c.post("/Patient", json=tagged_patient(unique(), extension=[_nested(5)])).status_code
            == 201
        )


@pytest.mark.parametrize(
    "ctype",
    ["text/plain", "application/xml", "application/fhir+xml", "application/x-www-form-urlencoded"],
)
def test_unsupported_content_type_is_415(fhir: Fhir, pid: str, ctype: str) -> None:
    value = unique()
    raw = json.dumps(tagged_patient(value, id=pid)).encode()
    with fhir.client("doctor") as c:
        for method, path in _writes(c, pid):
            r = c.request(method, path, content=raw, headers={"Content-Type": ctype})
            assert_outcome(r, 415)
        _unchanged(c, pid, value)


def test_patch_needs_json_patch(fhir: Fhir, pid: str) -> None:
    """A merge-patch style body (what fhirpy's patch() sends) is refused clearly, not guessed."""
    with fhir.client("doctor") as c:
        r = c.patch(f"/Patient/{pid}", json={"gender": "male"})
        assert_outcome(r, 415)
        client = fhirpy_client(fhir)
        with pytest.raises(OperationOutcome):
            client.patch("Patient", pid, gender="male")
        read = c.get(f"/Patient/{pid}")
        assert read.headers["etag"] == 'W/"1"'
        assert read.json()["gender"] == "female"


@pytest.mark.parametrize(
    "params",
    [
        {"name[$ne]": "x"},
        {"name": '{"$gt": ""}'},
        {"identifier": "$where"},
        {"identifier": '{"$ne": null}'},
        {"_id": '{"$regex": ".*"}'},
        {"family": ".*"},
        {"name": "%"},
        {"given": "_"},
        {"name": "' OR '1'='1"},
        {"birthdate": '{"$gt": "1900"}'},
        {"gender:not": '{"$in": []}'},
        {"_sort": "$natural"},
        {"name": "a\x00b"},
    ],
)
def test_operator_looking_search_values_are_literal(
    fhir: Fhir, pid: str, params: dict[str, str]
) -> None:
    """Never a 500, never more than the literal criterion selects."""
    with fhir.client("doctor") as c:
        mine = c.get(f"/Patient/{pid}").json()
        ours = {"identifier": f"{PROBE_SYSTEM}|{unique()}"}  # selects nothing
        r = c.get("/Patient", params={**params, **ours})
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert_outcome(r, 400)
        else:
            assert entries_of(r.json()) == []
        # alone, the value is either refused or matched literally
        r = c.get("/Patient", params=params)
        assert r.status_code in (200, 400), r.text
        if r.status_code == 400:
            assert_outcome(r, 400)
        elif not any("[" in k or k.endswith(":not") for k in params):
            ids = [e["resource"]["id"] for e in entries_of(r.json())]
            assert mine["id"] not in ids
        strict = c.get("/Patient", params=params, headers={"Prefer": "handling=strict"})
        assert strict.status_code in (200, 400), strict.text
        if "name[$ne]" in params:
            assert_outcome(strict, 400)  # an unknown parameter, refused when asked to be strict
        # a search that ignores an unknown parameter says so: it is not in the self link
        if r.status_code == 200 and "name[$ne]" in params:
            self_url = next(x["url"] for x in r.json()["link"] if x["relation"] == "self")
            assert "%24ne" not in self_url
            assert "$ne" not in self_url


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/Observation", {"date": "ge9999-12-31T23:59:59Z"}),
        ("/Observation", {"date": "sa9999-12-31"}),
        ("/Observation", {"date": "0001-01-01T00:00:00+14:00"}),
        ("/Observation", {"date": "ap0001"}),
        ("/Patient", {"_lastUpdated": "ap9999-12-31T23:00:00-12:00"}),
        ("/Patient", {"birthdate": "ap0001-01-01"}),
        ("/Patient/_history", {"_since": "0001-01-01T00:00:00+14:00"}),
        ("/Observation", {"value-quantity": "1e400"}),
        ("/Observation", {"value-quantity": "ap-1e308"}),
        ("/Patient", {"_count": "99999999999999999999"}),
        ("/Patient", {"_id": "a" * 5000}),
    ],
)
def test_values_at_the_edges_are_answered(fhir: Fhir, path: str, params: dict[str, str]) -> None:
    """Calendar and number edges: a result or a 400 OperationOutcome, never a 500."""
    with fhir.client("doctor") as c:
        r = c.get(path, params=params)
        if r.status_code == 200:
            assert r.json()["resourceType"] == "Bundle"
        else:
            assert_outcome(r, 400)


def test_validate_operation(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        ok = c.post("/Patient/$validate", json=tagged_patient(value))
        assert ok.status_code == 200, ok.text
        outcome = ok.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert [i["severity"] for i in outcome["issue"]] == ["information"]

        for change, where in (
            ({"birthDate": "1999-13-40"}, "birthDate"),
            ({"gender": "x"}, "gender"),
        ):
            invalid = c.post("/Patient/$validate", json=tagged_patient(value, **change))
            assert_outcome(invalid, 422, expression=f"Patient.{where}")
        bad = tagged_patient(value, gender="x")

        wrapped = {
            "resourceType": "Parameters",
            "parameter": [{"name": "resource", "resource": bad}],
        }
        assert_outcome(c.post("/Patient/$validate", json=wrapped), 422, expression="Patient.gender")
        assert_outcome(c.post("/Observation/$validate", json=tagged_patient(value)), 400)
        assert_outcome(
            c.post(
                "/Patient/$validate", content=b"{", headers={"Content-Type": "application/json"}
            ),
            400,
        )
        assert stored(c, "Patient", value) == []  # validating stores nothing

    client = fhirpy_client(fhir)
    assert client.resource("Patient", **tagged_patient(value)).is_valid() is True
    with pytest.raises(OperationOutcome) as caught:
        client.resource("Patient", **bad).is_valid(raise_exception=True)
    issues = caught.value.resource["issue"]
    assert any("Patient.gender" in i.get("expression", []) for i in issues)
