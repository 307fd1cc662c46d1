"""Domain events between services: the `GET /events` feed router, the polling consumer and
the typed payloads of the events services share (docs/events.md)."""

from shared.events.consumer import (
    CURSOR_SPEC,
    CURSORS,
    Backoff,
    ConsumerStatus,
    FeedConsumer,
    FeedError,
    Handler,
    feed_consumer_lifespan,
    register_metrics,
)
from shared.events.feed import FeedEvent, FeedPage, events_router

__all__ = [
    "CURSORS",
    "CURSOR_SPEC",
    "Backoff",
    "ConsumerStatus",
    "FeedConsumer",
    "FeedError",
    "FeedEvent",
    "FeedPage",
    "Handler",
    "events_router",
    "feed_consumer_lifespan",
    "register_metrics",
]
