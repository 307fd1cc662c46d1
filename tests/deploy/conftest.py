"""Fixtures of the deployment checks: the helm binary and the chart rendered once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.deploy.chart import PRODUCTION_VALUES, Manifest, render
from tests.fixtures import unavailable
from tools.helm import HelmError, binary_path, build


@pytest.fixture(scope="session")
def helm() -> Path:
    """Helm from the Go module proxy (`make helm`); built here when missing.

    Without Go the chart tests skip, or fail when HUIMIN_REQUIRE_REAL_SERVICES is set (CI).
    """
    if binary_path().is_file():
        return binary_path()
    try:
        return build()
    except HelmError as exc:
        reason = f"helm is unavailable: {exc}"
    unavailable(reason)


@pytest.fixture(scope="session")
def default_manifests(helm: Path) -> list[Manifest]:
    """The chart rendered with its default values."""
    return render(helm)


@pytest.fixture(scope="session")
def production_manifests(helm: Path) -> list[Manifest]:
    """The chart rendered with values-production.yaml."""
    return render(helm, values=[PRODUCTION_VALUES])


@pytest.fixture(params=["default", "production"])
def manifests(
    request: pytest.FixtureRequest,
    default_manifests: list[Manifest],
    production_manifests: list[Manifest],
) -> list[Manifest]:
    """Each of the two renders in turn."""
    return default_manifests if request.param == "default" else production_manifests
