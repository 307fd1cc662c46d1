"""Person names: normalisation, pinyin and the search and duplicate keys built from them.

Chinese names are searched by prefix of the characters, by full pinyin ("zhangwei") and by
initials ("zw"); Latin names by prefix of the whole name and of each word. Duplicate
detection compares names regardless of word order, so "Zhang Wei", "Wei Zhang" and 张伟
give the same key.
"""

from __future__ import annotations

import re
import unicodedata

from pypinyin import Style, lazy_pinyin

from shared.storage.keys import fold, prefixes

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
_SPACES = re.compile(r"\s+")
_NOT_LETTER = re.compile(r"[^a-z]")


def clean(name: str) -> str:
    """NFKC (full-width forms to ASCII), spaces collapsed, middle dots unified."""
    text = unicodedata.normalize("NFKC", name).replace("\u00b7", "·").replace("\u2022", "·")
    return _SPACES.sub(" ", text).strip()


def has_cjk(text: str) -> bool:
    """Whether the text holds Chinese characters."""
    return bool(_CJK.search(text))


def syllables(zh: str) -> list[str]:
    """Toneless pinyin syllables of the Chinese characters of a name (others dropped)."""
    chars = "".join(_CJK.findall(zh))
    return [s for s in lazy_pinyin(chars, style=Style.NORMAL, errors="ignore") if s]


def initials(zh: str) -> str:
    """First letters of the pinyin syllables: 张伟 -> "zw"."""
    chars = "".join(_CJK.findall(zh))
    return "".join(lazy_pinyin(chars, style=Style.FIRST_LETTER, errors="ignore")).lower()


def romanize(zh: str) -> str:
    """A Latin form of a Chinese name, family name first: 张伟 -> "Zhang Wei"."""
    parts = syllables(zh)
    if not parts:
        return ""
    family, given = parts[0], "".join(parts[1:])
    return f"{family.capitalize()} {given.capitalize()}".strip()


def compact(text: str) -> str:
    """Folded letters only: "Zhang  Wei" -> "zhangwei", "José" -> "jose"."""
    return _NOT_LETTER.sub("", fold(text))


def _latin_words(latin: str) -> list[str]:
    return [w for w in (compact(p) for p in re.split(r"[\s·\-']+", latin)) if w]


def name_keys(zh: str | None, latin: str | None) -> list[str]:
    """Prefix-search keys of the written names (whole name and each word, folded)."""
    out: list[str] = []
    if zh:
        out.append(fold(zh).replace(" ", ""))
    if latin:
        latin = clean(latin)
        out.extend(prefixes(latin))
        out.append(compact(latin))
    return [k for k in dict.fromkeys(out) if k]


def pinyin_keys(zh: str | None) -> list[str]:
    """Prefix-search keys from the pinyin of the Chinese name: full and initials."""
    if not zh:
        return []
    full = "".join(syllables(zh))
    return [k for k in dict.fromkeys([full, initials(zh)]) if k]


def match_forms(zh: str | None, latin: str | None) -> list[str]:
    """Order-independent forms of a name used to spot probable duplicates."""
    forms: list[str] = []
    if zh:
        forms.append("zh:" + fold(zh).replace(" ", ""))
        words = syllables(zh)
        if words:
            forms.append("py:" + "".join(sorted(words)))
    if latin:
        words = _latin_words(latin)
        if words:
            forms.append("py:" + "".join(sorted(words)))
            # "Zhangwei" written as one word: its syllables are unknown, keep it whole too.
            forms.append("py1:" + "".join(words))
    if zh and syllables(zh):
        forms.append("py1:" + "".join(syllables(zh)))
    return list(dict.fromkeys(forms))


def query_form(text: str) -> tuple[str, str | None]:
    """A search text as (name prefix, pinyin prefix or None for Chinese input)."""
    cleaned = clean(text)
    if has_cjk(cleaned):
        return fold(cleaned).replace(" ", ""), None
    return fold(cleaned), compact(cleaned)
