"""A Redis test server from Debian's packages, no root needed (`make redis`).

`install()` returns a `redis-server` binary: the one on PATH if there is one, else the one
of Debian's packages (`redis-server`, `redis-tools`, and the libraries `libjemalloc2`,
`liblzf1`) unpacked into the cache outside the repo (tools/debian.py).
`RedisServer` runs one server on a free loopback port, without persistence, for tests and
benchmarks of the gateway's shared rate limits.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tools._server import HOST
from tools.debian import DebianServer, install_main

# Debian bookworm: redis-tools holds the binary, redis-server its `redis-server` name (a link).
PACKAGES = ("redis-server", "redis-tools", "libjemalloc2", "liblzf1")
_PREFIX = "redis"


class RedisError(RuntimeError):
    """Redis could not be installed or started."""


def install() -> Path:
    """Return a runnable `redis-server`, unpacking it from Debian's packages if needed."""
    return RedisServer.install()


class RedisServer(DebianServer):
    """One redis-server on a loopback port; no persistence (tests need none)."""

    name = "Redis"
    error = RedisError
    log_prefix = _PREFIX
    log_name = "redis.log"
    packages = PACKAGES
    relative = "usr/bin/redis-server"
    command = "redis-server"

    @property
    def url(self) -> str:
        """The `redis://` URL of the server."""
        return f"redis://{HOST}:{self.port}/0"

    def _argv(self, binary: Path, port: int) -> list[str]:
        return [
            str(binary),
            "--bind",
            HOST,
            "--port",
            str(port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(self._dir),
        ]

    def _ready(self, port: int) -> bool:
        return _pings(port)

    def _readiness_goal(self, port: int) -> str:
        return f"answer PING on {HOST}:{port}"


def _pings(port: int) -> bool:
    # The inline protocol: no client library needed to probe.
    try:
        with socket.create_connection((HOST, port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.redis install`."""
    return install_main(RedisServer, "tools.redis", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
