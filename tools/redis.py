"""A Redis test server from Debian's packages, no root needed (`make redis`).

`install()` returns a `redis-server` binary: the one on PATH if there is one, else the one
of Debian's packages (`redis-server`, `redis-tools`, and the libraries `libjemalloc2`,
`liblzf1`) unpacked into the cache outside the repo (tools/debian.py).
`RedisServer` runs one server on a free loopback port, without persistence, for tests and
benchmarks of the gateway's shared rate limits.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from tools._server import HOST, ManagedServer, Probe, die_with_parent, log
from tools.debian import DebianError, environment, program

# Debian bookworm: redis-tools holds the binary, redis-server its `redis-server` name (a link).
PACKAGES = ("redis-server", "redis-tools", "libjemalloc2", "liblzf1")
_PREFIX = "redis"


class RedisError(RuntimeError):
    """Redis could not be installed or started."""


def install() -> Path:
    """Return a runnable `redis-server`, unpacking it from Debian's packages if needed."""
    try:
        return program(_PREFIX, PACKAGES, "usr/bin/redis-server", command="redis-server")
    except DebianError as exc:
        raise RedisError(str(exc)) from None


class RedisServer(ManagedServer):
    """One redis-server on a loopback port; no persistence (tests need none)."""

    name = "Redis"
    error = RedisError
    log_prefix = _PREFIX
    log_name = "redis.log"
    dir_label = "directory"
    address_in_use = "Address already in use"

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        super().__init__(
            directory, owns_directory=False, port=port, start_timeout=20.0, stop_timeout=10.0
        )

    @property
    def url(self) -> str:
        """The `redis://` URL of the server."""
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> RedisServer:
        """Start the server on a free port and wait until it answers PING."""
        if self.running:
            return self
        binary = install()
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
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
                ],
                env=environment(_PREFIX, binary),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

        self._start_on_free_port(spawn)
        return self

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        def ready(_seconds_left: float) -> bool:
            return _pings(port)

        return contextlib.nullcontext(ready)

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
    parser = argparse.ArgumentParser(prog="python -m tools.redis", description=__doc__)
    parser.add_argument("command", choices=["install"], help="install and print the binary")
    parser.parse_args(argv)
    try:
        print(install())
    except RedisError as exc:
        log(_PREFIX, str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
