"""The generated education demo: evening classes with generated residents enrolled, once."""

from __future__ import annotations

from pathlib import Path

from services.education.demo import load_demo
from services.education.demo_school import CAPACITY, COURSES, FIRST_NUMBER, load_school
from services.education.repository import (
    CLASSES,
    ENROLLMENTS,
    EducationRepository,
    make_store,
)
from services.education.repository import (
    COURSES as COURSE_COLLECTION,
)
from shared.storage import Eq


async def test_courses_classes_and_enrollments_load_once(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path}/education.db")
    await store.open()
    try:
        repo = EducationRepository(store)
        await load_demo(repo)
        assert await load_school(repo, 120) == 2 * len(COURSES)
        counts = [await store.count(c) for c in (COURSE_COLLECTION, CLASSES, ENROLLMENTS)]
        # The hand-written course, class and the citizen's enrollment, and the generated ones.
        assert counts[:2] == [1 + len(COURSES), 1 + 2 * len(COURSES)]
        assert 60 <= counts[2] - 1 <= 2 * 120
        assert await load_school(repo, 120) == 2 * len(COURSES)
        assert [await store.count(c) for c in (COURSE_COLLECTION, CLASSES, ENROLLMENTS)] == counts
        first = await store.count(ENROLLMENTS, [Eq("user", f"R-{FIRST_NUMBER:08d}")])
        assert first <= 2
    finally:
        await store.close()


def test_there_are_seats_for_everyone_the_dev_stack_enrolls():
    # About one class per learner on average: 300 learners fit in the classes' seats.
    assert 2 * len(COURSES) * CAPACITY >= 300 * 1.2
