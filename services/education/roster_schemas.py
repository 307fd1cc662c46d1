"""Request models of the roster (the 1EdTech OneRoster subset: organisations, academic
sessions, courses, classes, enrollments) and of progress records."""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import Field, model_validator

from services.education.schemas import (
    RESOURCE_ID,
    Bilingual,
    Level,
    ShortText,
    Strict,
    Subject,
)

RESIDENT_ID = r"^R-[0-9]{8,12}$"
RECORD_ID = r"^[0-9a-f]{32}$"
RecordId = Annotated[str, Field(pattern=RECORD_ID)]
ResourceRef = Annotated[str, Field(pattern=RESOURCE_ID)]
ResidentId = Annotated[str, Field(pattern=RESIDENT_ID)]
Code = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-]{0,49}$")]
OrgType = Literal["national", "state", "district", "local", "school", "department"]
SessionType = Literal["schoolYear", "semester", "term", "gradingPeriod"]
Role = Literal["learner", "teacher"]
Completion = Literal["not-started", "in-progress", "completed"]


class OrgIn(Strict):
    """Body of `POST /orgs` (admins)."""

    name: Bilingual
    type: OrgType
    identifier: Code | None = None
    parent: RecordId | None = None


class SessionIn(Strict):
    """Body of `POST /sessions` (admins): a school year, semester, term or grading period."""

    title: ShortText
    type: SessionType
    start_date: date
    end_date: date

    @model_validator(mode="after")
    def _ordered(self) -> SessionIn:
        if self.end_date < self.start_date:
            raise ValueError("end_date must not be before start_date")
        return self


class CourseIn(Strict):
    """Body of `POST /courses` (educators, admins)."""

    title: Bilingual
    course_code: Code
    org: RecordId
    subjects: list[Subject] = Field(default_factory=list, max_length=5)
    grades: list[Level] = Field(default_factory=list, max_length=8)
    resources: list[ResourceRef] = Field(default_factory=list, max_length=100)


class ClassIn(Strict):
    """Body of `POST /classes` (educators, who then teach it; admins)."""

    title: ShortText
    class_code: Code
    course: RecordId
    sessions: Annotated[list[RecordId], Field(min_length=1, max_length=5)]
    location: ShortText | None = None
    # Whether citizens may join it themselves (otherwise its teachers enroll learners).
    self_enroll: bool = False
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None


class ClassPatch(Strict):
    """Body of `PATCH /classes/{id}` (its teachers, admins): the members given replace the
    stored ones; `null` clears `location` or `capacity`. The course and code stay."""

    title: ShortText | None = None
    sessions: Annotated[list[RecordId], Field(min_length=1, max_length=5)] | None = None
    location: ShortText | None = None
    self_enroll: bool | None = None
    capacity: Annotated[int, Field(ge=1, le=10_000)] | None = None

    @model_validator(mode="after")
    def _required_stay(self) -> ClassPatch:
        for name in ("title", "sessions", "self_enroll"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise ValueError(f"{name} cannot be cleared")
        return self


class EnrollIn(Strict):
    """Body of `POST /classes/{id}/enrollments` (the class's teachers, admins)."""

    role: Role = "learner"
    user: Annotated[str, Field(min_length=1, max_length=64)] = Field(
        description="a resident id (learners) or an educator's subject (teachers)"
    )
    begin_date: date | None = None
    end_date: date | None = None

    @model_validator(mode="after")
    def _user(self) -> EnrollIn:
        if self.role == "learner" and not re.match(RESIDENT_ID, self.user):
            raise ValueError("a learner is a resident id such as R-00000001")
        if self.begin_date and self.end_date and self.end_date < self.begin_date:
            raise ValueError("end_date must not be before begin_date")
        return self


class JoinIn(Strict):
    """Body of `POST /me/enrollments`: the class a citizen joins."""

    class_id: RecordId = Field(alias="class")


class ProgressIn(Strict):
    """Body of `PUT /progress/{learner}/{resource}`."""

    completion: Completion
    progress: Annotated[float, Field(ge=0, le=1)] = 0.0
    score: Annotated[float, Field(ge=0, le=100)] | None = None
    last_activity: datetime | None = None
    class_id: RecordId | None = Field(default=None, alias="class")

    @model_validator(mode="after")
    def _consistent(self) -> ProgressIn:
        if self.last_activity is not None and self.last_activity.tzinfo is None:
            raise ValueError("last_activity needs a time zone (Z or an offset)")
        if self.completion == "completed" and self.progress < 1:
            self.progress = 1.0
        return self
