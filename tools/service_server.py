"""A suite service (`python -m services.<name>`, or the gateway) as a managed server process,
for tests and benchmarks: free loopback port, log file in its directory, ready when
`/healthz` answers 200.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import httpx

from tools._server import HOST, ManagedServer, Probe, die_with_parent

ROOT = Path(__file__).resolve().parent.parent


class ServiceServerError(RuntimeError):
    """The service could not start."""


class ServiceServer(ManagedServer):
    """One Huimin service process; `env` adds HUIMIN_* settings (store URL, issuer...)."""

    name = "service"
    error = ServiceServerError
    log_prefix = "service"
    log_name = "service.log"
    dir_label = "directory"
    address_in_use = "address already in use"

    def __init__(
        self,
        module: str,
        directory: Path,
        env: Mapping[str, str],
        *,
        command: list[str] | None = None,
        start_timeout: float = 60.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(
            directory,
            owns_directory=False,
            port=None,
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )
        self.module = module
        self.env = dict(env)
        # e.g. ["py-spy", "record", "-o", "x.svg", "--"] to run the service under a profiler
        self.command = command or []

    @property
    def pid_of_service(self) -> int | None:
        """The service's own process id (under a `command` wrapper, the wrapper's child)."""
        if self._process is None or not self.running:
            return None
        if not self.command:
            return self.pid
        return next(iter(_children(self.pid)), None)

    @property
    def url(self) -> str:
        """The service's base URL."""
        return f"http://{HOST}:{self.port}"

    def start(self) -> ServiceServer:
        """Start the service on a free port and wait for /healthz."""
        if self.running:
            return self
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            inherited = {k: v for k, v in os.environ.items() if k != "HUIMIN_SERVICE_NAME"}
            env = {
                **inherited,
                "HUIMIN_ENV": "test",
                **self.env,
                "HUIMIN_HOST": HOST,
                "HUIMIN_PORT": str(port),
            }
            return subprocess.Popen(
                [*self.command, sys.executable, "-m", self.module],
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

        self._start_on_free_port(spawn)
        return self

    def stop(self) -> None:
        """Stop the service; under a wrapper (a profiler), the service first, so that the
        wrapper can write what it gathered before it exits too."""
        service = self.pid_of_service
        if self.command and service is not None and self._process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(service, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(self._stop_timeout)
        super().stop()

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        def ready(_seconds_left: float) -> bool:
            try:
                return httpx.get(f"http://{HOST}:{port}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        return contextlib.nullcontext(ready)

    def _readiness_goal(self, port: int) -> str:
        return f"answer /healthz on {HOST}:{port}"


def _children(pid: int) -> Iterator[int]:
    """Child process ids of `pid` (Linux /proc)."""
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            yield from (int(c) for c in (task / "children").read_text().split())
