"""Every HUIMIN_* variable the deployments set is a real setting of the part it is given to.

Settings ignore unknown variables (`extra="ignore"`), so a misspelt name in the chart or the
compose file would be dropped silently and the part would run on its default.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from shared.settings import Settings
from tests.deploy.chart import component, containers, of_kind, render
from tests.deploy.compose import HUIMIN_PARTS, load


def settings_class(part: str) -> type[Settings]:
    """The settings class of a part (the shared one for a part not built yet)."""
    candidates = (
        ["gateway.settings", "gateway.app"] if part == "gateway" else [f"services.{part}.settings"]
    )
    for name in candidates:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            continue
        for value in vars(module).values():
            if isinstance(value, type) and issubclass(value, Settings) and value is not Settings:
                return value
    return Settings


def known_variables(part: str) -> set[str]:
    """The HUIMIN_* names a part reads."""
    return {f"HUIMIN_{field.upper()}" for field in settings_class(part).model_fields}


def unknown(part: str, names: set[str]) -> set[str]:
    """The HUIMIN_* names among `names` that the part does not read."""
    huimin = {name for name in names if name.startswith("HUIMIN_")}
    return huimin - known_variables(part)


@pytest.mark.parametrize("part", sorted(HUIMIN_PARTS))
def test_compose_sets_only_real_settings(part: str) -> None:
    assert unknown(part, set(load()["services"][part]["environment"])) == set()


def test_the_chart_sets_only_real_settings(helm: Path) -> None:
    sets = {"oidc.keycloakAdminUrl": "http://keycloak:8080"}  # renders every optional one
    for deployment in of_kind(render(helm, sets=sets), "Deployment"):
        names = {env["name"] for c in containers(deployment) for env in c["env"]}
        assert unknown(component(deployment), names) == set(), component(deployment)


def test_a_misspelt_setting_is_caught() -> None:
    assert unknown("health", {"HUIMIN_REGISTRY_EVENT_URL"}) == {"HUIMIN_REGISTRY_EVENT_URL"}
    assert unknown("health", {"HUIMIN_REGISTRY_EVENTS_URL", "MONGODB_PASSWORD"}) == set()
