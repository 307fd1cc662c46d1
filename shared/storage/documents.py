"""What the document services (education, tourism) share on top of the storage port: a
repository base with the plain reads, stable ids for pairs, and the search terms of their
localized names and descriptions. The services add their own collections and writes."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence

from shared.storage.errors import RecordDeleted, RecordNotFound
from shared.storage.keys import fold, terms
from shared.storage.model import Page, Record, Tally
from shared.storage.port import Store
from shared.storage.query import In, Predicate, Query

# Only the start of a long description is indexed: it keeps a document's index rows under
# the store's per-document bound (5,000) whatever the text, and what a description is
# about is said at its start.
DESCRIPTION_INDEXED_CHARS = 1500
_CJK_CHAR = range(0x3400, 0xA000)


def derived_id(*parts: str) -> str:
    """A stable id for a pair such as (place, citizen): one record per pair by construction."""
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:32]


def cjk_unigrams(text: str) -> list[str]:
    """The single Chinese characters of a text, folded."""
    # Indexed for short fields, so that a one-character query (数, 诗) finds names and
    # keywords; bigrams alone would miss a character at the end of a run.
    return [ch for ch in fold(text) if ord(ch) in _CJK_CHAR]


def index_terms(short: Iterable[str], long: Iterable[str]) -> list[str]:
    """Every search term of a document: words and CJK bigrams of all its texts (short ones
    first), then the single CJK characters of the short ones (names, tags, keywords)."""
    short = list(short)
    out: list[str] = []
    for text in [*short, *long]:
        out.extend(terms(text))
    for text in short:
        out.extend(cjk_unigrams(text))
    return list(dict.fromkeys(out))


class DocumentRepository:
    """The reads every document service makes through the storage port."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def get(self, collection: str, id: str) -> Record | None:
        """The current version of a document, or None (also for a deleted one)."""
        try:
            return await self.store.get(collection, id)
        except (RecordNotFound, RecordDeleted):
            return None

    async def many(self, collection: str, ids: Sequence[str]) -> dict[str, Record]:
        """Documents by id (at most 1000) from a collection that indexes `_id`."""
        unique = list(dict.fromkeys(ids))[:1000]
        if not unique:
            return {}
        page = await self.store.search(
            collection, Query(where=[In("_id", unique)], limit=len(unique))
        )
        return {r.id: r for r in page.items}

    async def search(self, collection: str, query: Query) -> Page:
        """One page of a collection."""
        return await self.store.search(collection, query)

    async def tally(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str]
    ) -> Tally:
        """How many live documents match, and how many hold each value of `keys`."""
        return await self.store.tally(collection, where, keys)
