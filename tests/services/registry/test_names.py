"""Name normalisation, pinyin search keys and duplicate forms."""

from __future__ import annotations

from services.registry.names import match_forms, name_keys, pinyin_keys, query_form, romanize


def test_pinyin_full_and_initials() -> None:
    assert pinyin_keys("张伟") == ["zhangwei", "zw"]
    assert pinyin_keys(None) == []


def test_romanized_family_name_first() -> None:
    assert romanize("张子涵") == "Zhang Zihan"


def test_name_keys_fold_case_accents_and_width() -> None:
    keys = name_keys("张伟", "José  MÜLLER")
    assert {"张伟", "jose muller", "jose", "muller", "josemuller"} <= set(keys)


def test_duplicate_forms_ignore_word_order_and_script() -> None:
    chinese = set(match_forms("张伟", None))
    assert set(match_forms(None, "Zhang Wei")) & chinese
    assert set(match_forms(None, "Wei Zhang")) & chinese
    assert set(match_forms(None, "Zhangwei")) & chinese
    assert not set(match_forms("王芳", None)) & chinese


def test_query_forms() -> None:
    assert query_form("张") == ("张", None)
    assert query_form("Zhang W") == ("zhang w", "zhangw")
