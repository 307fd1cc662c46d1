"""Content language: Chinese (`zh`, the default) and English (`en`).

`Accept-Language` (RFC 9110 §12.5.4) is negotiated leniently: the supported language with
the highest weight wins, region and script subtags are ignored (`zh-CN`, `zh-Hant`, `en-GB`),
`*` means the default, and a header that names nothing supported, or that cannot be parsed,
falls back to the default, since a browser's header is not the caller's fault. An explicit
`lang=` query parameter is different: an unknown value is the caller's error (422).

A text missing in the chosen language falls back to the other one, so a place with only a
Chinese name still has a name in English answers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Literal

Lang = Literal["zh", "en"]
SUPPORTED: tuple[Lang, ...] = ("zh", "en")
DEFAULT: Lang = "zh"
_RANGE = re.compile(r"^(\*|[A-Za-z]{1,8}(?:-[A-Za-z0-9]{1,8})*)$")
_WEIGHT = re.compile(r"^q=(0(?:\.\d{0,3})?|1(?:\.0{0,3})?)$")


def negotiate(header: str | None) -> Lang:
    """The language to answer in for an `Accept-Language` header (default when none fits)."""
    if not header:
        return DEFAULT
    ranked: list[tuple[float, int, Lang]] = []
    for position, item in enumerate(header.split(",")[:32]):
        tag, *params = (part.strip() for part in item.split(";"))
        if not _RANGE.match(tag):
            continue
        weight = 1.0
        for param in params:
            m = _WEIGHT.match(param.replace(" ", ""))
            if m:
                weight = float(m.group(1))
        if weight <= 0:
            continue
        primary = tag.split("-")[0].lower()
        lang: Lang | None = DEFAULT if primary == "*" else _supported(primary)
        if lang is not None:
            ranked.append((-weight, position, lang))
    return min(ranked)[2] if ranked else DEFAULT


def _supported(primary: str) -> Lang | None:
    for lang in SUPPORTED:
        if lang == primary:
            return lang
    return None


def pick(texts: Mapping[str, Any] | None, lang: Lang) -> str | None:
    """A text in `lang`, else in the other language, else None."""
    if not texts:
        return None
    for candidate in (lang, *(other for other in SUPPORTED if other != lang)):
        value = texts.get(candidate)
        if value:
            return str(value)
    return None
