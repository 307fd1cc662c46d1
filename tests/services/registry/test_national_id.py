"""GB 11643-1999 identity numbers: check digit, embedded birth date, region, masking."""

from __future__ import annotations

from datetime import date

import pytest

from services.registry import national_id
from services.registry.national_id import NationalIdError, check_char, make, mask, parse


def test_known_valid_number_decodes() -> None:
    decoded = parse("11010519491231002X")
    assert decoded.region == "110105"
    assert decoded.birth_date == date(1949, 12, 31)
    assert decoded.sex == "female"


def test_lower_case_x_and_spaces_are_normalised() -> None:
    assert parse(" 110105 19491231 002x ").number == "11010519491231002X"


@pytest.mark.parametrize("last", [c for c in "0123456789X" if c != "X"])
def test_every_other_check_character_is_refused(last: str) -> None:
    with pytest.raises(NationalIdError, match="check digit"):
        parse("11010519491231002" + last)


def test_check_character_follows_iso_7064_mod_11_2() -> None:
    # Weights 7 9 10 5 8 4 2 1 6 3 7 9 10 5 8 4 2, remainder r maps to "10X98765432"[r].
    digits = "34052419800101001"
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    total = sum(int(d) * w for d, w in zip(digits, weights, strict=True))
    assert check_char(digits) == "10X98765432"[total % 11]


@pytest.mark.parametrize(
    "birth", ["19800230", "19810229", "19801301", "19800000", "18991231", "29990101"]
)
def test_impossible_or_out_of_range_birth_dates(birth: str) -> None:
    first17 = f"110101{birth}123"
    with pytest.raises(NationalIdError, match="birth date"):
        parse(first17 + check_char(first17))


def test_leap_day_is_a_real_date() -> None:
    assert parse(make("110101", date(1992, 2, 29), 11)).birth_date == date(1992, 2, 29)


@pytest.mark.parametrize("region", ["990101", "000000", "110000"[:2] + "0000"])
def test_unknown_regions(region: str) -> None:
    first17 = f"{region}19800101123"
    with pytest.raises(NationalIdError, match="region"):
        parse(first17 + check_char(first17))


@pytest.mark.parametrize(
    "text", ["", "1101051949123100", "1101051949123100XX", "A1010519491231002X"]
)
def test_malformed(text: str) -> None:
    with pytest.raises(NationalIdError, match="18 characters"):
        parse(text)


def test_sequence_parity_gives_sex() -> None:
    assert parse(make("110101", date(1980, 5, 3), 123)).sex == "male"
    assert parse(make("110101", date(1980, 5, 3), 124)).sex == "female"


def test_mask_keeps_region_and_last_four() -> None:
    assert mask("110101198005031234") == "110101********1234"
    assert national_id.parse("11010519491231002X").masked == "110105********002X"
