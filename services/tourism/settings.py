"""Settings of the tourism service: the shared `HUIMIN_*` variables plus paging and demo
data."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class TourismSettings(Settings):
    """Tourism service settings (env prefix `HUIMIN_`)."""

    service_name: str = "tourism"
    port: int = 8004
    default_limit: int = Field(default=20, ge=1, le=100)
    max_limit: int = Field(default=100, ge=1, le=100)
    # Load demo places and events around Beijing at start (dev stack).
    demo_data: bool = False
    # With demo_data: this many generated places around real neighbourhoods, and events at
    # some (services/tourism/demo_city.py; the dev stack sets 100). 150 pairs exist.
    demo_places: int = Field(default=0, ge=0, le=150)
