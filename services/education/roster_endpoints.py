"""The roster's HTTP routes (all need a token): organisations, academic sessions, courses,
classes, enrollments and progress. Thin: the rules are in `roster.py`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from starlette.responses import JSONResponse, Response

from services.education.access import SignedInDep, Viewer
from services.education.repository import CLASSES, COURSES, ORGS, SESSIONS
from services.education.roster import RosterService
from services.education.roster_schemas import (
    RECORD_ID,
    RESIDENT_ID,
    ClassIn,
    ClassPatch,
    CourseIn,
    EnrollIn,
    JoinIn,
    OrgIn,
    OrgType,
    ProgressIn,
    SessionIn,
)
from services.education.schemas import RESOURCE_ID
from shared.auth.deps import Authenticated
from shared.auth.errors import InsufficientScope
from shared.errors import Unprocessable, problem_responses
from shared.etags import etag
from shared.params import Cursor, IfMatch, Limit, next_link, page_limit
from shared.storage import Eq, In, Predicate, Range, Record


def _roster(request: Request) -> RosterService:
    service: RosterService = request.app.state.roster
    return service


RosterDep = Annotated[RosterService, Depends(_roster)]
Id = Annotated[str, Path(pattern=RECORD_ID)]
Learner = Annotated[str, Path(pattern=RESIDENT_ID)]
ResourceId = Annotated[str, Path(pattern=RESOURCE_ID)]
_EPOCH = datetime(1, 1, 1, tzinfo=UTC)
ORG_TYPES = ["national", "state", "district", "local", "school", "department"]

router = APIRouter(
    tags=["roster"],
    dependencies=[Authenticated],
    responses=problem_responses(400, 401, 403, 404, 409, 422),
)


def view(record: Record) -> dict[str, Any]:
    """A roster document as served."""
    return {**record.body, "version": record.version}


def versioned(record: Record) -> JSONResponse:
    """A document with its version as the ETag (for `If-Match` on a change)."""
    return JSONResponse(view(record), headers={"ETag": etag(record.version)})


def created(record: Record, where: str) -> JSONResponse:
    """201 with the new document and its location."""
    return JSONResponse(view(record), status_code=201, headers={"Location": f"{where}/{record.id}"})


def listing(request: Request, items: list[dict[str, Any]], cursor: str | None) -> dict[str, Any]:
    """A page of documents."""
    return {"items": items, "next": next_link(request, cursor)}


async def enrollment_views(roster: RosterService, records: list[Record]) -> list[dict[str, Any]]:
    """Enrollments with the learner's name and status as the registry last told us."""
    known = await roster.learners([r.body["user"] for r in records if r.body["role"] == "learner"])
    out = []
    for r in records:
        learner = known.get(r.body["user"])
        person = (
            {"name": learner.body["name"], "status": learner.body["status"]} if learner else None
        )
        out.append({**view(r), "person": person})
    return out


# organisations and sessions


@router.post("/orgs", status_code=201, summary="Register an organisation (admins)")
async def create_org(data: OrgIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    return created(await roster.create_org(viewer, data), "/orgs")


@router.get("/orgs", summary="Organisations")
async def list_orgs(
    request: Request,
    roster: RosterDep,
    type: OrgType | None = None,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    where: list[Predicate] = [Eq("type", type) if type else In("type", ORG_TYPES)]
    items, nxt = await roster.page(
        ORGS, where, limit=page_limit(request, limit), cursor=cursor, sort="type"
    )
    return listing(request, [view(r) for r in items], nxt)


@router.get("/orgs/{id}", summary="One organisation")
async def read_org(id: Id, roster: RosterDep) -> dict[str, Any]:
    return view(await roster.read(ORGS, id, "Organisation"))


@router.post("/sessions", status_code=201, summary="Define an academic session (admins)")
async def create_session(data: SessionIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    return created(await roster.create_session(viewer, data), "/sessions")


@router.get("/sessions", summary="Academic sessions by start date")
async def list_sessions(
    request: Request, roster: RosterDep, limit: Limit = None, cursor: Cursor = None
) -> dict[str, Any]:
    items, nxt = await roster.page(
        SESSIONS,
        [Range("start", ge=_EPOCH)],
        limit=page_limit(request, limit),
        cursor=cursor,
        sort="start",
    )
    return listing(request, [view(r) for r in items], nxt)


@router.get("/sessions/{id}", summary="One academic session")
async def read_session(id: Id, roster: RosterDep) -> dict[str, Any]:
    return view(await roster.read(SESSIONS, id, "Session"))


# courses and classes


@router.post("/courses", status_code=201, summary="Create a course (educators)")
async def create_course(data: CourseIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    return created(await roster.create_course(viewer, data), "/courses")


@router.get("/courses", summary="The courses of an organisation")
async def list_courses(
    request: Request,
    roster: RosterDep,
    org: Annotated[str, Query(pattern=RECORD_ID)],
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    items, nxt = await roster.page(
        COURSES, [Eq("org", org)], limit=page_limit(request, limit), cursor=cursor, sort="org"
    )
    return listing(request, [view(r) for r in items], nxt)


@router.get("/courses/{id}", summary="One course")
async def read_course(id: Id, roster: RosterDep) -> dict[str, Any]:
    return view(await roster.read(COURSES, id, "Course"))


@router.post("/classes", status_code=201, summary="Create a class (its creator teaches it)")
async def create_class(data: ClassIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    return created(await roster.create_class(viewer, data), "/classes")


@router.get("/classes", summary="The classes of a course, or those you teach")
async def list_classes(
    request: Request,
    viewer: SignedInDep,
    roster: RosterDep,
    course: Annotated[str | None, Query(pattern=RECORD_ID)] = None,
    teaching: bool = False,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    size = page_limit(request, limit)
    if teaching:
        return listing(
            request, [view(r) for r in await roster.taught_classes(viewer, limit=size)], None
        )
    if course is None:
        raise Unprocessable(
            "Name a course, or ask for the classes you teach.",
            errors=[{"field": "course", "in": "query", "message": "required without teaching"}],
        )
    items, nxt = await roster.page(
        CLASSES, [Eq("course", course)], limit=size, cursor=cursor, sort="created"
    )
    return listing(request, [view(r) for r in items], nxt)


@router.get("/classes/{id}", summary="One class")
async def read_class(id: Id, roster: RosterDep) -> JSONResponse:
    return versioned(await roster.read(CLASSES, id, "Class"))


@router.patch(
    "/classes/{id}",
    summary="Change a class (its teachers, admins)",
    responses=problem_responses(412),
)
async def update_class(
    id: Id, data: ClassPatch, viewer: SignedInDep, roster: RosterDep, if_match: IfMatch = None
) -> JSONResponse:
    return versioned(await roster.update_class(viewer, id, data, if_match))


# enrollments


async def _enrolled(roster: RosterService, record: Record, new: bool) -> Response:
    body = (await enrollment_views(roster, [record]))[0]
    headers = {"Location": f"/enrollments/{record.id}"}
    return JSONResponse(body, status_code=201 if new else 200, headers=headers)


@router.post("/classes/{id}/enrollments", summary="Enroll a learner or add a teacher")
async def enroll(id: Id, data: EnrollIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    record, new = await roster.enroll(viewer, id, data)
    return await _enrolled(roster, record, new)


@router.get("/classes/{id}/enrollments", summary="A class's roster (its teachers, admins)")
async def class_roster(
    request: Request,
    id: Id,
    viewer: SignedInDep,
    roster: RosterDep,
    status: Annotated[str, Query(pattern="^(active|withdrawn)$")] = "active",
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    await roster.managed_class(viewer, id)
    where: list[Predicate] = [
        In("class_active", [f"{id}|learner|{status}", f"{id}|teacher|{status}"])
    ]
    items, nxt = await roster.enrollments(where, limit=page_limit(request, limit), cursor=cursor)
    return listing(request, await enrollment_views(roster, items), nxt)


def _citizen(viewer: Viewer) -> str:
    if viewer.resident_id is None:
        raise InsufficientScope("This is for citizens, whose token names their resident id.")
    return viewer.resident_id


@router.post("/me/enrollments", summary="Join a class open to self-enrollment (citizens)")
async def join(data: JoinIn, viewer: SignedInDep, roster: RosterDep) -> Response:
    record, new = await roster.join(viewer, data.class_id)
    return await _enrolled(roster, record, new)


@router.get("/me/enrollments", summary="Your enrollments (citizens)")
async def my_enrollments(
    request: Request,
    viewer: SignedInDep,
    roster: RosterDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    learner = (await roster.survivor(_citizen(viewer)))[0]
    where: list[Predicate] = [Eq("user", learner), Eq("role", "learner")]
    items, nxt = await roster.enrollments(where, limit=page_limit(request, limit), cursor=cursor)
    return listing(request, await enrollment_views(roster, items), nxt)


@router.get("/enrollments/{id}", summary="One enrollment")
async def read_enrollment(id: Id, viewer: SignedInDep, roster: RosterDep) -> dict[str, Any]:
    record = await roster.enrollment(viewer, id)
    return (await enrollment_views(roster, [record]))[0]


@router.delete("/enrollments/{id}", summary="Withdraw (the learner, the class's teachers)")
async def withdraw(id: Id, viewer: SignedInDep, roster: RosterDep) -> dict[str, Any]:
    record = await roster.withdraw(viewer, id)
    return (await enrollment_views(roster, [record]))[0]


# progress


@router.put("/progress/{learner}/{resource}", summary="Record a learner's progress on a resource")
async def record_progress(
    learner: Learner,
    resource: ResourceId,
    data: ProgressIn,
    viewer: SignedInDep,
    roster: RosterDep,
) -> dict[str, Any]:
    return view(await roster.record_progress(viewer, learner, resource, data))


@router.get("/progress/{learner}", summary="A learner's progress, latest activity first")
async def learner_progress(
    request: Request,
    learner: Learner,
    viewer: SignedInDep,
    roster: RosterDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    items, nxt = await roster.progress_of(
        viewer, learner, limit=page_limit(request, limit), cursor=cursor
    )
    return listing(request, [view(r) for r in items], nxt)


@router.get("/me/progress", summary="Your progress (citizens)")
async def my_progress(
    request: Request,
    viewer: SignedInDep,
    roster: RosterDep,
    limit: Limit = None,
    cursor: Cursor = None,
) -> dict[str, Any]:
    items, nxt = await roster.progress_of(
        viewer, _citizen(viewer), limit=page_limit(request, limit), cursor=cursor
    )
    return listing(request, [view(r) for r in items], nxt)
