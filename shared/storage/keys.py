"""Helpers that turn values into normalized index keys (used by collection extractors).

- `fold`: case- and accent-insensitive, width-normalized text (NFKC, strip marks, casefold).
- `terms`: search terms of free text: Latin words plus Chinese character bigrams, so that a
  query's terms are found with an AllOf predicate in any language without word spaces.
- `date_span`: a FHIR date/dateTime/instant to the [low, high) instants its precision covers.
- `geohash` / `geohash_cells`: cells of a point at each precision, for prefix-free equality.
- `token`: `system|code` tokens in the forms FHIR token search needs.
"""

from __future__ import annotations

import functools
import re
import sys
import unicodedata
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo

_CJK = (
    r"\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002a6df\U0002a700-\U0002ebef"
    r"\u3040-\u30ff\uac00-\ud7af"
)
_CJK_RUN = re.compile(f"[{_CJK}]+")
_WORD = re.compile(r"[^\W_]+")


@functools.cache
def _combining() -> dict[int, None]:
    # Every combining mark, for str.translate: one pass in C instead of a Python test per
    # character (built once per process, ~0.2 s).
    return {cp: None for cp in range(sys.maxunicode + 1) if unicodedata.combining(chr(cp))}


def fold(text: str) -> str:
    """Normalize for matching: NFKC (full-width to ASCII), accents removed, case-folded."""
    if text.isascii():  # NFKC, NFD and NFC leave ASCII as it is; it has no marks
        return text.casefold()
    text = unicodedata.normalize("NFKC", text)
    decomposed = unicodedata.normalize("NFD", text)
    stripped = decomposed.translate(_combining())
    return unicodedata.normalize("NFC", stripped).casefold()


def words(folded: str) -> list[str]:
    """The words of folded text outside its CJK runs, as `terms` cuts them."""
    return _WORD.findall(_CJK_RUN.sub(" ", folded))


def is_cjk(term: str) -> bool:
    """Whether a term is CJK characters only (a bigram or a lone character of `terms`)."""
    return _CJK_RUN.fullmatch(term) is not None


def terms(text: str) -> list[str]:
    """Search terms of a text: folded Latin/other words, and CJK runs as character bigrams
    (a lone CJK character stays a unigram). Order kept, duplicates removed."""
    folded = fold(text)
    out: list[str] = []
    for run in _CJK_RUN.findall(folded):
        if len(run) == 1:
            out.append(run)
        else:
            out.extend(run[i : i + 2] for i in range(len(run) - 1))
    out.extend(words(folded))
    return list(dict.fromkeys(out))


def prefixes(text: str, *, max_len: int = 64) -> list[str]:
    """Folded forms usable for prefix search of a whole string and of each of its words."""
    folded = fold(text).strip()
    words = [w for w in re.split(r"\s+", folded) if w]
    return list(dict.fromkeys([folded[:max_len], *(w[:max_len] for w in words)]))


_DATE_RE = re.compile(
    r"^(?P<y>\d{4})(?:-(?P<m>\d{2})(?:-(?P<d>\d{2})"
    r"(?:T(?P<H>\d{2}):(?P<M>\d{2})(?::(?P<S>\d{2})(?:\.(?P<f>\d{1,9}))?)?"
    r"(?P<tz>Z|[+-]\d{2}:\d{2})?)?)?)?$"
)


def _add_months(d: datetime, months: int) -> datetime:
    y, m = divmod(d.month - 1 + months, 12)
    return d.replace(year=d.year + y, month=m + 1)


def date_span(value: str, *, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
    """[low, high) of a FHIR date, dateTime or instant at the precision it is written in.

    "2024" covers the whole year, "2024-05-03" the day, "2024-05-03T10:00:00+08:00" the second.
    Values without a zone are read in `tz`. Raises ValueError for anything else.
    """
    m = _DATE_RE.match(value.strip()) if isinstance(value, str) else None
    if m is None:
        raise ValueError(f"not a FHIR date/dateTime: {value!r}")
    g = m.groupdict()
    zone: tzinfo = tz
    if g["tz"] == "Z":
        zone = UTC
    elif g["tz"]:
        sign = 1 if g["tz"][0] == "+" else -1
        hh, mm = int(g["tz"][1:3]), int(g["tz"][4:6])
        if hh > 14 or mm > 59:
            raise ValueError(f"bad time zone offset in {value!r}")
        zone = timezone(sign * timedelta(hours=hh, minutes=mm))
    elif g["H"] is not None:
        raise ValueError(f"a dateTime with a time needs a time zone: {value!r}")
    frac = g["f"] or ""
    low = datetime(
        int(g["y"]),
        int(g["m"] or 1),
        int(g["d"] or 1),
        int(g["H"] or 0),
        int(g["M"] or 0),
        int(g["S"] or 0),
        int((frac + "000000")[:6]),
        tzinfo=zone,
    )
    if g["m"] is None:
        high = low.replace(year=low.year + 1)
    elif g["d"] is None:
        high = _add_months(low, 1)
    elif g["H"] is None:
        high = low + timedelta(days=1)
    elif g["S"] is None:
        high = low + timedelta(minutes=1)
    elif not frac:
        high = low + timedelta(seconds=1)
    else:
        high = low + timedelta(microseconds=10 ** max(0, 6 - len(frac)))
    return low.astimezone(UTC), high.astimezone(UTC)


def day_span(d: date, *, tz: tzinfo = UTC) -> tuple[datetime, datetime]:
    """[low, high) of a calendar day in `tz`."""
    low = datetime(d.year, d.month, d.day, tzinfo=tz)
    return low.astimezone(UTC), (low + timedelta(days=1)).astimezone(UTC)


_BASE32 = "0123456789bcdefghjkmnpqrstuvwxyz"


def geohash(lat: float, lon: float, precision: int = 9) -> str:
    """The geohash of a point (precision 1-12 characters)."""
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise ValueError(f"point out of range: ({lat}, {lon})")
    if not 1 <= precision <= 12:
        raise ValueError("geohash precision is 1 to 12")
    lat_lo, lat_hi, lon_lo, lon_hi = -90.0, 90.0, -180.0, 180.0
    out: list[str] = []
    bits, ch, even = 0, 0, True
    while len(out) < precision:
        if even:
            mid = (lon_lo + lon_hi) / 2
            ch = ch << 1 | (lon >= mid)
            lon_lo, lon_hi = (mid, lon_hi) if lon >= mid else (lon_lo, mid)
        else:
            mid = (lat_lo + lat_hi) / 2
            ch = ch << 1 | (lat >= mid)
            lat_lo, lat_hi = (mid, lat_hi) if lat >= mid else (lat_lo, mid)
        even = not even
        bits += 1
        if bits == 5:
            out.append(_BASE32[ch])
            bits, ch = 0, 0
    return "".join(out)


def geohash_cells(lat: float, lon: float, precisions: range = range(1, 10)) -> list[str]:
    """The cells containing a point at each precision: stored as a multi-valued text key, a
    point is found by equality (or In) on the cells covering a search area."""
    full = geohash(lat, lon, max(precisions))
    return [full[:p] for p in precisions]


def token(system: str | None, code: str | None) -> list[str]:
    """Token keys of a coded value: `system|code` and bare `code` (FHIR `code=`), `|code`
    when it has no system (FHIR `|code`), and `system|` (FHIR `system|`)."""
    out: list[str] = []
    if code:
        out.append(f"{system}|{code}" if system else f"|{code}")
        out.append(code)
    if system:
        out.append(f"{system}|")
    return out
