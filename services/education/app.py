"""The education app: the learning-resource catalogue, the roster (classes, enrollments,
progress) and the learners kept in step with the registry, on the suite's app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.education.demo import load_demo
from services.education.demo_school import load_school
from services.education.endpoints import public, router
from services.education.learners import LearnerSync
from services.education.repository import EducationRepository, make_store
from services.education.roster import RosterService
from services.education.roster_endpoints import router as roster_router
from services.education.search import CatalogueSearch
from services.education.service import ResourceService
from services.education.settings import EducationSettings
from shared.app import LifespanHook, create_app
from shared.auth.deps import auth_lifespan
from shared.events import Handler, feed_consumer_lifespan
from shared.settings import get_settings
from shared.telemetry import Telemetry

logger = logging.getLogger(__name__)


def _education_lifespan(settings: EducationSettings) -> LifespanHook:
    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        repo = EducationRepository(app.state.store)
        app.state.repo = repo
        app.state.resources = ResourceService(repo)
        app.state.catalogue = CatalogueSearch(repo, candidates=settings.search_candidates)
        app.state.roster = RosterService(repo)
        if settings.demo_data:
            count = await load_demo(repo)
            logger.info("demo data: %d resources present", count)
            classes = await load_school(repo, settings.demo_learners)
            logger.info("demo data: %d generated classes present", classes)
        yield

    return hook


def _hooks(settings: EducationSettings) -> list[LifespanHook]:
    hooks = [auth_lifespan(settings), _education_lifespan(settings)]
    if settings.registry_events_url:

        def learners(app: FastAPI) -> Handler:
            return LearnerSync(app.state.repo).handle

        hooks.append(
            feed_consumer_lifespan(
                "registry",
                settings.registry_events_url,
                learners,
                settings,
                page_size=settings.registry_events_page_size,
                poll_interval=settings.registry_events_poll_seconds,
            )
        )
    return hooks


def create_education_app(
    settings: EducationSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the service (`uvicorn --factory services.education.app:create_education_app`)."""
    settings = settings if settings is not None else get_settings(EducationSettings)
    return create_app(
        settings,
        title="Huimin education resources",
        routers=[public, router, roster_router],
        store=make_store,
        lifespan_hooks=_hooks(settings),
        telemetry=telemetry,
    )
