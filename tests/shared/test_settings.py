"""Settings: defaults, environment, and production refusal."""

from __future__ import annotations

import pytest
from pydantic import SecretStr, ValidationError

from shared.settings import (
    DEV_CLIENT_SECRET,
    DEV_ISSUER,
    Environment,
    Settings,
    build_settings,
    clear_settings_cache,
    get_settings,
)

REAL_ISSUER = "https://id.huimin.example/realms/huimin"
STRONG_SECRET = "x7R2q9LmV4pZ8sKw3nT6"


class HealthSettings(Settings):
    service_name: str = "health"
    port: int = 8001


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch):
    """No HUIMIN_* variable from the outer environment leaks into a test."""
    import os

    for name in list(os.environ):
        if name.startswith("HUIMIN_"):
            monkeypatch.delenv(name)
    clear_settings_cache()
    yield monkeypatch
    clear_settings_cache()


def production(**values) -> Settings:
    base = {
        "env": "production",
        "oidc_issuer": REAL_ISSUER,
        "client_secret": STRONG_SECRET,
        "store_url": "mongodb://db.internal:27017/health",
    }
    return build_settings(**{**base, **values})


def test_defaults_describe_the_dev_stack():
    settings = build_settings()
    assert settings.env is Environment.dev
    assert settings.host == "127.0.0.1"
    assert settings.oidc_issuer == DEV_ISSUER
    assert settings.oidc_audience == "huimin-api"
    assert settings.store_url == "sqlite:///var/huimin.db"
    assert settings.redis_url is None
    assert settings.log_json is False
    assert settings.require_real_services is False


def test_service_subclass_changes_defaults_and_derived_values():
    settings = build_settings(HealthSettings)
    assert (settings.service_name, settings.port) == ("health", 8001)
    assert settings.store_url == "sqlite:///var/health.db"
    assert settings.client_id == "huimin-health"


def test_environment_variables_are_read_with_the_prefix(clean_env):
    clean_env.setenv("HUIMIN_PORT", "9123")
    clean_env.setenv("HUIMIN_ENV", "test")
    clean_env.setenv("HUIMIN_STORE_URL", "mongodb://127.0.0.1:27017/x")
    clean_env.setenv("HUIMIN_REQUIRE_REAL_SERVICES", "true")
    clean_env.setenv("HUIMIN_LOG_LEVEL", "debug")
    settings = get_settings(HealthSettings)
    assert settings.log_level == "DEBUG"
    assert settings.port == 9123
    assert settings.env is Environment.test
    assert settings.store_url == "mongodb://127.0.0.1:27017/x"
    assert settings.require_real_services is True
    # Outside dev, logs default to JSON lines.
    assert settings.log_json is True


def test_get_settings_is_cached_until_cleared(clean_env):
    first = get_settings()
    assert get_settings() is first
    clean_env.setenv("HUIMIN_PORT", "9124")
    assert get_settings().port == first.port
    clear_settings_cache()
    assert get_settings().port == 9124


def test_build_settings_ignores_the_environment(clean_env):
    clean_env.setenv("HUIMIN_PORT", "9125")
    clean_env.setenv("HUIMIN_ENV", "production")
    settings = build_settings(port=8100)
    assert settings.port == 8100
    assert settings.env is Environment.dev


def test_settings_are_immutable():
    settings = build_settings()
    with pytest.raises(ValidationError):
        settings.port = 1  # type: ignore[misc]


@pytest.mark.parametrize("bad", ["Health", "with space", "../etc", ""])
def test_service_name_must_be_safe_for_paths(bad):
    with pytest.raises(ValidationError):
        build_settings(service_name=bad)


def test_production_refuses_the_dev_defaults():
    with pytest.raises(ValidationError) as caught:
        build_settings(env="production")
    message = str(caught.value)
    assert "refusing to start in production" in message
    assert "HUIMIN_OIDC_ISSUER is the dev issuer" in message
    assert "HUIMIN_CLIENT_SECRET is a default or placeholder secret" in message


def test_production_refuses_the_dev_issuer_even_with_a_trailing_slash():
    with pytest.raises(ValidationError, match="dev issuer"):
        production(oidc_issuer=DEV_ISSUER + "/")


@pytest.mark.parametrize("secret", [DEV_CLIENT_SECRET, "changeme", "ChangeThis", "secret", ""])
def test_production_refuses_placeholder_secrets(secret):
    with pytest.raises(ValidationError, match="placeholder secret"):
        production(client_secret=secret)


def test_production_refuses_short_secrets():
    with pytest.raises(ValidationError, match="shorter than 16"):
        production(client_secret="abc123xyz")


def test_production_refuses_an_in_memory_store():
    with pytest.raises(ValidationError, match="in-memory SQLite"):
        production(store_url="sqlite:///:memory:")


def test_production_refusal_applies_to_environment_variables(clean_env):
    clean_env.setenv("HUIMIN_ENV", "production")
    with pytest.raises(ValidationError, match="dev issuer"):
        get_settings()


def test_production_with_real_values_starts():
    settings = production()
    assert settings.env is Environment.production
    assert settings.client_secret == SecretStr(STRONG_SECRET)
    assert settings.warnings() == []
    assert settings.production_problems() == []


def test_production_allows_sqlite_but_warns():
    settings = production(store_url="sqlite:///var/health.db")
    assert len(settings.warnings()) == 1
    assert "replicas cannot share it" in settings.warnings()[0]


def test_secrets_do_not_show_in_repr():
    assert STRONG_SECRET not in repr(production())
