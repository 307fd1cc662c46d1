"""Places: import from JSON (flat or tree) and CSV by admins, validation, idempotence."""

from __future__ import annotations

import random

import orjson

from tests.fixtures.registry import Registry, new_resident
from tests.services.registry.helpers import pointers


def _district() -> str:
    # Under province 12 (Tianjin): never a demo district, unique per test.
    return f"12{random.randrange(10_000):04d}"


def test_import_tree_json_then_reimport_is_idempotent(registry: Registry) -> None:
    d = _district()
    tree = [
        {
            "code": d,
            "name": {"zh": "测试区", "en": "Test District"},
            "children": [
                {
                    "code": "001",
                    "name": {"zh": "一街道", "en": "First Subdistrict"},
                    "children": [{"code": "001", "name": {"zh": "甲社区", "en": "Jia Community"}}],
                }
            ],
        }
    ]
    with registry.client("admin") as admin:
        first = admin.post(
            "/places/import",
            content=orjson.dumps(tree),
            headers={"content-type": "application/json"},
        )
        assert first.status_code == 200, first.text
        assert first.json() == {"created": 3, "updated": 0, "unchanged": 0}
        again = admin.post(
            "/places/import",
            content=orjson.dumps(tree),
            headers={"content-type": "application/json"},
        )
        assert again.json() == {"created": 0, "updated": 0, "unchanged": 3}
        renamed = [{"code": f"{d}/001/001", "name": {"zh": "甲社区", "en": "Jia Neighbourhood"}}]
        changed = admin.post("/places/import", json=renamed)
        assert changed.json() == {"created": 0, "updated": 1, "unchanged": 0}
        place = admin.get(f"/places/{d}/001/001").json()
    assert place == {
        "code": f"{d}/001/001",
        "level": "community",
        "parent": f"{d}/001",
        "name": {"zh": "甲社区", "en": "Jia Neighbourhood"},
    }


def test_import_csv_and_register_there(registry: Registry) -> None:
    d = _district()
    csv = (
        "code,name_zh,name_en\n"
        f"{d},乙区,Yi District\n{d}/002,二街道,Second\n{d}/002/003,丙社区,Bing\n"
    )
    with registry.client("admin") as admin:
        r = admin.post("/places/import", content=csv.encode(), headers={"content-type": "text/csv"})
    assert r.status_code == 200, r.text
    assert r.json()["created"] == 3
    with registry.as_("community-worker", jurisdiction=f"{d}/002/003") as w:
        assert w.post("/residents", json=new_resident(community=f"{d}/002/003")).status_code == 201


def test_bad_files_are_refused_whole(registry: Registry) -> None:
    d = _district()
    rows = [
        {"code": d, "name": {"zh": "区", "en": "D"}},
        {"code": f"{d}/1", "name": {"zh": "街", "en": "S"}},
        {"code": f"{d}/002", "name": {"zh": "", "en": "S"}},
    ]
    with registry.client("admin") as admin:
        r = admin.post("/places/import", json=rows)
        assert r.status_code == 422
        assert pointers(r) == {"#/1", "#/2"}
        assert admin.get(f"/places/{d}").status_code == 404  # nothing partial
        orphan = admin.post(
            "/places/import", json=[{"code": f"{d}/001/001", "name": {"zh": "社区", "en": "C"}}]
        )
        assert orphan.status_code == 422
        latin1 = admin.post(
            "/places/import",
            content="code,name_zh,name_en\n120001,Müller,M\n".encode("latin-1"),
            headers={"content-type": "text/csv"},
        )
        assert latin1.status_code == 422
        assert "UTF-8" in latin1.json()["detail"]
        header = admin.post(
            "/places/import", content=b"a,b\n1,2\n", headers={"content-type": "text/csv"}
        )
        assert header.status_code == 422
        xml = admin.post(
            "/places/import", content=b"<places/>", headers={"content-type": "application/xml"}
        )
        assert xml.status_code == 415


def test_only_admins_import(registry: Registry) -> None:
    for user in ("worker", "officer", "auditor", "citizen"):
        with registry.client(user) as c:
            assert c.post("/places/import", json=[]).status_code == 403


def test_unknown_place_is_404(registry: Registry) -> None:
    with registry.client("worker") as c:
        assert c.get("/places/110101/002/999").status_code == 404
        assert c.get("/places/not-a-code").status_code == 404
