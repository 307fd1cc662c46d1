"""Opaque `cursor` values of paged API searches: the state of the next page as URL-safe
base64 JSON, bound to the search that made it by a fingerprint under `"h"`, so that a
cursor sent with other criteria is refused instead of paging a different result."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from shared.errors import BadRequest


def encode_cursor(data: dict[str, Any]) -> str:
    """The cursor of a next page's state (which holds the search fingerprint as `"h"`)."""
    raw = json.dumps(data, separators=(",", ":")).encode()
    # Padding dropped: the cursor travels in a query string.
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, fingerprint: str) -> dict[str, Any]:
    """The state in a cursor; 400 for a malformed one or one of another search."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("Malformed cursor.") from exc
    if not isinstance(data, dict) or data.get("h") != fingerprint:
        raise BadRequest("The cursor belongs to another search.")
    return data
