"""The administrative hierarchy: district → street → community, addressed by code paths.

A place's code is its path: district `110101` (GB/T 2260 county-level code), street
`110101/002`, community `110101/002/007`. A resident's address names a community; the
`jurisdiction` claim of a worker or officer is the path of the place they answer for, so
"within my jurisdiction" is "my path is a prefix (by whole segments) of theirs".

Import files (admins, and the demo loader) come in two shapes:
- JSON: a list of `{"code": "110101/002", "name": {"zh": "...", "en": "..."}}`, or a tree
  `[{"code": "110101", "name": {...}, "children": [{"code": "002", ...}]}]` whose child
  codes are relative to their parent;
- CSV (UTF-8, header `code,name_zh,name_en`): one place per row, code as the full path.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson

from shared.errors import Unprocessable
from shared.storage import Create, Update, WriteOp

if TYPE_CHECKING:
    from services.registry.repository import RegistryRepository

LEVELS = ("district", "street", "community")
_SEGMENT = (re.compile(r"^\d{6}$"), re.compile(r"^\d{3}$"), re.compile(r"^\d{3}$"))
MAX_PLACES = 20_000  # one import file; a whole city is a few thousand places
MAX_NAME = 100
PLACES_COLLECTION = "places"


def split(code: str) -> list[str] | None:
    """The segments of a valid place code, or None."""
    parts = code.split("/")
    if not 1 <= len(parts) <= 3:
        return None
    if not all(_SEGMENT[i].match(p) for i, p in enumerate(parts)):
        return None
    return parts


def is_code(code: str, *, level: str | None = None) -> bool:
    """Whether `code` is a well-formed place code (of `level`, when given)."""
    parts = split(code)
    return parts is not None and (level is None or LEVELS[len(parts) - 1] == level)


def level_of(code: str) -> str:
    """district, street or community (for a valid code)."""
    return LEVELS[code.count("/")]


def parent_of(code: str) -> str | None:
    """The code of the enclosing place (None for a district)."""
    return code.rsplit("/", 1)[0] if "/" in code else None


def lineage(code: str) -> list[str]:
    """The code and every enclosing code: `110101/002/007` -> district, street, community."""
    parts = code.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def store_id(code: str) -> str:
    """The document id of a place (store ids cannot hold "/"): `110101.002.007`."""
    return code.replace("/", ".")


def covers(scope: str, code: str) -> bool:
    """Whether the place `scope` is `code` or encloses it (by whole segments)."""
    return code == scope or code.startswith(scope + "/")


@dataclass(frozen=True, slots=True)
class PlaceRow:
    """One place of an import file."""

    code: str
    zh: str
    en: str

    def body(self) -> dict[str, Any]:
        """The stored document."""
        return {
            "code": self.code,
            "level": level_of(self.code),
            "parent": parent_of(self.code),
            "name": {"zh": self.zh, "en": self.en},
        }


def _flatten(items: Iterable[Any], parent: str | None, at: str, out: list[Any]) -> None:
    for i, item in enumerate(items):
        where = f"{at}/{i}"
        if not isinstance(item, Mapping):
            out.append((where, None))
            continue
        code = item.get("code")
        if parent is not None and isinstance(code, str):
            code = f"{parent}/{code}"
        out.append((where, {**item, "code": code}))
        children = item.get("children")
        if children is not None:
            if not isinstance(children, list) or not isinstance(code, str):
                out.append((f"{where}/children", None))
            else:
                _flatten(children, code, f"{where}/children", out)


def parse_json(raw: bytes) -> list[PlaceRow]:
    """Places from a JSON import file (flat list or tree); 422 listing every bad entry."""
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise Unprocessable(f"The places file is not valid JSON: {exc}") from None
    if isinstance(data, Mapping) and isinstance(data.get("places"), list):
        data = data["places"]
    if not isinstance(data, list):
        raise Unprocessable("The places file must be a JSON list of places.")
    flat: list[Any] = []
    _flatten(data, None, "#", flat)
    rows: list[tuple[str, Any, Any, Any]] = []
    for where, item in flat:
        if item is None:
            rows.append((where, None, None, None))
            continue
        name = item.get("name")
        zh = name.get("zh") if isinstance(name, Mapping) else item.get("name_zh")
        en = name.get("en") if isinstance(name, Mapping) else item.get("name_en")
        rows.append((where, item.get("code"), zh, en))
    return _validate(rows)


def parse_csv(raw: bytes) -> list[PlaceRow]:
    """Places from a CSV import file (`code,name_zh,name_en`); 422 listing every bad row."""
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise Unprocessable(
            f"The places file must be UTF-8 (invalid byte at offset {exc.start})."
        ) from None
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or not {"code", "name_zh", "name_en"} <= set(reader.fieldnames):
        raise Unprocessable("The CSV header must name the columns code, name_zh and name_en.")
    rows = [
        (f"row {n}", r.get("code"), r.get("name_zh"), r.get("name_en"))
        for n, r in enumerate(reader, start=2)
    ]
    return _validate(rows)


def _validate(rows: Sequence[tuple[str, Any, Any, Any]]) -> list[PlaceRow]:
    if len(rows) > MAX_PLACES:
        raise Unprocessable(f"An import file holds at most {MAX_PLACES} places.")
    errors: list[dict[str, str]] = []
    out: dict[str, PlaceRow] = {}
    for where, code, zh, en in rows:
        problems = []
        if not isinstance(code, str) or split(code) is None:
            problems.append("code must be DDDDDD, DDDDDD/SSS or DDDDDD/SSS/CCC (digits)")
        elif code in out:
            problems.append(f"code {code} appears twice")
        for label, value in (("name zh", zh), ("name en", en)):
            if not isinstance(value, str) or not value.strip() or len(value) > MAX_NAME:
                problems.append(f"{label} must be 1-{MAX_NAME} characters")
        if problems:
            errors.extend({"pointer": where, "message": p} for p in problems)
            continue
        out[code] = PlaceRow(code, zh.strip(), en.strip())
    if errors:
        raise Unprocessable(
            f"The places file has {len(errors)} problem(s); nothing was imported.",
            errors=errors[:100],
        )
    # Parents before children, so the file is written in an order that is always complete.
    return sorted(out.values(), key=lambda p: (p.code.count("/"), p.code))


@dataclass(frozen=True, slots=True)
class ImportCounts:
    """What an import changed."""

    created: int
    updated: int
    unchanged: int


WRITE_CHUNK = 400  # places per store batch (a batch holds at most 1000 operations)


async def import_places(repo: RegistryRepository, rows: Sequence[PlaceRow]) -> ImportCounts:
    """Create or update places (idempotent). Every parent must exist or be in the file;
    the file is checked whole before anything is written. Chunks are written parents
    first, so an interrupted import leaves a consistent tree that a re-run completes."""
    codes = [r.code for r in rows]
    existing: dict[str, Any] = {}
    for i in range(0, len(codes), 1000):
        existing.update(await repo.places(codes[i : i + 1000]))
    wanted = {r.code for r in rows}
    parents = {p for r in rows if (p := parent_of(r.code)) and p not in wanted}
    found = await repo.places(sorted(parents)) if parents else {}
    missing = sorted(parents - found.keys())
    if missing:
        raise Unprocessable(
            f"{len(missing)} parent place(s) are neither stored nor in the file.",
            errors=[{"field": "code", "message": f"unknown parent {p}"} for p in missing[:100]],
        )
    ops: list[WriteOp] = []
    created = updated = unchanged = 0
    for r in rows:
        body = r.body()
        old = existing.get(r.code)
        if old is None:
            ops.append(Create(PLACES_COLLECTION, body, store_id(r.code)))
            created += 1
        elif dict(old.body) != body:
            ops.append(Update(PLACES_COLLECTION, store_id(r.code), body, old.version))
            updated += 1
        else:
            unchanged += 1
    for i in range(0, len(ops), WRITE_CHUNK):
        await repo.write(ops[i : i + WRITE_CHUNK])
    return ImportCounts(created, updated, unchanged)
