"""Key helpers: folding, search terms, date spans, geohash cells, tokens."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.storage.keys import (
    date_span,
    day_span,
    fold,
    geohash,
    geohash_cells,
    prefixes,
    terms,
    token,
)


def test_fold_case_accents_width() -> None:
    assert fold("ÉCOLE") == "ecole"
    assert fold("Zhāng Wěi") == "zhang wei"
    assert fold("Ｆｕｌｌ　Ｗｉｄｔｈ") == "full width"
    assert fold("Straße") == "strasse"
    assert fold("张伟") == "张伟"


def test_terms_mix_bigrams_and_words() -> None:
    assert terms("北京市朝阳区") == ["北京", "京市", "市朝", "朝阳", "阳区"]
    assert terms("王 Li-Na 2024") == ["王", "li", "na", "2024"]
    assert terms("张伟张伟") == ["张伟", "伟张"]  # duplicates removed, order kept
    assert terms("") == []


def test_prefixes_cover_whole_string_and_words() -> None:
    assert prefixes("  Zhang  Wěi ") == ["zhang  wei", "zhang", "wei"]


@pytest.mark.parametrize(
    ("value", "low", "high"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("2024-02", datetime(2024, 2, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        ("2024-12", datetime(2024, 12, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)),
        ("2024-02-29", datetime(2024, 2, 29, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)),
        (
            "2024-05-03T10:00+08:00",
            datetime(2024, 5, 3, 2, tzinfo=UTC),
            datetime(2024, 5, 3, 2, 1, tzinfo=UTC),
        ),
        (
            "2024-05-03T10:00:05Z",
            datetime(2024, 5, 3, 10, 0, 5, tzinfo=UTC),
            datetime(2024, 5, 3, 10, 0, 6, tzinfo=UTC),
        ),
        (
            "2024-05-03T10:00:05.25Z",
            datetime(2024, 5, 3, 10, 0, 5, 250000, tzinfo=UTC),
            datetime(2024, 5, 3, 10, 0, 5, 260000, tzinfo=UTC),
        ),
    ],
)
def test_date_span_by_precision(value: str, low: datetime, high: datetime) -> None:
    assert date_span(value) == (low, high)


def test_date_span_reads_zoneless_dates_in_the_given_zone() -> None:
    shanghai = timezone(timedelta(hours=8))
    low, high = date_span("2024-05-03", tz=shanghai)
    assert low == datetime(2024, 5, 2, 16, tzinfo=UTC)
    assert high - low == timedelta(days=1)
    assert day_span(low.date(), tz=UTC)[0] == datetime(2024, 5, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "24",
        "2024-13",
        "2024-02-30",
        "2024-05-03T10:00",
        "2024-05-03T25:00Z",
        "2024-05-03T10:00+15:00",
        "tomorrow",
    ],
)
def test_date_span_refuses_bad_values(bad: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        date_span(bad)


def test_geohash_known_values_and_cells() -> None:
    assert geohash(57.64911, 10.40744, 11) == "u4pruydqqvj"  # the classic example
    assert geohash(39.9042, 116.4074, 6) == "wx4g0b"  # Tian'anmen area
    assert geohash_cells(39.9042, 116.4074, range(1, 5)) == ["w", "wx", "wx4", "wx4g"]
    assert geohash(90, 180, 3)
    assert geohash(-90, -180, 3) == "000"
    with pytest.raises(ValueError, match="out of range"):
        geohash(91, 0)


def test_tokens() -> None:
    assert token("http://loinc.org", "1234-5") == [
        "http://loinc.org|1234-5",
        "1234-5",
        "http://loinc.org|",
    ]
    assert token(None, "x") == ["|x", "x"]
    assert token("s", None) == ["s|"]
