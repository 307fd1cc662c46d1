"""Serving the gateway: granian (a Rust HTTP server) through its ASGI interface, on uvloop.

The services keep uvicorn (`shared.app.serve`); the gateway is the one process every request
crosses, and a proxy spends much of its time in HTTP parsing and socket work that granian
does in Rust: measured here, a bare aiohttp proxy went from about 3,260 to 4,900 requests/s
(docs/gateway.md, Performance). Granian runs embedded, in this process and its event loop:
one worker, as under uvicorn, so signals, logs and the process id stay this process's.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from typing import Any

import uvloop
from fastapi import FastAPI
from granian.constants import HTTPModes, Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from gateway.settings import GatewaySettings

logger = logging.getLogger("gateway.server")
access_logger = logging.getLogger("gateway.access")

# Granian configures its own loggers with their own handlers; routed to the root instead,
# its lines come out through shared.logging in the suite's one format.
_GRANIAN_LOGGING: dict[str, Any] = {
    "loggers": {
        "_granian": {"handlers": [], "propagate": True},
        "granian.access": {"handlers": [], "propagate": True},
    },
}


def run(app: FastAPI, settings: GatewaySettings) -> None:
    """Serve `app` on `settings.host:settings.port` until SIGTERM or SIGINT."""
    uvloop.run(_serve(app, settings))


def granian_server(app: FastAPI, host: str, port: int, log_level: str = "INFO") -> Server:
    """An embedded granian server for `app`, as `python -m gateway` runs it (`await
    server.serve()` in a uvloop loop; `server.stop()` ends it gracefully)."""
    # As uvicorn did by default: X-Forwarded-For and -Proto are believed from a proxy on the
    # same host only (127.0.0.1), so a local load balancer still passes the client's address.
    return Server(
        AccessLog(ForwardedFromLocalhost(app)),
        address=host,
        port=port,
        interface=Interfaces.ASGI,  # with the lifespan: pools and the JWKS cache open in it
        http=HTTPModes.http1,
        websockets=False,
        backlog=1024,
        log_dictconfig=_GRANIAN_LOGGING,
        log_level=_granian_level(log_level),
        # The gateway writes its own access log (gateway.access), with the request id.
        log_access=False,
    )


async def _serve(app: FastAPI, settings: GatewaySettings) -> None:
    server = granian_server(app, settings.host, settings.port, settings.log_level)
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()
    logger.info("Application shutdown complete.")


class ForwardedFromLocalhost:
    """X-Forwarded-For and -Proto believed from 127.0.0.1 only (granian's port of uvicorn's
    middleware), consulted only when the request carries X-Forwarded-For: the middleware
    parses the peer's address on every request otherwise (about 2 % of the gateway's time)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.proxied: ASGIApp = wrap_asgi_with_proxy_headers(app, trusted_hosts="127.0.0.1")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Rewrite the client address and scheme when a local proxy named them."""
        if scope["type"] == "http":
            for name, _ in scope["headers"]:
                if name == b"x-forwarded-for":
                    await self.proxied(scope, receive, send)
                    return
        await self.app(scope, receive, send)


class AccessLog:
    """One line per request, as uvicorn's access log has them (`shared.logging` adds the
    structured fields): granian's own would be written after the request id is gone."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Run the request, then log it (only when INFO is on: no cost otherwise)."""
        if scope["type"] != "http" or not access_logger.isEnabledFor(logging.INFO):
            await self.app(scope, receive, send)
            return
        status = 500

        async def recording_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, recording_send)
        finally:
            client = scope.get("client")
            query = scope.get("query_string", b"").decode("latin-1")
            request_id = scope.get("state", {}).get("request_id")
            access_logger.info(
                '%s - "%s %s HTTP/%s" %d',
                f"{client[0]}:{client[1]}" if client else "-",
                scope["method"],
                scope["path"] + ("?" + query if query else ""),
                scope["http_version"],
                status,
                extra={"request_id": request_id} if request_id else None,
            )


def _granian_level(level: str) -> LogLevels:
    try:
        return LogLevels(level.lower())
    except ValueError:
        return LogLevels.info
