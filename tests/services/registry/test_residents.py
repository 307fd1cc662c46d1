"""Registration, reads, versioned updates with If-Match, moves and history."""

from __future__ import annotations

from tests.fixtures.registry import Registry, new_phone, new_resident
from tests.services.registry.helpers import pointers, register


def test_register_allocates_an_id_and_returns_the_record(registry: Registry) -> None:
    body = new_resident(name={"zh": "测试人"})
    with registry.client("worker") as c:
        r = c.post("/residents", json=body)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["id"].startswith("R-")
    assert len(created["id"]) == 10
    assert r.headers["location"] == f"/residents/{created['id']}"
    assert r.headers["etag"] == 'W/"1"'
    assert created["version"] == 1
    assert created["status"] == "active"
    assert created["name"]["latin"] == "Ce Shiren"  # romanised when not given
    assert created["national_id"] == body["national_id"]
    assert created["household"] is None


def test_ids_are_unique_and_increasing(registry: Registry) -> None:
    with registry.client("worker") as c:
        ids = [register(c)["id"] for _ in range(3)]
    assert len(set(ids)) == 3
    assert ids == sorted(ids)


def test_update_with_if_match_and_stale_etag(registry: Registry) -> None:
    with registry.client("worker") as c:
        created = register(c)
        rid = created["id"]
        phone = new_phone()
        ok = c.patch(f"/residents/{rid}", json={"phone": phone}, headers={"If-Match": 'W/"1"'})
        assert ok.status_code == 200, ok.text
        assert ok.json()["version"] == 2
        assert ok.headers["etag"] == 'W/"2"'
        assert ok.json()["phone"] == phone
        stale = c.patch(
            f"/residents/{rid}", json={"phone": new_phone()}, headers={"If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
        assert c.get(f"/residents/{rid}").json()["phone"] == phone


def test_patch_without_changes_keeps_the_version(registry: Registry) -> None:
    with registry.client("worker") as c:
        created = register(c)
        r = c.patch(f"/residents/{created['id']}", json={"sex": created["sex"]})
    assert r.json()["version"] == 1


def test_null_clears_the_phone(registry: Registry) -> None:
    with registry.client("worker") as c:
        created = register(c)
        r = c.patch(f"/residents/{created['id']}", json={"phone": None})
    assert r.status_code == 200
    assert r.json()["phone"] is None


def test_move_within_the_street_and_history(registry: Registry) -> None:
    with registry.client("officer") as x:
        created = register(x)
        rid = created["id"]
        moved = x.patch(
            f"/residents/{rid}",
            json={"address": {"line": "8 New Road", "community": "110101/002/008"}},
        )
        assert moved.status_code == 200, moved.text
        history = x.get(f"/residents/{rid}/history").json()
    assert [v["version"] for v in history["items"]] == [2, 1]
    assert history["items"][0]["address"]["community"] == "110101/002/008"
    assert history["items"][1]["address"]["community"] == "110101/002/007"
    # The worker of the old community no longer sees the person.
    with registry.client("worker") as a:
        assert a.get(f"/residents/{rid}").status_code == 404


def test_worker_cannot_move_a_resident_out_of_their_community(registry: Registry) -> None:
    with registry.client("worker") as a:
        rid = register(a)["id"]
        r = a.patch(
            f"/residents/{rid}",
            json={"address": {"line": "x", "community": "110101/002/008"}},
        )
        assert r.status_code == 403
        assert a.get(f"/residents/{rid}").json()["version"] == 1


def test_history_pages(registry: Registry) -> None:
    with registry.client("worker") as c:
        rid = register(c)["id"]
        for _ in range(3):
            assert c.patch(f"/residents/{rid}", json={"phone": new_phone()}).status_code == 200
        first = c.get(f"/residents/{rid}/history", params={"limit": 2}).json()
        assert [v["version"] for v in first["items"]] == [4, 3]
        second = c.get(first["next"]).json()
    assert [v["version"] for v in second["items"]] == [2, 1]
    assert second["next"] is None


def test_deceased_needs_a_date_and_is_final(registry: Registry) -> None:
    with registry.client("worker") as c:
        created = register(c)
        rid = created["id"]
        missing = c.patch(f"/residents/{rid}", json={"status": "deceased"})
        assert missing.status_code == 422
        assert "#/deceased_date" in pointers(missing)
        early = c.patch(
            f"/residents/{rid}", json={"status": "deceased", "deceased_date": "1900-01-02"}
        )
        assert early.status_code == 422
        ok = c.patch(
            f"/residents/{rid}", json={"status": "deceased", "deceased_date": "2024-01-02"}
        )
        assert ok.status_code == 200
        assert ok.json()["deceased_date"] == "2024-01-02"
        back = c.patch(f"/residents/{rid}", json={"status": "active", "deceased_date": None})
        assert back.status_code == 409


def test_moved_out_and_back(registry: Registry) -> None:
    with registry.client("worker") as c:
        rid = register(c)["id"]
        assert c.patch(f"/residents/{rid}", json={"status": "moved-out"}).json()["status"] == (
            "moved-out"
        )
        assert c.patch(f"/residents/{rid}", json={"status": "active"}).json()["status"] == "active"
