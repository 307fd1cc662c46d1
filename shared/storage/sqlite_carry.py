"""Carried values of the embedded store (CollectionSpec.carry): the counts of a faceted
search without seeking each match.

Every value of a carried key (a catalogue's state, subject, level, ...) gets one bit of a
63-bit integer the first time it is written (`<c>__xd`: key, value -> bit). A record's
bits (`x`, the OR of its carried values' bits) ride along on each of its text key rows,
whose index is then `(k, s, x, id)` instead of `(k, s, id)`; they are kept per record
(`<c>__xr`) so a change can take them back, and `<c>__xn` counts the live records per
distinct `x`, maintained in the same transaction as every write.

A tally whose keys are all carried is then:
- with a predicate on other keys (the search text): one range of the driving predicate's
  index rows, grouped by `x`, the other non-carried predicates checked per row;
- with predicates on carried keys only (a catalogue browsed by its filters): a read of
  `<c>__xn`, however many records match.
Either way, predicates on carried keys are bit tests on `x`, and the counts per value are
sums over the groups, all in SQL. Both start from the rarest driving value (its rows
counted up to RARITY_CAP), and an answer is remembered while the collection is unchanged.

A collection that also walks a key (CollectionSpec.walk) carries that key's largest value
(`d`, what "newest first" sorts by) on its text key rows too, indexed `(k, s, d DESC, id,
x)`: a page sorted on it (a catalogue's newest matches of a word, the relevance candidates
of a search, a browse by filters) is then the rarest driving value's rows read in page
order, carried predicates tested on `x` and the others checked per row, stopping at the
page, instead of finding and sorting every match.

If a collection ever needs a 64th carried value, it is marked `overflow` and tallies and
walks take the general way from then on (until loaded again); likewise a collection that
held records before its keys were first carried (or carried in another encoding).
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from shared.storage.codec import TOP
from shared.storage.model import Tally
from shared.storage.query import AllOf, AnyOf, Eq, In, Not, Predicate, Prefix
from shared.storage.schema import CollectionSpec, KeyType

log = logging.getLogger(__name__)

BITS = 63  # bits 0..62 of a signed 64-bit integer
# What `_carry` records: a stored encoding of another kind is not used. bits-2: the walked
# key's value `d` rides along too.
ENCODING = "bits-2"
# An ask of one key with this many values or more is counted by grouping on the key's bits
# (one sort of the groups), not by a sum per value (a test of every group per value).
GROUP_FROM = 9
# Counting a driving value's rows stops here: enough to tell a rare value from a common one.
RARITY_CAP = 2048
Bits = Mapping[tuple[str, str], int]  # (key, value) -> bit


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def create(db: sqlite3.Connection, spec: CollectionSpec) -> None:
    """The carry tables of a collection, and the x column of its key rows."""
    c = spec.name
    db.execute("CREATE TABLE IF NOT EXISTS _carry (c TEXT PRIMARY KEY, keys TEXT NOT NULL)")
    # Bumped by every change of the maintained counts: answers computed from them are
    # reused while it stays (`Memo`).
    db.execute("CREATE TABLE IF NOT EXISTS _carry_gen (c TEXT PRIMARY KEY, gen INTEGER NOT NULL)")
    columns = {row[1] for row in db.execute(f"PRAGMA table_info({_q(c + '__k')})")}
    if "x" not in columns:  # a store created before carried values
        db.execute(f"ALTER TABLE {_q(c + '__k')} ADD COLUMN x INTEGER")
    if "d" not in columns:  # a store created before carried walked values
        db.execute(f"ALTER TABLE {_q(c + '__k')} ADD COLUMN d")
    if not spec.carry:
        return
    for stmt in (
        f"CREATE TABLE IF NOT EXISTS {_q(c + '__xd')} (k TEXT NOT NULL, s TEXT NOT NULL,"
        " bit INTEGER NOT NULL, PRIMARY KEY (k, s)) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {_q(c + '__xr')} (id TEXT PRIMARY KEY,"
        " x INTEGER NOT NULL) WITHOUT ROWID",
        f"CREATE TABLE IF NOT EXISTS {_q(c + '__xn')} (x INTEGER PRIMARY KEY, n INTEGER NOT NULL)",
        # The text index of a carrying collection (in place of (k, s, id)): the general
        # plans use it as they would that one, tallies group its ranges by x.
        f"CREATE INDEX IF NOT EXISTS {_q(c + '__k_sx')} ON {_q(c + '__k')} (k, s, x, id)"
        " WHERE s IS NOT NULL",
    ):
        db.execute(stmt)
    row = db.execute("SELECT keys FROM _carry WHERE c=?", (c,)).fetchone()
    empty = db.execute(f"SELECT 1 FROM {_q(c + '__k')} LIMIT 1").fetchone() is None
    if spec.walk and (empty or (row is not None and row[0] == _wanted(spec))):
        # Walks of a value's rows in the walked key's order (largest first, then by id, as
        # the general plan sorts), x at hand for the carried predicates. Not built over a
        # store loaded by other code (its rows carry no d: `ready` says so): that would
        # take minutes at open for an index no search could use.
        db.execute(
            f"CREATE INDEX IF NOT EXISTS {_q(c + '__k_sd')} ON {_q(c + '__k')}"
            " (k, s, d DESC, id, x) WHERE s IS NOT NULL"
        )


def walked(spec: CollectionSpec) -> str | None:
    """The key whose largest value a carrying collection keeps on its text key rows."""
    return spec.walk[0] if spec.carry and spec.walk else None


def _wanted(spec: CollectionSpec) -> str:
    return json.dumps({"keys": list(spec.carry), "encoding": ENCODING, "walk": walked(spec)})


def ready(db: sqlite3.Connection, spec: CollectionSpec) -> bool:
    """Whether every record of the collection carries its `spec.carry` values: it does
    when the collection was empty when these keys were first carried this way."""
    if not spec.carry:
        return False
    wanted = _wanted(spec)
    row = db.execute("SELECT keys FROM _carry WHERE c=?", (spec.name,)).fetchone()
    if row is not None and row[0] == wanted:
        return True
    if row is not None and row[0] == "overflow":
        return False
    if db.execute(f"SELECT 1 FROM {_q(spec.name + '__k')} LIMIT 1").fetchone() is not None:
        log.warning(
            "%s was filled before its keys %s were carried: tallies take the general way"
            " (load it again for the fast one)",
            spec.name,
            ", ".join(spec.carry),
        )
        return False
    db.execute(
        "INSERT INTO _carry (c, keys) VALUES (?, ?) ON CONFLICT(c) DO UPDATE SET keys=?",
        (spec.name, wanted, wanted),
    )
    return True


def usable(db: sqlite3.Connection, spec: CollectionSpec) -> int | None:
    """The generation of the counts if still ready (no overflow since the store opened)."""
    row = db.execute(
        "SELECT c.keys, g.gen FROM _carry c LEFT JOIN _carry_gen g ON g.c=c.c WHERE c.c=?",
        (spec.name,),
    ).fetchone()
    return int(row[1] or 0) if row is not None and row[0] == _wanted(spec) else None


class Memo:
    """Tallies by collection, generation and question (the predicates and the keys): exact
    while the generation stands, since every write of the collection moves it. The same
    search asked again, by anyone, then costs a lookup until the next write; `size` holds
    the asks of a few thousand distinct searches (the benchmark's four kinds of search
    make about 2,500). Kept packed, as plain tuples of strings and numbers, which the
    garbage collector stops tracking (thousands of dicts would lengthen each of its full
    collections); each ask gets a fresh Tally, which the caller may change."""

    def __init__(self, size: int = 8192) -> None:
        self.size = size
        self.found: OrderedDict[tuple[Any, ...], tuple[int, tuple[Any, ...]]] = OrderedDict()

    def get(self, key: tuple[Any, ...]) -> Tally | None:
        """A remembered answer (None if none)."""
        packed = self.found.get(key)
        if packed is None:
            return None
        self.found.move_to_end(key)
        total, counts = packed
        return Tally(total, {k: dict(values) for k, values in counts})

    def put(self, key: tuple[Any, ...], tally: Tally) -> None:
        """Remember an answer; the least recently used goes beyond `size`."""
        counts = tuple((k, tuple(values.items())) for k, values in tally.counts.items())
        self.found[key] = (tally.total, counts)
        self.found.move_to_end(key)
        while len(self.found) > self.size:
            self.found.popitem(last=False)


def bits(db: sqlite3.Connection, spec: CollectionSpec) -> dict[tuple[str, str], int]:
    """The collection's value bits."""
    rows = db.execute(f"SELECT k, s, bit FROM {_q(spec.name + '__xd')}").fetchall()
    return {(k, s): int(b) for k, s, b in rows}


def encode(
    db: sqlite3.Connection, spec: CollectionSpec, keys: Mapping[str, list[Any]]
) -> int | None:
    """A record's bits (new values get the next free bit), or None once out of bits."""
    known = bits(db, spec)
    x = 0
    for key in spec.carry:
        for value in keys.get(key, ()):
            bit = known.get((key, value))
            if bit is None:
                bit = len(known)
                if bit >= BITS:
                    db.execute("UPDATE _carry SET keys='overflow' WHERE c=?", (spec.name,))
                    log.warning(
                        "%s has more than %d carried values: tallies take the general way",
                        spec.name,
                        BITS,
                    )
                    return None
                db.execute(
                    f"INSERT INTO {_q(spec.name + '__xd')} VALUES (?,?,?)", (key, value, bit)
                )
                known = {**known, (key, value): bit}
            x |= 1 << bit
    return x


def forget(db: sqlite3.Connection, spec: CollectionSpec, id: str) -> None:
    """Take a record's bits out of the counts (before its key rows are replaced)."""
    row = db.execute(f"SELECT x FROM {_q(spec.name + '__xr')} WHERE id=?", (id,)).fetchone()
    if row is None:
        return
    db.execute(f"UPDATE {_q(spec.name + '__xn')} SET n=n-1 WHERE x=?", (row[0],))
    db.execute(f"DELETE FROM {_q(spec.name + '__xr')} WHERE id=?", (id,))
    _moved(db, spec)


def _moved(db: sqlite3.Connection, spec: CollectionSpec) -> None:
    db.execute(
        "INSERT INTO _carry_gen VALUES (?, 1) ON CONFLICT(c) DO UPDATE SET gen=gen+1",
        (spec.name,),
    )


def remember(db: sqlite3.Connection, spec: CollectionSpec, id: str, x: int) -> None:
    """Count a record with key rows under its bits."""
    db.execute(f"INSERT INTO {_q(spec.name + '__xr')} VALUES (?,?)", (id, x))
    db.execute(
        f"INSERT INTO {_q(spec.name + '__xn')} VALUES (?,1) ON CONFLICT(x) DO UPDATE SET n=n+1",
        (x,),
    )
    _moved(db, spec)


def condition(pred: Predicate, known: Bits, col: str) -> str:
    """A predicate on carried keys only, as a test of the bits in `col` (literals only:
    bits are ours, never client text)."""
    if isinstance(pred, Not):
        return f"NOT ({condition(pred.pred, known, col)})"
    if isinstance(pred, AnyOf):
        return "(" + " OR ".join(condition(p, known, col) for p in pred.preds) + ")"
    if isinstance(pred, Eq):
        wanted = [known.get((pred.key, str(pred.value)))]
    elif isinstance(pred, In):
        wanted = [known.get((pred.key, str(v))) for v in pred.values]
    elif isinstance(pred, Prefix):
        wanted = [b for (k, s), b in known.items() if k == pred.key and s.startswith(pred.value)]
    elif isinstance(pred, AllOf):
        needed = [known.get((pred.key, v)) for v in pred.values]
        if any(b is None for b in needed):
            return "0"
        mask = sum(1 << b for b in set(needed) if b is not None)
        return f"({col} & {mask}) = {mask}"
    else:  # ranges and spans are not on text keys
        raise TypeError(f"not a predicate on carried keys: {pred!r}")
    mask = sum(1 << b for b in set(wanted) if b is not None)
    return f"({col} & {mask}) != 0" if mask else "0"


def some_of(
    sets: Sequence[Sequence[Predicate]], known: Bits, col: str
) -> tuple[str, tuple[Any, ...]]:
    """Whether the bits in `col` meet every predicate of at least one of `sets` (each a
    non-empty set of predicates on carried keys)."""
    each = [" AND ".join(condition(p, known, col) for p in preds) for preds in sets]
    return "(" + " OR ".join(f"({c})" for c in each) + ")", ()


def sums(keys: Sequence[str], known: Bits) -> tuple[str, list[tuple[str, str]]]:
    """The SELECT list summing `n` over groups of `x`: the total, then one sum per known
    value of each key; and those (key, value) pairs in column order."""
    columns = ["sum(n)"]
    pairs: list[tuple[str, str]] = []
    for (key, value), bit in sorted(known.items(), key=lambda kv: kv[1]):
        if key in keys:
            columns.append(f"sum(CASE WHEN (x & {1 << bit}) != 0 THEN n ELSE 0 END)")
            pairs.append((key, value))
    return ", ".join(columns), pairs


def rarity(db: sqlite3.Connection, table: str, cond: str, args: Sequence[Any]) -> int:
    """How many key rows satisfy a driving condition (`{t}` its alias), up to RARITY_CAP:
    the store keeps no statistics, and a search driven by its rarest value reads the fewest
    rows (a common word and a rare one: the rare one's rows, each checked for the other)."""
    sql = (
        f"SELECT count(*) FROM (SELECT 1 FROM {table} r WHERE {cond.format(t='r')}"
        f" LIMIT {RARITY_CAP})"
    )
    return int(db.execute(sql, tuple(args)).fetchone()[0])


def exact_prefixes(
    db: sqlite3.Connection, spec: CollectionSpec, where: Sequence[Predicate]
) -> list[Predicate]:
    """`where` with each Prefix on a text key that exactly one stored value starts with
    replaced by an Eq on that value (`photosynthesis` for `photosynth`): the same matches,
    but one value's rows are one record each and already in `x` and `d` order, so a walk
    stops at its page and a tally groups without sorting, where a prefix's rows (several
    values, a record possibly under two) are all read, de-duplicated and sorted. Most typed
    words are whole words or the start of one: two index seeks each. Call it inside the
    snapshot the query runs in: the values are those of that snapshot."""
    table = _q(spec.name + "__k")
    out: list[Predicate] = []
    for p in where:
        if isinstance(p, Prefix) and spec.keys[p.key] is KeyType.TEXT:
            first = db.execute(
                f"SELECT s FROM {table} WHERE k=? AND s>=? AND s<? ORDER BY s LIMIT 1",
                (p.key, p.value, p.value + TOP),
            ).fetchone()
            if first is not None:
                other = db.execute(
                    f"SELECT 1 FROM {table} WHERE k=? AND s>? AND s<? LIMIT 1",
                    (p.key, first[0], p.value + TOP),
                ).fetchone()
                if other is None:
                    p = Eq(p.key, first[0])
        out.append(p)
    return out


def after(col: str, value: Any, last_id: str) -> tuple[str, tuple[Any, ...]]:
    """Dated rows after (value, id) in walk order (largest value first, then by id), as a
    range the index seeks."""
    return f"{col}.d<=? AND NOT ({col}.d=? AND {col}.id<=?)", (value, value, last_id)


def ask(
    keys: Sequence[str], known: Bits, preds: Sequence[Predicate]
) -> tuple[str, Callable[[str], Tally]]:
    """One ask of `tallies` over the groups `g` (x, n): a scalar subquery giving its counts
    as JSON, and what makes its Tally of that JSON."""
    only = " AND ".join(condition(p, known, "x") for p in preds) or "1"
    mine = {pair: bit for pair, bit in known.items() if pair[0] in keys}
    if len(keys) == 1 and len(mine) >= GROUP_FROM:
        mask = sum(1 << bit for bit in mine.values())
        sql = (
            "(SELECT json_group_array(json_array(c, m)) FROM"
            f" (SELECT x & {mask} AS c, sum(n) AS m FROM g WHERE {only} GROUP BY 1))"
        )

        def grouped(text: str) -> Tally:
            counts: dict[str, dict[str, int]] = {keys[0]: {}}
            total = 0
            for combination, n in json.loads(text):
                total += n
                for (key, value), bit in mine.items():
                    if combination >> bit & 1:
                        counts[key][value] = counts[key].get(value, 0) + n
            return Tally(total, counts)

        return sql, grouped
    columns, pairs = sums(keys, known)

    def summed(text: str) -> Tally:
        values = json.loads(text)
        counts: dict[str, dict[str, int]] = {k: {} for k in keys}
        for (key, value), n in zip(pairs, values[1:], strict=True):
            if n:
                counts[key][value] = int(n)
        return Tally(int(values[0] or 0), counts)

    return f"(SELECT json_array({columns}) FROM g WHERE {only})", summed
