"""What the test-server launchers (tools/ferretdb.py, tools/keycloak.py) share.

`ManagedServer` runs one server process on a loopback port with its log file in the server's
own directory: start on a free port (picking again when someone takes it first), wait until
ready (with the log tail on failure), stop (SIGTERM, then SIGKILL), kill, wait, restart,
close and the context manager. Subclasses say how to spawn the process and how to probe it.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import ctypes
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from types import FrameType, TracebackType
from typing import IO, ClassVar, Self

HOST = "127.0.0.1"
PORT_ATTEMPTS = 5
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

# Starts the process: (port, log file) -> the process, its output going to the log file.
Spawner = Callable[[int, IO[bytes]], "subprocess.Popen[bytes]"]
# Readiness check, called repeatedly with the seconds left until the start deadline.
Probe = Callable[[float], bool]


def log(prefix: str, message: str) -> None:
    """Print ``[prefix] message`` to stderr."""
    print(f"[{prefix}] {message}", file=sys.stderr, flush=True)


def cache_root() -> Path:
    """Huimin's cache: $HUIMIN_CACHE_DIR, else $XDG_CACHE_HOME/huimin, else ~/.cache/huimin."""
    explicit = os.environ.get("HUIMIN_CACHE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "huimin"


@contextlib.contextmanager
def file_lock(path: Path, waiting: str, prefix: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path``; logs ``waiting for <waiting>`` when it is taken."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log(prefix, f"waiting for {waiting} (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def free_port(host: str = HOST) -> int:
    """A TCP port that is free right now (another process may still take it before we do)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def tail(path: Path, lines: int = 40) -> str:
    """The last ``lines`` lines of a log file (or why there are none)."""
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def die_with_parent() -> None:
    """``preexec_fn``: the kernel sends the child SIGTERM when the launcher dies (Linux)."""
    # Runs in the child between fork and exec; the flag survives exec.
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class AddressInUse(Exception):
    """The server could not bind its port (someone took it after we picked it)."""


class ManagedServer(abc.ABC):
    """One server process on a loopback port; its log file lives in its directory."""

    name: ClassVar[str]  # for messages, e.g. "FerretDB"
    error: ClassVar[type[RuntimeError]]  # raised when it cannot start or is not running
    log_prefix: ClassVar[str]  # e.g. "ferretdb": "[ferretdb] ..." on stderr
    log_name: ClassVar[str]  # log file name inside the directory
    dir_label: ClassVar[str]  # the directory's name in repr(), e.g. "data_dir"
    address_in_use: ClassVar[str]  # log text that means the port was taken
    tail_lines: ClassVar[int] = 40
    poll_interval: ClassVar[float] = 0.02

    def __init__(
        self,
        directory: Path,
        *,
        owns_directory: bool,
        port: int | None,
        start_timeout: float,
        stop_timeout: float,
    ) -> None:
        self._dir = directory
        self._owns_dir = owns_directory
        self._port = port
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0

    # -- hooks ---------------------------------------------------------------------------------

    @abc.abstractmethod
    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        """A context giving the readiness check for a server starting on ``port``."""

    @abc.abstractmethod
    def _readiness_goal(self, port: int) -> str:
        """What ``_probe`` waits for, for the timeout message ("did not <goal> within")."""

    def _kill_process(self, process: subprocess.Popen[bytes]) -> None:
        """SIGKILL the server and wait for it."""
        process.kill()
        process.wait()

    # -- properties ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (fixed by the first start; restart() reuses it)."""
        if self._port is None:
            raise self.error(f"{self.name} has not been started yet")
        return self._port

    @property
    def log_path(self) -> Path:
        """The server's log file (appended to across restarts)."""
        return self._dir / self.log_name

    @property
    def pid(self) -> int:
        """Process id of the running server."""
        if self._process is None:
            raise self.error(f"{self.name} is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

    # -- lifecycle -----------------------------------------------------------------------------

    @abc.abstractmethod
    def start(self) -> Self:
        """Start the server and wait until it is ready; returns self."""

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
                self._log(f"{self.name} pid {process.pid} ignored SIGTERM; sending SIGKILL")
                self._kill_process(process)
        self._reap()

    def kill(self) -> None:
        """Kill the server with SIGKILL at once (simulates a crash, for durability tests)."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._kill_process(process)
        self._reap()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the server process to exit and return its exit code."""
        process = self._process
        if process is None:
            raise self.error(f"{self.name} is not running")
        code = process.wait(timeout)
        self._reap()
        return code

    def restart(self) -> Self:
        """Stop the server if it runs, then start it again on the same port and directory."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete its directory if it was a temporary one we created."""
        self.stop()
        if self._owns_dir:
            shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self._process.pid}" if self.running and self._process else "stopped"
        return (
            f"{type(self).__name__}(port={self._port}, "
            f"{self.dir_label}={str(self._dir)!r}, {state})"
        )

    # -- internals -----------------------------------------------------------------------------

    def _log(self, message: str) -> None:
        log(self.log_prefix, message)

    def _tail(self) -> str:
        return tail(self.log_path, self.tail_lines)

    def _start_on_free_port(self, spawn: Spawner) -> None:
        # A fixed port (requested, or kept for restart) must be used as is; a picked one may
        # be taken by someone else between picking and binding, so then we pick again.
        attempts = 1 if self._port is not None else PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else free_port()
            try:
                self._launch(spawn, port)
                self._wait_ready(port)
            except AddressInUse:
                if attempt == attempts:
                    raise self.error(
                        f"port {port} is already in use; {self.name} log {self.log_path}:\n"
                        f"{self._tail()}"
                    ) from None
                continue
            self._port = port
            return

    def _launch(self, spawn: Spawner, port: int) -> None:
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- launcher: starting on {HOST}:{port} ---\n".encode())
        self._log_file.flush()
        self._log_offset = self._log_file.tell()
        self._process = spawn(port, self._log_file)

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
        with self._probe(port) as ready:
            while True:
                code = process.poll()
                if code is not None:
                    self._reap()
                    if self.address_in_use in self._new_log():
                        raise AddressInUse
                    raise self.error(
                        f"{self.name} exited with code {code} during start; "
                        f"log {self.log_path}:\n{self._tail()}"
                    )
                if ready(deadline - time.monotonic()):
                    return
                if time.monotonic() > deadline:
                    self.kill()
                    raise self.error(
                        f"{self.name} did not {self._readiness_goal(port)} within "
                        f"{self._start_timeout:.0f}s; log {self.log_path}:\n{self._tail()}"
                    )
                time.sleep(self.poll_interval)

    def _reap(self) -> None:
        if self._process is not None and self._process.stdin is not None:
            with contextlib.suppress(OSError):
                self._process.stdin.close()
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


def serve_in_foreground(
    server: ManagedServer, announce: Callable[[float], None], *, delete: bool = True
) -> int:
    """Run ``server`` until Ctrl-C or SIGTERM (exit 0) or until it exits on its own (exit 1).

    ``announce`` gets the start time in seconds once it is ready; at the end the server is
    closed (``delete``: its directory deleted if temporary) or only stopped.
    """

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    # Background jobs of a non-interactive shell inherit an ignored SIGINT; Ctrl-C must work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        started = time.monotonic()
        server.start()
        announce(time.monotonic() - started)
        code = server.wait()
        server._log(f"{server.name} exited on its own with code {code}:\n{server._tail()}")
        return 1
    except KeyboardInterrupt:
        server._log("stopping")
        return 0
    finally:
        if delete:
            server.close()
        else:
            server.stop()


def command_line(
    module: str, description: str
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction[argparse.ArgumentParser]]:
    """The parser of ``python -m <module>`` and its (required) subcommands."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    return parser, parser.add_subparsers(dest="command", required=True)


def add_serve_command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], help_text: str
) -> argparse.ArgumentParser:
    """The ``serve`` subcommand with its ``--port`` option."""
    serve_cmd = commands.add_parser("serve", help=help_text)
    serve_cmd.add_argument("--port", type=int, help="TCP port on 127.0.0.1 (default: a free one)")
    return serve_cmd
