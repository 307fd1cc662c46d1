"""What the gateway decides before forwarding: who calls (auth) and whether now (limits)."""

from __future__ import annotations

from gateway.metrics import GatewayMetrics
from gateway.ratelimit import Bucket, Decision, Limiter
from gateway.routes import RouteSpec
from gateway.settings import GatewaySettings
from shared.auth import InsufficientScope, Principal, TokenValidator
from shared.auth.deps import parse_bearer
from shared.errors import TooManyRequests


async def authenticate(
    method: str, authorization: str | None, validator: TokenValidator, route: RouteSpec
) -> Principal | None:
    """The caller, as the route demands: 401 without a valid token, 403 without the roles.

    On a public method a token is optional, but one that is sent must be valid: the
    services answer so too, and the caller's own rate limit then applies.
    """
    public = route.is_public(method)
    if public and authorization is None:
        return None
    principal = await validator.validate(parse_bearer(authorization))
    if public:
        return principal
    if route.roles and not principal.has_role(*route.roles):
        raise InsufficientScope(f"requires one of the roles {', '.join(sorted(route.roles))}")
    missing = [scope for scope in route.scopes if scope not in principal.scopes]
    if missing:
        raise InsufficientScope(
            f"token lacks scope {' '.join(missing)}", scope=" ".join(route.scopes)
        )
    return principal


def buckets_for(
    principal: Principal | None, client_address: str, settings: GatewaySettings
) -> list[Bucket]:
    """The person's bucket (by `sub`) and the client's (by `azp`, or by address when
    anonymous); a zero rate leaves that bucket out."""
    found: list[Bucket] = []
    if principal is not None and settings.user_rate > 0:
        who = principal.subject or f"client:{principal.client_id}"
        found.append(Bucket(f"user:{who}", settings.user_rate, settings.user_burst))
    if settings.client_rate > 0:
        if principal is not None and principal.client_id:
            key = f"client:{principal.client_id}"
        else:
            key = f"ip:{client_address}"
        found.append(Bucket(key, settings.client_rate, settings.client_burst))
    return found


async def admit(
    principal: Principal | None,
    client_address: str,
    limiter: Limiter,
    settings: GatewaySettings,
    metrics: GatewayMetrics,
) -> dict[str, str]:
    """Take the request's tokens; 429 when a bucket is empty. Returns the RateLimit headers."""
    buckets = buckets_for(principal, client_address, settings)
    if not buckets:
        return {}
    decision: Decision = await limiter.acquire(buckets)
    if not decision.allowed:
        caller = "anonymous" if principal is None else "user"
        metrics.ratelimit_rejections.labels(caller).inc()
        raise TooManyRequests(
            f"Rate limit exceeded; retry in {decision.retry_after} s.",
            headers=decision.headers(),
        )
    return decision.headers()
