"""The education service's queries are answered from indexes (SQLite plans): catalogue
text, facets and visibility, and the roster lookups, never a scan of a stored table."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from services.education.access import Viewer
from services.education.repository import ENROLLMENTS, PROGRESS, RESOURCES, make_store
from services.education.search import CatalogueSearch, Criteria, parse_text
from shared.auth.principal import Principal
from shared.storage import Eq, In, Predicate, Query, Sort, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = make_store(f"sqlite:///{tmp_path}/education.db")
    await s.open()
    yield s
    await s.close()


def viewer(*roles: str) -> Viewer:
    principal = Principal(
        subject="sub-x", username="x", roles=frozenset(roles), scopes=frozenset(), client_id=None
    )
    return Viewer(principal if roles else None)


def where(v: Viewer, c: Criteria, skip: str | None = None) -> list[Predicate]:
    search = CatalogueSearch(None)  # type: ignore[arg-type]  # only builds predicates here
    return search._where(v, c, parse_text(c.q) if c.q else None, skip)


CATALOGUE = {
    "public chinese text": where(viewer(), Criteria("光合作用")),
    "public english prefix": where(viewer(), Criteria("photo plants")),
    "educator text and filters": where(
        viewer("educator"),
        Criteria("数学 fractions", {"type": ["video", "audio"], "level": ["primary"]}),
    ),
    "facet count": [
        *where(viewer(), Criteria("数学", {"license": ["CC-BY-4.0"]}), skip="type"),
        Eq("type", "video"),
    ],
    "public filters only": where(viewer(), Criteria(None, {"subject": ["mathematics"]})),
    "admin everything": where(viewer("admin"), Criteria(None)),
    "own drafts": where(viewer("educator"), Criteria(None, state="draft", mine=True)),
}


def _scanned(plan: str) -> set[str]:
    return {ln.split()[1] for ln in plan.splitlines() if ln.startswith("SCAN ")}


@pytest.mark.parametrize("name", sorted(CATALOGUE))
async def test_catalogue_searches_use_indexes(store: Store, name: str) -> None:
    query = Query(where=CATALOGUE[name], sort=[Sort("date", descending=True)], limit=20)
    plan = await store.explain(RESOURCES, query)
    assert "USING COVERING INDEX resources__k_" in plan, plan
    # Only intermediate results (candidates, the page, AnyOf unions) may be scanned.
    assert all(t in {"c", "p"} or re.fullmatch(r"u\d+", t) for t in _scanned(plan)), plan


ROSTER: dict[str, tuple[str, list[Predicate]]] = {
    "class roster": (ENROLLMENTS, [In("class_active", ["a|learner|active", "a|teacher|active"])]),
    "teaches these classes": (ENROLLMENTS, [Eq("user", "sub-x"), In("class_active", ["a|t"])]),
    "my enrollments": (ENROLLMENTS, [Eq("user", "R-00000001"), Eq("role", "learner")]),
    "progress of a learner": (PROGRESS, [Eq("learner", "R-00000001")]),
}


@pytest.mark.parametrize("name", sorted(ROSTER))
async def test_roster_lookups_use_indexes(store: Store, name: str) -> None:
    collection, preds = ROSTER[name]
    plan = await store.explain(collection, Query(where=preds, limit=50))
    assert f"USING COVERING INDEX {collection}__k_" in plan, plan
    assert all(t in {"c", "p"} or re.fullmatch(r"u\d+", t) for t in _scanned(plan)), plan
