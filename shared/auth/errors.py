"""Bearer-token errors in the shape RFC 6750 asks for, rendered as problem+json."""

from __future__ import annotations

from shared.errors import Forbidden, Unauthorized, problem_type


def _quote(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', "'")


class InvalidToken(Unauthorized):
    """401: the token is missing, malformed, expired, or not ours."""

    type = problem_type("invalid-token")
    title = "Invalid Token"

    def __init__(self, detail: str, *, missing: bool = False) -> None:
        # RFC 6750 §3.1: no error code when the request carried no credentials at all.
        challenge = 'Bearer realm="huimin"'
        if not missing:
            challenge += f', error="invalid_token", error_description="{_quote(detail)}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})


class InsufficientScope(Forbidden):
    """403: a valid token that lacks a required scope or role."""

    type = problem_type("insufficient-scope")
    title = "Insufficient Scope"

    def __init__(self, detail: str, *, scope: str | None = None) -> None:
        challenge = 'Bearer realm="huimin", error="insufficient_scope"'
        if scope:
            challenge += f', scope="{_quote(scope)}"'
        super().__init__(detail, headers={"WWW-Authenticate": challenge})
