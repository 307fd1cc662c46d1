"""Versions as HTTP validators: `ETag: W/"<version>"` out, `If-Match` checked on writes.

The problem+json services share these; the FHIR service has its own (FHIR's rules for
`If-Match` and its OperationOutcome errors differ).
"""

from __future__ import annotations

import re

from shared.errors import PreconditionFailed

_ETAG = re.compile(r'^(?:W/)?"?(\d{1,9})"?$')


def etag(version: int) -> str:
    """The weak ETag of a version."""
    return f'W/"{version}"'


def check_if_match(value: str | None, current: int, what: str) -> None:
    """412 when an If-Match header names another version than the current one (`*` and
    no header match any)."""
    if value is None or value.strip() == "*":
        return
    m = _ETAG.match(value.strip())
    if m is None or int(m.group(1)) != current:
        raise PreconditionFailed(
            f"If-Match {value} does not match {what}, which is at version {current}.",
            current_version=current,
        )
