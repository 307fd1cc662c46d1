"""charts/huimin: secret values never appear in plain text; values that cannot work are
refused at render time."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from tests.deploy.chart import (
    CHART_SECRETS,
    FAKE,
    PARTS,
    Manifest,
    RenderError,
    component,
    containers,
    of_kind,
    raw_render,
    render,
)


def test_chart_secret_values_appear_only_base64_encoded_in_the_secret(helm: Path) -> None:
    text = raw_render(helm, sets=CHART_SECRETS)
    for value in FAKE.values():
        assert value not in text  # nowhere in plain text: no env value, no ConfigMap, no note
        assert base64.b64encode(value.encode()).decode() in text
    manifests = render(helm, sets=CHART_SECRETS)
    (secret,) = of_kind(manifests, "Secret")
    decoded = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
    assert decoded == {
        "mongodb-password": FAKE["secrets.mongodbPassword"],
        "redis-password": FAKE["secrets.redisPassword"],
        **{f"{p}-client-secret": FAKE[f"secrets.clientSecrets.{p}"] for p in PARTS},
    }
    # Only the Secret carries them; everything else references it.
    encoded = [base64.b64encode(v.encode()).decode() for v in FAKE.values()]
    for manifest in manifests:
        if manifest["kind"] != "Secret":
            assert not any(e in str(manifest) for e in encoded), manifest["metadata"]["name"]


def test_an_existing_secret_is_referenced_and_never_rendered(helm: Path) -> None:
    sets = {**FAKE, "secrets.existingSecret": "ops-managed"}
    text = raw_render(helm, sets=sets)
    for value in FAKE.values():
        assert value not in text
        assert base64.b64encode(value.encode()).decode() not in text
    manifests = render(helm, sets=sets)
    assert of_kind(manifests, "Secret") == []
    refs = _secret_refs(manifests)
    assert {name for name, _ in refs} == {"ops-managed"}


def _secret_refs(manifests: list[Manifest]) -> set[tuple[str, str]]:
    refs = set()
    for deployment in of_kind(manifests, "Deployment"):
        for container in containers(deployment):
            for env in container.get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref:
                    refs.add((ref["name"], ref["key"]))
    return refs


def test_every_secret_reference_names_a_key_of_the_chart_secret(helm: Path) -> None:
    manifests = render(helm, sets=CHART_SECRETS)
    (secret,) = of_kind(manifests, "Secret")
    for name, key in _secret_refs(manifests):
        assert name == secret["metadata"]["name"]
        assert key in secret["data"], key


def test_secret_settings_reach_the_containers_only_by_reference(helm: Path) -> None:
    for deployment in of_kind(render(helm, sets=CHART_SECRETS), "Deployment"):
        env = {e["name"]: e for c in containers(deployment) for e in c["env"]}
        assert "secretKeyRef" in env["HUIMIN_CLIENT_SECRET"]["valueFrom"]
        assert env["HUIMIN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"]["key"] == (
            f"{component(deployment)}-client-secret"
        )
        store = env.get("HUIMIN_STORE_URL", {}).get("value", "")
        if store:  # the password is Kubernetes' expansion of the secret-backed variable
            assert "$(MONGODB_PASSWORD)@" in store
            assert list(env).index("MONGODB_PASSWORD") < list(env).index("HUIMIN_STORE_URL")


@pytest.mark.parametrize(
    ("sets", "message"),
    [
        ({"oidc.issuer": ""}, "oidc.issuer is required"),
        ({"oidc.issuer": "http://127.0.0.1:8080/realms/huimin"}, "dev issuer"),
        ({"mongodb.hosts": ""}, "mongodb.hosts is required"),
        ({**CHART_SECRETS, "secrets.mongodbPassword": ""}, "secrets.mongodbPassword"),
        ({**CHART_SECRETS, "secrets.redisPassword": ""}, "secrets.redisPassword"),
        (
            {**CHART_SECRETS, "secrets.clientSecrets.tourism": ""},
            "secrets.clientSecrets.tourism",
        ),
        ({"services.health.module": ""}, "services.health.module is required"),
        ({"services.registry.pdb.minAvailable": "2"}, "registry.pdb.minAvailable must be below"),
    ],
    ids=[
        "no-issuer",
        "dev-issuer",
        "no-mongodb",
        "no-mongodb-password",
        "no-redis-password",
        "no-client-secret",
        "no-module",
        "pdb-blocks-drains",
    ],
)
def test_values_that_cannot_work_are_refused(
    helm: Path, sets: dict[str, str], message: str
) -> None:
    with pytest.raises(RenderError, match=message):
        render(helm, sets=sets)


def test_a_disabled_part_needs_no_secret(helm: Path) -> None:
    sets = {
        **CHART_SECRETS,
        "secrets.clientSecrets.tourism": "",
        "services.tourism.enabled": "false",
    }
    manifests = render(helm, sets=sets)
    assert "tourism" not in {component(d) for d in of_kind(manifests, "Deployment")}
