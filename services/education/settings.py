"""Settings of the education service: the shared `HUIMIN_*` variables plus paging, search
and the registry feed it consumes."""

from __future__ import annotations

from pydantic import Field

from shared.settings import Settings


class EducationSettings(Settings):
    """Education service settings (env prefix `HUIMIN_`)."""

    service_name: str = "education"
    port: int = 8003
    default_limit: int = Field(default=20, ge=1, le=100)
    max_limit: int = Field(default=100, ge=1, le=100)
    # Relevance ranks at most this many of the newest matches per search (search.py).
    search_candidates: int = Field(default=200, ge=10, le=1000)
    # Load demo resources, an organisation, a course and a class at start (dev stack).
    demo_data: bool = False
    # With demo_data: evening courses and classes with this many of the registry's generated
    # demo residents enrolled (services/education/demo_school.py; the dev stack sets it).
    demo_learners: int = Field(default=0, ge=0, le=1000)
    # The registry's event feed (e.g. http://127.0.0.1:8002/events): learners' names and
    # status, and merges, read with this service's client credentials. Unset: off.
    registry_events_url: str | None = None
    registry_events_poll_seconds: float = Field(default=2.0, gt=0, le=300)
    registry_events_page_size: int = Field(default=100, ge=1, le=1000)
