"""Business rules of the roster: organisations, academic sessions, courses, classes,
enrollments (OneRoster's learner/teacher roles) and progress records.

Who teaches a class is itself an enrollment (role `teacher`, user = the educator's `sub`),
written in the same batch as the class by the educator who creates it, so "classes I teach"
and "am I a teacher of this class" are index lookups on one collection. Learners are
residents (user = resident id). An enrollment's id is derived from (class, role, user): a
person is enrolled in a class at most once by construction; leaving sets it `withdrawn`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from services.education.access import Viewer
from services.education.repository import (
    CLASSES,
    COURSES,
    ENROLLMENTS,
    LEARNERS,
    ORGS,
    PROGRESS,
    RESOURCES,
    SESSIONS,
    EducationRepository,
    derived_id,
)
from services.education.roster_schemas import (
    ClassIn,
    ClassPatch,
    CourseIn,
    EnrollIn,
    OrgIn,
    ProgressIn,
    SessionIn,
)
from services.education.service import expected_version, now_iso
from shared.auth.errors import InsufficientScope
from shared.errors import Conflict, NotFound, Unprocessable
from shared.ids import new_id
from shared.storage import (
    Create,
    Eq,
    In,
    Predicate,
    Query,
    Record,
    Sort,
    Update,
    VersionConflict,
)

MAX_MERGE_HOPS = 5


def enrollment_id(class_id: str, role: str, user: str) -> str:
    """The one enrollment of a person in a class in a role."""
    return derived_id("enrollment", class_id, role, user)


def progress_id(learner: str, resource: str) -> str:
    """The one progress record of a learner on a resource."""
    return derived_id("progress", learner, resource)


def _missing(pointer: str, what: str) -> Unprocessable:
    return Unprocessable(f"There is no {what}.", errors=[{"pointer": pointer, "message": what}])


class RosterService:
    """Organisations, sessions, courses, classes, enrollments and progress."""

    def __init__(self, repo: EducationRepository) -> None:
        self.repo = repo

    # organisations, sessions, courses

    async def create_org(self, viewer: Viewer, data: OrgIn) -> Record:
        """An organisation (admins)."""
        if not viewer.is_admin:
            raise InsufficientScope("Only administrators register organisations.")
        if data.parent and await self.repo.get(ORGS, data.parent) is None:
            raise _missing("#/parent", "such parent organisation")
        oid = new_id()
        body = {"id": oid, **data.model_dump(mode="json"), "created_at": now_iso()}
        return (await self.repo.write([Create(ORGS, body, oid)]))[0]

    async def create_session(self, viewer: Viewer, data: SessionIn) -> Record:
        """An academic session (admins)."""
        if not viewer.is_admin:
            raise InsufficientScope("Only administrators define academic sessions.")
        sid = new_id()
        body = {"id": sid, **data.model_dump(mode="json"), "created_at": now_iso()}
        return (await self.repo.write([Create(SESSIONS, body, sid)]))[0]

    async def create_course(self, viewer: Viewer, data: CourseIn) -> Record:
        """A course of an organisation (educators, admins)."""
        viewer.require_author()
        if await self.repo.get(ORGS, data.org) is None:
            raise _missing("#/org", "such organisation")
        found = await self.repo.many(RESOURCES, data.resources)
        for i, rid in enumerate(data.resources):
            if rid not in found or not viewer.sees_resource(found[rid].body):
                raise _missing(f"#/resources/{i}", "such resource")
        cid = new_id()
        body = {
            "id": cid,
            **data.model_dump(mode="json"),
            "owner": viewer.owner(),
            "created_at": now_iso(),
        }
        return (await self.repo.write([Create(COURSES, body, cid)]))[0]

    async def read(self, collection: str, id: str, what: str) -> Record:
        """An organisation, session, course or class (any signed-in caller)."""
        record = await self.repo.get(collection, id)
        if record is None:
            raise NotFound(f"{what} {id} is not known.")
        return record

    async def page(
        self,
        collection: str,
        where: Sequence[Predicate],
        *,
        limit: int,
        cursor: str | None,
        sort: str,
    ) -> tuple[list[Record], str | None]:
        """A page of a roster collection."""
        query = Query(where=list(where), sort=[Sort(sort)], limit=limit, cursor=cursor)
        page = await self.repo.search(collection, query)
        return list(page.items), page.next_cursor

    # classes

    async def create_class(self, viewer: Viewer, data: ClassIn) -> Record:
        """A class of a course; an educator who creates it teaches it."""
        viewer.require_author()
        course = await self.repo.get(COURSES, data.course)
        if course is None:
            raise _missing("#/course", "such course")
        sessions = await self.repo.many(SESSIONS, data.sessions)
        for i, sid in enumerate(data.sessions):
            if sid not in sessions:
                raise _missing(f"#/sessions/{i}", "such academic session")
        cid = new_id()
        at = now_iso()
        body = {
            "id": cid,
            **data.model_dump(mode="json"),
            "org": course.body["org"],
            "owner": viewer.owner(),
            "created_at": at,
        }
        ops: list[Any] = [Create(CLASSES, body, cid)]
        if viewer.is_educator and viewer.sub:
            teacher = self._enrollment(cid, "teacher", viewer.sub, viewer, None, None, at)
            ops.append(Create(ENROLLMENTS, teacher, teacher["id"]))
        return (await self.repo.write(ops))[0]

    async def update_class(
        self, viewer: Viewer, id: str, patch: ClassPatch, if_match: str | None
    ) -> Record:
        """Change a class's title, sessions, location, self-enrollment or capacity (its
        teachers, admins). A capacity below the learners already enrolled is a 409: they
        are not withdrawn by it."""
        record = await self.managed_class(viewer, id)
        version = expected_version(if_match, record.version, f"class {id}")
        changes = {k: getattr(patch, k) for k in patch.model_fields_set}
        if "sessions" in changes:
            sessions = await self.repo.many(SESSIONS, changes["sessions"])
            for i, sid in enumerate(changes["sessions"]):
                if sid not in sessions:
                    raise _missing(f"#/sessions/{i}", "such academic session")
        if changes.get("capacity") is not None:
            active = await self.repo.count(
                ENROLLMENTS, [Eq("class_active", f"{id}|learner|active")]
            )
            if active > changes["capacity"]:
                raise Conflict(
                    f"Class {id} has {active} active learners, more than a capacity of"
                    f" {changes['capacity']}; withdraw some first."
                )
        body = {**record.body, **changes}
        if body == record.body:
            return record
        body["updated_at"] = now_iso()
        try:
            return (await self.repo.write([Update(CLASSES, id, body, version)]))[0]
        except VersionConflict:
            raise Conflict(
                f"Class {id} was changed by someone else meanwhile; read it and try again."
            ) from None

    async def teaches(self, viewer: Viewer, class_ids: Sequence[str]) -> set[str]:
        """Which of these classes the caller teaches (actively)."""
        if not viewer.sub or not class_ids:
            return set()
        keys = [f"{c}|teacher|active" for c in dict.fromkeys(class_ids)][:1000]
        where: list[Predicate] = [Eq("user", viewer.sub), In("class_active", keys)]
        page = await self.repo.search(ENROLLMENTS, Query(where=where, limit=len(keys)))
        return {r.body["class"] for r in page.items}

    async def managed_class(self, viewer: Viewer, id: str) -> Record:
        """A class the caller manages: its teachers and admins (403 for others)."""
        record = await self.read(CLASSES, id, "Class")
        if not viewer.is_admin and id not in await self.teaches(viewer, [id]):
            raise InsufficientScope(
                f"Only the teachers of class {id} and administrators manage it."
            )
        return record

    async def taught_classes(self, viewer: Viewer, *, limit: int) -> list[Record]:
        """The classes the caller teaches."""
        where: list[Predicate] = [
            Eq("user", viewer.sub or ""),
            Eq("role", "teacher"),
            Eq("status", "active"),
        ]
        page = await self.repo.search(ENROLLMENTS, Query(where=where, limit=limit))
        found = await self.repo.many(CLASSES, [r.body["class"] for r in page.items])
        return list(found.values())

    # enrollments

    def _enrollment(
        self,
        class_id: str,
        role: str,
        user: str,
        viewer: Viewer,
        begin: str | None,
        end: str | None,
        at: str,
    ) -> dict[str, Any]:
        return {
            "id": enrollment_id(class_id, role, user),
            "class": class_id,
            "role": role,
            "user": user,
            "status": "active",
            "begin_date": begin,
            "end_date": end,
            "enrolled_by": viewer.sub,
            "updated_at": at,
        }

    async def survivor(self, resident_id: str) -> tuple[str, Record | None]:
        """The resident id a learner is known by now (a merged id leads to its survivor),
        and what the registry told us about them (None: not heard of yet)."""
        rid = resident_id
        learner = None
        for _ in range(MAX_MERGE_HOPS):
            learner = await self.repo.get(LEARNERS, rid)
            if learner is None or not learner.body.get("merged_into"):
                break
            rid = learner.body["merged_into"]
        return rid, learner

    async def current_learner(self, resident_id: str) -> str:
        """The id to enroll a resident under (the survivor of a merge); 409 when deceased."""
        rid, learner = await self.survivor(resident_id)
        if learner is not None and learner.body["status"] == "deceased":
            raise Conflict(f"Resident {rid} is deceased.")
        return rid

    async def own_learner(self, viewer: Viewer) -> str | None:
        """A citizen's own learner id (their token may still carry a merged-away id)."""
        if viewer.resident_id is None:
            return None
        return (await self.survivor(viewer.resident_id))[0]

    async def enroll(self, viewer: Viewer, class_id: str, data: EnrollIn) -> tuple[Record, bool]:
        """Enroll a learner or add a teacher (teachers of the class, admins); the record and
        whether it is new (repeating an enrollment is not an error)."""
        record = await self.managed_class(viewer, class_id)
        user = data.user
        if data.role == "learner":
            user = await self.current_learner(user)
        begin = data.begin_date.isoformat() if data.begin_date else None
        end = data.end_date.isoformat() if data.end_date else None
        return await self._activate(viewer, record, data.role, user, begin, end)

    async def join(self, viewer: Viewer, class_id: str) -> tuple[Record, bool]:
        """A citizen joins a class open to self-enrollment, as a learner."""
        if viewer.resident_id is None:
            raise InsufficientScope("Only citizens with a resident id join classes themselves.")
        record = await self.read(CLASSES, class_id, "Class")
        if not record.body.get("self_enroll"):
            raise InsufficientScope(f"Class {class_id} is joined through its teachers.")
        user = await self.current_learner(viewer.resident_id)
        return await self._activate(viewer, record, "learner", user, None, None)

    async def _activate(
        self,
        viewer: Viewer,
        klass: Record,
        role: str,
        user: str,
        begin: str | None,
        end: str | None,
    ) -> tuple[Record, bool]:
        eid = enrollment_id(klass.id, role, user)
        existing = await self.repo.get(ENROLLMENTS, eid)
        if existing is not None and existing.body["status"] == "active":
            return existing, False
        capacity = klass.body.get("capacity")
        if role == "learner" and capacity is not None:
            active = await self.repo.count(
                ENROLLMENTS, [Eq("class_active", f"{klass.id}|learner|active")]
            )
            if active >= capacity:
                raise Conflict(f"Class {klass.id} is full ({capacity} learners).")
        body = self._enrollment(klass.id, role, user, viewer, begin, end, now_iso())
        op = await self.repo.put_op(ENROLLMENTS, eid, body)
        try:
            return (await self.repo.write([op]))[0], existing is None
        except VersionConflict:
            raise Conflict("The enrollment changed meanwhile; try again.") from None

    async def enrollment(self, viewer: Viewer, id: str) -> Record:
        """An enrollment its learner, the class's teachers or an admin may see (404 else)."""
        record = await self.repo.get(ENROLLMENTS, id)
        if record is None or not await self._may_see_enrollment(viewer, record.body):
            raise NotFound(f"Enrollment {id} is not known.")
        return record

    async def _may_see_enrollment(self, viewer: Viewer, body: Mapping[str, Any]) -> bool:
        if viewer.is_admin:
            return True
        if body["role"] == "learner" and body["user"] == await self.own_learner(viewer):
            return True
        return body["class"] in await self.teaches(viewer, [body["class"]])

    async def withdraw(self, viewer: Viewer, id: str) -> Record:
        """End an enrollment (status withdrawn); the learner themselves, teachers, admins."""
        record = await self.enrollment(viewer, id)
        if record.body["status"] == "withdrawn":
            return record
        body = {**record.body, "status": "withdrawn", "updated_at": now_iso()}
        body["withdrawn_by"] = viewer.sub
        try:
            return (await self.repo.write([await self.repo.put_op(ENROLLMENTS, id, body)]))[0]
        except VersionConflict:
            raise Conflict("The enrollment changed meanwhile; try again.") from None

    async def enrollments(
        self, where: Sequence[Predicate], *, limit: int, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """A page of enrollments (the caller's right to see them is checked before)."""
        query = Query(where=list(where), limit=limit, cursor=cursor)
        page = await self.repo.search(ENROLLMENTS, query)
        return list(page.items), page.next_cursor

    async def learners(self, ids: Sequence[str]) -> dict[str, Record]:
        """What the registry told us about these residents."""
        return await self.repo.many(LEARNERS, ids)

    # progress

    async def require_learner_access(self, viewer: Viewer, learner: str) -> str:
        """The learner's current id, when the caller is the learner, an admin, or a teacher
        of a class the learner is actively enrolled in; 404 for anyone else (their learning
        is nobody else's business)."""
        current = (await self.survivor(learner))[0]
        if viewer.is_admin or current == await self.own_learner(viewer):
            return current
        if viewer.is_educator:
            where: list[Predicate] = [
                Eq("user", current),
                Eq("role", "learner"),
                Eq("status", "active"),
            ]
            page = await self.repo.search(ENROLLMENTS, Query(where=where, limit=1000))
            if await self.teaches(viewer, [r.body["class"] for r in page.items]):
                return current
        raise NotFound(f"No learner {learner} in your reach.")

    async def record_progress(
        self, viewer: Viewer, learner: str, resource_id: str, data: ProgressIn
    ) -> Record:
        """Create or replace a learner's progress on a resource (a merged id's goes to the
        survivor)."""
        learner = await self.require_learner_access(viewer, learner)
        resource = await self.repo.get(RESOURCES, resource_id)
        if resource is None or not viewer.sees_resource(resource.body):
            raise NotFound(f"Resource {resource_id} is not known.")
        at = data.last_activity or datetime.now(UTC)
        pid = progress_id(learner, resource_id)
        body = {
            "id": pid,
            "learner": learner,
            "resource": resource_id,
            "class": data.class_id,
            "completion": data.completion,
            "progress": data.progress,
            "score": data.score,
            "last_activity": at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
            "recorded_by": viewer.sub,
        }
        try:
            return (await self.repo.write([await self.repo.put_op(PROGRESS, pid, body)]))[0]
        except VersionConflict:
            raise Conflict("The progress record changed meanwhile; try again.") from None

    async def progress_of(
        self, viewer: Viewer, learner: str, *, limit: int, cursor: str | None
    ) -> tuple[list[Record], str | None]:
        """A learner's progress records, latest activity first."""
        learner = await self.require_learner_access(viewer, learner)
        query = Query(
            where=[Eq("learner", learner)],
            sort=[Sort("last", descending=True)],
            limit=limit,
            cursor=cursor,
        )
        page = await self.repo.search(PROGRESS, query)
        return list(page.items), page.next_cursor
