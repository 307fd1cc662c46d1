"""Conditional create (If-None-Exist), conditional update and conditional delete."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from fhirpy.base.exceptions import MultipleResourcesFound

from tests.fixtures.health import Fhir
from tests.services.health.fhirpy_support import (
    PROBE_SYSTEM,
    assert_outcome,
    fhirpy_client,
    stored,
    tagged_patient,
    unique,
)


def _create(c: httpx.Client, body: dict[str, Any]) -> dict[str, Any]:
    r = c.post("/Patient", json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


def test_conditional_create_none_one_many(fhir: Fhir) -> None:
    value = unique()
    criteria = {"If-None-Exist": f"identifier={PROBE_SYSTEM}|{value}"}
    with fhir.client("doctor") as c:
        first = c.post("/Patient", json=tagged_patient(value), headers=criteria)
        assert first.status_code == 201, first.text
        assert first.headers["etag"] == 'W/"1"'
        assert "location" in first.headers
        pid = first.json()["id"]

        # one match: the existing resource, 200, nothing new written
        again = c.post("/Patient", json=tagged_patient(value, gender="male"), headers=criteria)
        assert again.status_code == 200, again.text
        assert again.json()["id"] == pid
        assert again.json()["gender"] == "female"
        assert again.headers["etag"] == 'W/"1"'
        assert [p["id"] for p in stored(c, "Patient", value)] == [pid]
        assert c.get(f"/Patient/{pid}").headers["etag"] == 'W/"1"'

        # two matches: 412, and still no third one
        _create(c, tagged_patient(value))
        assert_outcome(c.post("/Patient", json=tagged_patient(value), headers=criteria), 412)
        assert len(stored(c, "Patient", value)) == 2


def test_conditional_create_criteria_are_checked(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        for criteria in ("", "nonsense-parameter=1", "birthdate=not-a-date"):
            r = c.post("/Patient", json=tagged_patient(value), headers={"If-None-Exist": criteria})
            if criteria:
                assert_outcome(r, 400)
            else:  # an empty header is no condition at all
                assert r.status_code == 201, r.text
        assert len(stored(c, "Patient", value)) == 1


@pytest.mark.parametrize("query", ["_count=1", "_format=json", "_sort=family", "identifier="])
def test_criteria_that_select_nothing_in_particular_are_refused(fhir: Fhir, query: str) -> None:
    """Parameters that constrain nothing would make "the one match" any resource at all."""
    value = unique()
    with fhir.client("doctor") as c:
        only = _create(c, tagged_patient(value))
        assert_outcome(c.delete(f"/Patient?{query}"), 400)
        assert_outcome(c.put(f"/Patient?{query}", json=tagged_patient(value, gender="male")), 400)
        headers = {"If-None-Exist": query}
        assert_outcome(c.post("/Patient", json=tagged_patient(value), headers=headers), 400)
        assert [p["id"] for p in stored(c, "Patient", value)] == [only["id"]]
        assert c.get(f"/Patient/{only['id']}").headers["etag"] == 'W/"1"'


def test_result_parameters_on_a_create_are_not_criteria(fhir: Fhir) -> None:
    value = unique()
    with fhir.client("doctor") as c:
        for _ in range(2):
            r = c.post("/Patient", json=tagged_patient(value), params={"_format": "json"})
            assert r.status_code == 201, r.text
        assert len(stored(c, "Patient", value)) == 2


def test_conditional_create_with_fhirpy(fhir: Fhir) -> None:
    """fhirpy's get_or_create sends the criteria as the query of the POST (the Aidbox form)."""
    value = unique()
    client = fhirpy_client(fhir)
    search = client.resources("Patient").search(identifier=f"{PROBE_SYSTEM}|{value}")
    created, was_created = search.get_or_create(client.resource("Patient", **tagged_patient(value)))
    assert was_created is True
    assert created.id
    existing, was_created = search.get_or_create(
        client.resource("Patient", **tagged_patient(value))
    )
    assert was_created is False
    assert existing.id == created.id
    assert [p.id for p in search.fetch_all()] == [created.id]


def test_conditional_update(fhir: Fhir) -> None:
    value = unique()
    url = f"/Patient?identifier={PROBE_SYSTEM}|{value}"
    with fhir.client("doctor") as c:
        # no match, no id in the body: created
        r = c.put(url, json=tagged_patient(value))
        assert r.status_code == 201, r.text
        pid = r.json()["id"]
        assert r.headers["etag"] == 'W/"1"'

        # one match: that resource is updated (the body may leave the id out)
        r = c.put(url, json=tagged_patient(value, gender="male"))
        assert r.status_code == 200, r.text
        assert r.json()["id"] == pid
        assert r.headers["etag"] == 'W/"2"'
        assert c.get(f"/Patient/{pid}").json()["gender"] == "male"

        # a body naming another id than the match is refused
        assert_outcome(c.put(url, json=tagged_patient(value, id="another-one")), 400)
        # If-Match applies to the match
        assert_outcome(c.put(url, json=tagged_patient(value), headers={"If-Match": 'W/"1"'}), 412)

        # two matches: 412 and neither changes
        other = _create(c, tagged_patient(value))
        assert_outcome(c.put(url, json=tagged_patient(value, gender="other")), 412)
        assert c.get(f"/Patient/{pid}").headers["etag"] == 'W/"2"'
        assert c.get(f"/Patient/{other['id']}").headers["etag"] == 'W/"1"'
        assert_outcome(c.put("/Patient", json=tagged_patient(value)), 400)  # no criteria


def test_conditional_update_with_fhirpy(fhir: Fhir) -> None:
    value = unique()
    client = fhirpy_client(fhir)
    search = client.resources("Patient").search(identifier=f"{PROBE_SYSTEM}|{value}")
    created, was_created = search.update(client.resource("Patient", **tagged_patient(value)))
    assert was_created is True
    updated, was_created = search.update(
        client.resource("Patient", **tagged_patient(value, gender="unknown"))
    )
    assert was_created is False
    assert updated.id == created.id
    assert updated["meta"]["versionId"] == "2"
    assert updated["gender"] == "unknown"
    client.resource("Patient", **tagged_patient(value)).save()
    with pytest.raises(MultipleResourcesFound):  # fhirpy's name for a 412
        search.update(client.resource("Patient", **tagged_patient(value)))


def test_conditional_delete(fhir: Fhir) -> None:
    value = unique()
    url = f"/Patient?identifier={PROBE_SYSTEM}|{value}"
    with fhir.client("doctor") as c:
        assert c.delete(url).status_code == 204  # no match: nothing to do
        one = _create(c, tagged_patient(value))
        r = c.delete(url)
        assert r.status_code == 204
        assert r.headers["etag"] == 'W/"2"'
        assert_outcome(c.get(f"/Patient/{one['id']}"), 410)
        assert stored(c, "Patient", value) == []

        two = [_create(c, tagged_patient(value)) for _ in range(2)]
        assert_outcome(c.delete(url), 412)
        for p in two:
            assert c.get(f"/Patient/{p['id']}").status_code == 200
        assert_outcome(c.delete("/Patient"), 400)  # no criteria: never "delete everything"
        assert c.get(f"/Patient/{two[0]['id']}").status_code == 200


def test_conditional_delete_with_fhirpy(fhir: Fhir) -> None:
    value = unique()
    client = fhirpy_client(fhir)
    patient = client.resource("Patient", **tagged_patient(value))
    patient.save()
    search = client.resources("Patient").search(identifier=f"{PROBE_SYSTEM}|{value}")
    _, status = search.delete()
    assert status == 204
    assert search.fetch_all() == []
    with fhir.client("doctor") as c:
        assert_outcome(c.get(f"/Patient/{patient.id}"), 410)
