"""Embedded adapter: one SQLite file in WAL mode, index keys in a side table.

Reads are short and run inline on the event loop: no thread hop per query (measured on this
machine: inline reads are about twice as fast as a thread pool). Writes of a file store run on
one writer thread with its own connection: a write transaction (an audit batch of hundreds
of records, a 400-entry FHIR transaction) then no longer stalls every request in flight, and
SQLite's B-tree work, which runs without the GIL, overlaps request handling on the other
core. One thread means one writer at a time, which is all SQLite allows anyway; the
connection on the loop sees each write as soon as it is committed (WAL, autocommit reads).
Writes that queue up while the thread is busy are committed together (group commit): each
in its own SAVEPOINT, so each is still all or nothing and fails alone, while the commit and
its share of WAL checkpointing are paid once per group instead of once per write.
An in-memory store has a single connection and writes inline.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import json
import logging
import sqlite3
import threading
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import parse_qs, urlsplit

from opentelemetry import trace

from shared.storage import sqlite_carry as carry
from shared.storage.codec import TOP, from_micros, micros, stored
from shared.storage.errors import (
    AlreadyExists,
    InvalidQuery,
    RecordDeleted,
    RecordNotFound,
    StoreUnavailable,
    UniqueViolation,
    VersionConflict,
)
from shared.storage.keyset import KeysetOps, after
from shared.storage.model import Event, KeyValues, Page, Record, StoredEvent, Tally, WriteOp
from shared.storage.port import Store
from shared.storage.prepare import Prepared, check_events, prepare
from shared.storage.query import (
    KEY_PREDICATES,
    AllOf,
    AnyOf,
    Eq,
    In,
    KeyPredicate,
    Not,
    Predicate,
    Prefix,
    Query,
    Range,
    Span,
    decode_cursor,
    encode_cursor,
    predicate_keys,
    validate,
    validate_key_values,
    validate_tally,
)
from shared.storage.schema import CollectionSpec, KeyType

log = logging.getLogger(__name__)
# Walks (SQLiteStore._walk): tried for pages of at most this many records, when the driving
# predicate has at least this many rows, reading at most this many entries in sort order.
WALK_MAX_LIMIT = 1000
WALK_MIN_DRIVER = 2000
WALK_BUDGET = 5_000
WALK_PROBE = 1000  # entries read first, to judge whether the rest of the budget will do
_SYNC_MODES = {"OFF", "NORMAL", "FULL", "EXTRA"}
_tracer = trace.get_tracer(__name__)
F = TypeVar("F", bound=Callable[..., Awaitable[Any]])


def traced(operation: str) -> Callable[[F], F]:
    """A client span per store call (sqlite3's own instrumentation only sees cursors, and a
    span per SQL statement would cost more than the statements themselves)."""

    def wrap(fn: F) -> F:
        @functools.wraps(fn)
        async def call(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
            attributes = {"db.system": "sqlite", "db.operation.name": operation}
            if args and isinstance(args[0], str):
                attributes["db.collection.name"] = args[0]
            with _tracer.start_as_current_span(
                f"sqlite {operation}", kind=trace.SpanKind.CLIENT, attributes=attributes
            ):
                return await fn(self, *args, **kwargs)

        return cast(F, call)

    return wrap


_OPS = {"gt": ">", "ge": ">=", "lt": "<", "le": "<="}
GROUP_MAX = 256  # writes per group commit: bounds the time a group holds the write lock


@dataclass(frozen=True, slots=True)
class _QueuedWrite:
    ops: Sequence[WriteOp]
    events: Sequence[Event]
    done: asyncio.Future[list[Record]]
    loop: asyncio.AbstractEventLoop


def _settle(done: asyncio.Future[list[Record]], outcome: list[Record] | BaseException) -> None:
    if done.done():  # the caller was cancelled; the write itself stands
        return
    if isinstance(outcome, BaseException):
        done.set_exception(outcome)
    else:
        done.set_result(outcome)


def sqlite_path(url: str) -> tuple[str, str]:
    """(file path, synchronous mode) of a `sqlite:///relative`, `sqlite:////absolute` or
    `sqlite:///:memory:` URL; `?synchronous=FULL` trades speed for power-loss safety."""
    parts = urlsplit(url)
    if parts.scheme != "sqlite":
        raise ValueError(f"not a sqlite URL: {url!r}")
    path = parts.path[1:] if parts.path.startswith("/") else parts.path
    if not path:
        raise ValueError(f"sqlite URL without a path: {url!r}")
    mode = parse_qs(parts.query).get("synchronous", ["NORMAL"])[0].upper()
    if mode not in _SYNC_MODES:
        raise ValueError(f"synchronous must be one of {sorted(_SYNC_MODES)}")
    return path, mode


def _q(name: str) -> str:
    # Collection names are validated by CollectionSpec (lower-case letters, digits, _).
    return f'"{name}"'


@dataclass(frozen=True, slots=True)
class Matcher:
    """One condition on a key-table row; lower rank = likelier to be selective."""

    rank: int
    cond: str
    args: tuple[Any, ...]


class SQLiteStore(Store):
    """The embedded store (default for `make run` and tests)."""

    kind = "sqlite"

    def __init__(self, url: str, specs: Sequence[CollectionSpec]) -> None:
        super().__init__(specs)
        self.path, self.synchronous = sqlite_path(url)
        self._db: sqlite3.Connection | None = None
        self._writer: sqlite3.Connection | None = None
        self._write_thread: ThreadPoolExecutor | None = None
        self._queue: deque[_QueuedWrite] = deque()
        self._queue_lock = threading.Lock()
        self._draining = False
        # Collections whose every text key row carries its record's `carry` values.
        self._carried: set[str] = set()
        self._memo = carry.Memo()

    # --- lifecycle ---------------------------------------------------------------------

    async def open(self) -> None:
        if self._db is not None:
            return
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        db = self._connect()
        with db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
                " type TEXT NOT NULL, key TEXT NOT NULL, payload TEXT NOT NULL,"
                " at INTEGER NOT NULL)"
            )
            for spec in self.specs.values():
                self._create_tables(db, spec)
                if carry.ready(db, spec):
                    self._carried.add(spec.name)
        self._db = db
        if self.path != ":memory:":
            self._writer = self._connect()
            self._write_thread = ThreadPoolExecutor(1, thread_name_prefix="sqlite-writer")

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        # The store traces its own calls (`traced`); the sqlite3 instrumentation's proxy
        # would only add an attribute lookup through Python to every statement.
        db = cast(sqlite3.Connection, getattr(db, "__wrapped__", db))
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode loses nothing on a process crash (commits sit in the WAL file);
        # only a power loss can drop the last transactions. FULL is one URL option away.
        db.execute(f"PRAGMA synchronous={self.synchronous}")
        db.execute("PRAGMA busy_timeout=5000")
        db.execute("PRAGMA temp_store=MEMORY")
        db.execute("PRAGMA cache_size=-65536")
        return db

    @staticmethod
    def _create_tables(db: sqlite3.Connection, spec: CollectionSpec) -> None:
        c = spec.name
        for stmt in (
            f"CREATE TABLE IF NOT EXISTS {_q(c)} (id TEXT PRIMARY KEY, version INTEGER NOT NULL,"
            " deleted INTEGER NOT NULL, updated_at INTEGER NOT NULL, body TEXT NOT NULL)"
            " WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {_q(c + '__h')} (id TEXT NOT NULL,"
            " version INTEGER NOT NULL, deleted INTEGER NOT NULL, updated_at INTEGER NOT NULL,"
            " body TEXT NOT NULL, PRIMARY KEY (id, version)) WITHOUT ROWID",
            # One row per index key value: s for text, n for numbers/instants and span lows,
            # hi for span highs. Covering indexes answer every predicate without the table.
            f"CREATE TABLE IF NOT EXISTS {_q(c + '__k')} (id TEXT NOT NULL, k TEXT NOT NULL,"
            " s TEXT, n, hi)",
            # A collection with carried values has (k, s, x, id) instead (sqlite_carry.py).
            f"CREATE INDEX IF NOT EXISTS {_q(c + '__k_s')} ON {_q(c + '__k')} (k, s, id)"
            " WHERE s IS NOT NULL"
            if not spec.carry
            else "SELECT 1",
            f"CREATE INDEX IF NOT EXISTS {_q(c + '__k_n')} ON {_q(c + '__k')} (k, n, hi, id)"
            " WHERE n IS NOT NULL",
            # Per-record lookups: deleting a record's keys, and checking the non-driving
            # predicates of a search for one candidate.
            f"DROP INDEX IF EXISTS {_q(c + '__k_id')}",
            f"CREATE INDEX IF NOT EXISTS {_q(c + '__k_rec')} ON {_q(c + '__k')} (id, k, s, n, hi)",
            f"CREATE TABLE IF NOT EXISTS {_q(c + '__s')} (id TEXT NOT NULL, k TEXT NOT NULL,"
            " lo, hi, PRIMARY KEY (id, k)) WITHOUT ROWID",
            f"CREATE TABLE IF NOT EXISTS {_q(c + '__u')} (k TEXT NOT NULL, v TEXT NOT NULL,"
            " id TEXT NOT NULL, PRIMARY KEY (k, v)) WITHOUT ROWID",
            f"CREATE INDEX IF NOT EXISTS {_q(c + '__u_id')} ON {_q(c + '__u')} (id)",
        ):
            db.execute(stmt)
        for key in spec.walk:
            # The generic order of a descending sort: largest value first, then by id.
            db.execute(
                f"CREATE INDEX IF NOT EXISTS {_q(c + '__s_w_' + key)} ON {_q(c + '__s')}"
                f" (k, hi DESC, id) WHERE k='{key}'"
            )
        carry.create(db, spec)

    async def close(self) -> None:
        if self._write_thread is not None:
            # Writes already queued finish first: their callers are awaiting them.
            await asyncio.get_running_loop().run_in_executor(None, self._write_thread.shutdown)
            self._write_thread = None
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        if self._db is not None:
            self._db.close()
            self._db = None

    @property
    def db(self) -> sqlite3.Connection:
        """The open connection (StoreUnavailable before open or after close)."""
        if self._db is None:
            raise StoreUnavailable("the SQLite store is not open")
        return self._db

    async def ping(self) -> None:
        try:
            self.db.execute("SELECT 1").fetchone()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"SQLite store unusable: {exc}") from exc

    # --- reads -------------------------------------------------------------------------

    @staticmethod
    def _record(collection: str, row: Sequence[Any]) -> Record:
        return Record(
            collection, row[0], row[1], bool(row[2]), from_micros(row[3]), json.loads(row[4])
        )

    @traced("get")
    async def get(self, collection: str, id: str, *, include_deleted: bool = False) -> Record:
        self.spec(collection)
        row = self.db.execute(
            f"SELECT id, version, deleted, updated_at, body FROM {_q(collection)} WHERE id=?",
            (id,),
        ).fetchone()
        if row is None:
            raise RecordNotFound(f"{collection}/{id} not found")
        rec = self._record(collection, row)
        if rec.deleted and not include_deleted:
            raise RecordDeleted(f"{collection}/{id} was deleted", version=rec.version)
        return rec

    @traced("get_version")
    async def get_version(self, collection: str, id: str, version: int) -> Record:
        self.spec(collection)
        row = self.db.execute(
            f"SELECT id, version, deleted, updated_at, body FROM {_q(collection + '__h')}"
            " WHERE id=? AND version=?",
            (id, version),
        ).fetchone()
        if row is None:
            raise RecordNotFound(f"{collection}/{id} has no version {version}")
        return self._record(collection, row)

    @traced("history")
    async def history(
        self, collection: str, id: str, *, limit: int = 50, before_version: int | None = None
    ) -> list[Record]:
        self.spec(collection)
        rows = self.db.execute(
            f"SELECT id, version, deleted, updated_at, body FROM {_q(collection + '__h')}"
            " WHERE id=? AND version<? ORDER BY version DESC LIMIT ?",
            (id, before_version or 2**62, max(0, min(limit, 1000))),
        ).fetchall()
        return [self._record(collection, r) for r in rows]

    @staticmethod
    def _matchers(spec: CollectionSpec, pred: KeyPredicate) -> list[Matcher]:
        """Conditions on one key-table row ({t} is its alias) that together express `pred`
        (one per AllOf value, else one), with their rank as a driving predicate: by the
        kind of predicate, first for a unique key's value, last for a coarse key."""
        found = SQLiteStore._kind_matchers(spec, pred)
        if isinstance(pred, Eq) and pred.key in spec.unique:
            return [dataclasses.replace(m, rank=-1) for m in found]
        if pred.key in spec.coarse:
            return [dataclasses.replace(m, rank=m.rank + 10) for m in found]
        return found

    @staticmethod
    def _kind_matchers(spec: CollectionSpec, pred: KeyPredicate) -> list[Matcher]:
        kind = spec.keys[pred.key]
        col = "s" if kind is KeyType.TEXT else "n"

        def m(rank: int, cond: str, *values: Any) -> Matcher:
            return Matcher(rank, "{t}.k=? AND " + cond, (pred.key, *values))

        if isinstance(pred, Eq):
            return [m(0 if col == "s" else 3, f"{{t}}.{col}=?", stored(kind, pred.value))]
        if isinstance(pred, In):
            vals = [stored(kind, v) for v in pred.values]
            marks = ",".join("?" * len(vals))
            return [m(1 if col == "s" else 5, f"{{t}}.{col} IN ({marks})", *vals)]
        if isinstance(pred, Prefix):
            return [m(4, "{t}.s>=? AND {t}.s<?", pred.value, pred.value + TOP)]
        if isinstance(pred, AllOf):
            return [m(2, "{t}.s=?", v) for v in dict.fromkeys(pred.values)]
        if isinstance(pred, Range):
            pairs = (("gt", pred.gt), ("ge", pred.ge), ("lt", pred.lt), ("le", pred.le))
            ops = [(o, b) for o, b in pairs if b is not None]
            cond = " AND ".join(f"{{t}}.n{_OPS[o]}?" for o, _ in ops)
            return [m(7, cond, *(stored(kind, b) for _, b in ops))]
        assert isinstance(pred, Span)
        conds = [f"{{t}}.n{_OPS[o]}?" for o, _ in pred.low.items()]
        conds += [f"{{t}}.hi{_OPS[o]}?" for o, _ in pred.high.items()]
        # A span's low end never exceeds its high end, so an upper bound on the high end
        # bounds the low end too: it closes the index range on (k, n) (FHIR eq, eb, ...).
        implied = [(o, b) for o, b in pred.high.items() if o in ("lt", "le")]
        conds += [f"{{t}}.n{_OPS[o]}?" for o, _ in implied]
        # "n IS NOT NULL" lets the planner use the partial index on (k, n, hi, id).
        values = (micros(b) for _, b in pred.low.items() + pred.high.items() + implied)
        return [m(6, "{t}.n IS NOT NULL AND " + " AND ".join(conds), *values)]

    def _candidates(
        self, spec: CollectionSpec, where: Sequence[Predicate]
    ) -> tuple[str, list[Any]]:
        """SQL for the ids of live records matching every predicate, answered from the key
        table alone (see _Plan)."""
        sql, args = _Plan(spec, self._matchers).candidates(where)
        return sql, list(args)

    def _select(
        self, spec: CollectionSpec, query: Query
    ) -> tuple[str, list[Any], list[tuple[str, bool]]]:
        # Sort and page on ids and sort values first; bodies are read for the page only.
        candidates, args = self._candidates(spec, query.where)
        joins: list[str] = []
        columns: list[tuple[str, bool]] = []
        for i, s in enumerate(query.sort):
            joins.append(f"LEFT JOIN {_q(spec.name + '__s')} s{i} ON s{i}.id=c.id AND s{i}.k=?")
            args.append(s.key)
            columns.append((f"s{i}.{'hi' if s.descending else 'lo'}", s.descending))
        where = "1"
        if query.cursor:
            values, last_id = decode_cursor(spec.name, query.sort, query.cursor)
            where, cond_args = after(columns, values, last_id, _SQL_KEYSET)
            args.extend(cond_args)
        inner_cols = ", ".join(
            ["c.id AS id"] + [f"{c} AS c{i}" for i, (c, _) in enumerate(columns)]
        )
        inner_order = [
            f"c{i} {'DESC' if desc else 'ASC'}" for i, (_, desc) in enumerate(columns)
        ] + ["id ASC"]
        outer_order = [f"p.{o}" for o in inner_order]
        sort_cols = "".join(f", p.c{i}" for i in range(len(columns)))
        sql = (
            f"SELECT d.id, d.version, d.deleted, d.updated_at, d.body{sort_cols} FROM"
            f" (SELECT {inner_cols} FROM ({candidates}) c {' '.join(joins)} WHERE {where}"
            f" ORDER BY {', '.join(inner_order)} LIMIT ?) p"
            f" JOIN {_q(spec.name)} d ON d.id=p.id ORDER BY {', '.join(outer_order)}"
        )
        args.append(query.limit + 1)
        return sql, args, columns

    @traced("search")
    async def search(self, collection: str, query: Query) -> Page:
        spec = self.spec(collection)
        validate(spec, query)
        rows = self._carried_walk(spec, query)
        if rows is None:
            rows = self._walk(spec, query)
        if rows is None:
            sql, args, _columns = self._streamed(spec, query) or self._select(spec, query)
            try:
                rows = self.db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:  # e.g. an integer too large for SQLite
                raise InvalidQuery(f"query cannot be run: {exc}") from exc
        more = len(rows) > query.limit
        rows = rows[: query.limit]
        cursor = None
        if more and rows:
            last = rows[-1]
            cursor = encode_cursor(collection, query.sort, list(last[5:]), last[0])
        total = await self.count(collection, query.where) if query.count else None
        return Page([self._record(collection, r[:5]) for r in rows], cursor, total)

    def _carried_walk(self, spec: CollectionSpec, query: Query) -> list[Any] | None:
        """A page sorted on the walked key that a carrying collection keeps on its text key
        rows (shared/storage/sqlite_carry.py), or None where that does not apply: the rows
        of the rarest positive text value read in page order, stopping at the page."""
        key = carry.walked(spec)
        if (
            key is None
            or spec.name not in self._carried
            or len(query.sort) != 1
            or query.sort[0].key != key
            or not query.sort[0].descending
            or not 0 < query.limit <= WALK_MAX_LIMIT
        ):
            return None
        drivers = self._text_drivers(spec, query.where)
        if not drivers:
            return None
        db = self.db
        db.execute("BEGIN")  # one snapshot: the bits, the page and its bodies
        try:
            if carry.usable(db, spec) is None:
                return None
            query = dataclasses.replace(query, where=carry.exact_prefixes(db, spec, query.where))
            return self._carried_walked(spec, query, self._text_drivers(spec, query.where))
        except sqlite3.Error as exc:  # as in search
            raise InvalidQuery(f"query cannot be run: {exc}") from exc
        finally:
            db.execute("COMMIT")

    def _text_drivers(
        self, spec: CollectionSpec, where: Sequence[Predicate]
    ) -> list[tuple[Matcher, Predicate]]:
        """The rows a search could start from: each positive predicate on a text key."""
        return [
            (m, p)
            for p in where
            if isinstance(p, Eq | In | Prefix | AllOf) and spec.keys[p.key] is KeyType.TEXT
            for m in self._matchers(spec, p)
        ]

    def _rarest(
        self, spec: CollectionSpec, drivers: Sequence[tuple[Matcher, Predicate]]
    ) -> tuple[Matcher, Predicate, int | None]:
        """The driver with the fewest rows (counted up to carry.RARITY_CAP; ties by rank),
        and its rows as counted (None when it was the only one, not counted). Coarse keys
        are left out while another key can drive (CollectionSpec.coarse)."""
        fine = [d for d in drivers if d[0].rank < 10]  # _matchers ranks coarse keys 10 up
        drivers = fine or drivers
        if len(drivers) == 1:
            return (*drivers[0], None)
        table = _q(spec.name + "__k")
        counted = [(carry.rarity(self.db, table, m.cond, m.args), m.rank, m, p) for m, p in drivers]
        rows, _, first, driver = min(counted, key=lambda c: (c[0], c[1]))
        return first, driver, rows

    def _carried_walked(
        self,
        spec: CollectionSpec,
        query: Query,
        drivers: Sequence[tuple[Matcher, Predicate]],
    ) -> list[Any]:
        first, driver, _ = self._rarest(spec, drivers)
        known = carry.bits(self.db, spec)
        carried = set(spec.carry)
        plan = _Plan(spec, self._matchers)
        t = plan.alias("t")
        conds: list[Fragment] = [(first.cond.format(t=t), first.args), (f"{t}.x IS NOT NULL", ())]
        for p in query.where:
            if predicate_keys(p) <= carried:
                conds.append((carry.condition(p, known, f"{t}.x"), ()))
            elif isinstance(p, Not | AnyOf):
                conds.append(plan.check(p, f"{t}.id"))
            else:
                conds += [plan.exists(m, f"{t}.id") for m in self._matchers(spec, p) if m != first]
        rows = f"{plan.kt} {t} INDEXED BY {_q(spec.name + '__k_sd')}"
        # An In or a Prefix may match several rows of one record (of the same d).
        head = f"SELECT {'DISTINCT ' if isinstance(driver, In | Prefix) else ''}{t}.id, {t}.d"
        value, last_id = None, None
        if query.cursor:
            (value,), last_id = decode_cursor(spec.name, query.sort, query.cursor)
        need = query.limit + 1
        found: list[tuple[str, Any]] = []
        if value is not None or last_id is None:  # the dated records, largest first
            dated = [*conds, (f"{t}.d IS NOT NULL", ())]
            if last_id is not None:
                dated.append(carry.after(t, value, last_id))
            where_sql, args = _join("AND", "1", dated)
            found += self.db.execute(
                f"{head} FROM {rows} WHERE {where_sql} ORDER BY {t}.d DESC, {t}.id LIMIT ?",
                [*args, need],
            ).fetchall()
        if len(found) < need:  # then those without the key, by id (as the general plan)
            undated = [*conds, (f"{t}.d IS NULL", ())]
            if value is None and last_id is not None:
                undated.append((f"{t}.id>?", (last_id,)))
            where_sql, args = _join("AND", "1", undated)
            found += self.db.execute(
                f"{head} FROM {rows} WHERE {where_sql} ORDER BY {t}.id LIMIT ?",
                [*args, need - len(found)],
            ).fetchall()
        if not found:
            return []
        return self._with_documents(spec, found)

    def _with_documents(self, spec: CollectionSpec, found: list[tuple[str, Any]]) -> list[Any]:
        """The rows of a page found on the index, `(id, sort value)` in page order, with their
        documents (one read for the page): `(id, version, deleted, updated_at, body, value)`."""
        ids = [i for i, _ in found]
        docs = {
            r[0]: r
            for r in self.db.execute(
                f"SELECT id, version, deleted, updated_at, body FROM {_q(spec.name)}"
                f" WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            )
        }
        return [(*docs[i], value) for i, value in found]

    def _walk(self, spec: CollectionSpec, query: Query) -> list[Any] | None:
        """A page walked in sort order (CollectionSpec.walk), or None where that does not
        apply or did not find a full page within its budget: then the general plan, which
        finds every match and sorts them, answers. Walking pays when the matches are many
        (a common word, a broad filter): the first page is near the start of the order. So
        it is tried only when the driving predicate alone has WALK_MIN_DRIVER rows; it reads
        WALK_PROBE index entries, and goes on up to WALK_BUDGET only when the matches among
        those say a page lies within it. Same order, same cursors as the general
        plan (largest value first, then by id); records without the key come last there,
        so a full page walked never needs them."""
        if (
            len(query.sort) != 1
            or not query.sort[0].descending
            or query.sort[0].key not in spec.walk
            or not 0 < query.limit <= WALK_MAX_LIMIT
        ):
            return None
        # Several statements: one snapshot, so the bodies read are those of the page found.
        self.db.execute("BEGIN")
        try:
            return self._walked(spec, query)
        finally:
            self.db.execute("COMMIT")

    def _walked(self, spec: CollectionSpec, query: Query) -> list[Any] | None:
        plan = _Plan(spec, self._matchers)
        drivers = sorted(
            (
                m
                for p in query.where
                if not isinstance(p, Not | AnyOf)
                for m in self._matchers(spec, p)
            ),
            key=lambda m: m.rank,
        )
        if not drivers:
            return None
        first = drivers[0]
        t = plan.alias()
        many = self.db.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {plan.kt} {t} WHERE"
            f" {first.cond.format(t=t)} LIMIT {WALK_MIN_DRIVER})",
            first.args,
        ).fetchone()[0]
        if many < WALK_MIN_DRIVER:
            return None
        key = query.sort[0].key
        index = _q(spec.name + "__s_w_" + key)
        # A literal, not a parameter: the planner must see that the partial index applies
        # (key names are checked to be letters, digits and _:-). Bounds are ranges on hi
        # (which the index seeks) minus the ties on the wrong side of the id.
        walked = f"{_q(spec.name + '__s')} w INDEXED BY {index}"
        origin: list[Fragment] = [(f"w.k='{key}'", ())]
        if query.cursor:
            values, last_id = decode_cursor(spec.name, query.sort, query.cursor)
            if values[0] is None:  # past the keyed records
                return None
            origin.append(_after_entry(values[0], last_id))
        checks = [plan.check(p, "w.id") for p in query.where]
        need = query.limit + 1
        found: list[tuple[str, Any]] = []
        start = origin
        # A probe first; the rest of the budget only where the probe's share of matches
        # says a page lies within it (otherwise the general plan is cheaper).
        probe = min(WALK_PROBE, WALK_BUDGET)
        for stage, length in enumerate((probe, WALK_BUDGET - probe)):
            if length <= 0:
                return None
            bound, bound_args = _join("AND", "1", start)
            end = self.db.execute(
                f"SELECT w.hi, w.id FROM {walked} WHERE {bound}"
                f" ORDER BY w.hi DESC, w.id ASC LIMIT 1 OFFSET {length - 1}",
                bound_args,
            ).fetchone()
            stop = [] if end is None else [_up_to_entry(end[0], end[1])]
            where_sql, where_args = _join("AND", "1", [*start, *stop, *checks])
            try:
                found += self.db.execute(
                    f"SELECT w.id, w.hi FROM {walked} WHERE {where_sql}"
                    " ORDER BY w.hi DESC, w.id ASC LIMIT ?",
                    [*where_args, need - len(found)],
                ).fetchall()
            except sqlite3.Error as exc:
                raise InvalidQuery(f"query cannot be run: {exc}") from exc
            if len(found) >= need:
                break
            if end is None or (stage == 0 and len(found) * WALK_BUDGET < need * probe):
                return None  # every keyed record read, or too few matches to walk on
            start = [*origin, _after_entry(end[0], end[1])]
        else:
            return None
        # Bodies are read for the page only.
        return self._with_documents(spec, found)

    def _streamed(
        self, spec: CollectionSpec, query: Query
    ) -> tuple[str, list[Any], list[tuple[str, bool]]] | None:
        """SQL reading an unsorted page straight off the driving index (CollectionSpec.
        stream), or None where that does not apply. The driver is the one the general plan
        picks; when it is one value of a text key, its (k, s, id) index range is already in
        id order, so the page is read in order, each entry checked against the other
        predicates, and reading stops at the page: a broad driver (a category) costs a page's
        worth of entries, not all of them. Same rows, same order, same cursors as the
        general plan."""
        if query.sort or not spec.stream or spec.carry:
            return None
        plan = _Plan(spec, self._matchers)
        keyed = [
            (m, p)
            for p in query.where
            if not isinstance(p, Not | AnyOf)
            for m in self._matchers(spec, p)
        ]
        if not keyed:
            return None
        first, driver = min(keyed, key=lambda mp: mp[0].rank)
        one_value = isinstance(driver, Eq) or (isinstance(driver, In) and len(driver.values) == 1)
        if not one_value or spec.keys[driver.key] is not KeyType.TEXT:
            return None
        # An AnyOf of key predicates only, which the general plan would drive by instead.
        if any(
            all(isinstance(x, KEY_PREDICATES) for x in p.preds)
            and plan.rank([x for x in p.preds if isinstance(x, KEY_PREDICATES)]) < first.rank
            for p in query.where
            if isinstance(p, AnyOf)
        ):
            return None
        t = plan.alias("t")
        conds: list[Fragment] = [(first.cond.format(t=t), first.args)]
        if query.cursor:
            _values, last_id = decode_cursor(spec.name, query.sort, query.cursor)
            conds.append((f"{t}.id>?", (last_id,)))
        rest = sorted((m for m, _ in keyed if m is not first), key=lambda m: m.rank)
        conds += [plan.exists(m, f"{t}.id") for m in rest]
        others = sorted(
            (p for p in query.where if isinstance(p, Not | AnyOf)), key=lambda p: isinstance(p, Not)
        )
        conds += [plan.check(p, f"{t}.id") for p in others]
        where_sql, args = _join("AND", "1", conds)
        # CROSS JOIN: the index entries are the outer loop (SQLite keeps that order), so
        # documents are read for the page's entries only.
        sql = (
            f"SELECT d.id, d.version, d.deleted, d.updated_at, d.body"
            f" FROM {plan.kt} {t} INDEXED BY {_q(spec.name + '__k_s')}"
            f" CROSS JOIN {_q(spec.name)} d ON d.id={t}.id"
            f" WHERE {where_sql} ORDER BY {t}.id LIMIT ?"
        )
        return sql, [*args, query.limit + 1], []

    @traced("key_values")
    async def key_values(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str], limit: int
    ) -> KeyValues:
        spec = self.spec(collection)
        validate_key_values(spec, where, keys, limit)
        candidates, args = self._candidates(spec, where)
        marks = ",".join("?" * len(keys))
        # The matches' ids first (their page in id order), then their own key rows of the
        # keys asked for: one seek each on (id, k), no document read.
        sql = (
            f"SELECT c.id, f.k, f.s, f.n FROM (SELECT id FROM ({candidates}) ORDER BY id"
            f" LIMIT ?) c LEFT JOIN {_q(spec.name + '__k')} f INDEXED BY"
            f" {_q(spec.name + '__k_rec')} ON f.id=c.id AND f.k IN ({marks})"
        )
        try:
            rows = self.db.execute(sql, [*args, limit + 1, *keys]).fetchall()
        except sqlite3.Error as exc:  # as in search
            raise InvalidQuery(f"query cannot be run: {exc}") from exc
        found: dict[str, dict[str, list[Any]]] = {}
        for id, key, s, n in rows:
            entry = found.get(id)
            if entry is None:
                entry = found[id] = {k: [] for k in keys}
            if key is not None:
                kind = spec.keys[key]
                entry[key].append(
                    s if kind is KeyType.TEXT else from_micros(n) if kind is KeyType.INSTANT else n
                )
        ids = sorted(found)
        return KeyValues({i: found[i] for i in ids[:limit]}, len(ids) > limit)

    @traced("count")
    async def count(self, collection: str, where: Sequence[Predicate] = ()) -> int:
        spec = self.spec(collection)
        validate(spec, Query(where=where))
        carried = self._carried_tallies(spec, where, [((), ())])
        if carried is not None:
            return carried[0].total
        candidates, args = self._candidates(spec, where)
        try:
            row = self.db.execute(f"SELECT count(*) FROM ({candidates})", args).fetchone()
        except sqlite3.Error as exc:  # as in search
            raise InvalidQuery(f"query cannot be run: {exc}") from exc
        return int(row[0])

    @traced("tally")
    async def tally(
        self, collection: str, where: Sequence[Predicate], keys: Sequence[str]
    ) -> Tally:
        spec = self.spec(collection)
        validate_tally(spec, where, keys)
        carried = self._carried_tallies(spec, where, [((), keys)])
        if carried is not None:
            return carried[0]
        candidates, args = self._candidates(spec, where)
        kt = _q(spec.name + "__k")
        marks = ",".join("?" * len(keys))
        # The matches are found once (MATERIALIZED), then counted, then joined to their own
        # key rows of the tallied keys: one seek per match on (id, k), not one search per
        # value. Each value is stored once per record (extract_keys de-duplicates), so
        # count(*) counts records.
        sql = f"WITH c AS MATERIALIZED ({candidates}) SELECT NULL, NULL, count(*) FROM c"
        if keys:
            sql += (
                f" UNION ALL SELECT f.k, f.s, count(*) FROM c JOIN {kt} f INDEXED BY"
                f" {_q(spec.name + '__k_rec')} ON f.id=c.id AND f.k IN ({marks})"
                " AND f.s IS NOT NULL GROUP BY f.k, f.s"
            )
        try:
            rows = self.db.execute(sql, [*args, *keys]).fetchall()
        except sqlite3.Error as exc:  # as in search
            raise InvalidQuery(f"query cannot be run: {exc}") from exc
        counts: dict[str, dict[str, int]] = {k: {} for k in keys}
        total = 0
        for key, value, n in rows:
            if key is None:
                total = int(n)
            else:
                counts[key][value] = int(n)
        return Tally(total, counts)

    @traced("tallies")
    async def tallies(
        self,
        collection: str,
        where: Sequence[Predicate],
        asks: Sequence[tuple[Sequence[Predicate], Sequence[str]]],
    ) -> list[Tally]:
        spec = self.spec(collection)
        for extra, keys in asks:
            validate_tally(spec, [*where, *extra], keys)
        found = self._carried_tallies(spec, where, asks)
        if found is not None:
            return found
        return [await self.tally(collection, [*where, *extra], keys) for extra, keys in asks]

    def _carried_tallies(
        self,
        spec: CollectionSpec,
        where: Sequence[Predicate],
        asks: Sequence[tuple[Sequence[Predicate], Sequence[str]]],
    ) -> list[Tally] | None:
        """Several carried tallies from one set of groups by `x` (the driving rows' range,
        or the maintained counts where `where` is on carried keys alone): each ask's
        predicates and keys are bit tests and sums over the same groups (`tally` and `count`
        are one ask). None where that does not apply: a key or an ask's predicate not
        carried, or nothing to start from."""
        carried = set(spec.carry)
        if (
            spec.name not in self._carried
            or not asks
            or any(not set(keys) <= carried for _, keys in asks)
            or any(not predicate_keys(p) <= carried for extra, _ in asks for p in extra)
        ):
            return None
        outer = [p for p in where if predicate_keys(p) <= carried]
        inner = [p for p in where if not predicate_keys(p) <= carried]
        drivers = self._text_drivers(spec, inner)
        if (inner and not drivers) or not any(
            isinstance(p, Eq | In | Prefix | AllOf | AnyOf) for p in where
        ):
            return None  # only negations: the general way finds the live records
        db = self.db
        db.execute("BEGIN")  # one snapshot for the bits and the counts
        try:
            gen = carry.usable(db, spec)
            if gen is None:
                return None
            memos = [(spec.name, gen, repr([*where, *extra]), tuple(keys)) for extra, keys in asks]
            found: list[Tally | None] = [self._memo.get(m) for m in memos]
            pending = [i for i, t in enumerate(found) if t is None]
            if pending:
                known = carry.bits(db, spec)
                inner = carry.exact_prefixes(db, spec, inner)
                drivers = self._text_drivers(spec, inner)
                # Only groups some ask counts: fewer to sort and group.
                some_of = [asks[i][0] for i in pending]
                if any(not extra for extra in some_of):
                    some_of = []
                if drivers:
                    groups, args = self._carried_groups(spec, inner, drivers, outer, known, some_of)
                else:  # carried keys only: the maintained counts
                    kept = " AND ".join(carry.condition(p, known, "x") for p in outer)
                    if some_of:
                        kept += " AND " + carry.some_of(some_of, known, "x")[0]
                    groups = f"SELECT x, n FROM {_q(spec.name + '__xn')} WHERE n>0 AND {kept}"
                    args = []
                # The groups are found once; each ask keeps those meeting its bit tests
                # before counting (one JSON value per ask: asks differ in their columns).
                columns = [carry.ask(asks[i][1], known, asks[i][0]) for i in pending]
                row = db.execute(
                    f"WITH g AS MATERIALIZED ({groups}) SELECT {', '.join(c for c, _ in columns)}",
                    args,
                ).fetchone()
                for i, (_, decode), text in zip(pending, columns, row, strict=True):
                    found[i] = tally = decode(text)
                    self._memo.put(memos[i], tally)
        except sqlite3.Error as exc:  # as in search
            raise InvalidQuery(f"query cannot be run: {exc}") from exc
        finally:
            db.execute("COMMIT")
        return [t for t in found if t]  # the memo keeps its own copies

    def _carried_groups(
        self,
        spec: CollectionSpec,
        inner: Sequence[Predicate],
        drivers: Sequence[tuple[Matcher, Predicate]],
        outer: Sequence[Predicate],
        known: carry.Bits,
        some_of: Sequence[Sequence[Predicate]] = (),
    ) -> tuple[str, list[Any]]:
        """Matches grouped by their carried bits: the driving predicate's range of the
        (k, s, x, id) index, the other non-carried predicates checked per row, the carried
        ones (`outer`, and one of the sets `some_of` if given) tested on the row's bits."""
        first, driver, counted = self._rarest(spec, drivers)
        plan = _Plan(spec, self._matchers)
        t = plan.alias("t")
        conds: list[Fragment] = [
            (first.cond.format(t=t), first.args),
            (f"{t}.x IS NOT NULL AND {t}.s IS NOT NULL", ()),
            *((carry.condition(p, known, f"{t}.x"), ()) for p in outer),
        ]
        if some_of:
            conds.append(carry.some_of(some_of, known, f"{t}.x"))
        # Every driving row is tested: where even the rarest value is common, the other
        # text values' ids are gathered once rather than sought per row.
        many = counted is not None and counted >= carry.RARITY_CAP
        for p in inner:
            if isinstance(p, Not | AnyOf):
                conds.append(plan.check(p, f"{t}.id"))
                continue
            text = spec.keys[p.key] is KeyType.TEXT
            for m in self._matchers(spec, p):
                if m != first:
                    conds.append(
                        plan.member(m, f"{t}.id") if many and text else plan.exists(m, f"{t}.id")
                    )
        where_sql, args = _join("AND", "1", conds)
        rows = f"{_q(spec.name + '__k')} {t} INDEXED BY {_q(spec.name + '__k_sx')}"
        if isinstance(driver, Eq | AllOf):  # one row per record
            sql = f"SELECT {t}.x AS x, count(*) AS n FROM {rows} WHERE {where_sql} GROUP BY {t}.x"
        else:  # several values of a record may match: each record once
            sql = (
                f"SELECT x, count(*) AS n FROM (SELECT DISTINCT {t}.id, {t}.x AS x FROM {rows}"
                f" WHERE {where_sql}) GROUP BY x"
            )
        return sql, list(args)

    async def explain(self, collection: str, query: Query) -> str:
        spec = self.spec(collection)
        validate(spec, query)
        sql, args, _ = self._streamed(spec, query) or self._select(spec, query)
        rows = self.db.execute("EXPLAIN QUERY PLAN " + sql, args).fetchall()
        return "\n".join(r[-1] for r in rows)

    @traced("events")
    async def events(self, after: int = 0, limit: int = 100) -> list[StoredEvent]:
        rows = self.db.execute(
            "SELECT seq, type, key, payload, at FROM outbox WHERE seq>? ORDER BY seq LIMIT ?",
            (after, max(0, min(limit, 1000))),
        ).fetchall()
        return [StoredEvent(r[0], r[1], r[2], json.loads(r[3]), from_micros(r[4])) for r in rows]

    # --- writes ------------------------------------------------------------------------

    @traced("write")
    async def write(self, ops: Sequence[WriteOp], events: Sequence[Event] = ()) -> list[Record]:
        db = self.db  # StoreUnavailable when closed
        if self._write_thread is None:
            return self._write(db, ops, events)
        loop = asyncio.get_running_loop()
        done: asyncio.Future[list[Record]] = loop.create_future()
        with self._queue_lock:
            self._queue.append(_QueuedWrite(ops, events, done, loop))
            start, self._draining = not self._draining, True
        if start:
            self._write_thread.submit(self._drain)
        return await done

    def _drain(self) -> None:
        """Writer thread: commit the queued writes, a group at a time, until none is left."""
        while True:
            with self._queue_lock:
                group = [self._queue.popleft() for _ in range(min(GROUP_MAX, len(self._queue)))]
                if not group:
                    self._draining = False
                    return
            outcomes = self._write_group(group)
            for item, outcome in zip(group, outcomes, strict=True):
                item.loop.call_soon_threadsafe(_settle, item.done, outcome)

    def _write_group(self, group: list[_QueuedWrite]) -> list[list[Record] | BaseException]:
        db = self._writer
        if db is None:
            return [StoreUnavailable("the SQLite store is closed")] * len(group)
        outcomes: list[list[Record] | BaseException] = []
        try:
            db.execute("BEGIN IMMEDIATE")
            for item in group:
                db.execute("SAVEPOINT one_write")
                try:
                    outcomes.append(self._apply_write(db, item.ops, item.events))
                except Exception as exc:
                    db.execute("ROLLBACK TO one_write")
                    outcomes.append(exc)
                db.execute("RELEASE one_write")
            db.execute("COMMIT")
        except Exception as exc:  # BEGIN or COMMIT failed: nothing of the group is stored
            if db.in_transaction:
                db.execute("ROLLBACK")
            return [exc] * len(group)
        return outcomes

    def _write(
        self, db: sqlite3.Connection, ops: Sequence[WriteOp], events: Sequence[Event]
    ) -> list[Record]:
        db.execute("BEGIN IMMEDIATE")
        try:
            records = self._apply_write(db, ops, events)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return records

    def _apply_write(
        self, db: sqlite3.Connection, ops: Sequence[WriteOp], events: Sequence[Event]
    ) -> list[Record]:
        prepared = prepare(self.specs, ops)
        evs = check_events(events)
        now = datetime.now(UTC)
        at = micros(now)
        records = [self._apply(db, p, at, now) for p in prepared]
        db.executemany(
            "INSERT INTO outbox (type, key, payload, at) VALUES (?,?,?,?)",
            [(t, k, p, at) for t, k, p in evs],
        )
        return records

    def _apply(self, db: sqlite3.Connection, p: Prepared, at: int, now: datetime) -> Record:
        c = p.spec.name
        row = db.execute(
            f"SELECT version, deleted, body FROM {_q(c)} WHERE id=?", (p.id,)
        ).fetchone()
        if p.op == "create":
            if row is not None:
                raise AlreadyExists(f"{c}/{p.id} already exists", id=p.id)
            version = 1
            db.execute(f"INSERT INTO {_q(c)} VALUES (?,?,?,?,?)", (p.id, 1, 0, at, p.body))
        else:
            if row is None:
                raise RecordNotFound(f"{c}/{p.id} not found")
            current, deleted = row[0], bool(row[1])
            if p.expected_version is not None and p.expected_version != current:
                raise VersionConflict(
                    f"{c}/{p.id} is at version {current}, not {p.expected_version}",
                    current_version=current,
                )
            if p.op == "delete" and deleted:
                return Record(c, p.id, current, True, now, {})
            version = current + 1
            db.execute(
                f"UPDATE {_q(c)} SET version=?, deleted=?, updated_at=?, body=? WHERE id=?",
                (version, int(p.op == "delete"), at, p.body, p.id),
            )
            if p.spec.carry:
                carry.forget(db, p.spec, p.id)
            for table in ("__k", "__s", "__u"):
                db.execute(f"DELETE FROM {_q(c + table)} WHERE id=?", (p.id,))
        deleted = p.op == "delete"
        db.execute(
            f"INSERT INTO {_q(c + '__h')} VALUES (?,?,?,?,?)",
            (p.id, version, int(deleted), at, p.body),
        )
        self._index(db, p)
        return Record(c, p.id, version, deleted, now, json.loads(p.body))

    @staticmethod
    def _index(db: sqlite3.Connection, p: Prepared) -> None:
        c = p.spec.name
        x = carry.encode(db, p.spec, p.keys) if p.spec.carry and p.keys else None
        if x is not None:
            carry.remember(db, p.spec, p.id, x)
        walked = carry.walked(p.spec)
        d = p.sort.get(walked, (None, None))[1] if walked else None
        rows: list[tuple[Any, ...]] = []
        for key, values in p.keys.items():
            kind = p.spec.keys[key]
            for v in values:
                if kind is KeyType.TEXT:
                    rows.append((p.id, key, v, None, None, x, d))
                elif kind is KeyType.SPAN:
                    rows.append((p.id, key, None, v[0], v[1], None, None))
                else:
                    rows.append((p.id, key, None, v, None, None, None))
        db.executemany(
            f"INSERT INTO {_q(c + '__k')} (id, k, s, n, hi, x, d) VALUES (?,?,?,?,?,?,?)", rows
        )
        db.executemany(
            f"INSERT INTO {_q(c + '__s')} VALUES (?,?,?,?)",
            [(p.id, k, lo, hi) for k, (lo, hi) in p.sort.items()],
        )
        for key, value in p.unique_values():
            try:
                db.execute(f"INSERT INTO {_q(c + '__u')} VALUES (?,?,?)", (key, value, p.id))
            except sqlite3.IntegrityError:
                holder = db.execute(
                    f"SELECT id FROM {_q(c + '__u')} WHERE k=? AND v=?", (key, value)
                ).fetchone()
                raise UniqueViolation(
                    f"{key} {value!r} is already used by {c}/{holder[0] if holder else '?'}",
                    key=key,
                    existing_id=holder[0] if holder else None,
                ) from None


class _Plan:
    """The candidate ids of one search, from the key table alone.

    The most selective-looking positive predicate drives through its index: one matcher
    (a key-table row condition), or an AnyOf of positive predicates as the UNION of its
    members' candidates. Every other predicate is checked per candidate through the
    (id, k, ...) index: EXISTS per matcher, NOT (...) for a Not, OR for an AnyOf. Deleted
    records have no key rows, so a driver from the key table never meets them; a query
    without any positive predicate (only Nots) is driven by the collection's live rows.
    Aliases are numbered per statement, so nested checks never shadow the id they test.
    """

    def __init__(
        self,
        spec: CollectionSpec,
        matchers: Callable[[CollectionSpec, KeyPredicate], list[Matcher]],
    ) -> None:
        self.spec = spec
        self.matchers = matchers
        self.kt = _q(spec.name + "__k")
        self.n = 0

    def alias(self, prefix: str = "k") -> str:
        """A fresh table alias."""
        self.n += 1
        return f"{prefix}{self.n}"

    def exists(self, m: Matcher, id_expr: str) -> Fragment:
        """Whether the record `id_expr` has a key row satisfying `m`."""
        t = self.alias()
        # INDEXED BY: a candidate has few key rows, but without statistics SQLite may walk
        # the whole value range of a key for every candidate instead.
        return (
            f"EXISTS (SELECT 1 FROM {self.kt} {t} INDEXED BY {_q(self.spec.name + '__k_rec')}"
            f" WHERE {t}.id={id_expr} AND {m.cond.format(t=t)})",
            m.args,
        )

    def member(self, m: Matcher, id_expr: str) -> Fragment:
        """Whether the record `id_expr` has a text key row satisfying `m`, in a carrying
        collection: the ids are read once (the covering `(k, s, x, id)` index) into a
        temporary one and each candidate probed there. Where thousands of candidates are
        tested (a tally over a common word's rows, the other word common too) that is a
        third of the cost of EXISTS's seek per candidate."""
        t = self.alias()
        return (
            f"{id_expr} IN (SELECT {t}.id FROM {self.kt} {t}"
            f" INDEXED BY {_q(self.spec.name + '__k_sx')}"
            f" WHERE {m.cond.format(t=t)} AND {t}.s IS NOT NULL)",
            m.args,
        )

    def check(self, pred: Predicate, id_expr: str) -> Fragment:
        """Whether the record `id_expr` matches `pred`."""
        if isinstance(pred, Not):
            sql, args = self.check(pred.pred, id_expr)
            return f"NOT {sql}", args
        if isinstance(pred, AnyOf):
            return _join("OR", "0", [self.check(p, id_expr) for p in pred.preds])
        return _join("AND", "1", [self.exists(m, id_expr) for m in self.matchers(self.spec, pred)])

    def rank(self, members: Sequence[KeyPredicate]) -> int:
        """Rank of an AnyOf as a driver: that of its least selective member."""
        return max(min(m.rank for m in self.matchers(self.spec, p)) for p in members)

    def candidates(self, where: Sequence[Predicate], distinct: bool = True) -> Fragment:
        """SELECT of the ids (column `id`) of live records matching every predicate."""
        matchers = sorted(
            (
                m
                for p in where
                if not isinstance(p, Not | AnyOf)
                for m in self.matchers(self.spec, p)
            ),
            key=lambda m: m.rank,
        )
        others: list[Not | AnyOf] = [p for p in where if isinstance(p, Not | AnyOf)]
        # An AnyOf of key predicates only can drive (a Not member would bring nearly every
        # record): as the union of its members' candidates.
        unions: list[tuple[int, AnyOf, list[KeyPredicate]]] = []
        for p in others:
            if isinstance(p, AnyOf):
                members = [x for x in p.preds if isinstance(x, KEY_PREDICATES)]
                if len(members) == len(p.preds):
                    unions.append((self.rank(members), p, members))
        driver: list[KeyPredicate] | None = None
        if unions:
            rank, best, driver = min(unions, key=lambda u: u[0])
            if matchers and matchers[0].rank <= rank:
                driver = None
            else:
                others.remove(best)
        conds: list[Fragment] = []
        if driver is not None:
            # UNION removes duplicates; a lone member must do it itself.
            alone = len(driver) == 1
            parts = [self.candidates([p], distinct=alone) for p in driver]
            t = self.alias("u")
            head = f"SELECT {t}.id AS id FROM ({' UNION '.join(sql for sql, _ in parts)}) {t}"
            head_args: tuple[Any, ...] = sum((a for _, a in parts), ())
        elif matchers:
            first, matchers = matchers[0], matchers[1:]
            t = self.alias()
            head = f"SELECT {'DISTINCT ' if distinct else ''}{t}.id AS id FROM {self.kt} {t}"
            head_args = ()
            conds.append((first.cond.format(t=t), first.args))
        else:
            t = self.alias("d")
            head = f"SELECT {t}.id AS id FROM {_q(self.spec.name)} {t}"
            head_args = ()
            conds.append((f"{t}.deleted=0", ()))
        id_expr = f"{t}.id"
        conds += [self.exists(m, id_expr) for m in matchers]
        # Positive alternatives before negations: both are checks per candidate, the first
        # usually rejects sooner.
        others.sort(key=lambda p: isinstance(p, Not))
        conds += [self.check(p, id_expr) for p in others]
        if not conds:
            return head, head_args
        where_sql, where_args = _join("AND", "1", conds)
        return f"{head} WHERE {where_sql}", head_args + where_args


def _after_entry(hi: Any, id: str) -> Fragment:
    """Walked entries after (hi, id) in the walk's order (largest hi first, then by id)."""
    return "w.hi<=? AND NOT (w.hi=? AND w.id<=?)", (hi, hi, id)


def _up_to_entry(hi: Any, id: str) -> Fragment:
    """Walked entries up to and including (hi, id)."""
    return "w.hi>=? AND NOT (w.hi=? AND w.id>?)", (hi, hi, id)


# Keyset pieces as (SQL, arguments) fragments: a piece may appear in several branches, so
# each carries its own arguments rather than appending to a shared list once.
Fragment = tuple[str, tuple[Any, ...]]


def _join(word: str, empty: str, parts: list[Fragment]) -> Fragment:
    if not parts:
        return empty, ()
    return "(" + f" {word} ".join(p[0] for p in parts) + ")", sum((p[1] for p in parts), ())


_SQL_KEYSET: KeysetOps[Fragment] = KeysetOps(
    is_null=lambda c: (f"{c} IS NULL", ()),
    not_null=lambda c: (f"{c} IS NOT NULL", ()),
    eq=lambda c, v: (f"{c}=?", (v,)),
    gt=lambda c, v: (f"{c}>?", (v,)),
    lt=lambda c, v: (f"{c}<?", (v,)),
    id_gt=lambda v: ("c.id>?", (v,)),
    all_of=lambda xs: _join("AND", "1", xs),
    any_of=lambda xs: _join("OR", "0", xs),
)
