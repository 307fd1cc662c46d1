"""The route table file: the shipped one is valid, and mistakes are named by line and entry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.routes import RouteFileError, RouteSpec, load_routes
from gateway.settings import DEFAULT_ROUTES_FILE
from tests.gateway.test_app import REPO_ROOT, gateway_env
from tools._server import free_port

GOOD_HEAD = """
[upstreams]
svc = "http://127.0.0.1:9001"

[[routes]]
prefix = "/svc"
upstream = "svc"
"""


def test_the_shipped_table_routes_the_four_services():
    table = load_routes(DEFAULT_ROUTES_FILE)
    assert table.mounts() == {
        "health": "/fhir",
        "registry": "/registry",
        "education": "/education",
        "tourism": "/tourism",
    }

    def route(path: str) -> RouteSpec:
        found = table.match(path)
        assert found is not None, path
        return found

    assert route("/fhir/Patient/1").prefix == "/fhir"
    assert route("/fhir/metadata").is_public("GET")
    assert not route("/fhir/Patient").is_public("GET")
    assert route("/tourism/attractions").is_public("GET")
    assert not route("/tourism/attractions").is_public("POST")
    assert route("/education/resources/42").is_public("GET")
    assert not route("/education/enrollments").is_public("GET")
    assert not route("/registry/residents").is_public("GET")
    assert table.match("/fhirx") is None


def test_upstream_urls_can_be_overridden():
    table = load_routes(DEFAULT_ROUTES_FILE, {"health": "http://10.1.2.3:9000/"})
    assert table.upstreams["health"] == "http://10.1.2.3:9000"
    assert table.upstreams["registry"] == "http://127.0.0.1:8002"


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        (
            '\n[[routes]]\nprefix = "/bad/../x"\nupstream = "svc"\n',
            ":9: routes[1] (prefix '/bad/../x'): prefix: String should match pattern",
        ),
        (
            '\n[[routes]]\nprefix = "/other"\nupstream = "nope"\n',
            ":9: routes[1]: upstream 'nope' is not in [upstreams]",
        ),
        (
            '\n[[routes]]\nprefix = "/x"\nupstream = "svc"\nmethods = ["GET", "BREW"]\n',
            ":9: routes[1] (prefix '/x'): methods.1: Input should be",
        ),
        (
            '\n[[routes]]\nprefix = "/x"\nupstream = "svc"\nmethod = ["GET"]\n',
            ":9: routes[1] (prefix '/x'): method: Extra inputs are not permitted",
        ),
        (
            '\n[[routes]]\nprefix = "/svc"\nupstream = "svc"\n',
            ":9: routes[1]: prefix '/svc' is already routed by routes[0]",
        ),
        (
            '\n[[routes]]\nprefix = "/x"\nupstream = "svc"\nauth = "public"\nroles = ["a"]\n',
            "routes[1] (prefix '/x'): Value error, a public route cannot require roles",
        ),
        ("\n[[routes]\n", "not valid TOML"),
    ],
)
def test_mistakes_are_named_by_line_and_entry(tmp_path: Path, extra: str, expected: str):
    path = tmp_path / "routes.toml"
    path.write_text(GOOD_HEAD + extra)
    with pytest.raises(RouteFileError) as caught:
        load_routes(path)
    assert str(path) in str(caught.value)
    assert expected in str(caught.value)


def test_python_m_gateway_refuses_a_bad_route_table(tmp_path: Path):
    path = tmp_path / "routes.toml"
    path.write_text(GOOD_HEAD.replace('upstream = "svc"', 'upstream = "missing"'))
    result = subprocess.run(
        [sys.executable, "-m", "gateway"],
        cwd=REPO_ROOT,
        env=gateway_env(HUIMIN_ROUTES_FILE=str(path), HUIMIN_PORT=str(free_port())),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "invalid route table" in result.stderr
    assert f"{path}:5: routes[0]: upstream 'missing' is not in [upstreams]" in result.stderr
    assert "Traceback" not in result.stderr
