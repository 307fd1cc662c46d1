"""Authentication and authorization shared by the gateway and every service: token
validation against the realm's JWKS, the Principal, FastAPI dependencies, service tokens."""

from shared.auth.deps import (
    Authenticated,
    CurrentPrincipal,
    auth_lifespan,
    get_principal,
    require_role,
    require_scope,
)
from shared.auth.errors import InsufficientScope, InvalidToken
from shared.auth.jwks import JWKSCache
from shared.auth.principal import Principal
from shared.auth.service_tokens import ClientCredentials, ServiceAuth
from shared.auth.validator import TokenValidator

__all__ = [
    "Authenticated",
    "ClientCredentials",
    "CurrentPrincipal",
    "InsufficientScope",
    "InvalidToken",
    "JWKSCache",
    "Principal",
    "ServiceAuth",
    "TokenValidator",
    "auth_lifespan",
    "get_principal",
    "require_role",
    "require_scope",
]
