"""Build and run FerretDB v1.24.2 (SQLite backend): a real MongoDB wire-protocol test server.

The Go main module in ``tools/ferretdb-server`` embeds FerretDB's ``ferretdb`` package; it is
built once per source hash into a cache outside the repository and reused afterwards.

    python -m tools.ferretdb build                      # build (or reuse) and print the path
    python -m tools.ferretdb serve [--port N] [--data-dir D]
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any, Self

from pymongo import MongoClient
from pymongo.errors import PyMongoError

from tools._gobuild import build_module, cached_build
from tools._gobuild import source_hash as go_source_hash
from tools._server import (
    HOST,
    ManagedServer,
    Probe,
    add_serve_command,
    cache_root,
    command_line,
    free_port,
    log,
    serve_in_foreground,
)

__all__ = ["HOST", "FerretDB", "FerretDBError", "binary_path", "build", "cache_root", "free_port"]

FERRETDB_VERSION = "v1.24.2"
SOURCE_DIR = Path(__file__).resolve().parent / "ferretdb-server"
SOURCE_FILES = ("go.mod", "go.sum", "main.go")
BINARY_NAME = "ferretdb"
LOG_NAME = "ferretdb.log"
_ADDRESS_IN_USE = "address already in use"


class FerretDBError(RuntimeError):
    """FerretDB could not be built, started or stopped."""


def _log(message: str) -> None:
    log("ferretdb", message)


def source_hash() -> str:
    """Hash of the Go sources (go.mod, go.sum, main.go) that determine the binary."""
    return go_source_hash(SOURCE_DIR, SOURCE_FILES)


def binary_path() -> Path:
    """Where the binary for the current sources lives (it may not be built yet)."""
    return cache_root() / "ferretdb" / source_hash() / BINARY_NAME


def find_go() -> str:
    """The Go toolchain: $HUIMIN_GO, else `go` on PATH, else /usr/local/go/bin/go."""
    candidates = [os.environ.get("HUIMIN_GO"), shutil.which("go"), "/usr/local/go/bin/go"]
    for candidate in candidates:
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise FerretDBError(
        "Go toolchain not found (set HUIMIN_GO or put `go` on PATH); it is needed to build "
        f"FerretDB {FERRETDB_VERSION}"
    )


def build(*, force: bool = False) -> Path:
    """Build the FerretDB binary into the cache (once per source hash) and return its path."""

    def run(target: Path) -> None:
        go = find_go()
        _log(f"building FerretDB {FERRETDB_VERSION} with {go} into {target.parent} (1-3 min) ...")
        build_module(go, SOURCE_DIR, target, FerretDBError)

    return cached_build(binary_path(), "ferretdb", run, force=force)


class FerretDB(ManagedServer):
    """One FerretDB server process on a loopback port, with its SQLite files in ``data_dir``."""

    name = "FerretDB"
    error = FerretDBError
    log_prefix = "ferretdb"
    log_name = LOG_NAME
    dir_label = "data_dir"
    address_in_use = _ADDRESS_IN_USE

    def __init__(
        self,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        binary: str | os.PathLike[str] | None = None,
        log_level: str = "info",
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(
            Path(tempfile.mkdtemp(prefix="huimin-ferretdb-"))
            if data_dir is None
            else Path(data_dir),
            owns_directory=data_dir is None,
            port=port,
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )
        self._binary = Path(binary) if binary is not None else None
        self._log_level = log_level

    @property
    def uri(self) -> str:
        """MongoDB connection string, e.g. ``mongodb://127.0.0.1:PORT/``."""
        return f"mongodb://{HOST}:{self.port}/"

    @property
    def data_dir(self) -> Path:
        """Directory holding the SQLite files (one per database) and the server log."""
        return self._dir

    def start(self) -> Self:
        """Start the server and wait until it answers ``ping``; returns self."""
        if self.running:
            return self
        binary = self._binary or build()
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                [
                    str(binary),
                    "-listen-addr",
                    f"{HOST}:{port}",
                    "-state-dir",
                    str(self._dir),
                    "-log-level",
                    self._log_level,
                    "-exit-on-stdin-close",
                ],
                # We hold the pipe's write end: if this process dies, the server exits too.
                stdin=subprocess.PIPE,
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )

        self._start_on_free_port(spawn)
        return self

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        # Cheap TCP probe first: a MongoClient that failed once waits for its next heartbeat.
        def ready(seconds_left: float) -> bool:
            return _accepts_connections(port) and _pings(port, seconds_left)

        return contextlib.nullcontext(ready)

    def _readiness_goal(self, port: int) -> str:
        return f"answer ping on {HOST}:{port}"


def _accepts_connections(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _pings(port: int, timeout: float) -> bool:
    timeout_ms = max(100, int(timeout * 1000))
    client: MongoClient[dict[str, Any]] = MongoClient(
        f"mongodb://{HOST}:{port}/",
        directConnection=True,
        serverSelectionTimeoutMS=timeout_ms,
        connectTimeoutMS=timeout_ms,
    )
    try:
        client.admin.command("ping")
    except PyMongoError:
        return False
    finally:
        client.close()
    return True


# -- command line ------------------------------------------------------------------------------


def _serve(port: int | None, data_dir: str | None, log_level: str) -> int:
    server = FerretDB(data_dir, port=port, log_level=log_level)

    def announce(seconds: float) -> None:
        print(server.uri, flush=True)
        _log(f"pid {server.pid}, data in {server.data_dir}, log {server.log_path}; Ctrl-C stops")

    # Temporary data is deleted at the end; a given data dir is kept.
    return serve_in_foreground(server, announce, delete=data_dir is None)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tools.ferretdb``."""
    parser, commands = command_line("tools.ferretdb", f"FerretDB {FERRETDB_VERSION} test server")
    build_cmd = commands.add_parser("build", help="build the binary (cached) and print its path")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    serve_cmd = add_serve_command(commands, "run a server in the foreground until Ctrl-C")
    serve_cmd.add_argument("--data-dir", help="SQLite data directory (default: a temporary one)")
    serve_cmd.add_argument(
        "--log-level", default="info", choices=["debug", "info", "warn", "error"]
    )
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(build(force=args.force))
            return 0
        return _serve(args.port, args.data_dir, args.log_level)
    except FerretDBError as exc:
        _log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
