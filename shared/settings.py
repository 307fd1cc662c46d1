"""Typed process settings, read once from `HUIMIN_*` environment variables.

Every service subclasses `Settings` only to change its defaults (name and port), so one
set of variables configures the whole suite:

    class HealthSettings(Settings):
        service_name: str = "health"
        port: int = 8001

The standard `OTEL_*` variables are deliberately absent: the OpenTelemetry SDK reads them.

Production safety: `env=production` refuses to start (a `pydantic.ValidationError`
listing every problem) with the dev issuer, an in-memory store, or a default or
placeholder secret. A SQLite store is allowed in production on purpose: a single host
(docker compose) with a persistent volume is a supported deployment and SQLite in WAL
mode is durable there. It cannot be shared by replicas, though, so `warnings()` reports
it and the app logs that at startup instead of refusing.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from enum import StrEnum
from functools import lru_cache
from typing import Any, Literal, TypeVar, overload

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_core import PydanticCustomError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

DEV_ISSUER = "http://127.0.0.1:8080/realms/huimin"
"""Issuer of the embedded dev identity provider (same URL layout as Keycloak)."""

DEV_CLIENT_SECRET = "huimin-dev-secret"  # noqa: S105 - a public dev default, refused in production
"""Client secret every service uses against the dev issuer; never valid in production."""

# Values people leave in config files; any of them in production is a mistake.
PLACEHOLDER_SECRETS = frozenset(
    {
        DEV_CLIENT_SECRET,
        "huimin-dev",
        "changethis",
        "changeme",
        "change-me",
        "secret",
        "password",
        "dev",
        "test",
        "",
    }
)
MIN_PRODUCTION_SECRET_LENGTH = 16

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]


class Environment(StrEnum):
    """Where the process runs; production enables the safety checks."""

    dev = "dev"
    test = "test"
    production = "production"


# Set only while build_settings() runs, so tests get settings that ignore the environment.
_explicit_only: ContextVar[bool] = ContextVar("huimin_settings_explicit_only", default=False)


class Settings(BaseSettings):
    """Settings shared by every Huimin process (env prefix `HUIMIN_`)."""

    model_config = SettingsConfigDict(
        env_prefix="HUIMIN_",
        extra="ignore",
        frozen=True,
        validate_default=True,
    )

    env: Environment = Environment.dev
    service_name: str = Field(default="huimin", pattern=r"^[a-z][a-z0-9-]{0,62}$")
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    # Defaults depend on service_name/env; filled by _fill_derived_defaults before validation.
    store_url: str = ""
    oidc_issuer: str = DEV_ISSUER
    oidc_audience: str = "huimin-api"
    client_id: str = ""
    client_secret: SecretStr = SecretStr(DEV_CLIENT_SECRET)
    redis_url: str | None = None
    log_level: LogLevel = "INFO"
    log_json: bool = False  # the real default is derived: JSON everywhere but in dev
    max_body_bytes: int = Field(default=1_048_576, gt=0)
    # CI sets this so that tests needing a real server (FerretDB, Keycloak) fail instead of
    # skipping when the server cannot be started.
    require_real_services: bool = False

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Read explicit values, then the environment (no .env file: 12-factor)."""
        if _explicit_only.get():
            return (init_settings,)
        return (init_settings, env_settings, file_secret_settings)

    @model_validator(mode="before")
    @classmethod
    def _fill_derived_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        service = data.get("service_name") or cls.model_fields["service_name"].default
        env = str(data.get("env") or cls.model_fields["env"].default).lower()
        if not data.get("store_url"):
            data["store_url"] = f"sqlite:///var/{service}.db"
        if not data.get("client_id"):
            data["client_id"] = f"huimin-{service}"
        # Machines read production logs; people read dev logs.
        data.setdefault("log_json", env != Environment.dev)
        return data

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper_case_level(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @model_validator(mode="after")
    def _refuse_unsafe_production(self) -> Settings:
        if self.env is Environment.production:
            problems = self.production_problems()
            if problems:
                # A custom error type keeps pydantic's "Value error, " prefix off the message.
                raise PydanticCustomError(
                    "unsafe_production_settings",
                    "refusing to start in production: {problems}",
                    {"problems": "; ".join(problems)},
                )
        return self

    def production_problems(self) -> list[str]:
        """List what would make this configuration unsafe in production."""
        problems: list[str] = []
        if self.oidc_issuer.rstrip("/") == DEV_ISSUER:
            problems.append(
                f"HUIMIN_OIDC_ISSUER is the dev issuer {DEV_ISSUER}; set the real realm URL"
            )
        if self.store_url.startswith("sqlite://") and ":memory:" in self.store_url:
            problems.append("HUIMIN_STORE_URL is an in-memory SQLite store; data would be lost")
        for name, value in self._secrets():
            env_name = f"HUIMIN_{name.upper()}"
            if value.strip().lower() in PLACEHOLDER_SECRETS:
                problems.append(f"{env_name} is a default or placeholder secret")
            elif len(value) < MIN_PRODUCTION_SECRET_LENGTH:
                problems.append(
                    f"{env_name} is shorter than {MIN_PRODUCTION_SECRET_LENGTH} characters"
                )
        return problems

    def warnings(self) -> list[str]:
        """List allowed but noteworthy choices, logged once at startup."""
        notes: list[str] = []
        if self.env is Environment.production and self.store_url.startswith("sqlite://"):
            notes.append(
                "SQLite store in production: fine for one replica on a persistent volume, "
                "but replicas cannot share it; use mongodb:// to scale out"
            )
        return notes

    def _secrets(self) -> Iterator[tuple[str, str]]:
        # Every SecretStr field is checked, so a secret added later is covered automatically.
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                yield name, value.get_secret_value()


S = TypeVar("S", bound=Settings)


@lru_cache
def _cached(cls: type[Settings]) -> Settings:
    return cls()


@overload
def get_settings() -> Settings: ...
@overload
def get_settings(cls: type[S]) -> S: ...
def get_settings(cls: type[Settings] = Settings) -> Settings:
    """Return the process-wide settings of `cls`, read from the environment once."""
    return _cached(cls)


def clear_settings_cache() -> None:
    """Forget cached settings so the next `get_settings()` re-reads the environment."""
    _cached.cache_clear()


@overload
def build_settings(**values: Any) -> Settings: ...
@overload
def build_settings(cls: type[S], /, **values: Any) -> S: ...
def build_settings(cls: type[Settings] = Settings, /, **values: Any) -> Settings:
    """Build settings from explicit values and defaults only, ignoring the environment."""
    with _only_explicit_values():
        return cls(**values)


@contextmanager
def _only_explicit_values() -> Iterator[None]:
    token = _explicit_only.set(True)
    try:
        yield
    finally:
        _explicit_only.reset(token)
