"""docker/Dockerfile and what it must agree with: the ignore file, the compose file, the
chart's security context, the Makefile's uv, and the health check script it ships."""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import yaml

from tests.deploy.compose import HUIMIN_PARTS, load
from tests.deploy.dockerfile_checks import (
    DOCKERFILE,
    REPO,
    copied_sources,
    dockerfile_problems,
    ignore_patterns,
    stages,
)

TEXT = DOCKERFILE.read_text()
# Modules the image runs that are being built on other branches right now (issue 7, the
# tourism service); the deployment files are ready for them.
IN_PROGRESS = {"services.tourism"}


def test_the_dockerfile_keeps_every_rule() -> None:
    assert dockerfile_problems(TEXT) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("USER 10001:10001\n", "", "runs as root"),
        ("USER 10001:10001\n", "USER huimin\n", "numeric uid"),
        ("python:3.11.14-slim-bookworm", "python:latest", "not pinned"),
        ("python:3.11.14-slim-bookworm", "python:3.11-slim", "not pinned"),
        ("HEALTHCHECK --interval", "# HEALTHCHECK --interval", "no HEALTHCHECK"),
        ('ENTRYPOINT ["python", "-m"]', "ENTRYPOINT python -m", "exec-form"),
        ("uv sync --locked --no-dev --no-editable", "uv sync --no-dev", "from the lock"),
        ("EXPOSE 8000\n", "EXPOSE 8000\nRUN pip install debugpy\n", "RUN after USER"),
    ],
)
def test_the_checks_catch_a_broken_dockerfile(old: str, new: str, problem: str) -> None:
    assert old in TEXT
    broken = TEXT.replace(old, new)
    assert any(problem in p for p in dockerfile_problems(broken)), dockerfile_problems(broken)


def test_a_single_stage_image_is_caught() -> None:
    runtime_only = TEXT[TEXT.index("ARG PYTHON_IMAGE") :]
    runtime_only = (
        runtime_only[: runtime_only.index("FROM ${PYTHON_IMAGE} AS build")]
        + (TEXT[TEXT.index("FROM ${PYTHON_IMAGE} AS runtime") :])
    )
    assert len(stages(runtime_only)) == 1
    assert any("multi-stage" in p for p in dockerfile_problems(runtime_only))


def test_both_stages_share_one_base_image() -> None:
    # The venv's interpreter links must resolve in the runtime stage.
    assert len({stage.image for stage in stages(TEXT)}) == 1


def test_the_uv_of_the_image_is_the_makefiles() -> None:
    makefile = (REPO / "Makefile").read_text()
    wanted = re.search(r"^UV_VERSION := (\S+)$", makefile, re.MULTILINE)
    assert wanted
    assert f"ARG UV_VERSION={wanted.group(1)}\n" in TEXT


def test_the_image_user_is_the_charts() -> None:
    values = yaml.safe_load((REPO / "charts" / "huimin" / "values.yaml").read_text())
    uid, gid = re.findall(r"^USER (\d+):(\d+)$", TEXT, re.MULTILINE)[-1]
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_the_dockerignore_is_an_allow_list_covering_every_copy() -> None:
    patterns = ignore_patterns()
    assert patterns[0] == "*"  # everything out, then only what the image is built from
    included = [p[1:].rstrip("/") for p in patterns if p.startswith("!")]
    for source in copied_sources(TEXT):
        assert source.rstrip("/") in included, source
        assert (REPO / source).exists(), source
    for private in (".venv", "var", ".git", ".tools", "docker/.env"):
        assert not any(private == p or private.startswith(p + "/") for p in included), private


def test_compose_runs_the_script_the_image_ships() -> None:
    destination = re.search(r"^COPY docker/healthcheck.py (\S+)$", TEXT, re.MULTILINE)
    assert destination
    test = load()["services"]["health"]["healthcheck"]["test"]
    assert test == ["CMD", "python", destination.group(1)]
    assert f'CMD ["python", "{destination.group(1)}"]' in TEXT


def test_every_module_the_deployments_run_exists() -> None:
    commands = {load()["services"][part]["command"][0] for part in HUIMIN_PARTS}
    assert commands == {"gateway", *(f"services.{p}" for p in HUIMIN_PARTS - {"gateway"})}
    for module in commands - IN_PROGRESS:
        assert importlib.util.find_spec(f"{module}.__main__") is not None, module


class _Readyz(BaseHTTPRequestHandler):
    status = 200

    def do_GET(self) -> None:
        self.send_response(self.status if self.path == "/readyz" else 404)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def readyz_server() -> Iterator[ThreadingHTTPServer]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Readyz)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def _healthcheck(port: int) -> int:
    script = REPO / "docker" / "healthcheck.py"
    env = {"HUIMIN_PORT": str(port), "PATH": "/usr/bin:/bin"}
    return subprocess.run(
        [sys.executable, str(script)], env=env, check=False, timeout=30
    ).returncode


def test_the_health_check_passes_when_ready(readyz_server: ThreadingHTTPServer) -> None:
    _Readyz.status = 200
    assert _healthcheck(readyz_server.server_address[1]) == 0


def test_the_health_check_fails_when_not_ready(readyz_server: ThreadingHTTPServer) -> None:
    _Readyz.status = 503
    try:
        assert _healthcheck(readyz_server.server_address[1]) == 1
    finally:
        _Readyz.status = 200


def test_the_health_check_fails_when_nothing_listens(readyz_server: ThreadingHTTPServer) -> None:
    port = readyz_server.server_address[1]
    readyz_server.shutdown()
    readyz_server.server_close()
    assert _healthcheck(port) == 1
