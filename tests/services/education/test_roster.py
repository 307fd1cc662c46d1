"""Organisations, sessions, courses, classes and enrollments: who may do what."""

from __future__ import annotations

from tests.fixtures.education import Education, new_resident_id
from tests.services.education.helpers import PROBLEM, new_class, ok, pointers


def test_an_educator_teaches_the_class_they_create(education: Education) -> None:
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher, title="数学晚班")
        taught = ok(teacher.get("/classes", params={"teaching": "true"}))
        assert [c["id"] for c in taught["items"]] == [klass["id"]]
        listed = ok(teacher.get("/classes", params={"course": klass["course"]}))
        assert [c["id"] for c in listed["items"]] == [klass["id"]]
        roster = ok(teacher.get(f"/classes/{klass['id']}/enrollments"))
        assert [(e["role"], e["status"]) for e in roster["items"]] == [("teacher", "active")]
        assert (
            ok(teacher.get(f"/classes/{klass['id']}"))["org"]
            == ok(teacher.get(f"/courses/{klass['course']}"))["org"]
        )


def test_enrollment_rules_per_role(education: Education) -> None:
    learner = new_resident_id()
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher)
        cid = klass["id"]
        r = teacher.post(f"/classes/{cid}/enrollments", json={"user": learner})
        made = ok(r, 201)
        assert made["role"] == "learner"
        assert made["user"] == learner
        assert r.headers["Location"] == f"/enrollments/{made['id']}"
        again = ok(teacher.post(f"/classes/{cid}/enrollments", json={"user": learner}))
        assert again["id"] == made["id"]
        # An educator who does not teach the class, and a citizen, manage nothing here.
        with education.as_("educator") as other:
            r = other.post(f"/classes/{cid}/enrollments", json={"user": new_resident_id()})
            assert r.status_code == 403
            assert r.headers["content-type"].startswith(PROBLEM)
            assert other.get(f"/classes/{cid}/enrollments").status_code == 403
            assert other.get(f"/enrollments/{made['id']}").status_code == 404
        with education.as_("citizen", resident_id=new_resident_id()) as citizen:
            r = citizen.post(f"/classes/{cid}/enrollments", json={"user": learner})
            assert r.status_code == 403
            assert citizen.get(f"/enrollments/{made['id']}").status_code == 404
            assert citizen.delete(f"/enrollments/{made['id']}").status_code == 404
        # Admins manage every class; a teacher may add a co-teacher.
        ok(admin.post(f"/classes/{cid}/enrollments", json={"user": new_resident_id()}), 201)
        with education.as_("educator") as co:
            assert ok(co.get("/classes", params={"teaching": "true"}))["items"] == []
        roster = ok(teacher.get(f"/classes/{cid}/enrollments"))
        assert sorted(e["role"] for e in roster["items"]) == ["learner", "learner", "teacher"]


def test_a_citizen_manages_their_own_enrollments(education: Education) -> None:
    me = new_resident_id()
    with education.client("admin") as admin, education.as_("educator") as teacher:
        open_class = new_class(admin, teacher)
        closed = new_class(admin, teacher, self_enroll=False)
    with education.as_("citizen", resident_id=me) as citizen:
        r = citizen.post("/me/enrollments", json={"class": open_class["id"]})
        mine = ok(r, 201)
        assert mine["user"] == me
        assert (
            ok(citizen.post("/me/enrollments", json={"class": open_class["id"]}))["id"]
            == mine["id"]
        )
        assert citizen.post("/me/enrollments", json={"class": closed["id"]}).status_code == 403
        listed = ok(citizen.get("/me/enrollments"))
        assert [e["id"] for e in listed["items"]] == [mine["id"]]
        assert ok(citizen.get(f"/enrollments/{mine['id']}"))["status"] == "active"
        left = ok(citizen.delete(f"/enrollments/{mine['id']}"))
        assert left["status"] == "withdrawn"
        rejoined = ok(citizen.post("/me/enrollments", json={"class": open_class["id"]}))
        assert rejoined["status"] == "active"
    # Someone without a resident id has no enrollments of their own.
    with education.as_("educator") as teacher:
        assert teacher.get("/me/enrollments").status_code == 403
        assert teacher.post("/me/enrollments", json={"class": open_class["id"]}).status_code == 403


def test_class_capacity(education: Education) -> None:
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher, capacity=1)
        ok(
            teacher.post(f"/classes/{klass['id']}/enrollments", json={"user": new_resident_id()}),
            201,
        )
        r = teacher.post(f"/classes/{klass['id']}/enrollments", json={"user": new_resident_id()})
        assert r.status_code == 409


def test_who_creates_roster_documents_and_bad_input(education: Education) -> None:
    with education.client("admin") as admin, education.as_("educator") as teacher:
        assert (
            teacher.post("/orgs", json={"name": {"en": "X"}, "type": "school"}).status_code == 403
        )
        r = teacher.post(
            "/sessions",
            json={
                "title": "x",
                "type": "term",
                "start_date": "2026-01-01",
                "end_date": "2026-02-01",
            },
        )
        assert r.status_code == 403
        r = admin.post("/orgs", json={"name": {}, "type": "castle", "extra": 1})
        assert r.status_code == 422
        assert pointers(r) == {"#/name", "#/type", "#/extra"}
        r = admin.post(
            "/sessions",
            json={
                "title": "x",
                "type": "term",
                "start_date": "2026-03-01",
                "end_date": "2026-02-01",
            },
        )
        assert r.status_code == 422
        r = teacher.post(
            "/courses", json={"title": {"en": "x"}, "course_code": "C", "org": "0" * 32}
        )
        assert r.status_code == 422
        assert pointers(r) == {"#/org"}
        klass = new_class(admin, teacher)
        r = teacher.post(
            "/classes",
            json={
                "title": "x",
                "class_code": "x",
                "course": klass["course"],
                "sessions": ["f" * 32],
            },
        )
        assert r.status_code == 422
        assert pointers(r) == {"#/sessions/0"}
        r = teacher.post(f"/classes/{klass['id']}/enrollments", json={"user": "not-a-resident"})
        assert r.status_code == 422
        assert teacher.get("/classes").status_code == 422
    with education.client("citizen") as citizen:
        r = citizen.post(
            "/courses", json={"title": {"en": "x"}, "course_code": "C", "org": "0" * 32}
        )
        assert r.status_code == 403
    with education.anonymous() as public:
        assert public.get("/orgs").status_code == 401
        assert public.get("/me/enrollments").status_code == 401


def test_a_class_is_changed_by_its_teachers_and_admins(education: Education) -> None:
    with education.client("admin") as admin, education.as_("educator") as teacher:
        klass = new_class(admin, teacher, capacity=3)
        cid = klass["id"]
        r = teacher.get(f"/classes/{cid}")
        etag = r.headers["ETag"]
        r = teacher.patch(
            f"/classes/{cid}",
            json={"title": "周末数学班", "location": None, "self_enroll": False},
            headers={"If-Match": etag},
        )
        changed = ok(r)
        assert (changed["title"], changed["self_enroll"]) == ("周末数学班", False)
        assert changed["location"] is None
        assert changed["version"] == klass["version"] + 1
        assert r.headers["ETag"] != etag
        # The same change again writes nothing; a stale If-Match is 412.
        assert (
            ok(teacher.patch(f"/classes/{cid}", json={"title": "周末数学班"}))["version"]
            == (changed["version"])
        )
        stale = teacher.patch(f"/classes/{cid}", json={"title": "x"}, headers={"If-Match": etag})
        assert stale.status_code == 412
        assert stale.headers["content-type"].startswith(PROBLEM)
        # Not below the learners enrolled: they are not withdrawn by it.
        for _ in range(2):
            ok(teacher.post(f"/classes/{cid}/enrollments", json={"user": new_resident_id()}), 201)
        assert teacher.patch(f"/classes/{cid}", json={"capacity": 1}).status_code == 409
        assert ok(admin.patch(f"/classes/{cid}", json={"capacity": 2}))["capacity"] == 2
        assert ok(teacher.patch(f"/classes/{cid}", json={"capacity": None}))["capacity"] is None
        # Others: another educator or a citizen may not; bad members are field errors.
        with education.as_("educator") as other:
            assert other.patch(f"/classes/{cid}", json={"title": "x"}).status_code == 403
        with education.as_("citizen", resident_id=new_resident_id()) as citizen:
            assert citizen.patch(f"/classes/{cid}", json={"title": "x"}).status_code == 403
        for body, pointer in (
            ({"title": None}, "#"),
            ({"capacity": 0}, "#/capacity"),
            ({"sessions": ["0" * 32]}, "#/sessions/0"),
            ({"course": klass["course"]}, "#/course"),
        ):
            r = teacher.patch(f"/classes/{cid}", json=body)
            assert r.status_code == 422, (body, r.text)
            assert pointer in pointers(r), (body, r.text)
        assert ok(teacher.get(f"/classes/{cid}"))["title"] == "周末数学班"
        assert teacher.patch(f"/classes/{'0' * 32}", json={"title": "x"}).status_code == 404
