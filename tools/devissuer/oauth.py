"""OAuth 2.0 plumbing: the error shape, form bodies and client authentication.

Errors are OAuth's `{"error": ..., "error_description": ...}` (RFC 6749 §5.2), not the
suite's problem+json: OAuth clients (python-keycloak, AppAuth, oidc-client-ts) parse this
shape, and Keycloak answers in it.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Mapping
from urllib.parse import parse_qs, unquote_plus

from fastapi import Request
from starlette.responses import JSONResponse, Response

from tools.devissuer.model import Client, Realm

NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}
FORM_TYPE = "application/x-www-form-urlencoded"
INVALID_CLIENT = "Invalid client or Invalid client credentials"


class OAuthError(Exception):
    """An OAuth error response: HTTP status, error code and description."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str | None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(f"{error}: {description}")
        self.status = status
        self.error = error
        self.description = description
        self.headers = dict(headers or {})

    def response(self) -> Response:
        """Render as the JSON body every OAuth client understands."""
        body = {"error": self.error}
        if self.description is not None:
            body["error_description"] = self.description
        return JSONResponse(body, status_code=self.status, headers={**NO_STORE, **self.headers})


async def oauth_error_handler(request: Request, exc: Exception) -> Response:
    """FastAPI exception handler for `OAuthError`."""
    assert isinstance(exc, OAuthError)
    return exc.response()


class Form:
    """A parsed `application/x-www-form-urlencoded` body (duplicates refused on read)."""

    def __init__(self, values: Mapping[str, list[str]]) -> None:
        self.values = values

    def get(self, name: str) -> str | None:
        """The single value of `name`, or None; a repeated parameter is an error."""
        found = self.values.get(name)
        if not found:
            return None
        if len(found) > 1:
            raise OAuthError(400, "invalid_request", "duplicated parameter")
        return found[0]

    def require(self, name: str) -> str:
        """The value of `name`; missing or empty is an `invalid_request`."""
        value = self.get(name)
        if not value:
            raise OAuthError(400, "invalid_request", f"Missing parameter: {name}")
        return value


async def read_form(request: Request) -> Form:
    """Parse the request body as a form (python-multipart is not needed for this type)."""
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise OAuthError(400, "invalid_request", f"Content-Type must be {FORM_TYPE}")
    body = await request.body()
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise OAuthError(400, "invalid_request", "The form is not UTF-8") from exc
    return Form(parse_qs(text, keep_blank_values=True))


def authenticate_client(realm: Realm, request: Request, form: Form) -> Client:
    """Identify the calling client from HTTP Basic or the form, checking its secret.

    Public clients send only `client_id`. Like Keycloak, an unknown client is
    `invalid_client` and a wrong or missing secret `unauthorized_client`, both 401 with the
    same description (no hint which it was).
    """
    client_id, secret = _basic_credentials(request)
    if client_id is None:
        client_id, secret = form.get("client_id"), form.get("client_secret")
    if not client_id:
        raise OAuthError(400, "invalid_client", "Missing parameter: client_id")
    client = realm.clients.get(client_id)
    if client is None or not client.enabled:
        raise OAuthError(401, "invalid_client", INVALID_CLIENT)
    if client.bearer_only:
        raise OAuthError(400, "invalid_client", "Bearer-only not allowed")
    if client.public:
        return client
    expected = client.secret or ""
    if not secret or not expected or not hmac.compare_digest(secret.encode(), expected.encode()):
        raise OAuthError(401, "unauthorized_client", INVALID_CLIENT)
    return client


def _basic_credentials(request: Request) -> tuple[str | None, str | None]:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "basic" or not value:
        return None, None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError) as exc:
        raise OAuthError(400, "invalid_request", "Malformed Basic credentials") from exc
    client_id, sep, secret = decoded.partition(":")
    if not sep:
        raise OAuthError(400, "invalid_request", "Malformed Basic credentials")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before being joined.
    return unquote_plus(client_id), unquote_plus(secret)


PKCE_VERIFIER = re.compile(r"^[A-Za-z0-9\-._~]{43,128}$")
"""RFC 7636 §4.1: the code verifier; the S256 challenge has the same alphabet and length."""


def s256(verifier: str) -> str:
    """The S256 code challenge of `verifier` (RFC 7636 §4.2)."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
