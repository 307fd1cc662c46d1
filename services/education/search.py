"""Catalogue search: full text in Chinese and English, facet filters and counts, relevance
or date order, cursor paging — every part answered from the storage indexes.

Text. A query is cut into terms the way resources are indexed (`resource_terms`): Chinese
runs into character bigrams (a single character stays one, matched against names and
keywords), other text into folded words. A resource matches when it holds every term: one
`AllOf` on the `term` key for bigrams and short words, and a `Prefix` per Latin word of
three letters or more, so "photo" finds "photosynthesis" while someone is still typing.

Relevance (docs/education.md). Matching is decided by the index; ranking reads only a
bounded candidate set: the newest `candidates` matches (default 200) are scored by where
each query term occurs — name 3, keywords 2, description 1 (the best field per term) —
plus 5 when the whole query appears in a name, ties by date. Matches beyond the candidate
set follow in date order on later pages, so every match is reachable and no request costs
more than one bounded read.

Facets. For each facet (subject, level, type, language, license) and each value of its
vocabulary, one `count()` with the text predicates, the caller's visibility, and the
filters of the *other* facets (the usual disjunctive facets: choosing "video" does not
hide the counts of the other types). Values with no match are left out unless selected.
Counting stops early where the answer is known: no match at all, or, for the
single-valued license, once the counts add up to the matches.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from services.education.access import Viewer
from services.education.repository import RESOURCES, EducationRepository, field_texts
from services.education.vocab import FACETS
from shared.errors import BadRequest, Unprocessable
from shared.storage import AllOf, Eq, In, Predicate, Prefix, Query, Range, Record, Sort
from shared.storage.keys import fold, terms

SortOrder = Literal["relevance", "newest", "oldest"]
MAX_QUERY_TERMS = 32
PREFIX_MIN = 3
WEIGHTS = {"name": 3, "keywords": 2, "description": 1}
PHRASE_BONUS = 5
# Facets whose key has exactly one value per resource (schemas.ResourceIn.license).
SINGLE_VALUED = frozenset({"license"})
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Criteria:
    """The parameters of `GET /resources` (all optional, AND-combined)."""

    q: str | None = None
    filters: dict[str, list[str]] = field(default_factory=dict)  # facet name -> values
    state: str | None = None
    mine: bool = False
    sort: SortOrder = "relevance"


@dataclass(frozen=True, slots=True)
class TextQuery:
    """A query split into what the index must hold."""

    exact: list[str]  # CJK bigrams/characters and short words: AllOf
    prefixes: list[str]  # longer Latin words: Prefix each
    phrase: str  # the folded query, for the phrase bonus

    @property
    def all_terms(self) -> list[str]:
        """Every term, exact or prefix."""
        return self.exact + self.prefixes

    def predicates(self) -> list[Predicate]:
        """Index predicates that a matching resource satisfies."""
        where: list[Predicate] = []
        if self.exact:
            where.append(AllOf("term", self.exact))
        where.extend(Prefix("term", p) for p in self.prefixes)
        return where


def parse_text(q: str) -> TextQuery:
    """Split a query into index terms; 422 for one with no terms or too many."""
    found = terms(q)
    exact = [t for t in found if not (t.isascii() and len(t) >= PREFIX_MIN)]
    prefixes = [t for t in found if t.isascii() and len(t) >= PREFIX_MIN]
    if not found or len(found) > MAX_QUERY_TERMS:
        message = "has no searchable words" if not found else f"has over {MAX_QUERY_TERMS} terms"
        raise Unprocessable(
            "The search text cannot be used.",
            errors=[{"field": "q", "in": "query", "message": message}],
        )
    return TextQuery(exact, prefixes, " ".join(fold(q).split()))


def score(record: Record, text: TextQuery) -> int:
    """The relevance of a candidate (see the module docstring)."""
    per_field = {
        name: [set(terms(v)) | set(fold(v)) for v in values]
        for name, values in field_texts(record.body).items()
    }
    total = 0
    for term in text.exact:
        total += max(
            (WEIGHTS[f] for f, sets in per_field.items() if any(term in s for s in sets)),
            default=0,
        )
    for prefix in text.prefixes:
        total += max(
            (
                WEIGHTS[f]
                for f, sets in per_field.items()
                if any(t.startswith(prefix) for s in sets for t in s)
            ),
            default=0,
        )
    names = [fold(n) for n in field_texts(record.body)["name"]]
    if text.phrase and any(text.phrase in n for n in names):
        total += PHRASE_BONUS
    return total


def _encode(data: dict[str, Any]) -> str:
    raw = json.dumps(data, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str, fingerprint: str) -> dict[str, Any]:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, binascii.Error) as exc:
        raise BadRequest("Malformed cursor.") from exc
    if not isinstance(data, dict) or data.get("h") != fingerprint:
        raise BadRequest("The cursor belongs to another search.")
    return data


@dataclass
class Result:
    """One page of a search."""

    items: list[Record]
    total: int
    facets: dict[str, list[dict[str, Any]]] | None
    next_cursor: str | None


class CatalogueSearch:
    """Searches the catalogue as a given viewer."""

    def __init__(self, repo: EducationRepository, *, candidates: int = 200) -> None:
        self.repo = repo
        self.candidates = candidates

    def _where(
        self,
        viewer: Viewer,
        c: Criteria,
        text: TextQuery | None,
        skip: str | None = None,
        extra: Predicate | None = None,
    ) -> list[Predicate]:
        # Order matters: among predicates of equal rank the store drives by the first one
        # (repository.SPECS declares the facet keys and state coarse), so the text comes
        # first, then the narrowest filters, and the caller's visibility last.
        where: list[Predicate] = text.predicates() if text is not None else []
        if extra is not None:
            where.append(extra)
        for name, values in c.filters.items():
            if values and name != skip:
                key = FACETS[name][0]
                where.append(Eq(key, values[0]) if len(values) == 1 else In(key, values))
        if c.mine:
            where.append(Eq("owner", viewer.sub or ""))
        if c.state is not None:
            where.append(Eq("state", c.state))
        where.extend(viewer.resource_scope())
        if not where:  # an admin's unfiltered list: one range every resource satisfies
            where.append(Range("date", ge=_EPOCH))
        return where

    async def search(
        self, viewer: Viewer, c: Criteria, *, limit: int, cursor: str | None, facets: bool
    ) -> Result:
        """One page of matching resources, the total and (optionally) facet counts."""
        text = parse_text(c.q) if c.q else None
        where = self._where(viewer, c, text)
        fingerprint = hashlib.sha256(
            repr((viewer.sub, viewer.is_admin, c, limit)).encode()
        ).hexdigest()[:16]
        state = _decode(cursor, fingerprint) if cursor else {"m": "r" if text else "d", "o": 0}
        if c.sort == "relevance" and text is not None and state.get("m") == "r":
            items, nxt = await self._ranked(where, text, limit, state, fingerprint)
        else:
            items, nxt = await self._dated(where, c.sort == "oldest", limit, state, fingerprint)
        total = await self.repo.count(RESOURCES, where)
        counts = await self._facets(viewer, c, text, total) if facets else None
        return Result(items, total, counts, nxt)

    async def _ranked(
        self,
        where: list[Predicate],
        text: TextQuery,
        limit: int,
        state: dict[str, Any],
        fingerprint: str,
    ) -> tuple[list[Record], str | None]:
        query = Query(where=where, sort=[Sort("date", descending=True)], limit=self.candidates)
        page = await self.repo.search(RESOURCES, query)
        ranked = sorted(page.items, key=lambda r: -score(r, text))  # stable: ties by date
        offset = int(state.get("o", 0))
        items = ranked[offset : offset + limit]
        if offset + limit < len(ranked):
            return items, _encode({"h": fingerprint, "m": "r", "o": offset + limit})
        if page.next_cursor is None:
            return items, None
        # The rest of the matches, after the candidate set, in date order.
        rest = {"h": fingerprint, "m": "d", "c": page.next_cursor}
        if len(items) < limit:
            more, nxt = await self._dated(where, False, limit - len(items), rest, fingerprint)
            return items + more, nxt
        return items, _encode(rest)

    async def _dated(
        self,
        where: list[Predicate],
        oldest: bool,
        limit: int,
        state: dict[str, Any],
        fingerprint: str,
    ) -> tuple[list[Record], str | None]:
        sort = [Sort("date", descending=not oldest)]
        store_cursor = state.get("c")
        query = Query(where=where, sort=sort, limit=limit, cursor=store_cursor)
        page = await self.repo.search(RESOURCES, query)
        nxt = page.next_cursor
        return list(page.items), _encode({"h": fingerprint, "m": "d", "c": nxt}) if nxt else None

    async def _facets(
        self, viewer: Viewer, c: Criteria, text: TextQuery | None, total: int
    ) -> dict[str, list[dict[str, Any]]]:
        out: dict[str, list[dict[str, Any]]] = {}
        for name, (key, vocabulary) in FACETS.items():
            chosen = set(c.filters.get(name, []))
            # Matches when this facet's own filter is left out (the total when it has none).
            base = (
                await self.repo.count(RESOURCES, self._where(viewer, c, text, skip=name))
                if chosen
                else total
            )
            values: list[dict[str, Any]] = []
            left = base
            for code, (zh, en) in vocabulary.items():
                # Nothing to find: no match at all, or (one value per resource) every match
                # already counted under earlier values.
                if base == 0 or (name in SINGLE_VALUED and left == 0):
                    n = 0
                else:
                    where = self._where(viewer, c, text, skip=name, extra=Eq(key, code))
                    n = await self.repo.count(RESOURCES, where)
                    left -= n
                if n or code in chosen:
                    values.append({"value": code, "label": {"zh": zh, "en": en}, "count": n})
            values.sort(key=lambda v: (-v["count"], v["value"]))
            out[name] = values
        return out
