"""Bodies flow through the gateway chunk by chunk, both ways; the body limit holds."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator

import httpx

from gateway.app import create_gateway_app
from tests.fixtures.gateway import ThreadServer, UpstreamState, serving_gateway
from tests.gateway.conftest import gateway_client, settings_for

MiB = 1024 * 1024


async def test_response_is_streamed_before_the_upstream_finishes(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    app = create_gateway_app(settings_for(idp, upstream.url))
    with serving_gateway(app) as gateway:
        async with (
            httpx.AsyncClient(base_url=gateway.url, timeout=30) as client,
            client.stream("GET", "/tourism/gated") as response,
        ):
            chunks = response.aiter_raw()
            first = await asyncio.wait_for(chunks.__anext__(), timeout=10)
            # Only now may the upstream finish: a buffering proxy would never have sent it.
            assert not upstream_state.finish_response.is_set()
            upstream_state.finish_response.set()
            rest = b"".join([chunk async for chunk in chunks])
    assert response.status_code == 200
    assert first + rest == b"first-chunk;last-chunk"
    assert first.startswith(b"first-chunk;")


async def test_request_body_is_streamed_before_the_client_finishes(
    idp, upstream: ThreadServer, upstream_state: UpstreamState, token
):
    app = create_gateway_app(settings_for(idp, upstream.url))
    digest = hashlib.sha256()

    async def body() -> AsyncIterator[bytes]:
        first = b"a" * 65536
        digest.update(first)
        yield first
        # The upstream must hold the first chunk before the client sends the second.
        received = await asyncio.to_thread(upstream_state.first_chunk_received.wait, 10)
        assert received, "the first chunk never reached the upstream"
        for _ in range(15):
            chunk = b"b" * 65536
            digest.update(chunk)
            yield chunk

    with serving_gateway(app) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            response = await client.post(
                "/registry/echo/upload",
                content=body(),
                headers={"Authorization": f"Bearer {token()}"},
            )
    assert response.status_code == 200, response.text
    assert response.json()["size"] == 16 * 65536
    assert response.json()["sha256"] == digest.hexdigest()


async def test_large_bodies_pass_intact_both_ways(idp, upstream: ThreadServer, token):
    settings = settings_for(idp, upstream.url, max_body_bytes=64 * MiB)
    payload = bytes(range(256)) * (24 * MiB // 256)
    app = create_gateway_app(settings)
    with serving_gateway(app) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=60) as client:
            upload = await client.put(
                "/registry/echo/big",
                content=payload,
                headers={"Authorization": f"Bearer {token()}"},
            )
            download = await client.get("/tourism/big?chunks=384")  # 24 MiB
    assert upload.status_code == 200
    assert upload.json()["size"] == len(payload)
    assert upload.json()["sha256"] == hashlib.sha256(payload).hexdigest()
    assert download.status_code == 200
    assert len(download.content) == 384 * 65536
    expected = b"".join(bytes([i % 256]) * 65536 for i in range(384))
    assert download.content == expected


async def test_oversized_bodies_get_413_declared_or_chunked(
    idp, upstream: ThreadServer, upstream_state: UpstreamState, token
):
    auth = {"Authorization": f"Bearer {token()}"}

    async def chunked() -> AsyncIterator[bytes]:
        for _ in range(10):
            yield b"x" * 500

    app = create_gateway_app(settings_for(idp, upstream.url, max_body_bytes=2000))
    with serving_gateway(app) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            declared = await client.post("/registry/echo/x", content=b"x" * 5000, headers=auth)
            streamed = await client.post("/registry/echo/y", content=chunked(), headers=auth)
            small = await client.post("/registry/echo/z", content=b"x" * 1000, headers=auth)
    assert declared.status_code == 413
    assert declared.headers["content-type"] == "application/problem+json"
    assert upstream_state.calls["/echo/x"] == 0  # refused before any upstream call
    assert streamed.status_code == 413, streamed.text
    assert streamed.headers["content-type"] == "application/problem+json"
    assert small.status_code == 200


async def test_malformed_json_is_passed_to_the_service_which_answers_its_own_4xx(
    idp, upstream: ThreadServer, token
):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.post(
            "/registry/json",
            content=b'{"name": "unterminated',
            headers={"Authorization": f"Bearer {token()}", "Content-Type": "application/json"},
        )
    assert response.status_code == 422
    # FastAPI's own error shape: the service answered, not the gateway.
    assert response.json()["detail"][0]["type"] == "json_invalid"
