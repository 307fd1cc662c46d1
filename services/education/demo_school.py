"""The larger, generated part of the dev stack's education demo: the community college's
evening and weekend courses, two classes each in different community centres, and the
registry's generated demo residents (R-00000031 onwards, services/registry/demo_town.py)
enrolled in them, on top of the hand-written demo of services/education/demo.py.

Services never import each other, so the learners are agreed by resident id number (the dev
stack sets both counts). Generated from a fixed seed. Loaded only with
`HUIMIN_DEMO_LEARNERS` above 0; a marker record written first makes a second start skip
it (as the hand-written demo does: a start interrupted while loading leaves it partial,
remove var/education.db to load it again).
"""

from __future__ import annotations

import random

from services.education.demo import DEMO_ORG, DEMO_SESSION, TEACHER
from services.education.repository import ORGS, EducationRepository, derived_id
from services.education.roster import RosterService
from services.education.roster_schemas import ClassIn, CourseIn, EnrollIn
from services.education.service import now_iso
from shared.errors import Conflict
from shared.storage import Create

SEED = 20261127
FIRST_NUMBER = 31  # the registry's first generated resident (after its 30 hand-written ones)
MARKER = derived_id("demo", "org", "school")
CAPACITY = 40
# (code, zh title, en title, subjects, grades)
COURSES = [
    ("SP-101", "老年智能手机课", "Smartphones for seniors", ["information-technology"], ["senior"]),
    (
        "TC-110",
        "太极与健康",
        "Tai chi for health",
        ["physical-education", "health"],
        ["adult", "senior"],
    ),
    ("CA-120", "书法入门", "Calligraphy for beginners", ["arts"], ["adult", "senior"]),
    ("EN-130", "英语口语角", "Spoken English corner", ["english"], ["adult"]),
    ("FA-140", "家庭急救", "First aid at home", ["health", "life-skills"], ["adult"]),
    ("CD-150", "少儿编程", "Coding for children", ["information-technology"], ["primary"]),
]
# (zh name of the community centre, weekday slot); each course gets two of them.
CENTRES = [
    ("韶九社区活动中心", "周一晚 Monday evening"),
    ("菊儿社区文化站", "周三晚 Wednesday evening"),
    ("国子监社区活动中心", "周六上午 Saturday morning"),
    ("南锣鼓巷社区文化站", "周日下午 Sunday afternoon"),
]


async def load_school(repo: EducationRepository, learners: int) -> int:
    """Write the courses, classes and enrollments of the first `learners` generated residents
    unless present; the number of generated classes."""
    rng = random.Random(SEED)
    if learners == 0:
        return 0
    if await repo.get(ORGS, MARKER) is not None:
        return len(COURSES) * 2
    at = now_iso()
    marker = {
        "id": MARKER,
        "name": {"zh": "惠民社区学院夜校", "en": "Huimin Community College evening school"},
        "type": "school",
        "identifier": "huimin-cc-evening",
        "parent": DEMO_ORG,
        "created_at": at,
    }
    await repo.write([Create(ORGS, marker, MARKER)])
    roster = RosterService(repo)
    classes = []
    for n, (code, zh, en, subjects, grades) in enumerate(COURSES):
        course = await roster.create_course(
            TEACHER,
            CourseIn.model_validate(
                {
                    "title": {"zh": zh, "en": en},
                    "course_code": code,
                    "org": MARKER,
                    "subjects": subjects,
                    "grades": grades,
                }
            ),
        )
        for k in range(2):
            centre, slot = CENTRES[(n + k) % len(CENTRES)]
            klass = await roster.create_class(
                TEACHER,
                ClassIn.model_validate(
                    {
                        "title": f"{slot} · {centre}",
                        "class_code": f"{code}-{k + 1}",
                        "course": course.id,
                        "sessions": [DEMO_SESSION],
                        "location": centre,
                        "self_enroll": True,
                        "capacity": CAPACITY,
                    }
                ),
            )
            classes.append(klass.id)
    for number in range(FIRST_NUMBER, FIRST_NUMBER + learners):
        # Most residents take one class, some two, some none.
        for class_id in rng.sample(classes, rng.choice([0, 1, 1, 1, 2])):
            try:
                await roster.enroll(
                    TEACHER, class_id, EnrollIn(role="learner", user=f"R-{number:08d}")
                )
            except Conflict:
                continue  # the class is full: like a real one, it turns the next one away
    return len(classes)
