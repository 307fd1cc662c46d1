"""Routing by the route table, header handling, and bad paths and headers refused."""

from __future__ import annotations

import socket
from typing import Any

import httpx

from gateway.app import create_gateway_app
from tests.fixtures.gateway import ThreadServer, UpstreamState, serving_gateway
from tests.gateway.conftest import gateway_client, settings_for


def header(echo: dict[str, Any], name: str) -> list[str]:
    return [v for k, v in echo["headers"] if k == name]


async def test_prefix_is_stripped_and_forwarding_headers_set(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.get(
            "/tourism/echo/a/b?q=%E6%83%A0&x=1",
            headers={
                "X-Forwarded-For": "6.6.6.6",
                "Forwarded": "for=6.6.6.6",
                "X-Request-ID": "req-42",
            },
        )
    assert response.status_code == 200
    echo = response.json()
    assert echo["path"] == "/echo/a/b"
    assert echo["query"] == "q=%E6%83%A0&x=1"
    # The client's own forwarding claims are replaced, never trusted or appended to.
    assert header(echo, "x-forwarded-for") == ["127.0.0.1"]
    assert header(echo, "x-forwarded-proto") == ["http"]
    assert header(echo, "x-forwarded-host") == ["testserver"]
    assert header(echo, "forwarded") == ['for="127.0.0.1";proto=http;host="testserver"']
    # Host names the upstream (its own virtual host), the public one travels in X-Forwarded-Host.
    assert header(echo, "host") == [upstream.url.removeprefix("http://")]
    assert header(echo, "x-request-id") == ["req-42"]
    assert response.headers["x-request-id"] == "req-42"
    assert response.headers["x-upstream"] == "upstream"


async def test_hop_by_hop_headers_are_not_forwarded(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.get(
            "/tourism/echo/x?cookies=1",
            headers={
                "Connection": "keep-alive, X-Secret",
                "X-Secret": "for this hop only",
                "Keep-Alive": "timeout=5",
                "TE": "trailers",
                "Proxy-Authorization": "Basic Zm9vOmJhcg==",
                "Expect": "100-continue",
                "X-End-To-End": "yes",
            },
        )
    assert response.status_code == 200
    names = {k for k, _ in response.json()["headers"]}
    assert not names & {"x-secret", "keep-alive", "te", "proxy-authorization", "expect"}
    assert "x-end-to-end" in names
    # And the way back: Set-Cookie passes, the upstream's Connection header does not.
    assert response.headers["set-cookie"] == "a=1"
    assert "close" not in response.headers.get("connection", "")


async def test_longest_prefix_wins_and_unknown_paths_are_404(idp, upstream: ThreadServer):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        metadata = await client.get("/fhir/metadata")  # public route inside /fhir
        patient = await client.get("/fhir/Patient")  # the authenticated rest
        unknown = await client.get("/nowhere/echo/x")
        sibling = await client.get("/tourismX/echo/x")  # not the /tourism segment
    assert metadata.status_code == 404  # reached the upstream, which has no /metadata
    assert metadata.headers["content-type"] == "application/json"
    assert patient.status_code == 401
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert sibling.status_code == 404


async def test_methods_are_allowed_per_route(idp, upstream: ThreadServer, token):
    async with gateway_client(settings_for(idp, upstream.url)) as (_, client):
        response = await client.request(
            "OPTIONS", "/tourism/echo/x", headers={"Authorization": f"Bearer {token()}"}
        )
        metadata_post = await client.post("/fhir/metadata", content=b"{}")
    assert response.status_code == 405
    assert response.headers["content-type"] == "application/problem+json"
    assert "GET" in response.headers["allow"]
    # The public /fhir/metadata route allows GET and HEAD only: no fall-through to /fhir.
    assert metadata_post.status_code == 405


async def _asgi(app, method: str, raw_path: bytes, headers=()) -> tuple[int, bytes]:
    """Call the ASGI app with a path exactly as given (clients normalise `..` away)."""
    path, _, query = raw_path.partition(b"?")
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": method,
        "scheme": "http",
        "path": path.decode("latin-1").replace("%2e", ".").replace("%2E", "."),
        "raw_path": path,
        "query_string": query,
        "headers": [*headers]
        if any(k == b"host" for k, _ in headers)
        else [(b"host", b"testserver"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
        "root_path": "",
    }
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    status = next(m["status"] for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return status, body


async def test_path_traversal_is_refused_and_never_forwarded(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    async with gateway_client(settings_for(idp, upstream.url)) as (app, _):
        for raw in (
            b"/tourism/../registry/echo/x",
            b"/tourism/%2e%2e/registry/echo/x",
            b"/tourism/%2E%2E/registry/echo/x",
            b"/tourism/echo/./x",
            b"/tourism//echo/x",
            b"/tourism/echo/a%2fb",
            b"/tourism/echo/a%5c..%5cb",
            b"/tourism/echo/a%00b",
        ):
            status, body = await _asgi(app, "GET", raw)
            assert status == 400, raw
            assert b"bad-request" in body
    assert sum(upstream_state.calls.values()) == 0


async def test_header_injection_is_refused(idp, upstream: ThreadServer, upstream_state):
    async with gateway_client(settings_for(idp, upstream.url)) as (app, _):
        status, _ = await _asgi(
            app, "GET", b"/tourism/echo/x", [(b"x-note", b"a\r\nX-Injected: 1")]
        )
        query_status, _ = await _asgi(app, "GET", b"/tourism/echo/x?a=1\r\nX-Injected:1")
        host_status, _ = await _asgi(app, "GET", b"/tourism/echo/x", [(b"host", b'a";for=x')])
        ipv6_status, _ = await _asgi(app, "GET", b"/tourism/echo/x", [(b"host", b"[::1]:8000")])
    assert status == 400
    assert query_status == 400
    assert host_status == 400
    assert ipv6_status == 200
    assert sum(upstream_state.calls.values()) == 1  # only the valid IPv6 Host went on


def _raw_http(port: int, request: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_a_real_server_does_not_normalise_traversal_for_the_gateway(
    idp, upstream: ThreadServer, upstream_state: UpstreamState
):
    app = create_gateway_app(settings_for(idp, upstream.url))
    with serving_gateway(app) as gateway:
        traversal = _raw_http(
            gateway.port,
            b"GET /tourism/../registry/echo/x HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n",
        )
        encoded = _raw_http(
            gateway.port,
            b"GET /tourism/%2e%2e/registry/echo/x HTTP/1.1\r\nHost: gw\r\n"
            b"Connection: close\r\n\r\n",
        )
        injected = _raw_http(
            gateway.port,
            b"GET /tourism/echo/x HTTP/1.1\r\nHost: gw\r\nX-A: 1\rX-B: 2\r\n"
            b"Connection: close\r\n\r\n",
        )
    assert traversal.startswith(b"HTTP/1.1 400"), traversal[:200]
    assert encoded.startswith(b"HTTP/1.1 400"), encoded[:200]
    assert injected.startswith(b"HTTP/1.1 400"), injected[:200]
    assert sum(upstream_state.calls.values()) == 0


async def test_a_proxy_on_the_same_host_may_name_the_client(idp, upstream: ThreadServer):
    # The server believes X-Forwarded-For from 127.0.0.1 only (a local load balancer), as
    # uvicorn does; the gateway then forwards that address as the client's.
    app = create_gateway_app(settings_for(idp, upstream.url))
    with serving_gateway(app) as gateway:
        async with httpx.AsyncClient(base_url=gateway.url, timeout=30) as client:
            response = await client.get(
                "/tourism/echo/x", headers={"X-Forwarded-For": "203.0.113.9"}
            )
    assert response.status_code == 200
    assert header(response.json(), "x-forwarded-for") == ["203.0.113.9"]
