"""The tourism app: places, their search and reviews, and events, on the suite's app
factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.tourism import endpoints, events_endpoints
from services.tourism.demo import load_demo
from services.tourism.demo_city import load_city
from services.tourism.repository import TourismRepository, make_store
from services.tourism.reviews import ReviewService
from services.tourism.search import PlaceSearch
from services.tourism.service import EventService, PlaceService
from services.tourism.settings import TourismSettings
from shared.app import LifespanHook, create_app
from shared.auth.deps import auth_lifespan
from shared.settings import get_settings
from shared.telemetry import Telemetry

logger = logging.getLogger(__name__)


def _tourism_lifespan(settings: TourismSettings) -> LifespanHook:
    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        repo = TourismRepository(app.state.store)
        app.state.repo = repo
        app.state.places = PlaceService(repo)
        app.state.events = EventService(repo)
        app.state.reviews = ReviewService(repo)
        app.state.place_search = PlaceSearch(repo)
        if settings.demo_data:
            places, events = await load_demo(app.state.places, app.state.events)
            more = await load_city(app.state.places, app.state.events, settings.demo_places)
            places, events = places + more[0], events + more[1]
            logger.info("demo data: %d places and %d events present", places, events)
        yield

    return hook


def create_tourism_app(
    settings: TourismSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the service (`uvicorn --factory services.tourism.app:create_tourism_app`)."""
    settings = settings if settings is not None else get_settings(TourismSettings)
    return create_app(
        settings,
        title="Huimin tourism information",
        routers=[
            endpoints.public,
            endpoints.router,
            events_endpoints.public,
            events_endpoints.router,
        ],
        store=make_store,
        lifespan_hooks=[auth_lifespan(settings), _tourism_lifespan(settings)],
        telemetry=telemetry,
    )
