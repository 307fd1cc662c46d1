"""Render charts/huimin with the cached helm and inspect the manifests.

The `*_problems` functions return what is wrong with a set of manifests, one line each; the
tests assert an empty list for the chart's real values and a non-empty one for values
broken on purpose, so every check is shown to be able to fail.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "huimin"
PRODUCTION_VALUES = CHART / "values-production.yaml"
RELEASE = "huimin"
KUBE_VERSION = "1.31.0"

Manifest = dict[str, Any]

PARTS = ("gateway", "health", "registry", "education", "tourism")
# Recognisable secret values: each may show up only base64-encoded, in the chart's Secret.
FAKE = {
    "secrets.mongodbPassword": "fake-mongo-5f1c9e2a7d",
    "secrets.redisPassword": "fake-redis-0b8e61d4c3",
    **{f"secrets.clientSecrets.{part}": f"fake-client-{part}-93ad0c" for part in PARTS},
}
# Values under which the chart renders its own Secret from FAKE.
CHART_SECRETS = {"secrets.existingSecret": "", **FAKE}


class RenderError(Exception):
    """`helm template` refused the values; the message is helm's."""


def helm_run(helm: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run helm with `args`, capturing its output."""
    return subprocess.run(
        [str(helm), *args], capture_output=True, text=True, check=False, timeout=120
    )


def render(
    helm: Path,
    *,
    values: Sequence[Path] = (),
    sets: Mapping[str, str] = {},
) -> list[Manifest]:
    """The manifests of `helm template` with these values files and --set values."""
    args = ["template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION]
    for path in values:
        args += ["-f", str(path)]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = helm_run(helm, *args)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def raw_render(helm: Path, *, sets: Mapping[str, str] = {}) -> str:
    """The text of `helm template` (to search for values anywhere in it)."""
    args = ["template", RELEASE, str(CHART), "--kube-version", KUBE_VERSION]
    for key, value in sets.items():
        args += ["--set", f"{key}={value}"]
    result = helm_run(helm, *args)
    if result.returncode != 0:
        raise RenderError(result.stderr.strip())
    return result.stdout


def of_kind(manifests: Sequence[Manifest], kind: str) -> list[Manifest]:
    """The manifests of one kind."""
    return [m for m in manifests if m.get("kind") == kind]


def component(manifest: Manifest) -> str:
    """The part (gateway, health...) a manifest belongs to."""
    labels = manifest["metadata"].get("labels", {})
    return str(labels.get("app.kubernetes.io/component", ""))


def pod_spec(deployment: Manifest) -> dict[str, Any]:
    """The pod template's spec of a Deployment."""
    spec: dict[str, Any] = deployment["spec"]["template"]["spec"]
    return spec


def containers(deployment: Manifest) -> Iterator[dict[str, Any]]:
    """Every container of a Deployment, init containers included."""
    spec = pod_spec(deployment)
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


# -- checks ------------------------------------------------------------------------------------


def container_problems(manifests: Sequence[Manifest]) -> list[str]:
    """Containers without probes, resources or the hardened security context."""
    problems: list[str] = []
    for deployment in of_kind(manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        pod = pod_spec(deployment)
        pod_ctx = pod.get("securityContext", {})
        if pod_ctx.get("runAsNonRoot") is not True:
            problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
        if pod_ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
            problems.append(f"{name}: pod seccompProfile is not RuntimeDefault")
        if pod.get("automountServiceAccountToken") is not False:
            problems.append(f"{name}: the service account token is mounted")
        tmp_volumes = {v["name"] for v in pod.get("volumes", []) if "emptyDir" in v}
        for container in containers(deployment):
            where = f"{name}/{container['name']}"
            problems += _probe_problems(where, container)
            problems += _resource_problems(where, container)
            problems += _context_problems(where, container.get("securityContext", {}))
            mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
            if mounts.get("/tmp") not in tmp_volumes:
                problems.append(f"{where}: /tmp is not a writable emptyDir")
    return problems


def _probe_problems(where: str, container: Mapping[str, Any]) -> list[str]:
    problems = []
    expected = {
        "startupProbe": "/healthz",
        "livenessProbe": "/healthz",
        "readinessProbe": "/readyz",
    }
    for probe, path in expected.items():
        got = container.get(probe, {}).get("httpGet", {}).get("path")
        if got != path:
            problems.append(f"{where}: {probe} is not an HTTP probe of {path} (got {got!r})")
    return problems


def _resource_problems(where: str, container: Mapping[str, Any]) -> list[str]:
    problems = []
    resources = container.get("resources") or {}
    for section in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if not (resources.get(section) or {}).get(resource):
                problems.append(f"{where}: no {section}.{resource}")
    return problems


def _context_problems(where: str, ctx: Mapping[str, Any]) -> list[str]:
    problems = []
    wanted = {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    for key, value in wanted.items():
        if ctx.get(key) is not value:
            problems.append(f"{where}: securityContext.{key} is not {value}")
    if ctx.get("privileged"):
        problems.append(f"{where}: privileged")
    if ctx.get("capabilities", {}).get("drop") != ["ALL"]:
        problems.append(f"{where}: capabilities do not drop ALL")
    if ctx.get("capabilities", {}).get("add"):
        problems.append(f"{where}: capabilities are added")
    if ctx.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    return problems


def wanted_replicas(deployment: Manifest, hpas: Mapping[str, Manifest]) -> int:
    """The fewest pods a Deployment runs: its replicas, or its autoscaler's minimum."""
    hpa = hpas.get(deployment["metadata"]["name"])
    if hpa is not None:
        return int(hpa["spec"].get("minReplicas", 1))
    return int(deployment["spec"].get("replicas", 1))


def policy_problems(manifests: Sequence[Manifest]) -> list[str]:
    """Deployments without their NetworkPolicy, or without a PDB while running > 1 pod."""
    problems: list[str] = []
    hpas = {
        h["spec"]["scaleTargetRef"]["name"]: h
        for h in of_kind(manifests, "HorizontalPodAutoscaler")
    }
    pdbs = of_kind(manifests, "PodDisruptionBudget")
    policies = of_kind(manifests, "NetworkPolicy")
    for deployment in of_kind(manifests, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        selecting = [p for p in policies if _selects(p["spec"]["podSelector"], labels)]
        own = [p for p in selecting if component(p) == component(deployment)]
        if not own:
            problems.append(f"{name}: no NetworkPolicy of its own")
        if not any(p["spec"].get("policyTypes") == ["Ingress", "Egress"] for p in own):
            problems.append(f"{name}: its NetworkPolicy does not govern ingress and egress")
        covered = [p for p in pdbs if _selects(p["spec"]["selector"], labels)]
        if wanted_replicas(deployment, hpas) > 1 and not covered:
            problems.append(f"{name}: more than one replica but no PodDisruptionBudget")
        if wanted_replicas(deployment, hpas) <= 1 and covered:
            problems.append(f"{name}: a PodDisruptionBudget on a single replica blocks drains")
    return problems


def _selects(selector: Mapping[str, Any], labels: Mapping[str, str]) -> bool:
    match = selector.get("matchLabels", {})
    return all(labels.get(key) == value for key, value in match.items())
