"""The processes a health benchmark runs: the dev issuer (started as the test fixture starts
it), the health service itself (optionally under py-spy), and tokens for the `doctor`.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import httpx

from tests.fixtures.identity import DevIssuer
from tools.keycloak import DEV_PASSWORD, TEST_CLIENT_ID
from tools.service_server import ServiceServer

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


class HealthServer(ServiceServer):
    """The service under benchmark (`module`, health unless a subclass says otherwise) on a
    free loopback port, with the benchmark's store and issuer; with `profile`, under
    `py-spy record` writing collapsed stacks (py-spy's raw format) to that file."""

    name = "health service"
    log_prefix = "health"
    log_name = "health.log"
    module_name = "services.health"  # subclasses run another service the same way

    def __init__(
        self,
        directory: Path,
        store_url: str,
        issuer: str,
        *,
        profile: Path | None = None,
        stop_timeout: float = 30.0,
    ) -> None:
        env = {"HUIMIN_STORE_URL": store_url, "HUIMIN_OIDC_ISSUER": issuer, "HUIMIN_ENV": "dev"}
        # Opening a large store can take minutes (index builds on FerretDB).
        super().__init__(
            self.module_name,
            directory,
            {**env, **self.extra_env()},
            command=_py_spy(profile) if profile is not None else None,
            start_timeout=900.0,
            stop_timeout=stop_timeout,
        )
        self.profile = profile

    @property
    def base_url(self) -> str:
        """The service's base URL (the FHIR base for health)."""
        return self.url

    def extra_env(self) -> dict[str, str]:
        """Settings a subclass adds to the service's environment."""
        return {}


def _py_spy(output: Path) -> list[str]:
    py_spy = str(Path(sys.executable).with_name("py-spy"))
    # --nonblocking: sample without pausing the server, so it runs at full speed.
    return [
        py_spy,
        "record",
        "--nonblocking",
        "--rate=250",
        "--format=raw",
        f"--output={output}",
        "--",
    ]
