"""Request parameters the services' routes share: `If-Match` on changes, and the `limit` and
`cursor` of paged lists with the page size the service allows and the next page's link."""

from __future__ import annotations

from typing import Annotated, Protocol

from fastapi import Header, Query, Request

# The ETags served are W/"<version>" (shared.etags): 40 characters hold any of them.
IfMatch = Annotated[str | None, Header(alias="If-Match", max_length=40)]
Limit = Annotated[int | None, Query(ge=1, le=100)]
Cursor = Annotated[str | None, Query(max_length=2000)]


class PagedSettings(Protocol):
    """Settings of a service with paged lists."""

    @property
    def default_limit(self) -> int:
        """The page size when none is asked for."""

    @property
    def max_limit(self) -> int:
        """The largest page served."""


def page_limit(request: Request, limit: int | None) -> int:
    """The page size asked for, within the service's bounds."""
    settings: PagedSettings = request.app.state.settings
    return min(limit or settings.default_limit, settings.max_limit)


def next_link(request: Request, cursor: str | None) -> str | None:
    """The URL of the next page (same query, new cursor)."""
    return str(request.url.include_query_params(cursor=cursor)) if cursor else None
