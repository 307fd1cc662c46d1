"""The registry's resident events: learners' names and status, and merged residents whose
enrollments and progress follow the surviving id. Events go on a real feed; the service
consumes it as its own service account."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from shared.events.residents import RESIDENT_MERGED, RESIDENT_REGISTERED, RESIDENT_UPDATED
from tests.fixtures.education import Education, new_resident_id
from tests.services.education.helpers import new_class, ok, published


def snapshot(rid: str, version: int, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "resident_id": rid,
        "version": version,
        "name": {"zh": "王芳", "latin": "Wang Fang"},
        "sex": "female",
        "birth_date": "1975-11-20",
        "status": "active",
        "deceased_date": None,
        "community": "110101/002/007",
        "phone": None,
        "address": None,
    }
    body.update(changes)
    return body


def eventually(probe: Callable[[], Any], accept: Callable[[Any], bool], within: float = 40) -> Any:
    deadline = time.monotonic() + within
    while True:
        value = probe()
        if accept(value):
            return value
        assert time.monotonic() < deadline, f"not reached in time; last value {value!r}"
        time.sleep(0.1)


def roster(teacher: httpx.Client, class_id: str) -> dict[str, Any]:
    items = ok(teacher.get(f"/classes/{class_id}/enrollments"))["items"]
    return {e["user"]: e for e in items if e["role"] == "learner"}


async def test_learner_names_and_status_follow_the_registry(education: Education) -> None:
    rid = new_resident_id()
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher)
        cid = klass["id"]
        ok(teacher.post(f"/classes/{cid}/enrollments", json={"user": rid}), 201)
        assert roster(teacher, cid)[rid]["person"] is None  # not heard of yet
        await education.publish(
            (RESIDENT_REGISTERED, snapshot(rid, 1)),
            (RESIDENT_UPDATED, snapshot(rid, 2, name={"zh": "王芳芳", "latin": None})),
        )
        person = eventually(
            lambda: roster(teacher, cid)[rid]["person"],
            lambda p: p is not None and p["name"]["zh"] == "王芳芳",
        )
        assert person == {"name": {"zh": "王芳芳", "latin": None}, "status": "active"}
        # An older version delivered again changes nothing; a later one does.
        await education.publish(
            (RESIDENT_REGISTERED, snapshot(rid, 1)),
            (
                RESIDENT_UPDATED,
                snapshot(
                    rid,
                    3,
                    name={"zh": "王芳芳", "latin": None},
                    status="deceased",
                    deceased_date="2026-10-01",
                ),
            ),
        )
        person = eventually(
            lambda: roster(teacher, cid)[rid]["person"], lambda p: p["status"] == "deceased"
        )
        assert person["name"]["zh"] == "王芳芳"
        other = new_class(admin, teacher)
        r = teacher.post(f"/classes/{other['id']}/enrollments", json={"user": rid})
        assert r.status_code == 409


async def test_a_merged_residents_learning_follows_the_survivor(education: Education) -> None:
    retired, survivor = new_resident_id(), new_resident_id()
    with (
        education.client("admin") as admin,
        education.as_("educator") as teacher,
        education.client("teacher") as author,
    ):
        first, both = new_class(admin, teacher), new_class(admin, teacher)
        res1, res2 = published(author), published(author)
        for cid, rid in ((first["id"], retired), (both["id"], retired), (both["id"], survivor)):
            ok(teacher.post(f"/classes/{cid}/enrollments", json={"user": rid}), 201)
        progress = (
            (retired, res1, {"completion": "completed", "score": 80}),
            (retired, res2, {"completion": "in-progress", "progress": 0.3}),
            (survivor, res1, {"completion": "in-progress", "progress": 0.5, "score": 90}),
        )
        for rid, res, body in progress:
            ok(teacher.put(f"/progress/{rid}/{res['id']}", json=body))
        gone = roster(teacher, both["id"])[survivor]["id"]
        ok(teacher.delete(f"/enrollments/{gone}"))  # the survivor had left that class
        merged = {"resident_id": retired, "into": survivor, "version": 4}
        await education.publish(
            (RESIDENT_REGISTERED, snapshot(survivor, 1)), (RESIDENT_MERGED, merged)
        )
        moved = eventually(
            lambda: ok(admin.get(f"/progress/{survivor}"))["items"],
            lambda items: len(items) == 2,
        )
        by_resource = {p["resource"]: p for p in moved}
        assert by_resource[res1["id"]]["completion"] == "completed"
        assert by_resource[res1["id"]]["score"] == 90  # the better of the two
        assert by_resource[res2["id"]]["progress"] == 0.3
        # Nothing is left under the retired id, which now leads to the survivor.
        assert ok(admin.get(f"/progress/{retired}"))["items"] == moved
        for cid in (first["id"], both["id"]):
            learners = roster(teacher, cid)
            assert retired not in learners
            assert learners[survivor]["status"] == "active"
        # The retired id now leads to the survivor: enrolling it enrolls them.
        third = new_class(admin, teacher)
        made = ok(teacher.post(f"/classes/{third['id']}/enrollments", json={"user": retired}), 201)
        assert made["user"] == survivor
        with education.as_("citizen", resident_id=retired) as citizen:
            mine = ok(citizen.get("/me/enrollments"))["items"]
            assert {e["class"] for e in mine} == {first["id"], both["id"], third["id"]}
            # A token that still carries the retired id reaches the survivor's learning.
            assert len(ok(citizen.get("/me/progress"))["items"]) == 2
            assert ok(citizen.delete(f"/enrollments/{made['id']}"))["status"] == "withdrawn"
        res3 = published(author)
        late = ok(
            teacher.put(f"/progress/{retired}/{res3['id']}", json={"completion": "completed"})
        )
        assert late["learner"] == survivor
        # Replayed, the merge finds nothing left to move and changes nothing.
        before = ok(admin.get(f"/progress/{survivor}"))["items"]
        assert len(before) == 3
        sentinel = new_resident_id()
        ok(teacher.post(f"/classes/{third['id']}/enrollments", json={"user": sentinel}), 201)
        await education.publish(
            (RESIDENT_MERGED, merged), (RESIDENT_REGISTERED, snapshot(sentinel, 1))
        )
        eventually(
            lambda: roster(teacher, third["id"])[sentinel]["person"], lambda p: p is not None
        )
        assert ok(admin.get(f"/progress/{survivor}"))["items"] == before
        assert set(roster(teacher, both["id"])) == {survivor}


async def test_a_payload_that_breaks_the_contract_is_skipped(education: Education) -> None:
    rid, later = new_resident_id(), new_resident_id()
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher)
        for r in (rid, later):
            ok(teacher.post(f"/classes/{klass['id']}/enrollments", json={"user": r}), 201)
        await education.publish(
            (RESIDENT_REGISTERED, {**snapshot(rid, 1), "sex": "robot"}),
            (RESIDENT_REGISTERED, snapshot(later, 1)),
        )
        eventually(lambda: roster(teacher, klass["id"])[later]["person"], lambda p: p is not None)
        assert roster(teacher, klass["id"])[rid]["person"] is None
