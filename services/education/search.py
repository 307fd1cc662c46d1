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

Facets (subject, level, type, language, license) are disjunctive: a facet's counts are
those of the matches under every *other* filter, so choosing "video" does not hide the
counts of the other types. They come from the store's `tally`, which finds the matches once
and counts them per value: one tally with every filter gives the total and the counts of
the facets nothing is chosen in, plus one per facet with a choice, without its own filter.
Values with no match are left out unless selected.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Literal

from services.education.access import Viewer
from services.education.repository import RESOURCES, EducationRepository, field_texts
from services.education.vocab import FACETS
from shared.cursors import decode_cursor, encode_cursor
from shared.errors import Unprocessable
from shared.storage import AllOf, Eq, In, Predicate, Prefix, Query, Range, Record, Sort, Tally
from shared.storage.keys import fold, is_cjk, terms, words

SortOrder = Literal["relevance", "newest", "oldest"]
MAX_QUERY_TERMS = 32
PREFIX_MIN = 3
WEIGHTS = {"name": 3, "keywords": 2, "description": 1}
PHRASE_BONUS = 5
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


@dataclass(frozen=True, slots=True)
class Fields:
    """What scoring reads of a resource: its names and its keywords, folded, and the
    words of each as one string, every word between spaces (" photosynthesis basics ")."""

    texts: tuple[tuple[str, ...], tuple[str, ...]]  # names, keywords
    words: tuple[str, str]

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> Fields:
        """The fields of a stored body."""
        short = field_texts(body, descriptions=False)
        names, keywords = (tuple(fold(v) for v in short[n]) for n in ("name", "keywords"))
        return cls((names, keywords), (_spaced_words(names), _spaced_words(keywords)))


def _spaced_words(texts: tuple[str, ...]) -> str:
    """The words of `texts`, each between spaces: a word is `" w "` in it, a word's start
    `" pre"`."""
    return " " + " ".join(w for t in texts for w in words(t)) + " "


# Weights of the fields in Fields order.
_FIELD_WEIGHTS = (WEIGHTS["name"], WEIGHTS["keywords"])


class FieldMemo:
    """The scoring fields of the latest `size` resource versions seen. A version's body
    never changes, and the relevance candidates of a common query (its newest matches)
    are the same resources search after search: folding their names and keywords again
    was a third of a search's time. Kept as plain tuples of strings, which the garbage
    collector stops tracking: 20,000 objects with references would make every full
    collection walk them, a pause of up to 100 ms that the p99 shows."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self.found: OrderedDict[tuple[str, int], tuple[Any, ...]] = OrderedDict()

    def get(self, record: Record) -> Fields:
        """The fields of `record`'s version (computed once while remembered)."""
        key = (record.id, record.version)
        packed = self.found.get(key)
        if packed is None:
            fields = Fields.of(record.body)
            self.found[key] = (fields.texts, fields.words)
            if len(self.found) > self.size:
                self.found.popitem(last=False)
            return fields
        self.found.move_to_end(key)
        return Fields(*packed)


def score(record: Record, text: TextQuery, fields: Fields | None = None) -> int:
    """The relevance of a candidate (see the module docstring), from its `fields` (found
    from its body if not given). A CJK term (bigram or character) occurs in a field where
    it is a substring of the folded text, a word where it is one of the text's words (a
    lone letter anywhere), a prefix where a word starts with it. A candidate holds every
    term (the index matched it), so a term found neither in its names nor in its keywords
    is in its description: weight 1 without folding the longest text of all."""
    f = fields or Fields.of(record.body)
    fallback = WEIGHTS["description"]

    def holds(i: int, term: str) -> bool:
        if is_cjk(term) or len(term) == 1:
            return any(term in t for t in f.texts[i])
        return f" {term} " in f.words[i]

    def starts(i: int, prefix: str) -> bool:
        return f" {prefix}" in f.words[i]

    def weight(found: Callable[[int, str], bool], term: str) -> int:
        """The weight of the first field (names, then keywords) where `term` is found."""
        return next((w for i, w in enumerate(_FIELD_WEIGHTS) if found(i, term)), fallback)

    total = sum(weight(holds, t) for t in text.exact)
    total += sum(weight(starts, p) for p in text.prefixes)
    if text.phrase and any(text.phrase in n for n in f.texts[0]):
        total += PHRASE_BONUS
    return total


@dataclass
class Result:
    """One page of a search."""

    items: list[Record]
    total: int
    facets: dict[str, list[dict[str, Any]]] | None
    next_cursor: str | None


def _facet_filters(c: Criteria, skip: str | None = None) -> list[Predicate]:
    """The predicates of the chosen facet values (but those of `skip`)."""
    out: list[Predicate] = []
    for name, values in c.filters.items():
        if values and name != skip:
            key = FACETS[name][0]
            out.append(Eq(key, values[0]) if len(values) == 1 else In(key, values))
    return out


class CatalogueSearch:
    """Searches the catalogue as a given viewer."""

    def __init__(self, repo: EducationRepository, *, candidates: int = 200) -> None:
        self.repo = repo
        self.candidates = candidates
        self.fields = FieldMemo()

    def _where(
        self,
        viewer: Viewer,
        c: Criteria,
        text: TextQuery | None,
        skip: str | None = None,
        *,
        catch_all: bool = True,
    ) -> list[Predicate]:
        # Order matters: among predicates of equal rank the store drives by the first one
        # (repository.SPECS declares the facet keys and state coarse), so the text comes
        # first, then the narrowest filters, and the caller's visibility last.
        where: list[Predicate] = text.predicates() if text is not None else []
        where += _facet_filters(c, skip)
        if c.mine:
            where.append(Eq("owner", viewer.sub or ""))
        if c.state is not None:
            where.append(Eq("state", c.state))
        where.extend(viewer.resource_scope())
        if not where and catch_all:  # an admin's unfiltered list: a range all resources meet
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
        state = (
            decode_cursor(cursor, fingerprint) if cursor else {"m": "r" if text else "d", "o": 0}
        )
        if c.sort == "relevance" and text is not None and state.get("m") == "r":
            items, nxt = await self._ranked(where, text, limit, state, fingerprint)
        else:
            items, nxt = await self._dated(where, c.sort == "oldest", limit, state, fingerprint)
        if not facets:
            return Result(items, await self.repo.count(RESOURCES, where), None, nxt)
        total, counts = await self._counted(viewer, c, text)
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
        # Stable: ties keep date order.
        ranked = sorted(page.items, key=lambda r: -score(r, text, self.fields.get(r)))
        offset = int(state.get("o", 0))
        items = ranked[offset : offset + limit]
        if offset + limit < len(ranked):
            return items, encode_cursor({"h": fingerprint, "m": "r", "o": offset + limit})
        if page.next_cursor is None:
            return items, None
        # The rest of the matches, after the candidate set, in date order.
        rest = {"h": fingerprint, "m": "d", "c": page.next_cursor}
        if len(items) < limit:
            more, nxt = await self._dated(where, False, limit - len(items), rest, fingerprint)
            return items + more, nxt
        return items, encode_cursor(rest)

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
        return list(page.items), encode_cursor(
            {"h": fingerprint, "m": "d", "c": nxt}
        ) if nxt else None

    async def _counted(
        self, viewer: Viewer, c: Criteria, text: TextQuery | None
    ) -> tuple[int, dict[str, list[dict[str, Any]]]]:
        """The total and the facet counts: one tally with every filter (the total, and the
        counts of each facet nothing is chosen in), and one more per facet with a choice,
        without that facet's own filter (disjunctive facets)."""
        chosen = [name for name, values in c.filters.items() if values]
        free = [name for name in FACETS if name not in chosen]
        # The matches without facet filters (the text, the caller's visibility) are found
        # once for all the tallies.
        base = self._where(viewer, replace(c, filters={}), text, catch_all=False)
        if not base:  # an admin's filters alone: each tally on its own
            whole = await self._tally(viewer, c, text, free)
            found = dict.fromkeys(free, whole)
            for name in chosen:
                found[name] = await self._tally(viewer, c, text, [name], skip=name)
        else:
            asks: list[tuple[Sequence[Predicate], Sequence[str]]] = [
                (_facet_filters(c), [FACETS[n][0] for n in free])
            ]
            asks += [(_facet_filters(c, skip=n), [FACETS[n][0]]) for n in chosen]
            whole, *each = await self.repo.tallies(RESOURCES, base, asks)
            found = dict.fromkeys(free, whole) | dict(zip(chosen, each, strict=True))
        out: dict[str, list[dict[str, Any]]] = {}
        for name, (key, vocabulary) in FACETS.items():
            counts = found[name].counts[key]
            picked = set(c.filters.get(name, []))
            shown = [code for code in vocabulary if counts.get(code) or code in picked]
            shown.sort(key=lambda code: (-counts.get(code, 0), code))
            out[name] = [
                {
                    "value": code,
                    "label": {"zh": vocabulary[code][0], "en": vocabulary[code][1]},
                    "count": counts.get(code, 0),
                }
                for code in shown
            ]
        return whole.total, out

    async def _tally(
        self,
        viewer: Viewer,
        c: Criteria,
        text: TextQuery | None,
        facets: list[str],
        skip: str | None = None,
    ) -> Tally:
        where = self._where(viewer, c, text, skip=skip)
        return await self.repo.tally(RESOURCES, where, [FACETS[n][0] for n in facets])
