"""Opening hours: whether a place is open at an instant, and the index spans that let a
search find the places that may be open then.

Model (schema.org `OpeningHoursSpecification`, snake-cased), in the place's time zone
(`time_zone`, IANA, default Asia/Shanghai):

- `regular`: `{day_of_week: [Monday, ...], opens: "08:30", closes: "17:00"}`; several
  entries per day give split hours. `closes` at or before `opens` runs past midnight into
  the next day (a bar open 18:00-02:00); `closes: "24:00"` is the end of the day.
- `special`: `{valid_from, valid_through, opens, closes}` for dates (inclusive) that do not
  follow the week: holidays with other hours, or closed days (no `opens`/`closes`). On a
  date with any special entry, the regular hours do not apply; the night after a day
  still belongs to that day (its overnight hours run on).

Times are wall-clock times of the place's zone (zoneinfo): in a zone with summer time the
hours follow the clock.

Index. A search must not read every place to filter by hours, so each place carries spans
(`week_spans`) of a reference week in UTC, one per opening range, and the real instants of
its special opening ranges (`special_spans`). A range that wraps the week end is split. In a
zone with summer time the weekly spans are widened by the difference of its offsets, so
they stay a superset; `is_open` then decides exactly.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

DEFAULT_ZONE = "Asia/Shanghai"
DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
DAY_MINUTES = 1440
WEEK_MINUTES = 7 * DAY_MINUTES
# A Monday, 00:00 UTC: the reference week weekly hours are indexed in.
REFERENCE_WEEK = datetime(2001, 1, 1, tzinfo=UTC)

Hours = Mapping[str, Any]


def minutes(text: str) -> int:
    """Minutes after midnight of "HH:MM" (up to "24:00")."""
    hh, mm = text.split(":")
    return int(hh) * 60 + int(mm)


def ranges(opens: str, closes: str) -> tuple[int, int]:
    """A range as [start, end) minutes from the day's midnight; overnight ends after 1440."""
    start, end = minutes(opens), minutes(closes)
    if end <= start:
        end += DAY_MINUTES
    return start, end


@cache
def zone(name: str) -> ZoneInfo:
    """A time zone by IANA name (cached)."""
    return ZoneInfo(name)


def _dates(entry: Mapping[str, Any]) -> Iterator[date]:
    day = date.fromisoformat(entry["valid_from"])
    last = date.fromisoformat(entry.get("valid_through") or entry["valid_from"])
    while day <= last:
        yield day
        day += timedelta(days=1)


def _covers(entry: Mapping[str, Any], day: date) -> bool:
    first = date.fromisoformat(entry["valid_from"])
    last = date.fromisoformat(entry.get("valid_through") or entry["valid_from"])
    return first <= day <= last


def day_ranges(hours: Hours, day: date) -> list[tuple[int, int]]:
    """The opening ranges that start on a local date: its special entries if it has any
    (none with hours: closed), else the regular entries of its weekday."""
    special = [e for e in hours.get("special") or () if _covers(e, day)]
    if special:
        return [ranges(e["opens"], e["closes"]) for e in special if e.get("opens")]
    name = DAYS[day.weekday()]
    return [
        ranges(e["opens"], e["closes"])
        for e in hours.get("regular") or ()
        if name in e["day_of_week"]
    ]


def is_open(hours: Hours | None, at: datetime) -> bool | None:
    """Whether the place is open at an aware instant (None when its hours are unknown)."""
    if not hours or not (hours.get("regular") or hours.get("special")):
        return None
    local = at.astimezone(zone(hours.get("time_zone") or DEFAULT_ZONE))
    now = local.hour * 60 + local.minute + local.second / 60
    today = local.date()
    for day, carry in ((today, 0), (today - timedelta(days=1), DAY_MINUTES)):
        if any(start <= now + carry < end for start, end in day_ranges(hours, day)):
            return True
    return False


def _offsets(tz: ZoneInfo, year: int) -> tuple[int, int]:
    """The smallest and largest UTC offset (minutes) of a zone around a year."""
    seen = set()
    for month in range(1, 13):
        off = datetime(year, month, 15, 12, tzinfo=tz).utcoffset()
        seen.add(int(off.total_seconds() // 60) if off is not None else 0)
    return min(seen), max(seen)


def week_point(at: datetime) -> datetime:
    """An instant's place in the reference week (UTC): what weekly spans are searched by."""
    utc = at.astimezone(UTC)
    offset = timedelta(days=utc.weekday(), hours=utc.hour, minutes=utc.minute, seconds=utc.second)
    return REFERENCE_WEEK + offset


def _wrap(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) minutes of a week, split where it wraps the week's end."""
    length = end - start
    if length >= WEEK_MINUTES:
        return [(0, WEEK_MINUTES)]
    start %= WEEK_MINUTES
    end = start + length
    if end <= WEEK_MINUTES:
        return [(start, end)]
    return [(start, WEEK_MINUTES), (0, end - WEEK_MINUTES)]


def week_spans(hours: Hours | None, *, year: int = 2026) -> list[tuple[datetime, datetime]]:
    """Index spans (reference week, UTC) of the regular hours; a superset in summer-time
    zones (see the module docstring)."""
    if not hours:
        return []
    low, high = _offsets(zone(hours.get("time_zone") or DEFAULT_ZONE), year)
    out: list[tuple[datetime, datetime]] = []
    for entry in hours.get("regular") or ():
        start, end = ranges(entry["opens"], entry["closes"])
        for name in entry["day_of_week"]:
            base = DAYS.index(name) * DAY_MINUTES
            for a, b in _wrap(base + start - high, base + end - low):
                out.append(
                    (REFERENCE_WEEK + timedelta(minutes=a), REFERENCE_WEEK + timedelta(minutes=b))
                )
    return out


def special_spans(hours: Hours | None) -> list[tuple[datetime, datetime]]:
    """Index spans (real instants, UTC) of the special opening ranges."""
    if not hours:
        return []
    tz = zone(hours.get("time_zone") or DEFAULT_ZONE)
    out: list[tuple[datetime, datetime]] = []
    for entry in hours.get("special") or ():
        if not entry.get("opens"):
            continue
        start, end = ranges(entry["opens"], entry["closes"])
        for day in _dates(entry):
            midnight = datetime(day.year, day.month, day.day, tzinfo=tz)
            low = (midnight + timedelta(minutes=start)).astimezone(UTC)
            high = (midnight + timedelta(minutes=end)).astimezone(UTC)
            out.append((low, max(low, high)))
    return out


def special_days(entries: Sequence[Mapping[str, Any]]) -> int:
    """How many dates the special entries cover (bounds a place's index rows)."""
    return sum(1 for e in entries for _ in _dates(e))
