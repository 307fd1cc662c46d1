"""Versions: vread, instance history and type history (paged by next links, `_since`)."""

from __future__ import annotations

from typing import Any

from tests.fixtures.health import Fhir, new_patient
from tests.services.health.fhirpy_support import (
    FHIR_JSON,
    assert_outcome,
    entries_of,
    fhirpy_client,
    follow,
    next_link,
    unique,
)


def _versions(c: Any, pid: str, n: int) -> list[dict[str, Any]]:
    """Create a Patient and update it until it has `n` versions; every version's body."""
    first = c.post("/Patient", json=new_patient()).json()
    out = [first]
    for v in range(2, n + 1):
        body = {**out[-1], "name": [{"family": f"Version{v}", "given": [pid]}]}
        body.pop("meta")
        r = c.put(f"/Patient/{first['id']}", json=body)
        assert r.status_code == 200, r.text
        out.append(r.json())
    return out


def test_vread_every_version(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        versions = _versions(c, unique(), 3)
        pid = versions[0]["id"]
        for v, body in enumerate(versions, start=1):
            r = c.get(f"/Patient/{pid}/_history/{v}")
            assert r.status_code == 200, r.text
            assert r.headers["etag"] == f'W/"{v}"'
            assert r.headers["content-type"].startswith(FHIR_JSON)
            assert r.json() == body
        assert_outcome(c.get(f"/Patient/{pid}/_history/4"), 404)
        assert_outcome(c.get(f"/Patient/{pid}/_history/latest"), 400)
    # fhirpy has no vread method; its execute() reaches the same URL
    client = fhirpy_client(fhir)
    second = client.execute(f"Patient/{pid}/_history/2", method="get")
    assert second["meta"]["versionId"] == "2"
    assert second["name"] == versions[1]["name"]


def test_instance_history_is_newest_first_and_paged(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        versions = _versions(c, unique(), 5)
        pid = versions[0]["id"]
        assert c.delete(f"/Patient/{pid}").status_code == 204

        first = c.get(f"/Patient/{pid}/_history", params={"_count": 2})
        pages = follow(c, first)
        assert len(pages) == 3
        assert all(p["resourceType"] == "Bundle" and p["type"] == "history" for p in pages)
        entries = [e for p in pages for e in entries_of(p)]
        etags = [e["response"]["etag"] for e in entries]
        assert etags == [f'W/"{v}"' for v in (6, 5, 4, 3, 2, 1)]
        assert entries[0]["request"]["method"] == "DELETE"
        assert "resource" not in entries[0]
        assert [e["resource"] for e in entries[1:]] == versions[::-1]
        assert [e["request"]["method"] for e in entries[1:]] == ["PUT"] * 4 + ["POST"]
        assert all(e["fullUrl"] == f"{fhir.base}/Patient/{pid}" for e in entries)

    # fhirpy reads the same history and follows the next link itself
    client = fhirpy_client(fhir)
    bundle = client.execute(f"Patient/{pid}/_history", method="get", params={"_count": 4})
    assert len(bundle["entry"]) == 4
    url = next_link(bundle)
    assert url is not None
    rest = client.execute(url, method="get")
    assert [e["response"]["etag"] for e in rest["entry"]] == ['W/"2"', 'W/"1"']
    assert next_link(rest) is None


def test_instance_history_since(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        versions = _versions(c, unique(), 5)
        pid = versions[0]["id"]
        assert c.delete(f"/Patient/{pid}").status_code == 204
        since = versions[2]["meta"]["lastUpdated"]  # version 3 and later
        first = c.get(f"/Patient/{pid}/_history", params={"_since": since, "_count": 2})
        pages = follow(c, first)
        entries = [e for p in pages for e in entries_of(p)]
        etags = [e["response"]["etag"] for e in entries]
        assert etags == ['W/"6"', 'W/"5"', 'W/"4"', 'W/"3"']
        assert all(e["resource"]["meta"]["lastUpdated"] >= since for e in entries[1:])
        later = c.get(f"/Patient/{pid}/_history", params={"_since": "2999-01-01T00:00:00Z"})
        assert later.status_code == 200
        assert entries_of(later.json()) == []
        bad = c.get(f"/Patient/{pid}/_history", params={"_since": "last week"})
        assert_outcome(bad, 400)


def test_history_of_an_unknown_resource_is_404(fhir: Fhir) -> None:
    with fhir.client("doctor") as c:
        assert_outcome(c.get(f"/Patient/{unique()}/_history"), 404)
        assert_outcome(c.get("/Patient/_history", params={"_since": "yesterday"}), 400)
        assert_outcome(c.get("/Patient/_history", params={"_count": "-1"}), 400)


def _type_history(c: Any, since: str, count: int) -> list[dict[str, Any]]:
    first = c.get("/Practitioner/_history", params={"_since": since, "_count": count})
    pages = follow(c, first)
    assert all(len(entries_of(p)) <= count for p in pages)
    return [e for p in pages for e in entries_of(p)]


def test_type_history_since_and_paging(fhir: Fhir) -> None:
    tag = unique()
    with fhir.client("doctor") as c:

        def practitioner(n: int) -> dict[str, Any]:
            body = {"resourceType": "Practitioner", "name": [{"family": f"{tag}-{n}"}]}
            r = c.post("/Practitioner", json=body)
            assert r.status_code == 201, r.text
            created: dict[str, Any] = r.json()
            return created

        before = practitioner(0)
        since = before["meta"]["lastUpdated"]
        mine = [practitioner(n) for n in range(1, 4)]
        updated = c.put(
            f"/Practitioner/{mine[0]['id']}",
            json={**mine[0], "active": True},
        ).json()
        assert c.delete(f"/Practitioner/{mine[1]['id']}").status_code == 204

        entries = _type_history(c, since, 2)
        ids = {p["id"] for p in [before, *mine]}
        seen = [
            (e["fullUrl"].rsplit("/", 1)[1], e["response"]["etag"])
            for e in entries
            if e["fullUrl"].rsplit("/", 1)[1] in ids
        ]
        # newest first: the deletion, the update, then the creates from the last to the first
        assert seen == [
            (mine[1]["id"], 'W/"2"'),
            (mine[0]["id"], 'W/"2"'),
            (mine[2]["id"], 'W/"1"'),
            (mine[1]["id"], 'W/"1"'),
            (mine[0]["id"], 'W/"1"'),
            (before["id"], 'W/"1"'),
        ]
        by_version = {(e["fullUrl"].rsplit("/", 1)[1], e["response"]["etag"]): e for e in entries}
        assert by_version[(mine[0]["id"], 'W/"2"')]["resource"] == updated
        assert by_version[(mine[1]["id"], 'W/"2"')]["request"]["method"] == "DELETE"
        for e in entries:
            if "resource" in e:
                assert e["resource"]["meta"]["lastUpdated"] >= since

        # _since after the last change: none of these versions any more
        later = c.get(f"/Practitioner/{mine[2]['id']}").json()["meta"]["lastUpdated"]
        after = {e["fullUrl"].rsplit("/", 1)[1] for e in _type_history(c, later, 50)}
        assert after & ids == {m["id"] for m in mine}  # mine[2]'s create, the update, the delete


def test_type_history_with_fhirpy(fhir: Fhir) -> None:
    client = fhirpy_client(fhir)
    first = client.resource("Practitioner", name=[{"family": unique()}])
    first.save()
    second = client.resource("Practitioner", name=[{"family": unique()}])
    second.save()
    bundle = client.execute(
        "Practitioner/_history",
        method="get",
        params={"_since": first["meta"]["lastUpdated"], "_count": 1},
    )
    assert bundle["type"] == "history"
    assert len(bundle["entry"]) == 1
    assert next_link(bundle) is not None
    seen: list[str] = []
    while True:
        seen += [e["fullUrl"].rsplit("/", 1)[1] for e in bundle["entry"]]
        url = next_link(bundle)
        if url is None:
            break
        bundle = client.execute(url, method="get")
    assert seen.index(second.id) < seen.index(first.id)
