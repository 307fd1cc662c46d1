"""charts/huimin: lint, render, and the rules every rendered object must follow."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.deploy.chart import (
    CHART,
    PRODUCTION_VALUES,
    Manifest,
    component,
    container_problems,
    helm_run,
    of_kind,
    pod_spec,
    policy_problems,
    render,
)

PARTS = {"gateway", "health", "registry", "education", "tourism"}


@pytest.mark.parametrize(
    "values", [[], ["-f", str(PRODUCTION_VALUES)]], ids=["default", "production"]
)
def test_helm_lint_is_clean(helm: Path, values: list[str]) -> None:
    result = helm_run(helm, "lint", "--strict", str(CHART), *values)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 chart(s) failed" in result.stdout


def test_every_part_is_rendered_from_the_same_template(manifests: list[Manifest]) -> None:
    for kind in ("Deployment", "Service", "ServiceAccount", "NetworkPolicy"):
        assert {component(m) for m in of_kind(manifests, kind) if component(m)} == PARTS, kind
    # One template: the Deployments differ only in the part's values (name, module, sizes).
    shapes = {
        json.dumps(sorted(pod_spec(d)["containers"][0]), sort_keys=True)
        for d in of_kind(manifests, "Deployment")
    }
    assert len(shapes) == 1, shapes


def test_no_template_is_copied_per_part() -> None:
    texts = {p.name: p.read_text() for p in (CHART / "templates").iterdir() if p.is_file()}
    per_part = ("Deployment", "Service", "ServiceAccount", "HorizontalPodAutoscaler")
    for kind in (*per_part, "PodDisruptionBudget"):
        defining = [name for name, text in texts.items() if f"kind: {kind}\n" in text]
        assert defining == ["_service.tpl"], (kind, defining)
    callers = [name for name, text in texts.items() if 'include "huimin.service"' in text]
    assert callers == ["services.yaml"]


def test_every_container_has_probes_resources_and_a_hardened_context(
    manifests: list[Manifest],
) -> None:
    assert container_problems(manifests) == []


def test_every_part_has_a_network_policy_and_a_pdb_when_replicated(
    manifests: list[Manifest],
) -> None:
    assert policy_problems(manifests) == []


def test_the_checks_catch_a_weakened_container(helm: Path) -> None:
    broken = render(
        helm,
        sets={
            "securityContext.readOnlyRootFilesystem": "false",
            "securityContext.allowPrivilegeEscalation": "true",
            "services.health.resources.limits.memory": "",
        },
    )
    problems = container_problems(broken)
    assert any("readOnlyRootFilesystem" in p for p in problems)
    assert any("allowPrivilegeEscalation" in p for p in problems)
    assert any("huimin-health/health: no limits.memory" in p for p in problems)


def test_the_checks_catch_missing_policies(helm: Path) -> None:
    broken = render(helm, sets={"networkPolicies.create": "false"})
    problems = policy_problems(broken)
    assert len([p for p in problems if "no NetworkPolicy" in p]) == len(PARTS)


def test_a_pdb_exactly_when_more_than_one_pod_runs(helm: Path) -> None:
    single = render(helm, sets={"services.tourism.replicas": "1"})
    pdbs = {component(p) for p in of_kind(single, "PodDisruptionBudget")}
    assert "tourism" not in pdbs
    assert "health" in pdbs
    assert policy_problems(single) == []
    scaled = render(
        helm,
        sets={
            "services.tourism.replicas": "1",
            "services.tourism.autoscaling.enabled": "true",
            "services.tourism.autoscaling.minReplicas": "3",
        },
    )
    assert "tourism" in {component(p) for p in of_kind(scaled, "PodDisruptionBudget")}
    deployment = next(d for d in of_kind(scaled, "Deployment") if component(d) == "tourism")
    assert "replicas" not in deployment["spec"]  # the autoscaler owns the count


def test_deny_all_by_default(manifests: list[Manifest]) -> None:
    deny = [p for p in of_kind(manifests, "NetworkPolicy") if not component(p)]
    assert len(deny) == 1
    spec = deny[0]["spec"]
    assert spec["policyTypes"] == ["Ingress", "Egress"]
    assert "ingress" not in spec
    assert "egress" not in spec
    assert spec["podSelector"]["matchLabels"]["app.kubernetes.io/instance"] == "huimin"


def _allowed_from(policy: Manifest) -> set[str]:
    peers = [peer for rule in policy["spec"].get("ingress", []) for peer in rule["from"]]
    labels = [p.get("podSelector", {}).get("matchLabels", {}) for p in peers]
    return {
        lab["app.kubernetes.io/component"]
        for lab in labels
        if lab.get("app.kubernetes.io/component")
    }


def test_only_the_gateway_reaches_the_services(manifests: list[Manifest]) -> None:
    policies = {component(p): p for p in of_kind(manifests, "NetworkPolicy") if component(p)}
    for part in PARTS - {"gateway", "registry"}:
        assert _allowed_from(policies[part]) == {"gateway"}, part
    # The registry also serves its event feed to the services that consume it.
    assert _allowed_from(policies["registry"]) == {"gateway", "health", "education"}
    # The gateway admits the ingress controller only (plus metrics scrapers), no part.
    assert _allowed_from(policies["gateway"]) == set()
    sources = [peer for rule in policies["gateway"]["spec"]["ingress"] for peer in rule["from"]]
    assert any(
        p.get("namespaceSelector", {}).get("matchLabels", {}).get("kubernetes.io/metadata.name")
        == "ingress-nginx"
        for p in sources
    )


def _egress_ports(policy: Manifest) -> set[int]:
    return {port["port"] for rule in policy["spec"]["egress"] for port in rule.get("ports", [])}


def test_egress_is_what_each_part_needs(manifests: list[Manifest]) -> None:
    policies = {component(p): p for p in of_kind(manifests, "NetworkPolicy") if component(p)}
    for part, policy in policies.items():
        ports = _egress_ports(policy)
        assert {53, 4318} <= ports, part  # DNS, OTel
        assert 443 in ports or 8080 in ports, part  # Keycloak
        assert (27017 in ports) == (part != "gateway"), part  # only parts with a database
        assert (6379 in ports) == (part == "gateway"), part  # Redis: the gateway's limits


def test_the_ingress_leads_to_the_gateway_only(manifests: list[Manifest]) -> None:
    (ingress,) = of_kind(manifests, "Ingress")
    backends = {
        path["backend"]["service"]["name"]
        for rule in ingress["spec"]["rules"]
        for path in rule["http"]["paths"]
    }
    assert backends == {"huimin-gateway"}


def test_the_gateway_routes_to_the_rendered_services(manifests: list[Manifest]) -> None:
    gateway = next(d for d in of_kind(manifests, "Deployment") if component(d) == "gateway")
    env = {e["name"]: e for e in pod_spec(gateway)["containers"][0]["env"]}
    upstreams = json.loads(env["HUIMIN_UPSTREAM_URLS"]["value"])
    services = {s["metadata"]["name"]: s for s in of_kind(manifests, "Service")}
    for part, url in upstreams.items():
        match = re.fullmatch(r"http://([a-z0-9-]+):(\d+)", url)
        assert match, url
        service = services[match.group(1)]
        assert component(service) == part
        assert int(match.group(2)) == service["spec"]["ports"][0]["port"]
    assert set(upstreams) == PARTS - {"gateway"}


def test_each_part_runs_its_own_module(manifests: list[Manifest]) -> None:
    modules = {
        component(d): pod_spec(d)["containers"][0]["args"] for d in of_kind(manifests, "Deployment")
    }
    assert modules == {
        "gateway": ["gateway"],
        "health": ["services.health"],
        "registry": ["services.registry"],
        "education": ["services.education"],
        "tourism": ["services.tourism"],
    }


def test_production_values_scale_out(production_manifests: list[Manifest]) -> None:
    hpas = {component(h) for h in of_kind(production_manifests, "HorizontalPodAutoscaler")}
    assert {"gateway", "health"} <= hpas
    image = pod_spec(of_kind(production_manifests, "Deployment")[0])["containers"][0]["image"]
    assert not image.endswith((":latest", ":"))
    (ingress,) = of_kind(production_manifests, "Ingress")
    assert ingress["spec"]["tls"]


# Blocks of Kubernetes' own fields, explained by the block's comment as a whole.
KUBERNETES_BLOCKS = {"podSecurityContext", "securityContext"}


def undocumented_keys(text: str) -> list[str]:
    """Keys of a values file with no comment on their line or the lines just above.

    Checked: top-level keys, their children (but Kubernetes' own fields), and the keys of
    the first part under `services` (the other parts repeat the same keys).
    """
    missing = []
    lines = text.splitlines()
    path: list[str] = []
    first_part = ""
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w.-]*):", line)
        if not match:
            continue
        depth = len(match.group(1)) // 2
        path = [*path[:depth], match.group(2)]
        if path[0] == "services" and depth >= 1:
            first_part = first_part or path[1]
            checked = path[1] == first_part and depth <= 2
        else:
            checked = depth == 0 or (depth == 1 and path[0] not in KUBERNETES_BLOCKS)
        commented = "#" in line or (index > 0 and lines[index - 1].strip().startswith("#"))
        if checked and not commented:
            missing.append(".".join(path))
    return missing


def test_every_values_key_is_documented() -> None:
    assert undocumented_keys((CHART / "values.yaml").read_text()) == []


def test_the_documentation_check_finds_a_bare_key() -> None:
    text = "# the image\nimage:\n  # its name\n  repository: x\n  tag: y\nbare: 1\n"
    assert undocumented_keys(text) == ["image.tag", "bare"]
