"""The API gateway: the suite's only public entry (routing to services comes later)."""

from __future__ import annotations

from fastapi import FastAPI

from shared.app import create_app
from shared.settings import Settings, get_settings
from shared.telemetry import Telemetry


class GatewaySettings(Settings):
    """Gateway settings: the shared `HUIMIN_*` variables with the gateway's defaults."""

    service_name: str = "gateway"
    port: int = 8000


def create_gateway_app(
    settings: GatewaySettings | None = None, *, telemetry: Telemetry | None = None
) -> FastAPI:
    """Build the gateway app (`uvicorn --factory gateway.app:create_gateway_app` works too)."""
    settings = settings if settings is not None else get_settings(GatewaySettings)
    # No store: the gateway keeps no data of its own; each service owns its data.
    return create_app(settings, title="Huimin API", telemetry=telemetry)
