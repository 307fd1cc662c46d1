"""Build and run FerretDB v1.24.2 (SQLite backend): a real MongoDB wire-protocol test server.

The Go main module in ``tools/ferretdb-server`` embeds FerretDB's ``ferretdb`` package; it is
built once per source hash into a cache outside the repository and reused afterwards.

    python -m tools.ferretdb build                      # build (or reuse) and print the path
    python -m tools.ferretdb serve [--port N] [--data-dir D]
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import hashlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, Any, Self

from pymongo import MongoClient
from pymongo.errors import PyMongoError

FERRETDB_VERSION = "v1.24.2"
SOURCE_DIR = Path(__file__).resolve().parent / "ferretdb-server"
SOURCE_FILES = ("go.mod", "go.sum", "main.go")
BINARY_NAME = "ferretdb"
LOG_NAME = "ferretdb.log"
HOST = "127.0.0.1"
_PORT_ATTEMPTS = 5
_ADDRESS_IN_USE = "address already in use"


class FerretDBError(RuntimeError):
    """FerretDB could not be built, started or stopped."""


def _log(message: str) -> None:
    print(f"[ferretdb] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """Huimin's cache: $HUIMIN_CACHE_DIR, else $XDG_CACHE_HOME/huimin, else ~/.cache/huimin."""
    explicit = os.environ.get("HUIMIN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huimin"


def source_hash() -> str:
    """Hash of the Go sources (go.mod, go.sum, main.go) that determine the binary."""
    digest = hashlib.sha256()
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0")
        digest.update((SOURCE_DIR / name).read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()[:16]


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


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for another build to finish (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def build(*, force: bool = False) -> Path:
    """Build the FerretDB binary into the cache (once per source hash) and return its path."""
    target = binary_path()
    if target.is_file() and not force:
        return target
    with _file_lock(target.parent / "build.lock"):
        if target.is_file() and not force:  # a concurrent build finished while we waited
            return target
        go = find_go()
        env = dict(os.environ)
        # The module cache is shared with every other Go build on this machine (Go's default,
        # or the caller's GOMODCACHE); only the finished binary lives in Huimin's cache.
        env["CGO_ENABLED"] = "0"  # FerretDB's SQLite driver (modernc.org/sqlite) is pure Go
        tmp = target.with_name(f".{BINARY_NAME}.{os.getpid()}.tmp")
        # -mod=readonly: the committed go.sum must be complete, so the build is reproducible.
        command = [go, "build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-o", str(tmp)]
        _log(f"building FerretDB {FERRETDB_VERSION} with {go} into {target.parent} (1-3 min) ...")
        started = time.monotonic()
        result = subprocess.run(
            [*command, "."],
            cwd=SOURCE_DIR,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            tmp.unlink(missing_ok=True)
            output = result.stdout.strip()[-4000:] or "(no output)"
            raise FerretDBError(f"`go build` failed (exit {result.returncode}):\n{output}")
        tmp.replace(target)  # atomic: readers never see a half-written binary
        _log(f"built {target} in {time.monotonic() - started:.0f}s")
        return target


def free_port(host: str = HOST) -> int:
    """A TCP port that is free right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


class FerretDB:
    """One FerretDB server process on a loopback port, with its SQLite files in ``data_dir``."""

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
        self._owns_data_dir = data_dir is None
        self._data_dir = (
            Path(tempfile.mkdtemp(prefix="huimin-ferretdb-"))
            if data_dir is None
            else Path(data_dir)
        )
        self._port: int | None = port
        self._binary = Path(binary) if binary is not None else None
        self._log_level = log_level
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0

    # -- properties ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (fixed by the first start; restart() reuses it)."""
        if self._port is None:
            raise FerretDBError("FerretDB has not been started yet")
        return self._port

    @property
    def uri(self) -> str:
        """MongoDB connection string, e.g. ``mongodb://127.0.0.1:PORT/``."""
        return f"mongodb://{HOST}:{self.port}/"

    @property
    def data_dir(self) -> Path:
        """Directory holding the SQLite files (one per database) and the server log."""
        return self._data_dir

    @property
    def log_path(self) -> Path:
        """The server's log file (appended to across restarts)."""
        return self._data_dir / LOG_NAME

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        if self._process is None:
            raise FerretDBError("FerretDB is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until it answers ``ping``; returns self."""
        if self.running:
            return self
        binary = self._binary or build()
        self._data_dir.mkdir(parents=True, exist_ok=True)
        # A fixed port (requested, or kept for restart) must be used as is; a picked one may
        # be taken by someone else between picking and binding, so then we pick again.
        attempts = 1 if self._port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else free_port()
            try:
                self._spawn(binary, port)
                self._wait_ready(port)
            except _AddressInUse:
                if attempt == attempts:
                    raise FerretDBError(
                        f"port {port} is already in use; FerretDB log {self.log_path}:\n"
                        f"{_tail(self.log_path)}"
                    ) from None
                continue
            self._port = port
            return self
        raise AssertionError("unreachable")  # pragma: no cover

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within stop_timeout."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                _log(f"FerretDB pid {process.pid} ignored SIGTERM; sending SIGKILL")
                process.kill()
                process.wait()
        self._reap()

    def kill(self) -> None:
        """Kill the server with SIGKILL at once (simulates a crash, for durability tests)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.kill()
            process.wait()
        self._reap()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the server process to exit and return its exit code."""
        process = self._process
        if process is None:
            raise FerretDBError("FerretDB is not running")
        code = process.wait(timeout)
        self._reap()
        return code

    def restart(self) -> Self:
        """Stop the server if it runs, then start it again on the same port and data dir."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete the data dir if it was a temporary one we created."""
        self.stop()
        if self._owns_data_dir:
            shutil.rmtree(self._data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self._process.pid}" if self.running and self._process else "stopped"
        return f"FerretDB(port={self._port}, data_dir={str(self._data_dir)!r}, {state})"

    # -- internals -----------------------------------------------------------------------------

    def _spawn(self, binary: Path, port: int) -> None:
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- launcher: starting on {HOST}:{port} ---\n".encode())
        self._log_file.flush()
        self._log_offset = self._log_file.tell()
        self._process = subprocess.Popen(
            [
                str(binary),
                "-listen-addr",
                f"{HOST}:{port}",
                "-state-dir",
                str(self._data_dir),
                "-log-level",
                self._log_level,
                "-exit-on-stdin-close",
            ],
            # We hold the pipe's write end: if this process dies, the server exits too.
            stdin=subprocess.PIPE,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def _new_log(self) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self, port: int) -> None:
        process = self._process
        assert process is not None
        deadline = time.monotonic() + self._start_timeout
        while True:
            code = process.poll()
            if code is not None:
                self._reap()
                if _ADDRESS_IN_USE in self._new_log():
                    raise _AddressInUse
                raise FerretDBError(
                    f"FerretDB exited with code {code} during start; log {self.log_path}:\n"
                    f"{_tail(self.log_path)}"
                )
            # Cheap TCP probe first: a MongoClient that failed once waits for its next heartbeat.
            if _accepts_connections(port) and _pings(port, deadline - time.monotonic()):
                return
            if time.monotonic() > deadline:
                self.kill()
                raise FerretDBError(
                    f"FerretDB did not answer ping on {HOST}:{port} within "
                    f"{self._start_timeout:.0f}s; log {self.log_path}:\n{_tail(self.log_path)}"
                )
            time.sleep(0.02)

    def _reap(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


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


class _AddressInUse(Exception):
    """The server could not bind its port (someone took it after we picked it)."""


# -- command line ------------------------------------------------------------------------------


def _serve(port: int | None, data_dir: str | None, log_level: str) -> int:
    server = FerretDB(data_dir, port=port, log_level=log_level)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    # Background jobs of a non-interactive shell inherit an ignored SIGINT; Ctrl-C must work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        server.start()
        print(server.uri, flush=True)
        _log(f"pid {server.pid}, data in {server.data_dir}, log {server.log_path}; Ctrl-C stops")
        code = server.wait()
        _log(f"FerretDB exited on its own with code {code}:\n{_tail(server.log_path)}")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        if data_dir is None:
            server.close()  # temporary data: delete it
        else:
            server.stop()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tools.ferretdb``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.ferretdb", description=f"FerretDB {FERRETDB_VERSION} test server"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    build_cmd = commands.add_parser("build", help="build the binary (cached) and print its path")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    serve_cmd = commands.add_parser("serve", help="run a server in the foreground until Ctrl-C")
    serve_cmd.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
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
