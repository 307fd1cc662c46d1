"""Fixtures of the event tests: a running feed (SQLite) and store URLs on both adapters."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.identity import IdP, dev_idp
from tests.shared.events.feedserver import (
    ENTITIES,
    Publisher,
    ThreadServer,
    feed_app,
    opened,
    serving,
    store_url_for,
)


@pytest.fixture
def dev(dev_issuer: Any) -> IdP:
    """The embedded dev issuer: tokens for the feed and its consumers."""
    return dev_idp(dev_issuer)


@pytest.fixture
def feed_url(tmp_path: Path) -> str:
    """The publisher's store (SQLite: the feed side is not what these tests vary)."""
    return f"sqlite:///{tmp_path}/publisher.db"


@pytest.fixture
def feed(feed_url: str, dev: IdP) -> Iterator[ThreadServer]:
    """A running feed over `feed_url`."""
    with serving(feed_app(feed_url, dev.issuer)) as server:
        yield server


@pytest.fixture
async def publisher(feed_url: str) -> AsyncIterator[Publisher]:
    """Writes events into the feed's store."""
    async with opened(feed_url, [ENTITIES]) as store:
        yield Publisher(store)


@pytest.fixture(params=["sqlite", pytest.param("mongo", marks=pytest.mark.mongo)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh store URL on each adapter."""
    return store_url_for(request, request.param, tmp_path, "consumer")
