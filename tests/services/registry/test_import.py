"""Bulk import of residents and households from CSV: jobs, row errors, idempotence,
households, encodings, line limits, jurisdiction per row, progress, access to jobs."""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.registry.audit import AuditQueue
from services.registry.households import HouseholdService
from services.registry.import_jobs import ImportRunner
from services.registry.imports import COLUMNS, choose_encoding, parse_file
from services.registry.repository import IMPORT_JOBS, RegistryRepository, make_store
from services.registry.service import RegistryService
from shared.errors import Unprocessable
from shared.storage import Create
from tests.fixtures.registry import Registry, new_national_id, new_resident
from tests.services.registry.helpers import PROBLEM

A = "110101/002/007"
B = "110101/002/008"


def person(community: str = A, **extra: Any) -> dict[str, str]:
    """A CSV row of a new, unique person."""
    r = new_resident(community)
    latin = r["name"]["latin"]
    row = {
        "name_zh": "",
        "name_latin": latin,
        "sex": r["sex"],
        "birth_date": r["birth_date"],
        "national_id": r["national_id"],
        "phone": r["phone"],
        "community": community,
        "address": "3 Import Street",
        "household": "",
        "relationship": "",
    }
    row.update(extra)
    return row


def csv_bytes(rows: list[dict[str, str]], encoding: str = "utf-8") -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), lineterminator="\r\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode(encoding)


def start(c: httpx.Client, raw: bytes, ctype: str = "text/csv") -> dict[str, Any]:
    r = c.post("/imports", content=raw, headers={"Content-Type": ctype})
    assert r.status_code == 202, r.text
    assert r.headers["location"] == f"/imports/{r.json()['id']}"
    return dict(r.json())


def finished(c: httpx.Client, job: dict[str, Any], timeout: float = 180.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["state"] not in ("done", "failed"):
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = c.get(f"/imports/{job['id']}").json()
    return job


def run(c: httpx.Client, raw: bytes, ctype: str = "text/csv") -> dict[str, Any]:
    return finished(c, start(c, raw, ctype))


def row_errors(c: httpx.Client, job: dict[str, Any]) -> dict[int, set[str | None]]:
    r = c.get(f"/imports/{job['id']}/errors", params={"limit": 100})
    assert r.status_code == 200, r.text
    return {i["row"]: {e["field"] for e in i["errors"]} for i in r.json()["items"]}


def found(c: httpx.Client, national_id: str) -> Any:
    items = c.get("/residents", params={"national_id": national_id}).json()["items"]
    return items[0] if items else None


def counts(job: dict[str, Any]) -> tuple[int, int, int, int, int]:
    r = job["rows"]
    return r["total"], r["created"], r["existing"], r["updated"], r["failed"]


def test_good_file(registry: Registry) -> None:
    rows = [person(), person(name_zh="李娜"), person(national_id="", phone="")]
    with registry.client("worker") as c:
        job = run(c, csv_bytes(rows))
        assert job["state"] == "done", job
        assert job["encoding"] == "utf-8"
        assert counts(job) == (3, 3, 0, 0, 0)
        assert job["rows"]["done"] == 3
        assert job["owner"] == "worker"
        created = found(c, rows[1]["national_id"])
        full = c.get(f"/residents/{created['id']}").json()
        assert full["name"] == {"zh": "李娜", "latin": rows[1]["name_latin"]}
        assert full["address"] == {"line": "3 Import Street", "community": A}
        assert full["phone"] == rows[1]["phone"]
        no_id = c.get("/residents", params={"name": rows[2]["name_latin"]}).json()["items"]
        assert len(no_id) == 1
        # Audited like interactive registration, and the job itself too.
    with registry.client("auditor") as auditor:
        trail = auditor.get("/audit", params={"resident": created["id"]}).json()["items"]
        assert "resident.register" in {e["action"] for e in trail}


def test_bad_rows_are_reported_and_good_rows_kept(registry: Registry) -> None:
    good, bad_digit, bad_date, unknown, good2 = (person() for _ in range(5))
    nid = bad_digit["national_id"]
    bad_digit["national_id"] = nid[:17] + ("0" if nid[17] != "0" else "1")
    bad_date["birth_date"] = "1980-02-30"
    bad_date["national_id"] = ""
    unknown["community"] = "110101/002/999"
    raw = csv_bytes([good, bad_digit, bad_date, unknown]).decode()
    raw += "Only,three,fields\r\n\r\n"  # line 6; line 7 blank
    raw += csv_bytes([good2]).decode().split("\r\n", 1)[1]  # line 8
    with registry.client("worker") as c:
        job = run(c, raw.encode())
        assert job["state"] == "done"
        assert counts(job) == (6, 2, 0, 0, 4)
        assert row_errors(c, job) == {
            3: {"national_id"},
            4: {"birth_date"},
            5: {"community"},
            6: {None},
        }
        assert found(c, good["national_id"])
        assert found(c, good2["national_id"])
        # Nothing of a failed row was written.
        assert not c.get("/residents", params={"name": bad_date["name_latin"]}).json()["items"]
        assert found(c, unknown["national_id"]) is None


def test_rerun_creates_nothing_twice(registry: Registry) -> None:
    rows = [person(), person(national_id="", phone=""), person(name_zh="王静")]
    raw = csv_bytes(rows)
    with registry.client("worker") as c:
        assert counts(run(c, raw)) == (3, 3, 0, 0, 0)
        again = run(c, raw)
        assert counts(again) == (3, 0, 3, 0, 0)
        assert len(c.get("/residents", params={"name": rows[1]["name_latin"]}).json()["items"]) == 1
        # Same national ID, other data: a row error naming what differs; nothing changed.
        changed = dict(rows[0], phone="13912345678", address="5 Other Road")
        job = run(c, csv_bytes([changed]))
        assert counts(job) == (1, 0, 0, 0, 1)
        problem = c.get(f"/imports/{job['id']}/errors").json()["items"][0]
        assert problem["row"] == 2
        assert problem["errors"][0]["field"] == "national_id"
        assert "phone" in problem["errors"][0]["message"]
        assert "address" in problem["errors"][0]["message"]
        rid = found(c, rows[0]["national_id"])["id"]
        assert c.get(f"/residents/{rid}").json()["phone"] == rows[0]["phone"]


def test_probable_duplicates_are_flagged_for_review(registry: Registry) -> None:
    first = person()
    twin = person(name_latin=first["name_latin"], birth_date=first["birth_date"])
    twin["national_id"] = ""  # another person of that name and birthday, no ID given
    with registry.client("worker") as c:
        run(c, csv_bytes([first]))
        job = run(c, csv_bytes([twin]))
        assert counts(job) == (1, 1, 0, 0, 0)
        hits = c.get("/residents", params={"name": first["name_latin"]}).json()["items"]
        assert sorted(h["review"] or "" for h in hits) == ["", "pending"]


def test_households_from_the_file(registry: Registry) -> None:
    head = person(household="Zhang", relationship="户主")
    spouse = person(household="Zhang", relationship="spouse")
    child = person(household="Zhang", relationship="child")
    two_heads = [person(household="Li", relationship="head") for _ in range(2)]
    bad_head = person(household="Wu", relationship="head", birth_date="1990-13-01")
    orphan = person(household="Wu", relationship="child")
    rows = [head, spouse, *two_heads, child, bad_head, orphan]
    with registry.client("worker") as c:
        job = run(c, csv_bytes(rows))
        assert counts(job) == (7, 3, 0, 0, 4)
        assert row_errors(c, job) == {
            4: {"household"},
            5: {"household"},
            7: {"birth_date"},
            8: {"household"},
        }
        hid = found(c, head["national_id"])["id"]
        household = c.get(f"/residents/{hid}/household").json()
        assert household["head"] == hid
        assert household["address"] == "3 Import Street"
        relations = {m["relationship"] for m in household["members"]}
        assert relations == {"head", "spouse", "child"}
        assert found(c, two_heads[0]["national_id"]) is None
        # Re-run: all existing; a new member of the same household joins it.
        grandma = person(household="Zhang", relationship="grandparent")
        again = run(c, csv_bytes([head, spouse, child, grandma]))
        assert counts(again) == (4, 1, 3, 0, 0), row_errors(c, again)
        members = c.get(f"/households/{household['id']}").json()["members"]
        assert len(members) == 4


def test_existing_people_are_put_in_a_household(registry: Registry) -> None:
    a, b = person(), person()
    with registry.client("worker") as c:
        run(c, csv_bytes([a, b]))
        a2 = dict(a, household="1", relationship="head")
        b2 = dict(b, household="1", relationship="child")
        job = run(c, csv_bytes([a2, b2]))
        assert counts(job) == (2, 0, 0, 2, 0), row_errors(c, job)
        rid = found(c, b["national_id"])["id"]
        assert c.get(f"/residents/{rid}").json()["household"]["relationship"] == "child"
        # The same people in another household of another file: refused per row.
        b3 = dict(b, household="x", relationship="head")
        job = run(c, csv_bytes([b3]))
        assert row_errors(c, job) == {2: {"household"}}


def test_gb18030_files_are_detected(registry: Registry) -> None:
    rows = [person(name_zh="张秀英", sex="女"), person(name_zh="刘洋", sex="男")]
    for r, sex in zip(rows, ("female", "male"), strict=True):
        r["national_id"] = new_national_id(date.fromisoformat(r["birth_date"]), sex)
    raw = csv_bytes(rows, "gb18030")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    with registry.client("worker") as c:
        job = run(c, raw)
        assert job["encoding"] == "gb18030"
        assert counts(job) == (2, 2, 0, 0, 0), row_errors(c, job)
        assert found(c, rows[0]["national_id"])["name"]["zh"] == "张秀英"
        # Declared explicitly (GBK is read as its superset GB18030): the same rows exist.
        declared = run(c, raw, "text/csv; charset=GBK")
        assert declared["encoding"] == "gb18030"
        assert counts(declared) == (2, 0, 2, 0, 0)


def test_wrong_encodings(registry: Registry) -> None:
    ok = [person(name_zh="赵敏"), person(name_zh="孙丽")]
    broken = person(name_zh="陈明")
    raw = csv_bytes(ok) + csv_bytes([broken], "gb18030").split(b"\r\n", 1)[1]
    with registry.client("worker") as c:
        job = run(c, raw)  # mostly UTF-8: the GB18030 line alone fails
        assert job["encoding"] == "utf-8"
        assert row_errors(c, job) == {4: {None}}
        r = c.post(
            "/imports",
            content=csv_bytes([person()], "utf-16"),
            headers={"Content-Type": "text/csv"},
        )
        assert r.status_code == 422
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "UTF-16" in r.json()["detail"]
        r = c.post("/imports", content=b"x", headers={"Content-Type": "text/csv; charset=big5"})
        assert r.status_code == 422


def test_oversized_line(registry: Registry) -> None:
    big = person(address="x" * 5000)
    ok = person()
    with registry.client("worker") as c:
        job = run(c, csv_bytes([big, ok]))
        assert counts(job) == (2, 1, 0, 0, 1)
        problem = c.get(f"/imports/{job['id']}/errors").json()["items"][0]
        assert problem == {
            "row": 2,
            "errors": [{"field": None, "message": problem["errors"][0]["message"]}],
        }
        assert "limit is 4096" in problem["errors"][0]["message"]


def test_jurisdiction_is_checked_per_row(registry: Registry) -> None:
    mine, theirs = person(A), person(B)
    raw = csv_bytes([mine, theirs])
    with registry.client("worker") as c:
        job = run(c, raw)
        assert counts(job) == (2, 1, 0, 0, 1)
        errors = c.get(f"/imports/{job['id']}/errors").json()["items"]
        assert errors[0]["row"] == 3
        assert "outside your jurisdiction" in str(errors)
    with registry.client("officer") as c:  # the street above both communities
        assert counts(run(c, raw)) == (2, 1, 1, 0, 0)
    with registry.client("citizen") as c:
        r = c.post("/imports", content=raw, headers={"Content-Type": "text/csv"})
        assert r.status_code == 403
    with registry.client("auditor") as c:
        r = c.post("/imports", content=raw, headers={"Content-Type": "text/csv"})
        assert r.status_code == 403


def test_job_progress_and_who_sees_it(registry: Registry) -> None:
    rows = [person() for _ in range(3)] + [person(birth_date="2999-01-01")]
    rows.append(person(community="110101/002/999"))
    with registry.client("worker") as c:
        queued = start(c, csv_bytes(rows))
        assert queued["state"] in ("queued", "running")
        assert queued["rows"]["total"] == 5
        assert queued["errors"].endswith("/errors")
        job = finished(c, queued)
        assert job["state"] == "done"
        assert job["started_at"]
        assert job["finished_at"]
        assert job["rows"] == {
            "total": 5,
            "done": 5,
            "created": 3,
            "existing": 0,
            "updated": 0,
            "failed": 2,
        }
        page = c.get(f"/imports/{job['id']}/errors", params={"limit": 1}).json()
        assert [i["row"] for i in page["items"]] == [5]
        second = httpx.get(page["next"], headers=c.headers).json()
        assert [i["row"] for i in second["items"]] == [6]
        assert second["next"] is None
        mine = c.get("/imports").json()["items"]
        assert job["id"] in {j["id"] for j in mine}
    with registry.as_("community-worker", jurisdiction=A) as other:
        assert other.get(f"/imports/{job['id']}").status_code == 404
        assert other.get(f"/imports/{job['id']}/errors").status_code == 404
        assert job["id"] not in {j["id"] for j in other.get("/imports").json()["items"]}
    with registry.client("admin") as admin:
        assert admin.get(f"/imports/{job['id']}").json()["state"] == "done"
    with registry.client("auditor") as auditor:
        trail = auditor.get("/audit", params={"actor": "worker", "limit": 100}).json()["items"]
        assert any(
            e["action"] == "import.finish" and job["id"] in (e.get("detail") or "") for e in trail
        )


def test_file_problems_and_upload_forms(registry: Registry) -> None:
    with registry.client("worker") as c:
        r = c.post(
            "/imports", content=b"name,sex\r\nx,male\r\n", headers={"Content-Type": "text/csv"}
        )
        assert r.status_code == 422, r.text
        assert {e["message"] for e in r.json()["errors"]} >= {
            "unknown column 'name'",
            "missing column birth_date",
        }
        r = c.post("/imports", content=b"{}", headers={"Content-Type": "application/json"})
        assert r.status_code == 415
        rows = [person()]
        r = c.post("/imports", files={"file": ("people.csv", csv_bytes(rows), "text/csv")})
        assert r.status_code == 202, r.text
        job = finished(c, r.json())
        assert job["filename"] == "people.csv"
        assert counts(job) == (1, 1, 0, 0, 0)


def test_encoding_choice() -> None:
    utf8 = "name_zh\n张伟\n".encode()
    assert choose_encoding(utf8, None) == "utf-8"
    assert choose_encoding(b"\xef\xbb\xbf" + utf8, None) == "utf-8"
    assert choose_encoding("name_zh\n张伟\n".encode("gb18030"), None) == "gb18030"
    assert choose_encoding(utf8, "GB2312") == "gb18030"
    with pytest.raises(Unprocessable):
        choose_encoding("a".encode("utf-16"), None)
    parsed = parse_file(
        b"\xef\xbb\xbfname_latin,sex,birth_date,community,address\r\nA,m,1980/5/3,x,y\r\n"
    )
    assert parsed.columns[0] == "name_latin"
    assert parsed.rows[0].line == 2
    assert parsed.rows[0].values["birth_date"] == "1980/5/3"


async def test_jobs_interrupted_by_a_restart_are_marked_failed(tmp_path: Path) -> None:
    store = make_store(f"sqlite:///{tmp_path}/registry.db")
    await store.open()
    try:
        repo = RegistryRepository(store)
        audit = AuditQueue(repo, flush_seconds=1, batch_size=10, max_pending=100)
        residents = RegistryService(repo, audit)
        runner = ImportRunner(residents, HouseholdService(residents))
        old = (datetime.now(UTC) - timedelta(minutes=10)).isoformat()
        fresh = datetime.now(UTC).isoformat()
        for id, beat in (("a" * 32, old), ("b" * 32, fresh)):
            body = {
                "id": id,
                "owner": {"sub": "s", "username": "u"},
                "state": "running",
                "created_at": old,
                "beat": beat,
                "rows": {},
            }
            await store.write([Create(IMPORT_JOBS, body, id)])
        assert await runner.sweep() == 1
        stale = await repo.import_job("a" * 32)
        assert stale is not None
        assert stale.body["state"] == "failed"
        assert "re-run the same file" in stale.body["error"]
        alive = await repo.import_job("b" * 32)
        assert alive is not None
        assert alive.body["state"] == "running"
    finally:
        await store.close()
