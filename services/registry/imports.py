"""CSV import files of residents and households: decoding, columns and row validation.

The format (docs/registry.md, "Bulk import"): a header row naming the columns, then one
resident per line. Columns, in any order:

    name_zh, name_latin, sex, birth_date, national_id, phone, community, address,
    household, relationship

`community`, `address`, `sex` and `birth_date` are required columns, and a name in at least
one of `name_zh` or `name_latin`; the others may be left out of the header. `household` is
a key local to the file (any text, e.g. `1` or `张家`): the rows sharing it form one
household, and `relationship` says how each is related to its one `head`.

Decoding is per line, so one broken line costs one row, not the file. The encoding is the
one declared (`charset` of the request), else UTF-8 (a BOM is allowed), else GB18030 (the
superset of GBK and GB2312 that Chinese government spreadsheets export) when more lines
decode as GB18030 than as UTF-8. UTF-16 files are refused as a whole: they would decode as
nothing useful line by line.

A line is a record: a quoted field may not span lines (addresses do not need that, and it
keeps row numbers equal to line numbers, which is what a spreadsheet shows).
"""

from __future__ import annotations

import csv
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, get_args

from pydantic import ValidationError

from services.registry.schemas import RegisterResident, Relationship
from shared.errors import Unprocessable

COLUMNS = (
    "name_zh",
    "name_latin",
    "sex",
    "birth_date",
    "national_id",
    "phone",
    "community",
    "address",
    "household",
    "relationship",
)
REQUIRED = ("sex", "birth_date", "community", "address")
MAX_LINE_BYTES = 4096  # a resident's line is ~200 bytes; 4 KiB is something else entirely
MAX_ROWS = 50_000
MAX_HOUSEHOLD_KEY = 64
MAX_MEMBERS = 50  # as for POST /households
ENCODINGS = {
    "utf-8": "utf-8",
    "utf8": "utf-8",
    "gb18030": "gb18030",
    # GB18030 decodes every GBK and GB2312 file the same way: one decoder for the family.
    "gbk": "gb18030",
    "gb2312": "gb18030",
    "cp936": "gb18030",
}
_SEX = {"男": "male", "女": "female", "m": "male", "f": "female", "未知": "unknown"}
_RELATIONSHIP = {
    "户主": "head",
    "配偶": "spouse",
    "子女": "child",
    "子": "child",
    "女": "child",
    "父母": "parent",
    "孙子女": "grandchild",
    "祖父母": "grandparent",
    "兄弟姐妹": "sibling",
    "其他亲属": "other-relative",
    "其他": "other",
}
# Where a pydantic location or a service's JSON pointer lands in the file.
_FIELD_OF = {
    ("name",): "name_zh",
    ("name", "zh"): "name_zh",
    ("name", "latin"): "name_latin",
    ("address",): "address",
    ("address", "line"): "address",
    ("address", "community"): "community",
}


@dataclass
class Row:
    """One data line: its number in the file, its cells, and what is wrong with it."""

    line: int
    values: dict[str, str] = field(default_factory=dict)
    errors: list[dict[str, str | None]] = field(default_factory=list)
    data: RegisterResident | None = None
    household: str | None = None
    relationship: str | None = None

    def fail(self, column: str | None, message: str) -> None:
        """Record a problem with a column (None: the line as a whole)."""
        self.errors.append({"field": column, "message": message})


@dataclass
class ParsedFile:
    """A decoded import file: the encoding used, the columns, and the data rows."""

    encoding: str
    columns: list[str]
    rows: list[Row]


def _lines(raw: bytes) -> list[bytes]:
    # Split on LF only (CR LF ends with a CR, stripped later): a CR alone is not a line end
    # in any export we know of, and splitting on it could cut a GB18030 character.
    lines = raw.split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    return [line[:-1] if line.endswith(b"\r") else line for line in lines]


def _decodes(line: bytes, encoding: str) -> bool:
    try:
        line.decode(encoding)
    except UnicodeDecodeError:
        return False
    return True


def choose_encoding(raw: bytes, declared: str | None) -> str:
    """The encoding to read the file with (see the module docstring)."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise Unprocessable(
            "The file is UTF-16; save it as CSV UTF-8 (or GB18030) and try again.",
            errors=[{"field": "file", "message": "UTF-16 is not supported"}],
        )
    if declared:
        name = ENCODINGS.get(declared.strip().strip('"').lower())
        if name is None:
            raise Unprocessable(
                f"Unsupported charset {declared!r}: send UTF-8 or GB18030 (GBK).",
                errors=[{"field": "charset", "message": "use utf-8 or gb18030"}],
            )
        return name
    if raw.startswith(b"\xef\xbb\xbf"):
        return "utf-8"
    utf8 = gb = 0
    for line in _lines(raw):
        if line.isascii():
            continue
        if _decodes(line, "utf-8"):
            utf8 += 1
        elif _decodes(line, "gb18030"):
            gb += 1
    return "gb18030" if gb > utf8 else "utf-8"


def _header(line: bytes, encoding: str) -> list[str]:
    try:
        text = line.decode(encoding)
    except UnicodeDecodeError:
        raise Unprocessable(
            f"The header row is not valid {encoding}.",
            errors=[{"field": "header", "message": f"not {encoding}"}],
        ) from None
    names = [c.strip().lower() for c in next(csv.reader([text.lstrip("\ufeff")]), [])]
    errors = [
        {"field": "header", "message": f"unknown column {n!r}"} for n in names if n not in COLUMNS
    ]
    errors += [
        {"field": "header", "message": f"column {n!r} given twice"}
        for n in sorted({n for n in names if names.count(n) > 1})
    ]
    missing = [n for n in REQUIRED if n not in names]
    if "name_zh" not in names and "name_latin" not in names:
        missing.append("name_zh or name_latin")
    errors += [{"field": "header", "message": f"missing column {n}"} for n in missing]
    if errors:
        raise Unprocessable(
            "The header row must name the import columns: " + ", ".join(COLUMNS) + ".",
            errors=errors,
        )
    return names


def parse_file(raw: bytes, declared: str | None = None) -> ParsedFile:
    """Decode and split an import file; 422 only for what spoils the whole file (encoding,
    header, size); problems of single lines are recorded on their rows."""
    if not raw.strip():
        raise Unprocessable(
            "The file is empty.", errors=[{"field": "file", "message": "no header row"}]
        )
    encoding = choose_encoding(raw, declared)
    lines = _lines(raw)
    first = lines[0][3:] if lines[0].startswith(b"\xef\xbb\xbf") else lines[0]
    columns = _header(first, encoding)
    rows: list[Row] = []
    for number, line in enumerate(lines[1:], start=2):
        if not line.strip():
            continue  # blank lines (often at the end of exports) are no rows
        row = Row(number)
        rows.append(row)
        if len(rows) > MAX_ROWS:
            raise Unprocessable(
                f"An import file holds at most {MAX_ROWS} rows; split it.",
                errors=[{"field": "file", "message": f"more than {MAX_ROWS} rows"}],
            )
        if len(line) > MAX_LINE_BYTES:
            row.fail(None, f"the line is {len(line)} bytes long; the limit is {MAX_LINE_BYTES}")
            continue
        try:
            text = line.decode(encoding)
        except UnicodeDecodeError as exc:
            row.fail(None, f"not valid {encoding} (byte {exc.start + 1} of the line)")
            continue
        cells = next(csv.reader([text]), [])
        if len(cells) != len(columns):
            row.fail(None, f"{len(cells)} fields; the header has {len(columns)}")
            continue
        row.values = {c: v.strip() for c, v in zip(columns, cells, strict=True)}
    return ParsedFile(encoding, columns, rows)


def _date(value: str) -> str:
    # Spreadsheets export 1980/5/3 and 19800503 as often as ISO; all mean the same day.
    v = value.replace("/", "-").replace(".", "-")
    if len(v) == 8 and v.isdigit():
        v = f"{v[:4]}-{v[4:6]}-{v[6:]}"
    parts = v.split("-")
    if len(parts) == 3 and all(p.isdigit() for p in parts):
        return f"{parts[0]:0>4}-{parts[1]:0>2}-{parts[2]:0>2}"
    return value


def column_of(location: Sequence[Any]) -> str:
    """The file column a pydantic location or a JSON pointer's parts refer to."""
    key = tuple(str(p) for p in location)
    return _FIELD_OF.get(key) or (key[0] if key else "row")


def pointer_column(pointer: str | None) -> str | None:
    """The column of a service error's JSON pointer (`#/address/community` -> community)."""
    if not pointer:
        return None
    return column_of([p for p in pointer.removeprefix("#/").split("/") if p])


def validate_row(row: Row) -> None:
    """Check a row's cells on their own (formats, dates, check digits, household columns);
    problems are added to `row.errors`, a valid row gets `data`."""
    v = row.values
    if not v or row.errors:
        return
    body: dict[str, Any] = {
        "name": {k: v[c] for k, c in (("zh", "name_zh"), ("latin", "name_latin")) if v.get(c)},
        "sex": _SEX.get(v["sex"].lower(), v["sex"].lower()),
        "birth_date": _date(v["birth_date"]),
        "address": {"line": v["address"], "community": v["community"]},
    }
    for column in ("national_id", "phone"):
        if v.get(column):
            body[column] = v[column]
    try:
        row.data = RegisterResident.model_validate(body)
    except ValidationError as exc:
        for err in exc.errors():
            where = [p for p in err["loc"] if not isinstance(p, int)]
            row.fail(column_of(where), str(err["msg"]).removeprefix("Value error, "))
    household = v.get("household") or None
    relationship = v.get("relationship") or None
    if household and len(household) > MAX_HOUSEHOLD_KEY:
        row.fail("household", f"at most {MAX_HOUSEHOLD_KEY} characters")
    if relationship is not None:
        relationship = _RELATIONSHIP.get(relationship, relationship.lower())
        if relationship not in _relationships():
            row.fail("relationship", "unknown relationship; see the import format")
        elif household is None:
            row.fail("household", "a relationship needs the household it refers to")
    elif household is not None:
        row.fail("relationship", "required for a member of a household")
    row.household, row.relationship = household, relationship
    if row.errors:
        row.data = None


def _relationships() -> tuple[str, ...]:
    return get_args(Relationship)


def household_problems(rows: Sequence[Row]) -> None:
    """Rows of one household key must have exactly one head and one community; otherwise
    every row of that household fails (a household is made whole or not at all)."""
    groups: dict[str, list[Row]] = {}
    for row in rows:
        if row.household is not None:
            groups.setdefault(row.household, []).append(row)
    for key, members in groups.items():
        heads = [r for r in members if r.relationship == "head"]
        communities = {r.values.get("community") for r in members}
        problem = None
        if len(members) > MAX_MEMBERS:
            problem = f"household {key!r} has more than {MAX_MEMBERS} members"
        elif len(heads) != 1:
            lines = ", ".join(str(r.line) for r in heads) or "none"
            problem = f"household {key!r} needs exactly one head (heads on rows: {lines})"
        elif len(communities) > 1:
            problem = f"the members of household {key!r} live in different communities"
        elif heads[0].data is None:
            problem = f"the head of household {key!r} (row {heads[0].line}) is not valid"
        if problem is None:
            continue
        for row in members:
            if row.data is not None:
                row.fail("household", problem)
                row.data = None


def differences(
    stored: Mapping[str, Any], data: RegisterResident, name: Mapping[str, Any]
) -> list[str]:
    """The columns in which a stored resident differs from a row (none: re-importing the
    row is a no-op); `name` is the row's name as it would be stored."""
    found = []
    if stored["name"].get("zh") != name.get("zh"):
        found.append("name_zh")
    if stored["name"].get("latin") != name.get("latin"):
        found.append("name_latin")
    pairs = (
        ("sex", stored["sex"], data.sex),
        ("birth_date", stored["birth_date"], data.birth_date.isoformat()),
        ("national_id", stored.get("national_id"), data.national_id),
        ("phone", stored.get("phone"), data.phone),
        ("community", stored["address"]["community"], data.address.community),
        ("address", stored["address"]["line"], data.address.line),
    )
    found += [column for column, theirs, ours in pairs if theirs != ours]
    return found
