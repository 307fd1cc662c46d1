"""The embedded dev identity provider (`python -m tools.devissuer`, part of `make run`).

An OIDC/OAuth 2.0 issuer on 127.0.0.1:8080 with Keycloak's URL layout
(`/realms/huimin/...`) that reads the same realm export Keycloak imports
(`docker/keycloak/`) and issues tokens with the same claims, so the gateway and the
services run unchanged against either. Development and tests only: it refuses to start
with `HUIMIN_ENV=production`. See docs/dev-issuer.md.
"""

from tools.devissuer.app import create_issuer_app
from tools.devissuer.settings import IssuerSettings

__all__ = ["IssuerSettings", "create_issuer_app"]
