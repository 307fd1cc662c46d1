"""A suite service (`python -m services.<name>`, or the gateway) as a managed server process,
for tests and benchmarks: free loopback port, log file in its directory, ready when
`/healthz` answers 200.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import httpx

from tools._server import HOST, ManagedServer, Probe

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
    ) -> None:
        super().__init__(
            directory,
            owns_directory=False,
            port=None,
            start_timeout=start_timeout,
            stop_timeout=15.0,
        )
        self.module = module
        self.env = dict(env)
        # e.g. ["py-spy", "record", "-o", "x.svg", "--"] to run the service under a profiler
        self.command = command or []

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
            env = {
                **os.environ,
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
            )

        self._start_on_free_port(spawn)
        return self

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        def ready(_seconds_left: float) -> bool:
            try:
                return httpx.get(f"http://{HOST}:{port}/healthz", timeout=1.0).status_code == 200
            except httpx.HTTPError:
                return False

        return contextlib.nullcontext(ready)

    def _readiness_goal(self, port: int) -> str:
        return f"answer /healthz on {HOST}:{port}"
