"""`GET /events`: service accounts only, paging by cursor, problem+json for bad parameters.
The feed runs on each store adapter."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from tests.fixtures.identity import IdP
from tests.shared.events.feedserver import (
    ENTITIES,
    Publisher,
    ThreadServer,
    feed_app,
    opened,
    serving,
)


@pytest.fixture
def server(store_url: str, dev: IdP) -> Iterator[ThreadServer]:
    with serving(feed_app(store_url, dev.issuer)) as s:
        yield s


@pytest.fixture
async def writer(store_url: str, server: ThreadServer) -> AsyncIterator[Publisher]:
    async with opened(store_url, [ENTITIES]) as store:
        yield Publisher(store)


def _service(dev: IdP, server: ThreadServer) -> httpx.AsyncClient:
    token = dev.client_token("huimin-health")
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_only_service_accounts_read_the_feed(dev: IdP, server: ThreadServer) -> None:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
        missing = await anonymous.get("/events")
        assert missing.status_code == 401
        assert missing.headers["content-type"].startswith("application/problem+json")
        assert missing.headers["www-authenticate"].startswith("Bearer")
        bad = await anonymous.get("/events", headers={"Authorization": "Bearer not.a.jwt"})
        assert bad.status_code == 401
        for user in ("admin", "worker", "doctor"):
            token = dev.password_token(user)
            r = await anonymous.get("/events", headers={"Authorization": f"Bearer {token}"})
            assert r.status_code == 403, user
            assert r.headers["content-type"].startswith("application/problem+json")
    async with _service(dev, server) as service:
        ok = await service.get("/events")
    assert ok.status_code == 200
    assert ok.json() == {"events": [], "next": 0}
    assert ok.headers["cache-control"] == "no-store"


async def test_pages_follow_the_cursor(dev: IdP, server: ThreadServer, writer: Publisher) -> None:
    stored = await writer.publish(
        [("thing.created", f"k{i}", {"i": i, "名": "张伟"}) for i in range(7)]
    )
    seqs = [e.seq for e in stored]
    async with _service(dev, server) as service:
        first = (await service.get("/events", params={"limit": 3})).json()
        assert [e["seq"] for e in first["events"]] == seqs[:3]
        assert first["next"] == seqs[2]
        event = first["events"][0]
        assert event["type"] == "thing.created"
        assert event["key"] == "k0"
        assert event["payload"] == {"i": 0, "名": "张伟"}
        assert event["at"].endswith(("Z", "+00:00"))
        second = (await service.get("/events", params={"after": first["next"], "limit": 3})).json()
        assert [e["seq"] for e in second["events"]] == seqs[3:6]
        rest = (await service.get("/events", params={"after": second["next"]})).json()
        assert [e["seq"] for e in rest["events"]] == seqs[6:]
        # Nothing new: the cursor stays where it is.
        empty = (await service.get("/events", params={"after": rest["next"]})).json()
        assert empty == {"events": [], "next": rest["next"]}
        beyond = (await service.get("/events", params={"after": 10**12})).json()
        assert beyond == {"events": [], "next": 10**12}
        # Default page size is 100; an event written later appears after the old cursor.
        await writer.publish([("thing.updated", "k0", {})])
        later = (await service.get("/events", params={"after": rest["next"]})).json()
        assert [e["type"] for e in later["events"]] == ["thing.updated"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"after": "-1"}, "after"),
        ({"after": "abc"}, "after"),
        ({"after": "1.5"}, "after"),
        ({"after": str(2**64)}, "after"),
        ({"limit": "0"}, "limit"),
        ({"limit": "1001"}, "limit"),
        ({"limit": "ten"}, "limit"),
    ],
)
async def test_bad_parameters_are_field_problems(
    dev: IdP, server: ThreadServer, params: dict[str, str], field: str
) -> None:
    async with _service(dev, server) as service:
        r = await service.get("/events", params=params)
    assert r.status_code == 422
    assert r.headers["content-type"].startswith("application/problem+json")
    problem = r.json()
    assert problem["status"] == 422
    assert [(e["field"], e["in"]) for e in problem["errors"]] == [(field, "query")]


async def test_bad_parameters_without_a_token_are_401(server: ThreadServer) -> None:
    # Authentication is decided first: an anonymous caller learns nothing about parameters.
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as anonymous:
        assert (await anonymous.get("/events", params={"limit": "0"})).status_code == 401
