"""Every object the chart renders is valid against the Kubernetes API schema (strict: an
unknown or misspelt field fails), for the oldest Kubernetes the chart supports
(Chart.yaml kubeVersion) and a current one. Offline: the schemas ship in kubernetes-validate."""

from __future__ import annotations

import copy
from pathlib import Path

import kubernetes_validate
import pytest

from tests.deploy.chart import CHART_SECRETS, Manifest, of_kind, render

KUBERNETES = ["1.25.0", "1.34.0"]


def schema_problems(manifests: list[Manifest], version: str) -> list[str]:
    """The objects that the Kubernetes API of `version` would refuse, with the reason."""
    problems = []
    for manifest in manifests:
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            name = f"{manifest['kind']}/{manifest['metadata']['name']}"
            problems.append(f"{name}: {exc.message}")
    return problems


@pytest.mark.parametrize("version", KUBERNETES)
def test_every_rendered_object_is_valid(manifests: list[Manifest], version: str) -> None:
    assert schema_problems(manifests, version) == []


@pytest.mark.parametrize("version", KUBERNETES)
def test_the_chart_secret_is_valid(helm: Path, version: str) -> None:
    with_secret = render(helm, sets=CHART_SECRETS)
    assert of_kind(with_secret, "Secret")
    assert schema_problems(with_secret, version) == []


def test_a_misspelt_field_is_refused(default_manifests: list[Manifest]) -> None:
    deployment = copy.deepcopy(of_kind(default_manifests, "Deployment")[0])
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    container["livenesProbe"] = container.pop("livenessProbe")
    (problem,) = schema_problems([deployment], KUBERNETES[-1])
    assert "livenesProbe" in problem
