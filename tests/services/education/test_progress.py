"""Progress records per learner per resource: who records and reads them."""

from __future__ import annotations

from tests.fixtures.education import Education, new_resident_id
from tests.services.education.helpers import create, new_class, ok, pointers, published

DONE = {"completion": "completed", "score": 92.5, "last_activity": "2026-11-02T10:00:00+08:00"}


def test_a_citizen_records_and_reads_their_own_progress(education: Education) -> None:
    me = new_resident_id()
    with education.client("teacher") as teacher:
        first = published(teacher)
        second = published(teacher)
        draft = create(teacher)
    with education.as_("citizen", resident_id=me) as citizen:
        made = ok(
            citizen.put(
                f"/progress/{me}/{first['id']}", json={"completion": "in-progress", "progress": 0.4}
            )
        )
        assert made["learner"] == me
        assert made["version"] == 1
        done = ok(citizen.put(f"/progress/{me}/{first['id']}", json=DONE))
        assert done["version"] == 2
        assert done["progress"] == 1.0
        assert done["score"] == 92.5
        assert done["last_activity"] == "2026-11-02T02:00:00Z"
        ok(
            citizen.put(
                f"/progress/{me}/{second['id']}",
                json={"completion": "in-progress", "last_activity": "2026-11-05T00:00:00Z"},
            )
        )
        mine = ok(citizen.get("/me/progress"))
        assert [p["resource"] for p in mine["items"]] == [second["id"], first["id"]]
        assert ok(citizen.get(f"/progress/{me}"))["items"] == mine["items"]
        # A draft is not there for a citizen; another learner's progress is not theirs.
        assert citizen.put(f"/progress/{me}/{draft['id']}", json=DONE).status_code == 404
        other = new_resident_id()
        assert citizen.put(f"/progress/{other}/{first['id']}", json=DONE).status_code == 404
        assert citizen.get(f"/progress/{other}").status_code == 404
        r = citizen.put(
            f"/progress/{me}/{first['id']}",
            json={"completion": "done", "score": 150, "last_activity": "2026-11-02T10:00:00"},
        )
        assert r.status_code == 422
        assert pointers(r) >= {"#/completion", "#/score"}


def test_teachers_record_progress_of_their_learners_only(education: Education) -> None:
    learner = new_resident_id()
    stranger = new_resident_id()
    with education.client("teacher") as author:
        resource = published(author)
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher)
        ok(teacher.post(f"/classes/{klass['id']}/enrollments", json={"user": learner}), 201)
        made = ok(
            teacher.put(
                f"/progress/{learner}/{resource['id']}", json={**DONE, "class": klass["id"]}
            )
        )
        assert made["class"] == klass["id"]
        assert [p["id"] for p in ok(teacher.get(f"/progress/{learner}"))["items"]] == [made["id"]]
        assert teacher.put(f"/progress/{stranger}/{resource['id']}", json=DONE).status_code == 404
        with education.as_("educator") as other:
            assert other.get(f"/progress/{learner}").status_code == 404
        assert ok(admin.get(f"/progress/{learner}"))["items"][0]["id"] == made["id"]
        # Once the learner leaves the class, their teacher no longer reads their progress.
        enrollment = ok(teacher.get(f"/classes/{klass['id']}/enrollments"))["items"]
        eid = next(e["id"] for e in enrollment if e["user"] == learner)
        ok(teacher.delete(f"/enrollments/{eid}"))
        assert teacher.get(f"/progress/{learner}").status_code == 404
