"""Paging through a store query for tests that compare two plans page by page."""

from __future__ import annotations

import dataclasses

from shared.storage import Query, Store

MAX_PAGES = 1000  # a cursor that never ends fails the comparison instead of hanging


async def pages(store: Store, collection: str, query: Query) -> list[list[str]]:
    """The ids of every page of `query`, following cursors."""
    out: list[list[str]] = []
    cursor: str | None = None
    while True:
        page = await store.search(collection, dataclasses.replace(query, cursor=cursor))
        out.append([r.id for r in page.items])
        cursor = page.next_cursor
        if cursor is None or len(out) > MAX_PAGES:
            return out
