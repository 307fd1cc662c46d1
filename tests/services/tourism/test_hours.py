"""Opening hours (pure functions): weekly and overnight ranges, special days, time zones,
and the index spans that must hold every instant a place is open."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from services.tourism.hours import REFERENCE_WEEK, is_open, special_spans, week_point, week_spans

SHANGHAI = ZoneInfo("Asia/Shanghai")
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]


def at(text: str, tz: ZoneInfo = SHANGHAI) -> datetime:
    """A local wall-clock time ("2026-12-01 08:30") in a zone."""
    return datetime.fromisoformat(text).replace(tzinfo=tz)


MUSEUM: dict[str, Any] = {
    # Closed on Mondays, 08:30-17:00 otherwise; National Day week 08:00-18:00 every day;
    # closed on 2026-12-25 (a Friday).
    "regular": [
        {
            "day_of_week": ["Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
            "opens": "08:30",
            "closes": "17:00",
        }
    ],
    "special": [
        {
            "valid_from": "2026-10-01",
            "valid_through": "2026-10-07",
            "opens": "08:00",
            "closes": "18:00",
        },
        {"valid_from": "2026-12-25"},
    ],
}
BAR: dict[str, Any] = {
    # Overnight: Friday and Saturday 18:00-02:00; New Year's Eve (a Thursday) till 04:00.
    "regular": [{"day_of_week": ["Friday", "Saturday"], "opens": "18:00", "closes": "02:00"}],
    "special": [{"valid_from": "2026-12-31", "opens": "20:00", "closes": "04:00"}],
}


@pytest.mark.parametrize(
    ("hours", "when", "expected"),
    [
        (MUSEUM, "2026-12-01 08:30", True),  # Tuesday, the opening minute
        (MUSEUM, "2026-12-01 08:29", False),
        (MUSEUM, "2026-12-01 16:59", True),
        (MUSEUM, "2026-12-01 17:00", False),  # closing time is closed
        (MUSEUM, "2026-11-30 10:00", False),  # Monday
        (MUSEUM, "2026-10-05 08:10", True),  # a Monday of the special week, earlier opening
        (MUSEUM, "2026-10-06 17:30", True),
        (MUSEUM, "2026-10-07 18:00", False),
        (MUSEUM, "2026-12-25 10:00", False),  # closed special day (a Friday)
        (MUSEUM, "2026-12-26 10:00", True),
        (BAR, "2026-12-04 23:00", True),  # Friday night
        (BAR, "2026-12-05 01:59", True),  # Saturday small hours belong to Friday
        (BAR, "2026-12-05 02:00", False),
        (BAR, "2026-12-06 01:00", True),  # Sunday small hours belong to Saturday
        (BAR, "2026-12-07 01:00", False),  # Monday small hours: Sunday is closed
        (BAR, "2026-12-04 17:59", False),
        (BAR, "2026-12-31 19:00", False),  # the special evening opens at 20:00
        (BAR, "2026-12-31 21:00", True),
        (BAR, "2027-01-01 03:59", True),  # the special night runs on past midnight
        (BAR, "2027-01-01 04:00", False),
        (BAR, "2027-01-01 19:00", True),  # Friday again
    ],
)
def test_is_open(hours: dict[str, Any], when: str, expected: bool) -> None:
    assert is_open(hours, at(when)) is expected


def test_unknown_hours_are_neither_open_nor_closed() -> None:
    assert is_open(None, datetime.now(UTC)) is None
    assert is_open({"regular": [], "special": []}, datetime.now(UTC)) is None


def test_all_day_and_the_instant_in_any_zone() -> None:
    always = {
        "regular": [
            {"day_of_week": [*WEEKDAYS, "Saturday", "Sunday"], "opens": "00:00", "closes": "24:00"}
        ]
    }
    assert is_open(always, at("2026-06-01 00:00")) is True
    assert is_open(always, at("2026-06-01 23:59")) is True
    # 09:00 in Shanghai is 01:00 UTC and 02:00 in Paris in summer: the same instant.
    office = {"regular": [{"day_of_week": WEEKDAYS, "opens": "09:00", "closes": "10:00"}]}
    assert is_open(office, datetime(2026, 6, 1, 1, 30, tzinfo=UTC)) is True
    assert is_open(office, at("2026-06-01 03:30", ZoneInfo("Europe/Paris"))) is True
    assert is_open(office, at("2026-06-01 09:30", ZoneInfo("Europe/Paris"))) is False


def test_the_place_time_zone_decides() -> None:
    paris = {
        "time_zone": "Europe/Paris",
        "regular": [{"day_of_week": WEEKDAYS, "opens": "09:00", "closes": "18:00"}],
    }
    # 09:30 in Paris: 07:30 UTC in summer (UTC+2), 08:30 UTC in winter (UTC+1).
    assert is_open(paris, datetime(2026, 7, 1, 7, 30, tzinfo=UTC)) is True
    assert is_open(paris, datetime(2026, 1, 7, 7, 30, tzinfo=UTC)) is False
    assert is_open(paris, datetime(2026, 1, 7, 8, 30, tzinfo=UTC)) is True


def _in_spans(spans: list[tuple[datetime, datetime]], point: datetime) -> bool:
    return any(low <= point < high for low, high in spans)


@pytest.mark.parametrize(
    "zone", ["Asia/Shanghai", "Europe/Paris", "America/New_York", "Pacific/Auckland"]
)
def test_the_index_spans_hold_every_open_instant(zone: str) -> None:
    hours = {**MUSEUM, "time_zone": zone}
    bar = {**BAR, "time_zone": zone}
    rng = random.Random(zone)
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for h in (hours, bar):
        weekly, special = week_spans(h), special_spans(h)
        for _ in range(3000):
            instant = start + timedelta(minutes=rng.randrange(0, 60 * 24 * 400))
            if is_open(h, instant):
                assert _in_spans(weekly, week_point(instant)) or _in_spans(special, instant), (
                    instant
                )


def test_shanghai_weekly_spans_are_exact() -> None:
    # Without summer time the weekly spans are exactly the regular hours.
    tuesday_open = week_point(at("2026-12-01 08:30"))
    spans = week_spans(MUSEUM)
    assert _in_spans(spans, tuesday_open)
    assert not _in_spans(spans, week_point(at("2026-12-01 08:29")))
    assert not _in_spans(spans, week_point(at("2026-11-30 12:00")))  # Monday
    # Sunday 18:00 - Monday 02:00 in Shanghai wraps the UTC week: still found.
    late = {"regular": [{"day_of_week": ["Sunday"], "opens": "18:00", "closes": "02:00"}]}
    assert _in_spans(week_spans(late), week_point(at("2026-12-07 01:00")))
    assert _in_spans(week_spans(late), week_point(at("2026-12-06 18:00")))


@pytest.mark.parametrize("zone", ["Asia/Shanghai", "America/New_York", "Pacific/Kiritimati"])
def test_weekly_spans_are_well_formed_for_any_hours(zone: str) -> None:
    # Early Monday hours east of UTC fall in the previous UTC week: they wrap to its end.
    for day in [*WEEKDAYS, "Saturday", "Sunday"]:
        for opens, closes in (("00:00", "24:00"), ("06:00", "09:00"), ("22:00", "03:00")):
            hours = {
                "time_zone": zone,
                "regular": [{"day_of_week": [day], "opens": opens, "closes": closes}],
            }
            spans = week_spans(hours)
            assert spans
            for low, high in spans:
                assert low < high
                assert low >= REFERENCE_WEEK
                assert high <= REFERENCE_WEEK + timedelta(days=7)
    monday_early = {"regular": [{"day_of_week": ["Monday"], "opens": "06:00", "closes": "09:00"}]}
    assert _in_spans(week_spans(monday_early), week_point(at("2026-11-30 06:30")))
    assert _in_spans(week_spans(monday_early), week_point(at("2026-11-30 08:59")))
    assert not _in_spans(week_spans(monday_early), week_point(at("2026-11-30 09:00")))
