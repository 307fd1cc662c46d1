"""Demo data for the dev stack (`make run`): an organisation, an academic session, a dozen
published learning resources in Chinese and English, a course and a class taught by the dev
user `teacher`, with the dev user `citizen` (resident R-00000001, 张伟) enrolled.

Idempotent: nothing is written when the demo organisation already exists.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.education.access import Viewer
from services.education.repository import ORGS, SESSIONS, EducationRepository, derived_id
from services.education.roster import RosterService
from services.education.roster_schemas import ClassIn, CourseIn, EnrollIn
from services.education.schemas import ResourceIn
from services.education.service import ResourceService, now_iso
from shared.auth.principal import Principal
from shared.storage import Create

DEMO_ORG = derived_id("demo", "org")
DEMO_SESSION = derived_id("demo", "session")
DEMO_LEARNER = "R-00000001"
# The `sub` the embedded dev issuer gives the dev user `teacher` (a UUIDv5 of realm and
# username, tools/devissuer/model.py). Keycloak assigns its own; there an admin manages
# the demo class.
TEACHER_SUB = str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:huimin:realm:huimin:user:teacher"))
TEACHER = Viewer(
    Principal(
        subject=TEACHER_SUB,
        username="teacher",
        roles=frozenset({"educator"}),
        scopes=frozenset(),
        client_id="huimin-education",
    )
)

# (zh name, en name, zh description, subject, level, type, languages, license, keywords)
Row = tuple[str | None, str | None, str, str, str, str, list[str], str, list[str]]
RESOURCES: list[Row] = [
    (
        "分数的初步认识",
        "Introducing fractions",
        "用图形认识二分之一和四分之一。",
        "mathematics",
        "primary",
        "video",
        ["zh"],
        "CC-BY-4.0",
        ["分数", "fractions"],
    ),
    (
        "光合作用",
        "Photosynthesis",
        "植物如何利用阳光、水和二氧化碳制造养分。",
        "biology",
        "lower-secondary",
        "interactive",
        ["zh", "en"],
        "CC-BY-SA-4.0",
        ["植物"],
    ),
    (
        "唐诗三百首选读",
        None,
        "精选唐诗，配朗读音频与注释。",
        "chinese",
        "primary",
        "audio",
        ["zh"],
        "public-domain",
        ["唐诗", "朗读"],
    ),
    (
        None,
        "Everyday English for residents",
        "Greetings, shopping and asking the way.",
        "english",
        "adult",
        "video",
        ["en", "zh"],
        "CC-BY-NC-4.0",
        ["conversation"],
    ),
    (
        "智能手机入门",
        "Getting started with a smartphone",
        "为老年人讲解微信、扫码和视频通话。",
        "information-technology",
        "senior",
        "video",
        ["zh"],
        "CC-BY-4.0",
        ["手机", "微信"],
    ),
    (
        "防范电信诈骗",
        "Avoiding phone scams",
        "识别常见诈骗手段，保护个人信息。",
        "civics",
        "adult",
        "text",
        ["zh"],
        "CC-BY-4.0",
        ["安全", "诈骗"],
    ),
    (
        "家庭急救常识",
        "First aid at home",
        "烫伤、割伤和心肺复苏的基本步骤。",
        "health",
        "adult",
        "lesson-plan",
        ["zh", "en"],
        "CC-BY-SA-4.0",
        ["急救", "first aid"],
    ),
    (
        "一元一次方程练习",
        "Linear equations practice",
        "二十道分层练习题，附讲解。",
        "mathematics",
        "lower-secondary",
        "exercise",
        ["zh"],
        "CC-BY-4.0",
        ["方程"],
    ),
    (
        None,
        "The water cycle",
        "Evaporation, condensation and precipitation explained.",
        "science",
        "primary",
        "simulation",
        ["en"],
        "CC0-1.0",
        ["water", "weather"],
    ),
    (
        "北京中轴线的历史",
        "History of Beijing's Central Axis",
        "从永定门到钟鼓楼的七百年。",
        "history",
        "upper-secondary",
        "ebook",
        ["zh"],
        "all-rights-reserved",
        ["北京", "中轴线"],
    ),
    (
        "太极拳基础",
        "Tai chi basics",
        "二十四式太极拳分解教学。",
        "physical-education",
        "senior",
        "video",
        ["zh"],
        "CC-BY-NC-SA-4.0",
        ["太极"],
    ),
    (
        "垃圾分类指南",
        "Sorting household waste",
        "厨余、可回收物、有害垃圾和其他垃圾怎么分。",
        "life-skills",
        "adult",
        "image",
        ["zh", "en"],
        "CC-BY-4.0",
        ["垃圾分类", "recycling"],
    ),
]


def _resource(row: Row, n: int) -> ResourceIn:
    zh, en, desc, subject, level, kind, langs, license, keywords = row
    body: dict[str, Any] = {
        "name": {"zh": zh, "en": en},
        "description": {"zh": desc}
        if any("\u4e00" <= c <= "\u9fff" for c in desc)
        else {"en": desc},
        "subject": [subject],
        "educational_level": [level],
        "learning_resource_type": [kind],
        "in_language": langs,
        "license": license,
        "keywords": keywords,
        "author": [{"type": "Organization", "name": "惠民社区学院"}],
        "url": f"https://learn.huimin.example/r/{n}",
        "accessibility_feature": ["captions"] if kind == "video" else [],
    }
    return ResourceIn.model_validate(body)


async def load_demo(repo: EducationRepository) -> int:
    """Write the demo data unless present; the number of demo resources."""
    if await repo.get(ORGS, DEMO_ORG) is not None:
        return len(RESOURCES)
    resources = ResourceService(repo)
    roster = RosterService(repo)
    at = now_iso()
    org = {
        "id": DEMO_ORG,
        "name": {"zh": "惠民社区学院", "en": "Huimin Community College"},
        "type": "school",
        "identifier": "huimin-cc",
        "parent": None,
        "created_at": at,
    }
    session = {
        "id": DEMO_SESSION,
        "title": "2026年秋季学期",
        "type": "term",
        "start_date": "2026-09-01",
        "end_date": "2027-01-15",
        "created_at": at,
    }
    # The organisation marks the demo as loaded (a start interrupted while loading leaves a
    # partial demo: remove var/education.db to load it again).
    await repo.write([Create(ORGS, org, DEMO_ORG), Create(SESSIONS, session, DEMO_SESSION)])
    ids = []
    for n, row in enumerate(RESOURCES, 1):
        made = await resources.create(TEACHER, _resource(row, n))
        await resources.transition(TEACHER, made.id, "publish", None)
        ids.append(made.id)
    course_in = CourseIn.model_validate(
        {
            "title": {"zh": "社区数字生活", "en": "Digital life for residents"},
            "course_code": "DL-101",
            "org": DEMO_ORG,
            "subjects": ["information-technology", "civics"],
            "grades": ["adult", "senior"],
            "resources": [ids[4], ids[5]],
        }
    )
    course = await roster.create_course(TEACHER, course_in)
    klass = await roster.create_class(
        TEACHER,
        ClassIn.model_validate(
            {
                "title": "周二晚班 Tuesday evening",
                "class_code": "DL-101-TUE",
                "course": course.id,
                "sessions": [DEMO_SESSION],
                "location": "吉祥社区活动中心",
                "self_enroll": True,
                "capacity": 30,
            }
        ),
    )
    await roster.enroll(TEACHER, klass.id, EnrollIn(role="learner", user=DEMO_LEARNER))
    return len(RESOURCES)
