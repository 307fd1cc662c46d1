"""A Redis test server from Debian's packages, no root needed (`make redis`).

`install()` returns a `redis-server` binary: the one on PATH if there is one, else the
Debian packages (`redis-server`, `redis-tools`, and the libraries `libjemalloc2`, `liblzf1`)
fetched with `apt-get download` and unpacked with `dpkg -x` into the cache outside the repo.
`RedisServer` runs one server on a free loopback port, without persistence, for tests and
benchmarks of the gateway's shared rate limits.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from tools._server import HOST, ManagedServer, Probe, cache_root, die_with_parent, file_lock, log

# Debian bookworm: redis-tools holds the binary, redis-server its `redis-server` name (a link).
PACKAGES = ("redis-server", "redis-tools", "libjemalloc2", "liblzf1")
_PREFIX = "redis"


class RedisError(RuntimeError):
    """Redis could not be installed or started."""


def install_dir() -> Path:
    """Where the unpacked Debian packages live."""
    return cache_root() / "redis"


def _unpacked_binary() -> Path:
    return install_dir() / "root" / "usr" / "bin" / "redis-server"


def _library_path() -> str:
    root = install_dir() / "root"
    dirs = [root / "usr" / "lib" / "x86_64-linux-gnu", root / "usr" / "lib" / "aarch64-linux-gnu"]
    return ":".join(str(d) for d in dirs if d.is_dir())


def install() -> Path:
    """Return a runnable `redis-server`, unpacking it from Debian's packages if needed."""
    on_path = shutil.which("redis-server")
    if on_path:
        return Path(on_path)
    binary = _unpacked_binary()
    if binary.exists():
        return binary
    with file_lock(install_dir() / ".lock", "another Redis install", _PREFIX):
        if binary.exists():
            return binary
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise RedisError("no redis-server on PATH and no apt-get/dpkg to fetch one")
        with tempfile.TemporaryDirectory(prefix="huimin-redis-") as tmp:
            log(_PREFIX, f"fetching {' '.join(PACKAGES)} from Debian's packages")
            result = subprocess.run(
                ["apt-get", "download", *PACKAGES],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise RedisError(f"apt-get download failed: {result.stderr.strip()[-500:]}")
            staging = install_dir() / "root.partial"
            shutil.rmtree(staging, ignore_errors=True)
            for deb in sorted(Path(tmp).glob("*.deb")):
                subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
            # Renamed into place last, so a half-unpacked tree is never taken for an install.
            shutil.rmtree(install_dir() / "root", ignore_errors=True)
            staging.rename(install_dir() / "root")
    if not binary.exists():
        raise RedisError(f"the Debian packages held no {binary.name}")
    log(_PREFIX, f"installed {binary}")
    return binary


def _environment(binary: Path) -> dict[str, str]:
    env = dict(os.environ)
    if binary == _unpacked_binary():
        env["LD_LIBRARY_PATH"] = ":".join(
            p for p in (_library_path(), env.get("LD_LIBRARY_PATH", "")) if p
        )
    return env


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
                env=_environment(binary),
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
