"""`python -m tools.devissuer` as a real process: production refusal, startup errors, and a
real HTTP server that python-keycloak and the suite's own token validator accept."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
from keycloak import KeycloakOpenID

from shared.auth import JWKSCache, TokenValidator
from tools._server import free_port

REPO_ROOT = Path(__file__).resolve().parents[3]


def issuer_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
    env.update(PYTHONUNBUFFERED="1", **extra)
    return env


def run_main(**env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tools.devissuer"],
        cwd=REPO_ROOT,
        env=issuer_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@contextmanager
def running_issuer(data_dir: Path, port: int) -> Iterator[str]:
    """Run the issuer process until the block ends; yields its base URL."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.devissuer"],
        cwd=REPO_ROOT,
        env=issuer_env(HUIMIN_PORT=str(port), HUIMIN_ISSUER_DATA_DIR=str(data_dir)),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        with httpx.Client(trust_env=False, timeout=1) as client:
            while True:
                assert process.poll() is None, "issuer exited during startup"
                try:
                    if client.get(f"{base}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "issuer did not answer in 30 s"
                time.sleep(0.1)
        yield base
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=20)
        assert process.returncode in (0, -signal.SIGTERM)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_refuses_to_run_in_production(tmp_path):
    result = run_main(HUIMIN_ENV="production", HUIMIN_ISSUER_DATA_DIR=str(tmp_path / "keys"))
    assert result.returncode == 2
    assert "IssuerSettings: invalid configuration" in result.stderr
    assert "dev issuer (tools.devissuer) is for development and tests only" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "keys").exists(), "no keys may be made before the refusal"


def test_missing_realm_files_are_a_clean_startup_error(tmp_path):
    result = run_main(HUIMIN_ISSUER_REALM_DIR=str(tmp_path / "none"))
    assert result.returncode == 2
    assert "devissuer: cannot start: realm directory" in result.stderr
    assert "Traceback" not in result.stderr


async def test_real_server_with_python_keycloak_and_the_suite_validator(tmp_path):
    port = free_port()
    with running_issuer(tmp_path, port) as base:
        issuer = f"{base}/realms/huimin"
        oidc = KeycloakOpenID(server_url=f"{base}/", realm_name="huimin", client_id="huimin-test")
        tokens = await oidc.a_token("citizen", "huimin-dev")
        info: dict[str, object] = await oidc.a_userinfo(tokens["access_token"])  # type: ignore[assignment]
        assert info["preferred_username"] == "citizen"
        assert (await oidc.a_well_known())["issuer"] == issuer
        service = KeycloakOpenID(
            server_url=f"{base}/",
            realm_name="huimin",
            client_id="huimin-health",
            client_secret_key="huimin-dev-secret",
        )
        service_token = (await service.a_token(grant_type="client_credentials"))["access_token"]
        async with httpx.AsyncClient(trust_env=False) as http:
            validator = TokenValidator(JWKSCache(issuer, http), audience="huimin-api")
            person = await validator.validate(tokens["access_token"])
            machine = await validator.validate(service_token)
        assert person.username == "citizen"
        assert person.resident_id == "R-00000001"
        assert person.has_role("citizen")
        assert machine.is_service
        assert machine.client_id == "huimin-health"

    # A restart with the same data directory keeps the keys: old tokens still validate.
    with running_issuer(tmp_path, port) as base:
        async with httpx.AsyncClient(trust_env=False) as http:
            validator = TokenValidator(JWKSCache(issuer, http), audience="huimin-api")
            assert (await validator.validate(tokens["access_token"])).username == "citizen"
