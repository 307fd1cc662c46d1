"""Static checks of docker/compose.yaml (no Docker daemon is needed or used).

`compose_problems` returns what is wrong with a parsed compose file, one line each; the
tests assert an empty list for the real file and a non-empty one for copies broken on
purpose.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

REPO = Path(__file__).resolve().parents[2]
DOCKER = REPO / "docker"
COMPOSE = DOCKER / "compose.yaml"
ENV_EXAMPLE = DOCKER / ".env.example"

# The only ports reachable from outside the host: service -> its container port.
PUBLISHED = {"gateway": 8000, "keycloak": 8080, "jaeger": 16686}
# Images without a shell or an HTTP client (distroless), so no health check can run in
# them; nothing may wait for them to be healthy. Spans are exported in the background and
# dropped when the collector is down, so no request depends on them.
NO_HEALTHCHECK = {"otel-collector", "jaeger"}
DATABASE_PORTS = {27017, 6379, 5432}
CONDITIONS = {"service_healthy", "service_completed_successfully", "service_started"}
HUIMIN_PARTS = {"gateway", "health", "registry", "education", "tourism"}
SECRET_NAME = re.compile(r"PASSWORD|SECRET|_KEY$")
VARIABLE = re.compile(r"\$\{([A-Z][A-Z0-9_]*)(:?[-?][^}]*)?\}")

Compose = dict[str, Any]


def load() -> Compose:
    """docker/compose.yaml, parsed (YAML anchors and merge keys resolved)."""
    doc: Compose = yaml.safe_load(COMPOSE.read_text())
    return doc


def is_one_shot(service: Mapping[str, Any]) -> bool:
    """A container that runs to completion (restart "no"), like the replica set init."""
    return str(service.get("restart", "no")) == "no"


def compose_problems(doc: Compose) -> list[str]:
    """Every rule of the compose file this project keeps, as a list of violations."""
    problems: list[str] = []
    services: dict[str, Any] = doc["services"]
    for name, service in services.items():
        problems += _image_problems(name, service)
        problems += _health_problems(name, service)
        problems += _port_problems(name, service)
        problems += _dependency_problems(name, service, services)
        problems += _secret_problems(name, service)
        if name in HUIMIN_PARTS:
            problems += _part_problems(name, service, services)
    return problems


def _image_problems(name: str, service: Mapping[str, Any]) -> list[str]:
    image = str(service.get("image", ""))
    if name in HUIMIN_PARTS:
        return []  # built here from docker/Dockerfile, whose bases are pinned
    tag = image.rpartition(":")[2] if ":" in image else ""
    if not re.match(r"^\d+\.\d+", tag):  # PostgreSQL releases are major.minor
        return [f"{name}: image {image!r} is not pinned to a release"]
    return []


def _health_problems(name: str, service: Mapping[str, Any]) -> list[str]:
    if is_one_shot(service):
        return []
    check = service.get("healthcheck") or {}
    if name in NO_HEALTHCHECK:
        return [f"{name}: has a health check but is listed as unable to"] if check else []
    if not check.get("test") or check.get("disable"):
        return [f"{name}: long-running service without a health check"]
    return []


def _port_problems(name: str, service: Mapping[str, Any]) -> list[str]:
    problems = []
    for mapping in service.get("ports", []):
        container_port = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
        if container_port in DATABASE_PORTS:
            problems.append(f"{name}: publishes database port {container_port}")
        if PUBLISHED.get(name) != container_port:
            problems.append(f"{name}: publishes {mapping}, not an allowed public port")
    return problems


def _dependency_problems(
    name: str, service: Mapping[str, Any], services: Mapping[str, Any]
) -> list[str]:
    problems = []
    depends = service.get("depends_on", {})
    if isinstance(depends, list):
        return [f"{name}: depends_on without conditions (short form)"]
    for target, spec in depends.items():
        condition = (spec or {}).get("condition")
        if condition not in CONDITIONS:
            problems.append(f"{name}: depends on {target} without a condition")
        elif target not in services:
            problems.append(f"{name}: depends on unknown service {target}")
        elif condition == "service_healthy" and not services[target].get("healthcheck"):
            problems.append(f"{name}: waits for {target} to be healthy, which it cannot be")
        elif condition == "service_completed_successfully" and not is_one_shot(services[target]):
            problems.append(f"{name}: waits for long-running {target} to complete")
    return problems


def _secret_problems(name: str, service: Mapping[str, Any]) -> list[str]:
    problems = []
    environment = service.get("environment") or {}
    if isinstance(environment, list):
        return [f"{name}: environment as a list (use a map)"]
    for key, value in environment.items():
        text = str(value)
        if SECRET_NAME.search(key) and not re.search(r"\$\{[A-Z0-9_]+:\?", text):
            problems.append(f"{name}: {key} is not a required variable from the environment")
        if re.search(r"://[^/\s:@]*:[^$/\s@][^/\s@]*@", text):
            problems.append(f"{name}: {key} embeds a literal password")
    return problems


def _part_problems(name: str, service: Mapping[str, Any], services: Mapping[str, Any]) -> list[str]:
    problems = []
    hardening = {
        "read_only": service.get("read_only") is True,
        "cap_drop ALL": service.get("cap_drop") == ["ALL"],
        "no-new-privileges": "no-new-privileges:true" in service.get("security_opt", []),
    }
    problems += [f"{name}: not {what}" for what, ok in hardening.items() if not ok]
    if service.get("image") != services["gateway"].get("image"):
        problems.append(f"{name}: not the one Huimin image")
    env = service.get("environment", {})
    if env.get("HUIMIN_ENV") != "production":
        problems.append(f"{name}: HUIMIN_ENV is not production")
    for key in ("OTEL_EXPORTER_OTLP_ENDPOINT", "HUIMIN_REGISTRY_EVENTS_URL"):
        if key in env and urlsplit(env[key]).hostname not in services:
            problems.append(f"{name}: {key} names no compose service")
    store = env.get("HUIMIN_STORE_URL")
    if store is not None and "replicaSet=rs0" not in store:
        problems.append(f"{name}: the store URL does not name the replica set")
    return problems


def upstream_urls(doc: Compose) -> dict[str, str]:
    """The gateway's HUIMIN_UPSTREAM_URLS."""
    value = doc["services"]["gateway"]["environment"]["HUIMIN_UPSTREAM_URLS"]
    parsed: dict[str, str] = json.loads(value)
    return parsed


def variables(text: str) -> dict[str, str]:
    """Variables interpolated in a compose file: name -> its modifier (":?...", ":-...", "")."""
    return {m.group(1): m.group(2) or "" for m in VARIABLE.finditer(text)}


def example_names() -> set[str]:
    """The variables docker/.env.example sets."""
    names = set()
    for line in ENV_EXAMPLE.read_text().splitlines():
        match = re.match(r"^([A-Z][A-Z0-9_]*)=", line)
        if match:
            names.add(match.group(1))
    return names
