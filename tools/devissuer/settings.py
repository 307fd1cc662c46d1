"""Settings of the dev issuer: the shared `HUIMIN_*` variables plus `HUIMIN_ISSUER_*`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from shared.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[2]
_ANY_ADDRESS = ("0.0.0.0", "::", "")  # noqa: S104 - compared against, never bound


class IssuerSettings(Settings):
    """Dev issuer settings (env prefix `HUIMIN_`)."""

    service_name: str = "devissuer"
    port: int = 8080
    issuer_realm: str = Field(default="huimin", pattern=r"^[A-Za-z0-9_-]+$")
    issuer_realm_dir: Path = REPO_ROOT / "docker" / "keycloak"
    issuer_data_dir: Path = REPO_ROOT / "var" / "devissuer"
    # Base URL clients and services reach the issuer at, e.g. http://localhost:8080 or the
    # compose service name; the issuer is this plus /realms/<realm>.
    issuer_public_url: str | None = None

    @property
    def issuer_url(self) -> str:
        """The `iss` of every token: `<public base>/realms/<realm>`."""
        base = self.issuer_public_url
        if not base:
            host = "127.0.0.1" if self.host in _ANY_ADDRESS else self.host
            host = f"[{host}]" if ":" in host else host
            base = f"http://{host}:{self.port}"
        return f"{base.rstrip('/')}/realms/{self.issuer_realm}"

    def production_problems(self) -> list[str]:
        """The dev issuer has no safe production configuration at all."""
        return [
            "the embedded dev issuer (tools.devissuer) is for development and tests only; "
            "run Keycloak and point HUIMIN_OIDC_ISSUER at its realm"
        ]

    def warnings(self) -> list[str]:
        """Note when the services would reject this issuer's tokens."""
        notes = super().warnings()
        if self.oidc_issuer.rstrip("/") != self.issuer_url:
            notes.append(
                f"this issuer signs as {self.issuer_url} but HUIMIN_OIDC_ISSUER is "
                f"{self.oidc_issuer}: services configured with it will refuse its tokens"
            )
        return notes
