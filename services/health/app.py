"""The health service app: a FHIR R4 server on the suite's app factory."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from starlette.responses import Response

from services.health.audit import AuditLog
from services.health.bundles import BundleProcessor
from services.health.demo import load_demo
from services.health.demo_clinic import load_clinic
from services.health.endpoints import public, router
from services.health.outcome import error_outcome, install_outcome_handlers, outcome_response
from services.health.repository import FhirRepository, specs
from services.health.residents import ResidentLinker
from services.health.searching import Searcher
from services.health.service import FhirService
from services.health.settings import HealthSettings
from shared.app import LifespanHook, create_app
from shared.auth.deps import auth_lifespan
from shared.errors import HuiminError
from shared.events import CURSOR_SPEC, Handler, feed_consumer_lifespan
from shared.settings import get_settings
from shared.storage import Store, open_store
from shared.telemetry import Telemetry

logger = logging.getLogger(__name__)


def _render(error: HuiminError, path: str) -> Response:
    return outcome_response(error.status, error_outcome(error), error.headers)


def _fhir_lifespan(settings: HealthSettings) -> LifespanHook:
    @asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        repo = FhirRepository(app.state.store)
        audit = AuditLog(
            repo,
            flush_seconds=settings.audit_flush_seconds,
            batch_size=settings.audit_batch_size,
            max_backlog=settings.audit_max_backlog,
            backlog_wait=settings.audit_backlog_wait_seconds,
        )
        service = FhirService(repo, audit, settings)
        searcher = Searcher(service)
        app.state.fhir = service
        app.state.searcher = searcher
        app.state.bundles = BundleProcessor(service, searcher, settings)
        async with audit.running():
            if settings.demo_data:
                base = settings.fhir_base_url or f"http://{settings.host}:{settings.port}"
                count = await load_demo(app.state.bundles, base)
                count += await load_clinic(app.state.bundles, base, settings.demo_patients)
                logger.info("demo data: %d records present", count)
            yield

    return hook


def _store(url: str) -> Store:
    # The FHIR collections, and the cursors of the feeds this service consumes.
    return open_store(url, [*specs(), CURSOR_SPEC])


def _hooks(settings: HealthSettings) -> list[LifespanHook]:
    hooks = [auth_lifespan(settings), _fhir_lifespan(settings)]
    if settings.registry_events_url:

        def linker(app: FastAPI) -> Handler:
            return ResidentLinker(app.state.fhir, settings.client_id).handle

        hooks.append(
            feed_consumer_lifespan(
                "registry",
                settings.registry_events_url,
                linker,
                settings,
                page_size=settings.registry_events_page_size,
                poll_interval=settings.registry_events_poll_seconds,
            )
        )
    return hooks


def create_health_app(
    settings: HealthSettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the FHIR server (`uvicorn --factory services.health.app:create_health_app`)."""
    settings = settings if settings is not None else get_settings(HealthSettings)
    app = create_app(
        settings,
        title="Huimin health records (FHIR R4)",
        routers=[public, router],
        store=_store,
        lifespan_hooks=_hooks(settings),
        telemetry=telemetry,
        render_error=_render,
    )
    install_outcome_handlers(app)
    return app
