"""What a search answers: `_count` and paging links (stable while the data changes), `_sort`,
`_include`, `_revinclude`, `_summary`, `_elements`, `_total`, unknown parameters (ignored,
or 400 under `Prefer: handling=strict`), POST `_search`; and that the searches are served
from the storage indexes (SQLite's own query plan, in-process)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from services.health.repository import make_store
from services.health.search import SearchParser
from services.health.searchparams import collection_name
from shared.storage import Eq, Not, Query
from tests.fixtures.health import Fhir
from tests.services.health.helpers import (
    TEST_SYSTEM,
    create,
    fhirpy,
    found,
    ids,
    observation,
    patient,
    search,
    tag,
    word,
)

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def _link(bundle: dict[str, Any], relation: str) -> str | None:
    for link in bundle.get("link") or []:
        if link["relation"] == relation:
            return str(link["url"])
    return None


def _query(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def _order(bundle: dict[str, Any]) -> list[str]:
    return [e["resource"]["id"] for e in bundle["entry"] if e["search"]["mode"] == "match"]


def test_count_and_fhirpy_follows_next_links(fhir: Fhir) -> None:
    stem = word()
    with fhir.client("doctor") as c:
        made = {create(c, patient(tag(), name=[{"family": f"{stem}{i}"}]))["id"] for i in range(7)}
    client = fhirpy(fhir)
    assert len(client.resources("Patient").search(family=stem).limit(3).fetch()) == 3
    assert found(client, "Patient", family=stem, _count="3") == made
    assert {str(p["id"]) for p in client.resources("Patient").search(family=stem)} == made
    assert client.resources("Patient").search(family=stem).count() == 7
    with fhir.client("doctor") as c:
        first = search(c, "/Patient", family=stem, _count=3)
        assert len(first["entry"]) == 3
        assert _link(first, "next") is not None
        assert _link(first, "previous") is None
        assert ("_count", "3") in _query(str(_link(first, "self")))
        assert search(c, "/Patient", family=stem, _count=0)["entry"] == []
        for bad in ("-1", "x", "2.5"):
            response = c.get("/Patient", params={"family": stem, "_count": bad})
            assert response.status_code == 400, bad


def test_sort_by_several_keys_and_descending(fhir: Fhir) -> None:
    stem = word()
    rows = {
        "a1990": ("a", "1990-05-05"),
        "a1980": ("a", "1980-05-05"),
        "b1985": ("b", "1985-05-05"),
        "c1970": ("c", "1970-05-05"),
    }
    with fhir.client("doctor") as c:
        made = {
            key: create(c, patient(tag(), name=[{"family": stem + f}], birthDate=born))["id"]
            for key, (f, born) in rows.items()
        }
        name_of = {v: k for k, v in made.items()}

        def order(sort: str) -> list[str]:
            return [name_of[i] for i in _order(search(c, "/Patient", family=stem, _sort=sort))]

        assert order("family,-birthdate") == ["a1990", "a1980", "b1985", "c1970"]
        assert order("family,birthdate") == ["a1980", "a1990", "b1985", "c1970"]
        assert order("-family,birthdate") == ["c1970", "b1985", "a1980", "a1990"]
        assert order("birthdate") == ["c1970", "a1980", "b1985", "a1990"]
        assert order("-birthdate") == ["a1990", "b1985", "a1980", "c1970"]
        assert order("_lastUpdated") == list(rows)
        assert order("-_lastUpdated") == list(reversed(rows))
        for bad in ("nosuch", "family,family"):
            response = c.get("/Patient", params={"family": stem, "_sort": bad})
            assert response.status_code == 400, bad
            assert response.json()["resourceType"] == "OperationOutcome"
    # fhirpy: sort, and the order kept across pages of one.
    client = fhirpy(fhir)
    paged = client.resources("Patient").search(family=stem).sort("family", "-birthdate").limit(1)
    assert [name_of[str(p["id"])] for p in paged.fetch_all()] == [
        "a1990",
        "a1980",
        "b1985",
        "c1970",
    ]


@pytest.fixture
def clinic(fhir: Fhir) -> dict[str, Any]:
    """Two patients with two observations each, and a third patient with none."""
    marker = tag()
    with fhir.client("doctor") as c:
        pats = [create(c, patient(marker, name=[{"family": word()}]))["id"] for _ in range(3)]
        obs = {
            p: {create(c, observation(f"Patient/{p}", marker))["id"] for _ in range(2)}
            for p in pats[:2]
        }
    return {"marker": marker, "patients": pats, "obs": obs}


def test_include(fhir: Fhir, clinic: dict[str, Any]) -> None:
    marker, (p1, p2, _), obs = clinic["marker"], clinic["patients"], clinic["obs"]
    scope = f"{TEST_SYSTEM}|{marker}"
    every_obs = {f"Observation/{o}" for o in obs[p1] | obs[p2]}
    client = fhirpy(fhir)
    bundle = (
        client.resources("Observation")
        .search(identifier=scope)
        .include("Observation", "subject")
        .fetch_raw()
    )
    assert ids(bundle) == every_obs
    assert ids(bundle, "include") == {f"Patient/{p1}", f"Patient/{p2}"}
    # Each included resource once, however many matches point at it.
    assert len(bundle["entry"]) == 6
    with fhir.client("doctor") as c:
        typed = search(
            c, "/Observation", identifier=scope, _include="Observation:subject:Patient", _count=1
        )
        assert len(ids(typed)) == 1  # _count limits the matches only
        assert len(ids(typed, "include")) == 1
        wrong_type = search(
            c, "/Observation", identifier=scope, _include="Observation:subject:Group"
        )
        assert ids(wrong_type) == every_obs
        assert ids(wrong_type, "include") == set()
        for bad in ("Observation:nosuch", "Patient:link", "Observation:code", "*"):
            response = c.get("/Observation", params={"identifier": scope, "_include": bad})
            assert response.status_code == 400, bad


def test_revinclude(fhir: Fhir, clinic: dict[str, Any]) -> None:
    marker, (p1, p2, p3), obs = clinic["marker"], clinic["patients"], clinic["obs"]
    scope = f"{TEST_SYSTEM}|{marker}"
    client = fhirpy(fhir)
    bundle = (
        client.resources("Patient")
        .search(identifier=scope)
        .revinclude("Observation", "subject")
        .fetch_raw()
    )
    assert ids(bundle) == {f"Patient/{p}" for p in (p1, p2, p3)}
    assert ids(bundle, "include") == {f"Observation/{o}" for o in obs[p1] | obs[p2]}
    with fhir.client("doctor") as c:
        one = search(c, "/Patient", _id=p2, _revinclude="Observation:patient")
        assert ids(one) == {f"Patient/{p2}"}
        assert ids(one, "include") == {f"Observation/{o}" for o in obs[p2]}
        both = search(c, "/Patient", _id=p1, _revinclude="Observation:subject,Encounter:subject")
        assert ids(both, "include") == {f"Observation/{o}" for o in obs[p1]}
        response = c.get("/Patient", params={"_id": p1, "_revinclude": "Observation:encounter"})
        assert response.status_code == 400  # Observation:encounter never points at a Patient


def test_summary_and_elements(fhir: Fhir) -> None:
    marker = tag()
    family = word()
    full = patient(
        marker,
        name=[{"family": family, "given": ["Ann"]}],
        gender="female",
        birthDate="1970-01-01",
        maritalStatus={"text": "married"},
        communication=[{"language": {"text": "Mandarin"}}],
        text={"status": "generated", "div": '<div xmlns="http://www.w3.org/1999/xhtml">Ann</div>'},
    )
    with fhir.client("doctor") as c:
        pids = {create(c, full)["id"] for _ in range(3)}
        scope = f"{TEST_SYSTEM}|{marker}"

        summary = search(c, "/Patient", identifier=scope, _summary="true")
        for entry in summary["entry"]:
            body = entry["resource"]
            assert set(body) == {
                "resourceType",
                "id",
                "meta",
                "identifier",
                "name",
                "gender",
                "birthDate",
            }
            assert SUBSETTED in body["meta"]["tag"]
        assert {e["resource"]["id"] for e in summary["entry"]} == pids

        count = search(c, "/Patient", identifier=scope, _summary="count")
        assert count["total"] == 3
        assert count.get("entry", []) == []

        data = search(c, "/Patient", identifier=scope, _summary="data")
        for entry in data["entry"]:
            body = entry["resource"]
            assert "text" not in body
            assert body["maritalStatus"] == {"text": "married"}
            assert SUBSETTED in body["meta"]["tag"]

        text = search(c, "/Patient", identifier=scope, _summary="text")
        for entry in text["entry"]:
            assert set(entry["resource"]) == {"resourceType", "id", "meta", "text"}

        plain = search(c, "/Patient", identifier=scope, _summary="false")
        for entry in plain["entry"]:
            assert entry["resource"]["communication"] == full["communication"]
            assert SUBSETTED not in entry["resource"]["meta"].get("tag", [])

        assert c.get("/Patient", params={"_summary": "maybe"}).status_code == 400

    client = fhirpy(fhir)
    trimmed = client.resources("Patient").search(identifier=scope).elements("name", "gender")
    for body in trimmed.fetch_all():
        assert set(body) == {"resourceType", "id", "meta", "name", "gender"}
        assert body["name"] == full["name"]
        assert SUBSETTED in body["meta"]["tag"]


def test_elements_apply_to_matches_not_to_includes(fhir: Fhir, clinic: dict[str, Any]) -> None:
    p1 = clinic["patients"][0]
    with fhir.client("doctor") as c:
        bundle = search(
            c,
            "/Observation",
            subject=f"Patient/{p1}",
            _elements="status",
            _include="Observation:subject",
        )
    for entry in bundle["entry"]:
        body = entry["resource"]
        if entry["search"]["mode"] == "match":
            assert set(body) == {"resourceType", "id", "meta", "status"}
        else:
            assert body["id"] == p1
            assert "identifier" in body
            assert SUBSETTED not in body["meta"].get("tag", [])


def test_total(fhir: Fhir, clinic: dict[str, Any]) -> None:
    scope = f"{TEST_SYSTEM}|{clinic['marker']}"
    with fhir.client("doctor") as c:
        accurate = search(c, "/Observation", identifier=scope, _total="accurate", _count=1)
        assert accurate["total"] == 4
        assert len(accurate["entry"]) == 1
        assert search(c, "/Patient", identifier=scope, _total="accurate")["total"] == 3
        assert search(c, "/Observation", identifier=scope, _count=0)["total"] == 4
        none = search(c, "/Observation", identifier=scope, _total="none")
        assert "total" not in none
        assert c.get("/Patient", params={"_total": "lots"}).status_code == 400


def test_paging_links_stay_right_while_the_data_changes(fhir: Fhir) -> None:
    stem = word()
    with fhir.client("doctor") as c:

        def make(suffix: str) -> str:
            return str(create(c, patient(tag(), name=[{"family": stem + suffix}]))["id"])

        made = {s: make(s) for s in "bdfhj"}
        name_of = {v: k for k, v in made.items()}

        def names(url: str | None) -> list[str]:
            assert url is not None
            response = c.get(url)
            assert response.status_code == 200, response.text
            return [name_of.get(i, i) for i in _order(response.json())]

        page1 = search(c, "/Patient", family=stem, _sort="family", _count=2)
        assert [name_of[i] for i in _order(page1)] == ["b", "d"]
        page2 = c.get(str(_link(page1, "next"))).json()
        assert [name_of[i] for i in _order(page2)] == ["f", "h"]
        assert _link(page2, "self") == _link(page1, "next")
        assert _link(page2, "previous") == _link(page2, "first") == _link(page1, "self")
        assert names(_link(page2, "previous")) == ["b", "d"]
        page3 = c.get(str(_link(page2, "next"))).json()
        assert [name_of[i] for i in _order(page3)] == ["j"]
        assert _link(page3, "next") is None
        assert names(_link(page3, "previous")) == ["f", "h"]

        # Add before and inside the pages, delete the very rows the cursors stand on.
        made["a"], made["e"] = make("a"), make("e")
        name_of = {v: k for k, v in made.items()}
        for gone in ("d", "h"):
            assert c.delete(f"/Patient/{made[gone]}").status_code == 204
        # A next link goes on after the last row its page showed: nothing is skipped or
        # shown twice, whatever changed before it.
        assert names(_link(page1, "next")) == ["e", "f"]
        assert names(_link(page2, "self")) == ["e", "f"]
        assert names(_link(page2, "next")) == ["j"]
        assert names(_link(page1, "self")) == ["a", "b"]


def test_unknown_parameters(fhir: Fhir) -> None:
    stem = word()
    with fhir.client("doctor") as c:
        pid = create(c, patient(tag(), name=[{"family": stem}]))["id"]
        bundle = search(c, "/Patient", family=stem, foo="bar", **{"nosuch:exact": "x"})
        assert _order(bundle) == [pid]
        self_params = _query(str(_link(bundle, "self")))
        assert self_params == [("family", stem)]
        lenient = c.get(
            "/Patient",
            params={"family": stem, "foo": "bar"},
            headers={"Prefer": "handling=lenient"},
        )
        assert lenient.status_code == 200
        assert _order(lenient.json()) == [pid]
        strict = c.get(
            "/Patient", params={"family": stem, "foo": "bar"}, headers={"Prefer": "handling=strict"}
        )
        assert strict.status_code == 400, strict.text
        outcome = strict.json()
        assert outcome["resourceType"] == "OperationOutcome"
        assert "foo" in outcome["issue"][0]["diagnostics"]
        strict_ok = c.get(
            "/Patient", params={"family": stem}, headers={"Prefer": "handling=strict"}
        )
        assert strict_ok.status_code == 200
        assert _order(strict_ok.json()) == [pid]
        # A known parameter with an unsupported modifier is refused, strict or not.
        response = c.get("/Patient", params={"family:sounds-like": stem})
        assert response.status_code == 400
    client = fhirpy(fhir)
    assert found(client, "Patient", family=stem, foo="bar") == {pid}


def test_post_search(fhir: Fhir, clinic: dict[str, Any]) -> None:
    scope = f"{TEST_SYSTEM}|{clinic['marker']}"
    p1 = clinic["patients"][0]
    with fhir.client("doctor") as c:
        got = search(c, "/Observation", identifier=scope, subject=f"Patient/{p1}")
        posted = c.post(
            "/Observation/_search",
            data={"identifier": scope, "subject": f"Patient/{p1}", "foo": "bar"},
        )
        assert posted.status_code == 200, posted.text
        assert ids(posted.json()) == ids(got) == {f"Observation/{o}" for o in clinic["obs"][p1]}
        assert dict(_query(str(_link(posted.json(), "self")))) == {
            "identifier": scope,
            "subject": f"Patient/{p1}",
        }
        # Query-string and body parameters together (both must hold).
        both = c.post(
            f"/Observation/_search?subject=Patient/{p1}",
            data={"identifier": scope, "_count": "1"},
        )
        assert both.status_code == 200
        assert len(ids(both.json())) == 1
        assert _link(both.json(), "next") is not None
        wrong = c.post(
            "/Observation/_search", json={"identifier": scope}
        )  # parameters are a form, not JSON
        assert wrong.status_code == 400
        strict = c.post(
            "/Observation/_search", data={"foo": "bar"}, headers={"Prefer": "handling=strict"}
        )
        assert strict.status_code == 400


# --- every search is served from the indexes -------------------------------------------------

INDEXED_SEARCHES = [
    ("Patient", "family=zh"),
    ("Patient", "name=jose,maria"),
    ("Patient", "name:contains=ang"),
    ("Patient", "name:exact=张伟"),
    ("Patient", "given=伟&gender=male"),
    ("Patient", "identifier=https://huimin.example/sid/resident-id|R-1"),
    ("Patient", "birthdate=ge1990&birthdate=lt2000&_sort=-birthdate"),
    ("Patient", "birthdate=ne1990"),
    ("Patient", "gender=female&_sort=family,-birthdate"),
    ("Patient", "_id=a,b,c"),
    ("Patient", "_lastUpdated=gt2024-01-01T00:00:00Z&_sort=-_lastUpdated"),
    ("Patient", "_tag=https://huimin.example/tags|red"),
    ("Patient", "_profile:below=https://huimin.example/fhir/StructureDefinition/"),
    ("Patient", "general-practitioner=Practitioner/p1"),
    ("Observation", "subject=Patient/p1&code=http://loinc.org|8867-4&_sort=-date"),
    ("Observation", "patient=p1&date=ap2021-06-15"),
    ("Observation", "date=sa2021-06&status=final"),
    ("Observation", "value-quantity=gt5.4|http://unitsofmeasure.org|mg"),
    ("Observation", "value-quantity=ne5.4"),
    ("Observation", "code:text=heart rate"),
    ("Observation", "code=8867-4&category:not=laboratory"),
    ("Observation", "subject:Patient=p1,p2&encounter=e1"),
    ("Encounter", "patient=p1&date=2024&_sort=date"),
    ("Condition", "patient=p1&clinical-status=active&onset-date=le2020"),
    ("AuditEvent", "patient=Patient/p1&_sort=-date"),
    ("AuditEvent", "entity=Observation/o1&outcome=4"),
]


@pytest.mark.parametrize("compartment", [False, True], ids=["user", "citizen"])
@pytest.mark.parametrize(("resource_type", "query"), INDEXED_SEARCHES)
async def test_every_search_uses_the_storage_indexes(
    tmp_path: Path, resource_type: str, query: str, compartment: bool
) -> None:
    store = make_store(f"sqlite:///{tmp_path}/health.db")
    await store.open()
    try:
        coll = store.collection(collection_name(resource_type))
        for i in range(20):  # a few rows, so that the planner has something to weigh
            body: dict[str, Any] = {"resourceType": resource_type, "id": f"r{i}"}
            if resource_type == "Patient":
                body["name"] = [{"family": f"Zhang{i}", "given": ["Wei"]}]
            await coll.create(body, id=f"r{i}")
        plan = SearchParser(resource_type, default_count=20, max_count=500).parse(
            parse_qsl(query), strict=True
        )
        where = list(plan.where)
        if compartment:  # what a citizen's search adds
            where.append(Eq("_compartment", "Patient/p1"))
        explained = await store.explain(
            collection_name(resource_type), Query(where=where, sort=plan.sort, limit=21)
        )
    finally:
        await store.close()
    lines = explained.splitlines()
    assert any(re.search(r"USING (COVERING )?INDEX \w+__k_", ln) for ln in lines), explained
    # Only intermediate results (c: candidate ids, p: the page, u*: an AnyOf's union) may be
    # scanned; stored tables (documents d*, keys k*, sort values s*) are searched by index,
    # except the live documents when nothing but negations constrains the search.
    scanned = {ln.split()[1] for ln in lines if ln.strip().startswith("SCAN ")}
    only_negations = all(isinstance(p, Not) for p in where)
    allowed = {"c", "p"} | {t for t in scanned if re.fullmatch(r"u\d+", t)}
    if only_negations:
        allowed |= {t for t in scanned if re.fullmatch(r"d\d*", t)}
    assert scanned <= allowed, explained
