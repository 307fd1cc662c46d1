"""docker/compose.yaml, checked statically: health checks, published ports, dependencies,
secrets from the environment, and the files it mounts."""

from __future__ import annotations

import copy
from urllib.parse import urlsplit

import pytest
import yaml

from tests.deploy.compose import (
    COMPOSE,
    DOCKER,
    HUIMIN_PARTS,
    NO_HEALTHCHECK,
    PUBLISHED,
    Compose,
    compose_problems,
    example_names,
    load,
    upstream_urls,
    variables,
)


@pytest.fixture
def compose() -> Compose:
    return load()


def test_the_compose_file_keeps_every_rule(compose: Compose) -> None:
    assert compose_problems(compose) == []


def test_the_stack_has_every_part(compose: Compose) -> None:
    expected = {"mongo", "mongo-init", "keycloak", "redis", "otel-collector", "jaeger"}
    assert expected | HUIMIN_PARTS <= set(compose["services"])


def test_only_gateway_keycloak_and_the_trace_ui_are_published(compose: Compose) -> None:
    published = {name for name, s in compose["services"].items() if s.get("ports")}
    assert published == set(PUBLISHED)


def test_nothing_waits_for_a_service_without_a_health_check(compose: Compose) -> None:
    for name, service in compose["services"].items():
        for target, spec in (service.get("depends_on") or {}).items():
            if target in NO_HEALTHCHECK:
                assert spec["condition"] == "service_started", name


def test_services_start_after_the_replica_set_and_keycloak(compose: Compose) -> None:
    for part in HUIMIN_PARTS - {"gateway"}:
        depends = compose["services"][part]["depends_on"]
        assert depends["mongo-init"]["condition"] == "service_completed_successfully"
        assert depends["keycloak"]["condition"] == "service_healthy"
    gateway = compose["services"]["gateway"]["depends_on"]
    for part in HUIMIN_PARTS - {"gateway"}:
        assert gateway[part]["condition"] == "service_healthy"


def test_mongodb_runs_as_a_replica_set_initiated_once(compose: Compose) -> None:
    mongo = compose["services"]["mongo"]
    command = mongo["command"]
    assert command[command.index("--replSet") + 1] == "rs0"
    init = compose["services"]["mongo-init"]
    script = DOCKER / "mongo" / "init-replica-set.js"
    assert any(v.startswith("./mongo/init-replica-set.js:") for v in init["volumes"])
    text = script.read_text()
    assert "rs.initiate" in text
    assert "NotYetInitialized" in text  # idempotent: a second run leaves the set alone


def test_keycloak_runs_in_production_mode_and_imports_the_realm(compose: Compose) -> None:
    keycloak = compose["services"]["keycloak"]
    assert keycloak["image"].endswith(":26.7.3")
    assert keycloak["command"][0] == "start"
    assert "--import-realm" in keycloak["command"]
    assert (
        "./keycloak/realm-huimin.json:/opt/keycloak/data/import/huimin-realm.json:ro"
        in keycloak["volumes"]
    )
    assert (DOCKER / "keycloak" / "realm-huimin.json").is_file()
    # The realm's client-secret placeholders are resolved from Keycloak's environment.
    realm = (DOCKER / "keycloak" / "realm-huimin.json").read_text()
    for part in HUIMIN_PARTS:
        variable = f"HUIMIN_{part.upper()}_CLIENT_SECRET"
        assert "${" + variable + ":" in realm
        assert variable in keycloak["environment"]


def test_every_part_uses_its_own_client_secret(compose: Compose) -> None:
    for part in HUIMIN_PARTS:
        secret = compose["services"][part]["environment"]["HUIMIN_CLIENT_SECRET"]
        assert secret.startswith("${HUIMIN_" + part.upper() + "_CLIENT_SECRET:?")


def test_the_services_and_browsers_share_one_issuer(compose: Compose) -> None:
    keycloak = compose["services"]["keycloak"]
    hostname = keycloak["environment"]["KC_HOSTNAME"]
    aliases = keycloak["networks"]["backend"]["aliases"]
    assert aliases == ["${HUIMIN_IDENTITY_ALIAS:-id.localhost}"]
    assert hostname == "${HUIMIN_IDENTITY_URL:-http://id.localhost:8080}"
    for part in HUIMIN_PARTS:
        issuer = compose["services"][part]["environment"]["HUIMIN_OIDC_ISSUER"]
        assert issuer == hostname + "/realms/huimin"
    # The default URL's host is the default alias, on the port Keycloak listens on.
    assert urlsplit("http://id.localhost:8080").hostname == "id.localhost"


def test_the_gateway_routes_to_the_compose_services(compose: Compose) -> None:
    for part, url in upstream_urls(compose).items():
        assert url == f"http://{part}:8000"
        assert part in compose["services"]


def test_the_collector_config_exports_to_jaeger(compose: Compose) -> None:
    collector = compose["services"]["otel-collector"]
    assert "./otel/collector.yaml:/etc/otelcol/collector.yaml:ro" in collector["volumes"]
    config = yaml.safe_load((DOCKER / "otel" / "collector.yaml").read_text())
    endpoint = config["exporters"]["otlp/jaeger"]["endpoint"]
    assert endpoint.split(":")[0] in compose["services"]
    assert config["service"]["pipelines"]["traces"]["exporters"] == ["otlp/jaeger"]


def test_databases_live_on_the_internal_network_only(compose: Compose) -> None:
    assert compose["networks"]["backend"]["internal"] is True
    for name in ("mongo", "redis", "keycloak-db"):
        assert compose["services"][name]["networks"] == ["backend"], name


def test_the_env_example_sets_every_variable_and_no_real_secret() -> None:
    used = variables(COMPOSE.read_text())
    assert set(used) - example_names() == set()
    example = (DOCKER / ".env.example").read_text()
    for line in example.splitlines():
        name, _, value = line.partition("=")
        if ("PASSWORD" in name or "SECRET" in name or name.endswith("_KEY")) and value:
            assert value == "replace-me", name  # too short: production refuses to start


def test_every_secret_is_required_not_defaulted() -> None:
    for name, modifier in variables(COMPOSE.read_text()).items():
        if "PASSWORD" in name or "SECRET" in name or name.endswith("_KEY"):
            assert modifier.startswith(":?"), name


def _broken(compose: Compose, change: str) -> Compose:
    doc = copy.deepcopy(compose)
    services = doc["services"]
    if change == "published-database":
        services["mongo"]["ports"] = ["27017:27017"]
    elif change == "no-healthcheck":
        del services["health"]["healthcheck"]
    elif change == "short-depends":
        services["gateway"]["depends_on"] = ["health"]
    elif change == "literal-secret":
        services["health"]["environment"]["HUIMIN_CLIENT_SECRET"] = "s3cret-in-the-file"
    elif change == "literal-url-password":
        services["gateway"]["environment"]["HUIMIN_REDIS_URL"] = "redis://:hunter2@redis:6379"
    elif change == "healthy-without-check":
        services["gateway"]["depends_on"]["jaeger"] = {"condition": "service_healthy"}
    elif change == "writable-part":
        services["tourism"]["read_only"] = False
    elif change == "unpinned-image":
        services["redis"]["image"] = "redis:7-alpine"
    return doc


@pytest.mark.parametrize(
    "change",
    [
        "published-database",
        "no-healthcheck",
        "short-depends",
        "literal-secret",
        "literal-url-password",
        "healthy-without-check",
        "writable-part",
        "unpinned-image",
    ],
)
def test_the_checks_catch_a_broken_compose_file(compose: Compose, change: str) -> None:
    assert compose_problems(_broken(compose, change)) != []


def test_the_trace_ui_is_published_on_loopback_only(compose: Compose) -> None:
    (mapping,) = compose["services"]["jaeger"]["ports"]
    assert mapping.startswith("127.0.0.1:")
