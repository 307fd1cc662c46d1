"""docker/compose.yaml loaded by Docker Compose's own loader (compose-go, built by
tools/compose_check.py): the Compose Specification schema, interpolation and the required
variables, exactly as `docker compose config` would check them, without a Docker daemon."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.deploy.compose import COMPOSE, DOCKER, ENV_EXAMPLE, HUIMIN_PARTS
from tests.fixtures import unavailable
from tools import compose_check


@pytest.fixture(scope="session")
def loader() -> Path:
    """The compose-check binary (`make compose-check`); built here when missing."""
    try:
        return compose_check.build()
    except compose_check.ComposeCheckError as exc:
        reason = f"compose-check is unavailable: {exc}"
    unavailable(reason)


@pytest.fixture(scope="session")
def project(loader: Path) -> dict[str, Any]:
    """The project as Docker Compose resolves it with the variables of .env.example."""
    result = compose_check.check(COMPOSE, ENV_EXAMPLE)
    assert result.returncode == 0, result.stderr
    loaded: dict[str, Any] = json.loads(result.stdout)
    return loaded


def test_the_compose_file_is_valid_for_docker_compose(project: dict[str, Any]) -> None:
    assert set(project["services"]) >= HUIMIN_PARTS
    assert project["networks"]["backend"]["internal"] is True


def test_compose_refuses_to_start_without_the_secrets(loader: Path) -> None:
    result = compose_check.check(COMPOSE)
    assert result.returncode != 0
    for line in ENV_EXAMPLE.read_text().splitlines():
        name, _, value = line.partition("=")
        if value == "replace-me":
            assert f"required variable {name} is missing" in result.stderr, name


def test_every_mounted_file_exists(project: dict[str, Any]) -> None:
    binds = [
        volume
        for service in project["services"].values()
        for volume in service.get("volumes", [])
        if volume["type"] == "bind"
    ]
    assert len(binds) == 3  # the realm, the replica set init, the collector config
    for volume in binds:
        assert Path(volume["source"]).is_file(), volume["source"]
        assert Path(volume["source"]).is_relative_to(DOCKER)
        assert volume["read_only"] is True


def test_browsers_and_services_see_one_issuer(project: dict[str, Any]) -> None:
    keycloak = project["services"]["keycloak"]
    public = keycloak["environment"]["KC_HOSTNAME"]
    aliases = keycloak["networks"]["backend"]["aliases"]
    assert urlsplit(public).hostname in aliases
    assert urlsplit(public).port == 8080  # where Keycloak listens inside the network
    for part in HUIMIN_PARTS:
        issuer = project["services"][part]["environment"]["HUIMIN_OIDC_ISSUER"]
        assert issuer == f"{public}/realms/huimin", part


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        ("  read_only: true\n", "  read_onyl: true\n", "read_onyl"),
        ("condition: service_completed_successfully", "condition: service_done", "condition"),
        ("      keycloak-db:\n        condition", "      keycloak-dbx:\n        condition", "dbx"),
    ],
    ids=["misspelt-key", "bad-condition", "unknown-dependency"],
)
def test_the_loader_catches_a_broken_compose_file(
    loader: Path, tmp_path: Path, old: str, new: str, error: str
) -> None:
    text = COMPOSE.read_text()
    assert old in text
    broken = tmp_path / "compose.yaml"
    broken.write_text(text.replace(old, new, 1))
    result = compose_check.check(broken, ENV_EXAMPLE)
    assert result.returncode != 0
    assert re.search(error, result.stderr), result.stderr


def test_exactly_the_public_ports_are_published(project: dict[str, Any]) -> None:
    published = {
        (name, port["target"], port.get("host_ip", ""))
        for name, service in project["services"].items()
        for port in service.get("ports", [])
    }
    assert published == {
        ("gateway", 8000, ""),
        ("keycloak", 8080, ""),
        ("jaeger", 16686, "127.0.0.1"),
    }
