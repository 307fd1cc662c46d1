"""The processes a health benchmark runs: the dev issuer (started as the test fixture starts
it), the health service itself (optionally under py-spy), and tokens for the `doctor`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

import httpx

from tests.fixtures.identity import DevIssuer
from tools._server import HOST, ManagedServer, Probe, die_with_parent
from tools.keycloak import DEV_PASSWORD, TEST_CLIENT_ID

__all__ = ["DevIssuer", "HealthServer", "TokenSource", "service_available"]

ROOT = Path(__file__).resolve().parents[2]
SCOPE = "user/*.cruds"
USER = "doctor"


def service_available() -> bool:
    """Whether the health service's entry point exists yet."""
    return (ROOT / "services" / "health" / "__main__.py").is_file()


class TokenSource:
    """Password-grant access tokens for the dev clinician, renewed before they expire."""

    def __init__(self, issuer: str) -> None:
        self.issuer = issuer
        self._token = ""
        self._expires = 0.0

    def token(self, *, valid_for: float = 60.0) -> str:
        """A token valid for at least `valid_for` more seconds."""
        if time.monotonic() + valid_for >= self._expires:
            response = httpx.post(
                f"{self.issuer}/protocol/openid-connect/token",
                data={
                    "grant_type": "password",
                    "client_id": TEST_CLIENT_ID,
                    "username": USER,
                    "password": DEV_PASSWORD,
                    "scope": SCOPE,
                },
                timeout=30.0,
            )
            if response.status_code != 200:
                raise RuntimeError(f"token request refused: {response.text}")
            body = response.json()
            self._token = str(body["access_token"])
            self._expires = time.monotonic() + float(body.get("expires_in", 300))
        if time.monotonic() + valid_for >= self._expires:
            raise RuntimeError(f"the issuer's tokens live less than {valid_for:.0f}s")
        return self._token


class HealthServerError(RuntimeError):
    """The health service could not start."""


class HealthServer(ManagedServer):
    """`python -m services.health` on a free loopback port; with `profile`, under
    `py-spy record` writing collapsed stacks (py-spy's raw format) to that file."""

    name = "health service"
    error = HealthServerError
    log_prefix = "health"
    log_name = "health.log"
    dir_label = "directory"
    address_in_use = "address already in use"
    module = "services.health"  # subclasses run another service the same way

    def __init__(
        self, directory: Path, store_url: str, issuer: str, *, profile: Path | None = None
    ) -> None:
        # Opening a large store can take minutes (index builds on FerretDB).
        super().__init__(
            directory, owns_directory=False, port=None, start_timeout=900.0, stop_timeout=30.0
        )
        self.store_url = store_url
        self.issuer = issuer
        self.profile = profile

    @property
    def base_url(self) -> str:
        """The FHIR base URL."""
        return f"http://{HOST}:{self.port}"

    def command(self) -> list[str]:
        """The command line: the service, or py-spy running it."""
        service = [sys.executable, "-m", self.module]
        if self.profile is None:
            return service
        py_spy = str(Path(sys.executable).with_name("py-spy"))
        # --nonblocking: sample without pausing the server, so it runs at full speed.
        return [
            py_spy,
            "record",
            "--nonblocking",
            "--rate=250",
            "--format=raw",
            f"--output={self.profile}",
            "--",
            *service,
        ]

    def start(self) -> HealthServer:
        """Start the service and wait for /healthz."""
        if self.running:
            return self
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            env = {k: v for k, v in os.environ.items() if k != "HUIMIN_SERVICE_NAME"}
            env |= {
                "HUIMIN_PORT": str(port),
                "HUIMIN_HOST": HOST,
                "HUIMIN_STORE_URL": self.store_url,
                "HUIMIN_OIDC_ISSUER": self.issuer,
                "HUIMIN_ENV": "dev",
            }
            env |= self.extra_env()
            return subprocess.Popen(
                self.command(),
                cwd=ROOT,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

        self._start_on_free_port(spawn)
        return self

    def extra_env(self) -> dict[str, str]:
        """Settings a subclass adds to the service's environment."""
        return {}

    def stop(self) -> None:
        """Stop the service; under py-spy, stop the service first so py-spy writes its file."""
        if self.profile is not None and self._process is not None and self.running:
            for child in _children(self.pid):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(child, signal.SIGTERM)
            # py-spy writes the profile once the service has exited, then exits itself.
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
