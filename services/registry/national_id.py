"""Resident identity card numbers (GB 11643-1999): 18 characters, validated fully.

Layout: 6-digit administrative region code, 8-digit birth date (YYYYMMDD), 3-digit
sequence (odd for men, even for women), and an ISO 7064 MOD 11-2 check character (0-9 or
X). A number that passes is stored upper-case, so `X` and `x` cannot register twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

_FORMAT = re.compile(r"^\d{17}[\dX]$")
# ISO 7064 MOD 11-2: weight of position i (1-based from the left) is 2^(18-i) mod 11.
_WEIGHTS = [pow(2, 17 - i, 11) for i in range(17)]
_CHECK = "10X98765432"
# Province-level codes (first two digits) of GB/T 2260, including Hong Kong, Macao and
# Taiwan (whose residents hold mainland-format numbers since 2018).
_PROVINCES = frozenset(
    {11, 12, 13, 14, 15, 21, 22, 23, 31, 32, 33, 34, 35, 36, 37, 41, 42, 43, 44, 45, 46}
    | {50, 51, 52, 53, 54, 61, 62, 63, 64, 65, 71, 81, 82, 83}
)
EARLIEST_BIRTH = date(1900, 1, 1)


class NationalIdError(ValueError):
    """The number is not a valid GB 11643 citizen identity number (message says why)."""


@dataclass(frozen=True, slots=True)
class NationalId:
    """A validated identity number and what it encodes."""

    number: str
    region: str
    birth_date: date
    sex: str  # male | female

    @property
    def masked(self) -> str:
        """Region code and last four kept, the rest (birth date, sequence) hidden."""
        return mask(self.number)


def check_char(first17: str) -> str:
    """The MOD 11-2 check character of the first 17 digits."""
    total = sum(int(d) * w for d, w in zip(first17, _WEIGHTS, strict=True))
    return _CHECK[total % 11]


def normalize(text: str) -> str:
    """Spaces removed and a trailing `x` upper-cased (how people type it)."""
    return re.sub(r"\s+", "", text).upper()


def parse(text: str, *, today: date | None = None) -> NationalId:
    """Validate a number (NationalIdError with the reason) and decode it."""
    number = normalize(text)
    if not _FORMAT.match(number):
        raise NationalIdError("must be 18 characters: 17 digits and a digit or X")
    if int(number[:2]) not in _PROVINCES or number[2:6] == "0000":
        raise NationalIdError(f"region code {number[:6]} is not a valid region")
    try:
        born = date(int(number[6:10]), int(number[10:12]), int(number[12:14]))
    except ValueError:
        raise NationalIdError(f"embedded birth date {number[6:14]} is not a real date") from None
    if not EARLIEST_BIRTH <= born <= (today or date.today()):
        raise NationalIdError(f"embedded birth date {born.isoformat()} is out of range")
    if number[14:17] == "000":
        raise NationalIdError("sequence number 000 is never issued")
    expected = check_char(number[:17])
    if number[17] != expected:
        raise NationalIdError("check digit does not match (ISO 7064 MOD 11-2)")
    sex = "male" if int(number[16]) % 2 else "female"
    return NationalId(number, number[:6], born, sex)


def mask(number: str) -> str:
    """`110101********1234`: enough to recognise, not enough to use."""
    if len(number) < 10:
        return "*" * len(number)
    return number[:6] + "*" * (len(number) - 10) + number[-4:]


def make(region: str, born: date, sequence: int) -> str:
    """A valid number (demo data and tests): region, birth date, 3-digit sequence."""
    first17 = f"{region}{born:%Y%m%d}{sequence:03d}"
    return first17 + check_char(first17)
