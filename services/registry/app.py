"""The registry app: the master person index on the suite's app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.registry.accounts import accounts_lifespan
from services.registry.accounts_endpoints import router as accounts_router
from services.registry.audit import AuditQueue
from services.registry.changes_endpoints import router as changes_router
from services.registry.demo import load_demo
from services.registry.demo_town import load_town
from services.registry.endpoints import router
from services.registry.households import HouseholdService
from services.registry.import_jobs import ImportRunner
from services.registry.imports_endpoints import router as imports_router
from services.registry.repository import RegistryRepository, make_store
from services.registry.search import Searcher
from services.registry.service import RegistryService
from services.registry.settings import RegistrySettings
from shared.app import LifespanHook, create_app
from shared.auth.deps import auth_lifespan
from shared.events import events_router
from shared.settings import get_settings
from shared.telemetry import Telemetry

logger = logging.getLogger(__name__)


def _registry_lifespan(settings: RegistrySettings) -> LifespanHook:
    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        repo = RegistryRepository(app.state.store)
        audit = AuditQueue(
            repo,
            flush_seconds=settings.audit_flush_seconds,
            batch_size=settings.audit_batch_size,
            max_pending=settings.audit_max_pending,
        )
        residents = RegistryService(repo, audit)
        app.state.registry = residents
        app.state.households = HouseholdService(residents)
        app.state.searcher = Searcher(residents)
        # CSV import jobs run in this process's background (import_jobs.py).
        app.state.imports = ImportRunner(residents, app.state.households)
        async with audit.running(), app.state.imports.running():
            if settings.demo_data:
                count = await load_demo(residents, app.state.households)
                count += await load_town(residents, app.state.households, settings.demo_households)
                logger.info("demo data: %d residents present", count)
            yield

    return hook


def create_registry_app(
    settings: RegistrySettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the registry (`uvicorn --factory services.registry.app:create_registry_app`)."""
    settings = settings if settings is not None else get_settings(RegistrySettings)
    return create_app(
        settings,
        title="Huimin community registry",
        routers=[router, changes_router, accounts_router, imports_router, events_router()],
        store=make_store,
        lifespan_hooks=[
            auth_lifespan(settings),
            _registry_lifespan(settings),
            accounts_lifespan(settings),
        ],
        telemetry=telemetry,
    )
