"""Turning FHIR resource values into the storage engine's typed index keys.

`services.health.searchparams` says *which* values each search parameter covers (its paths);
this module says *how* they are indexed, per parameter type:

| type      | key `n`                          | companion keys                                   |
|-----------|----------------------------------|--------------------------------------------------|
| string    | folded prefixes of every part    | `n:exact` parts as written, `n:g` folded         |
|           | (whole part and each word)       | trigrams (`:contains`), `n:s` one sort value     |
| token     | `system|code`, `code`, `|code`,  | `n:text` search terms of the display texts       |
|           | `system|`                        |                                                  |
| date      | `(low, high)` spans              |                                                  |
| reference | `Type/id`                        |                                                  |
| quantity  | the numbers                      | `n:u` unit tokens and unit strings               |
| uri       | the uri, exactly                 |                                                  |
| number    | the numbers                      |                                                  |

Paths are dotted element paths, relative to the resource, in the FHIRPath subset R4's
search parameter expressions use:

- `name.given`: elements (lists are flattened at every step);
- `effective[x]`: a choice element in any of its types (`effectiveDateTime`, ...), each
  value tagged with its type (`DateTime`), so a date parameter can skip `onsetString`;
- `telecom.where(system='phone')`: keeps the elements whose field equals the literal;
- `subject.where(resolve() is Patient)`: keeps the references that point at a Patient
  (judged from the reference text, as no resolution is needed for that).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from shared.storage.keys import date_span, fold, prefixes, terms, token

Item = tuple[str | None, Any]
"""A value found under a path, with the type of the choice element it came from (or None)."""

# Prefix search covers the start of a part and of each of its words; beyond this many
# characters of one part (a long `valueString`), words are not indexed, so one document
# cannot produce thousands of index values (the engine refuses more than 5,000).
MAX_PREFIX_TEXT = 1024
# `:contains` trigrams cover the first this-many characters of each part, for the same reason.
MAX_GRAM_TEXT = 256
MAX_SORT_TEXT = 256

OPEN_LOW = datetime(1, 1, 1, tzinfo=UTC)  # a Period without a start began at the dawn of time
OPEN_HIGH = datetime(9999, 12, 31, tzinfo=UTC)  # ...and one without an end never ends

_DATE_TYPES = frozenset({"Date", "DateTime", "Instant", "Period", "Timing"})
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]")
_ADDRESS_FIELDS = ("city", "district", "state", "postalCode", "country")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")
_TYPE = re.compile(r"^[A-Z][A-Za-z]{1,63}$")
_ID = re.compile(r"^[A-Za-z0-9.-]{1,64}$")
_WHERE_FIELD = re.compile(r"^where\((\w+)\s*=\s*'([^']*)'\)$")
_WHERE_TYPE = re.compile(r"^where\(resolve\(\)\s+is\s+([A-Z][A-Za-z]+)\)$")
_NAME = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(\[x\])?$")


def _dedup(values: Iterable[Any]) -> list[Any]:
    return list(dict.fromkeys(values))


# --- paths -----------------------------------------------------------------------------------


@lru_cache(maxsize=1024)
def _steps(path: str) -> tuple[tuple[str, str], ...]:
    """Parse a path into (kind, argument) steps: field, choice, where-field, where-type."""
    parts: list[str] = []
    depth, start = 0, 0
    for i, ch in enumerate(path):  # split on dots outside parentheses
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "." and depth == 0:
            parts.append(path[start:i])
            start = i + 1
    parts.append(path[start:])
    steps: list[tuple[str, str]] = []
    for part in parts:
        if m := _WHERE_TYPE.match(part):
            steps.append(("is", m.group(1)))
        elif m := _WHERE_FIELD.match(part):
            steps.append(("where", f"{m.group(1)}={m.group(2)}"))
        elif m := _NAME.match(part):
            steps.append(("choice" if m.group(2) else "field", m.group(1)))
        else:
            raise ValueError(f"unsupported search path {path!r} (at {part!r})")
    return tuple(steps)


def _flatten(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list) else [value]


def select(resource: Mapping[str, Any], path: str) -> list[Item]:
    """The values under `path` (see the module docstring), each with its choice type."""
    items: list[Item] = [(None, resource)]
    for kind, arg in _steps(path):
        out: list[Item] = []
        for hint, value in items:
            if kind == "where":
                name, _, literal = arg.partition("=")
                if isinstance(value, Mapping) and value.get(name) == literal:
                    out.append((hint, value))
            elif kind == "is":
                ref = value.get("reference") if isinstance(value, Mapping) else None
                parsed = parse_reference(ref) if isinstance(ref, str) else None
                if parsed is not None and parsed[0] == arg:
                    out.append((hint, value))
            elif not isinstance(value, Mapping):
                continue
            elif kind == "field":
                out.extend((None, v) for v in _flatten(value.get(arg)))
            else:  # choice: `effective[x]` is any `effective<Type>` element
                n = len(arg)
                for key, child in value.items():
                    if key.startswith(arg) and len(key) > n and key[n].isupper():
                        out.extend((key[n:], v) for v in _flatten(child))
        items = out
    return items


def values(resource: Mapping[str, Any], paths: Sequence[str]) -> list[Item]:
    """The values under every one of `paths`, in order."""
    return [item for path in paths for item in select(resource, path)]


# --- references ------------------------------------------------------------------------------


def parse_reference(ref: str) -> tuple[str, str, bool] | None:
    """`(type, id, absolute)` of a reference, or None when it names no resource we index.

    Relative `Type/id` and absolute `http(s)://.../Type/id` are read (a version suffix
    `/_history/n` is dropped); contained (`#x`), `urn:uuid:`/`urn:oid:` (bundle-local),
    conditional (`Type?query`) and malformed references give None.
    """
    if not ref or "#" in ref or "?" in ref:
        return None
    absolute = bool(_SCHEME.match(ref))
    if absolute and not ref.lower().startswith(("http://", "https://")):
        return None  # urn:uuid:, urn:oid: and other schemes name no server resource
    ref = ref.split("/_history/", 1)[0].rstrip("/")
    segments = ref.split("/")
    if len(segments) < 2 or (not absolute and len(segments) != 2):
        return None
    rtype, rid = segments[-2], segments[-1]
    if not _TYPE.match(rtype) or not _ID.match(rid):
        return None
    return rtype, rid, absolute


def reference_keys(items: Iterable[Item]) -> list[str]:
    """`Type/id` of every Reference among the values (absolute URLs by their last two
    segments, as the query side reads them)."""
    out: list[str] = []
    for _, value in items:
        ref = value.get("reference") if isinstance(value, Mapping) else None
        parsed = parse_reference(ref) if isinstance(ref, str) else None
        if parsed is not None:
            out.append(f"{parsed[0]}/{parsed[1]}")
    return _dedup(out)


def local_references(items: Iterable[Item]) -> list[str]:
    """Like `reference_keys`, but relative references only.

    An absolute URL may name a resource on another server whose id happens to exist here;
    anything that grants access (the patient compartment) or pulls resources in
    (`$everything`) must not trust it.
    """
    out: list[str] = []
    for _, value in items:
        ref = value.get("reference") if isinstance(value, Mapping) else None
        parsed = parse_reference(ref) if isinstance(ref, str) else None
        if parsed is not None and not parsed[2]:
            out.append(f"{parsed[0]}/{parsed[1]}")
    return _dedup(out)


def references(resource: Mapping[str, Any]) -> list[str]:
    """Every relative `Type/id` reference anywhere in the resource (contained resources and
    extensions included), version suffixes dropped, duplicates removed, in document order.

    Absolute URLs, `urn:uuid:` and contained (`#x`) references are left out: see
    `local_references` and `parse_reference`.
    """
    out: list[str] = []
    stack: list[Any] = [resource]
    while stack:  # depth-first, children pushed in reverse to keep document order
        node = stack.pop()
        if isinstance(node, Mapping):
            ref = node.get("reference")
            if isinstance(ref, str):
                parsed = parse_reference(ref)
                if parsed is not None and not parsed[2]:
                    out.append(f"{parsed[0]}/{parsed[1]}")
            stack.extend(reversed([v for v in node.values() if isinstance(v, Mapping | list)]))
        elif isinstance(node, list):
            stack.extend(reversed([v for v in node if isinstance(v, Mapping | list)]))
    return _dedup(out)


# --- strings ---------------------------------------------------------------------------------


def _strings(value: Any) -> list[str]:
    return [s.strip() for s in _flatten(value) if isinstance(s, str) and s.strip()]


def _has_cjk(text: str) -> bool:
    return bool(_CJK.search(text))


def _name_full(name: Mapping[str, Any]) -> str:
    """A HumanName family first ("Müller José", "张伟"), or its text."""
    family = " ".join(_strings(name.get("family")))
    given = _strings(name.get("given"))
    if family and given:
        sep = "" if _has_cjk(family) and all(_has_cjk(g) for g in given) else " "
        return family + sep + sep.join(given)
    return family or " ".join(given) or " ".join(_strings(name.get("text")))


def string_parts(value: Any) -> list[str]:
    """The strings a string parameter matches in one value, as written.

    - a string: itself;
    - a HumanName: family, each given, prefixes, suffixes, text, and the whole name in both
      orders ("José Müller", "Müller José"); Chinese, Japanese and Korean names also run
      together family first ("张伟"), the way they are written and typed;
    - an Address: each line, city, district, state, postal code, country and text.
    """
    if isinstance(value, str):
        return _strings(value)
    if not isinstance(value, Mapping):
        return []
    if any(k in value for k in ("family", "given", "prefix", "suffix")):
        family = " ".join(_strings(value.get("family")))
        given = _strings(value.get("given"))
        parts = [
            *_strings(value.get("family")),
            *given,
            *_strings(value.get("prefix")),
            *_strings(value.get("suffix")),
            *_strings(value.get("text")),
        ]
        if given and (family or len(given) > 1):
            both = " ".join(given)
            parts += [f"{both} {family}".strip(), f"{family} {both}".strip()]
        if family and given:
            parts.append(_name_full(value))
        return _dedup(parts)
    if any(k in value for k in ("line", *_ADDRESS_FIELDS)):
        parts = _strings(value.get("line"))
        for field in _ADDRESS_FIELDS:
            parts += _strings(value.get(field))
        return _dedup(parts + _strings(value.get("text")))
    return _strings(value.get("text"))


def _full_value(value: Any) -> str | None:
    """The one string a value sorts by: a string itself, a name family first, an address's
    text or its parts in order."""
    if isinstance(value, str):
        return value.strip() or None
    if not isinstance(value, Mapping):
        return None
    if any(k in value for k in ("family", "given")):
        return _name_full(value) or None
    if "text" in value and isinstance(value["text"], str) and value["text"].strip():
        return str(value["text"]).strip()
    parts = string_parts(value)
    return " ".join(parts) or None


def trigrams(text: str, *, limit: int = MAX_GRAM_TEXT) -> list[str]:
    """Index values for `:contains`: every three-character window of the folded text, plus
    its last two characters and its last character.

    Every substring of three or more characters is then an AllOf of its own windows, and
    every shorter substring is a prefix of some value (a text shorter than three characters
    is itself among the values), so both can be answered from the index and re-checked.
    """
    folded = fold(text).strip()[:limit]
    return _dedup(folded[i : i + 3] for i in range(len(folded)))


def string_keys(key: str, items: Iterable[Item]) -> dict[str, list[Any]]:
    """Keys of a string parameter: `key`, `key:exact`, `key:g`, `key:s` (see the table)."""
    found = [value for _, value in items]
    parts = _dedup(p for value in found for p in string_parts(value))
    if not parts:
        return {}
    pre = _dedup(p for part in parts for p in prefixes(part[:MAX_PREFIX_TEXT]) if p)
    grams = _dedup(g for part in parts for g in trigrams(part) if g.strip())
    out: dict[str, list[Any]] = {key: pre, f"{key}:exact": parts, f"{key}:g": grams}
    for value in found:
        full = _full_value(value)
        if full:
            out[f"{key}:s"] = [fold(full)[:MAX_SORT_TEXT]]
            break
    return {k: v for k, v in out.items() if v}


# --- tokens ----------------------------------------------------------------------------------


def _text(value: Any) -> list[str]:
    return [t for s in _strings(value) for t in terms(s)]


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def token_keys(key: str, items: Iterable[Item]) -> dict[str, list[Any]]:
    """Keys of a token parameter: `key` (token forms) and `key:text` (display terms).

    Codings and CodeableConcept codings give `system|code` forms (and display terms, with
    the concept's text); Identifiers give `system|value` (and their type's text);
    ContactPoints give `system|value` with their system (phone, email, ...); plain codes and
    strings give `code` and `|code`; booleans the same for "true" / "false".
    """
    tokens: list[str] = []
    texts: list[str] = []

    def coding(c: Any) -> None:
        if isinstance(c, Mapping):
            tokens.extend(token(_str_or_none(c.get("system")), _str_or_none(c.get("code"))))
            texts.extend(_text(c.get("display")))

    for _, value in items:
        if isinstance(value, bool):
            tokens.extend(token(None, "true" if value else "false"))
        elif isinstance(value, str):
            tokens.extend(token(None, value.strip() or None))
        elif not isinstance(value, Mapping):
            continue
        elif "coding" in value or (
            "text" in value and "code" not in value and "value" not in value
        ):
            for c in _flatten(value.get("coding")):  # CodeableConcept
                coding(c)
            texts.extend(_text(value.get("text")))
        elif "value" in value and "code" not in value:  # Identifier, ContactPoint
            system, code = _str_or_none(value.get("system")), _str_or_none(value.get("value"))
            tokens.extend(token(system, code))
            kind = value.get("type")
            if isinstance(kind, Mapping):
                texts.extend(_text(kind.get("text")))
        else:
            coding(value)
    out = {key: _dedup(tokens), f"{key}:text": _dedup(texts)}
    return {k: v for k, v in out.items() if v}


# --- dates -----------------------------------------------------------------------------------


def span_of(value: Any) -> tuple[datetime, datetime]:
    """`date_span` in UTC for zone-less values; ValueError for anything that is not a FHIR
    date, dateTime or instant (also for dates at the edge of the calendar)."""
    if not isinstance(value, str):
        raise ValueError(f"not a FHIR date/dateTime: {value!r}")
    try:
        return date_span(value, tz=UTC)
    except OverflowError as exc:  # e.g. "9999-12-31": its end is past the last datetime
        raise ValueError(f"date out of range: {value!r}") from exc


def _period(period: Mapping[str, Any]) -> tuple[datetime, datetime] | None:
    start, end = period.get("start"), period.get("end")
    if start is None and end is None:
        return None
    low = span_of(start)[0] if start is not None else OPEN_LOW
    high = span_of(end)[1] if end is not None else OPEN_HIGH
    if low > high:
        raise ValueError(f"Period starts after it ends: {start!r} > {end!r}")
    return low, high


def date_spans(items: Iterable[Item]) -> list[tuple[datetime, datetime]]:
    """`(low, high)` spans of dates, dateTimes, instants, Periods and Timings (events and
    `repeat.boundsPeriod`). Choice values of other types (`onsetString`, `performedAge`)
    are skipped; a value that should be a date and is not raises ValueError."""
    out: list[tuple[datetime, datetime]] = []
    for hint, value in items:
        if hint is not None and hint not in _DATE_TYPES:
            continue
        if isinstance(value, Mapping):
            if hint == "Timing" or (hint is None and ("event" in value or "repeat" in value)):
                out.extend(span_of(e) for e in _flatten(value.get("event")))
                repeat = value.get("repeat")
                bounds = repeat.get("boundsPeriod") if isinstance(repeat, Mapping) else None
                span = _period(bounds) if isinstance(bounds, Mapping) else None
            else:
                span = _period(value)
            if span is not None:
                out.append(span)
        else:
            out.append(span_of(value))
    return _dedup(out)


# --- quantities, numbers, uris ---------------------------------------------------------------


def _number(value: Any) -> int | float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return value if math.isfinite(value) else None


def quantity_keys(key: str, items: Iterable[Item]) -> dict[str, list[Any]]:
    """Keys of a quantity parameter: `key` (values) and `key:u` (unit tokens, unit text)."""
    numbers: list[int | float] = []
    units: list[str] = []
    for _, value in items:
        if not isinstance(value, Mapping):
            continue
        number = _number(value.get("value"))
        if number is not None:
            numbers.append(number)
        units.extend(token(_str_or_none(value.get("system")), _str_or_none(value.get("code"))))
        units.extend(_strings(value.get("unit")))
    out = {key: _dedup(numbers), f"{key}:u": _dedup(units)}
    return {k: v for k, v in out.items() if v}


def number_values(items: Iterable[Item]) -> list[int | float]:
    """The numbers among the values."""
    return _dedup(n for _, v in items if (n := _number(v)) is not None)


def uri_values(items: Iterable[Item]) -> list[str]:
    """The uris (and canonicals) among the values, exactly as written."""
    return _dedup(v for _, v in items if isinstance(v, str) and v)
