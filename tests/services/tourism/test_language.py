"""Accept-Language negotiation and text fallback (pure functions)."""

from __future__ import annotations

import pytest

from services.tourism.language import negotiate, pick


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, "zh"),
        ("", "zh"),
        ("en", "en"),
        ("en-GB,en;q=0.9", "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", "zh"),
        ("zh-Hant-TW", "zh"),
        ("fr-FR, en;q=0.5", "en"),  # French is not offered: the next choice
        ("en;q=0.2, zh;q=0.9", "zh"),  # weights, not order
        ("de, fr", "zh"),  # nothing offered: the default
        ("*", "zh"),
        ("en;q=0, *;q=0.1", "zh"),  # q=0 means "not this one"
        ("EN-us", "en"),
        ("en;q=abc", "en"),  # a bad weight is ignored, not fatal
        ("!!!, ;;;, en", "en"),  # malformed ranges are skipped
        ("x" * 400, "zh"),
    ],
)
def test_negotiation_falls_back_to_chinese(header: str | None, expected: str) -> None:
    assert negotiate(header) == expected


def test_a_missing_translation_falls_back_to_the_other_language() -> None:
    assert pick({"zh": "故宫", "en": "Palace Museum"}, "en") == "Palace Museum"
    assert pick({"zh": "故宫", "en": None}, "en") == "故宫"
    assert pick({"en": "Sanlitun"}, "zh") == "Sanlitun"
    assert pick(None, "zh") is None
