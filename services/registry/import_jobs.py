"""Bulk import jobs: a stored job record, run in the background by the service process.

`POST /imports` parses the file (422 for what spoils the whole file), stores the job
(`queued`) with its audit entry and hands it to the runner, one asyncio task per process
that runs jobs one at a time: a 2-core host serves requests meanwhile, and rows of two jobs
never race each other for the same person.

A job checks every row first (formats, communities, the caller's jurisdiction, households),
then writes row by row through the same services as the interactive API, so a row gets the
same rules, duplicate flags, events and audit entries as `POST /residents` and
`POST /households`. A row is one registration (one atomic batch) or nothing. Households are
made after their members: the head first (if the head fails, so do its members, unwritten),
then the members, then the household itself.

Idempotence: a row whose national ID is registered with the same data is "existing"; with
other data it is a row error naming the columns that differ. A row without a national ID is
"existing" when a resident without one holds exactly the same data (found through the
duplicate keys). So re-running a file creates nothing twice.

Progress, counts and failed rows are written at most every `FLUSH_SECONDS` and at the end.
The rows live only in this process's memory: a job that a stop or crash interrupts is
marked `failed` (at shutdown, or by the sweep of any registry process once its heartbeat
is `STALE_SECONDS` old), and re-running the same file finishes the work.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.registry.audit import as_op, entry, now_iso
from services.registry.households import HouseholdService
from services.registry.imports import (
    ParsedFile,
    Row,
    differences,
    household_problems,
    pointer_column,
    validate_row,
)
from services.registry.names import match_forms
from services.registry.repository import IMPORT_ERRORS, IMPORT_JOBS, RegistryRepository
from services.registry.schemas import AddMember, CreateHousehold, MemberIn
from services.registry.service import Caller, RegistryService, _stored_name, cross_check
from shared.errors import HuiminError
from shared.ids import new_id
from shared.storage import Create, Record, Update, VersionConflict, WriteOp

logger = logging.getLogger(__name__)
FLUSH_SECONDS = 1.0
STALE_SECONDS = 120.0
SWEEP_SECONDS = 60.0
ERRORS_PER_BATCH = 500
UNFINISHED = ("queued", "running")
INTERRUPTED = (
    "interrupted: the registry stopped while this job was {state}; re-run the same file"
    " (rows imported already are skipped)"
)


@dataclass
class Pending:
    """A queued job and what it needs to run."""

    id: str
    caller: Caller
    parsed: ParsedFile


class RowFailed(Exception):
    """A row cannot be imported; its errors are on the row."""


class ImportRunner:
    """Stores import jobs and runs them one at a time in a background task."""

    def __init__(self, residents: RegistryService, households: HouseholdService) -> None:
        self.residents = residents
        self.households = households
        self.repo: RegistryRepository = residents.repo
        self.instance = new_id()
        self.queue: asyncio.Queue[Pending] = asyncio.Queue()
        # The current version of every job this process holds (the runner writes them).
        self.held: dict[str, Record] = {}
        self._beat = time.monotonic()

    async def submit(self, caller: Caller, parsed: ParsedFile, filename: str) -> Record:
        """Store a queued job (audited) and queue it."""
        caller.access.require_writer()
        id, at = new_id(), now_iso()
        p = caller.access.principal
        body = {
            "id": id,
            "owner": {"sub": p.subject, "username": p.username},
            "filename": filename,
            "encoding": parsed.encoding,
            "state": "queued",
            "rows": {
                "total": len(parsed.rows),
                "done": 0,
                "created": 0,
                "existing": 0,
                "updated": 0,
                "failed": 0,
            },
            "error": None,
            "created_at": at,
            "started_at": None,
            "finished_at": None,
            "beat": at,
            "instance": self.instance,
        }
        detail = f"job {id}: {filename}, {len(parsed.rows)} rows"
        audit = entry(
            caller.access, "import.create", status=202, detail=detail, client=caller.client
        )
        record = (await self.repo.write([Create(IMPORT_JOBS, body, id), as_op(audit)]))[0]
        self.held[id] = record
        self.queue.put_nowait(Pending(id, caller, parsed))
        return record

    # the background task

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[ImportRunner]:
        """Run jobs for the app's lifetime; jobs still held at shutdown are marked failed."""
        task = asyncio.create_task(self._loop(), name="registry-imports")
        try:
            yield self
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            for id in list(self.held):
                await self._interrupt(id)

    async def _loop(self) -> None:
        await self._sweep_logged()
        while True:
            try:
                async with asyncio.timeout(SWEEP_SECONDS):
                    pending = await self.queue.get()
            except TimeoutError:
                await self._sweep_logged()
                continue
            await Job(self, pending).run()

    async def _sweep_logged(self) -> None:
        try:
            swept = await self.sweep()
        except Exception:
            logger.exception("sweeping interrupted import jobs failed")
            return
        if swept:
            logger.warning("%d interrupted import job(s) marked failed", swept)

    async def sweep(self) -> int:
        """Mark failed the unfinished jobs whose runner stopped beating (another process
        that died, or this one before a restart)."""
        cutoff = datetime.now(UTC) - timedelta(seconds=STALE_SECONDS)
        swept = 0
        for record in await self.repo.stale_import_jobs(cutoff):
            if record.id in self.held:
                continue
            try:
                await self.repo.write([_failed(record, INTERRUPTED)])
                swept += 1
            except VersionConflict:
                continue  # its runner wrote meanwhile: it is alive after all
        return swept

    async def _interrupt(self, id: str) -> None:
        record = self.held.pop(id)
        for _ in range(2):
            try:
                await self.repo.write([_failed(record, INTERRUPTED)])
                return
            except VersionConflict:
                # A write cancelled by the shutdown may have landed after all.
                fresh = await self.repo.import_job(id)
                if fresh is None or fresh.body["state"] not in UNFINISHED:
                    return
                record = fresh
            except Exception:
                logger.exception("could not mark import job %s failed at shutdown", id)
                return

    async def save(self, id: str, changes: Mapping[str, Any], extra: Sequence[WriteOp]) -> None:
        """Write a job's new state with `extra` operations (its failed rows, audit), in
        batches the store accepts; `changes` go with the last one, so a reader never sees
        a finished job whose failed rows are not all stored yet."""
        ops = list(extra)
        while True:
            chunk, ops = ops[:ERRORS_PER_BATCH], ops[ERRORS_PER_BATCH:]
            record = self.held[id]
            body = {**record.body, **(changes if not ops else {}), "beat": now_iso()}
            update = Update(IMPORT_JOBS, id, body, record.version)
            self.held[id] = (await self.repo.write([update, *chunk]))[0]
            if not ops:
                break
        await self._beat_queued(id)

    async def _beat_queued(self, current: str) -> None:
        # Queued jobs wait in this process; their heartbeat tells the sweep they are alive.
        if time.monotonic() - self._beat < STALE_SECONDS / 4:
            return
        self._beat = time.monotonic()
        for id, record in list(self.held.items()):
            if id == current:
                continue
            body = {**record.body, "beat": now_iso()}
            update = Update(IMPORT_JOBS, id, body, record.version)
            self.held[id] = (await self.repo.write([update]))[0]


def _failed(record: Record, reason: str) -> Update:
    body = {
        **record.body,
        "state": "failed",
        "error": reason.format(state=record.body["state"]),
        "finished_at": now_iso(),
        "beat": now_iso(),
    }
    return Update(IMPORT_JOBS, record.id, body, record.version)


class Job:
    """One run of one job."""

    def __init__(self, runner: ImportRunner, pending: Pending) -> None:
        self.runner = runner
        self.id = pending.id
        self.caller = pending.caller
        self.rows = pending.parsed.rows
        self.counts = dict(runner.held[pending.id].body["rows"])
        self.failed_rows: list[Row] = []
        self._flushed = time.monotonic()

    async def run(self) -> None:
        """Check, write, report; a failure of the job itself is recorded on it."""
        runner = self.runner
        # A cancellation (shutdown) passes through: the runner marks held jobs failed.
        try:
            await runner.save(self.id, {"state": "running", "started_at": now_iso()}, [])
            await self._check()
            await self._write()
            await self._finish("done", None)
        except Exception as exc:
            logger.exception("import job %s failed", self.id)
            with contextlib.suppress(Exception):
                await self._finish("failed", f"the job stopped: {type(exc).__name__}")
        runner.held.pop(self.id, None)

    # checks before any write

    async def _check(self) -> None:
        access = self.caller.access
        communities: dict[str, bool] = {}
        for row in self.rows:
            validate_row(row)
            if row.data is None:
                continue
            code = row.data.address.community
            if code not in communities:
                place = await self.runner.repo.place(code)
                communities[code] = place is not None and place.body.get("level") == "community"
            if not communities[code]:
                row.fail("community", f"unknown community {code}")
            elif not access.writes_place(code):
                row.fail("community", f"{code} is outside your jurisdiction")
            try:
                cross_check(row.data.birth_date, row.data.sex, row.data.national_id)
            except HuiminError as exc:
                self._errors_of(row, exc)
            if row.errors:
                row.data = None
            await asyncio.sleep(0)  # let requests in between rows
        household_problems(self.rows)

    # writes

    async def _write(self) -> None:
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            if row.data is not None and row.household is not None:
                groups.setdefault(row.household, []).append(row)
        for row in self.rows:
            if row.data is None:
                self._count(row, "failed")
            elif row.household is None:
                try:
                    _, outcome = await self._resident(row)
                    self._count(row, outcome)
                except RowFailed:
                    self._count(row, "failed")
            elif row.household in groups:
                await self._household(row.household, groups.pop(row.household))
            await self._maybe_flush()

    async def _resident(self, row: Row) -> tuple[Record, str]:
        """The row's resident: found as existing, or registered now."""
        assert row.data is not None
        existing = await self._existing(row)
        if existing is not None:
            return existing, "existing"
        try:
            return await self.runner.residents.register(self.caller, row.data), "created"
        except HuiminError as exc:
            self._errors_of(row, exc)
            raise RowFailed from None

    async def _existing(self, row: Row) -> Record | None:
        data = row.data
        assert data is not None
        residents, repo = self.runner.residents, self.runner.repo
        name = _stored_name(data.name)
        if data.national_id:
            record = await repo.by_national_id(data.national_id)
            if record is None:
                return None
            if not await residents.readable(self.caller, record.body):
                row.fail("national_id", "already registered; ask the street office to resolve it")
                raise RowFailed
            diff = differences(record.body, data, name)
            if diff:
                row.fail(
                    "national_id",
                    f"already registered as resident {record.id} with other data"
                    f" ({', '.join(diff)})",
                )
                raise RowFailed
            return record
        birth = data.birth_date.isoformat()
        forms = [f"{f}|{birth}" for f in match_forms(name.get("zh"), name.get("latin"))]
        for record in await repo.probable_duplicates(forms, data.phone):
            if not differences(record.body, data, name) and await residents.readable(
                self.caller, record.body
            ):
                return record
        return None

    async def _household(self, key: str, rows: list[Row]) -> None:
        head_row = next(r for r in rows if r.relationship == "head")
        others = [r for r in rows if r is not head_row]
        try:
            head, head_outcome = await self._resident(head_row)
            target = _membership(head_row, head)
        except RowFailed:
            self._count(head_row, "failed")
            for row in others:
                row.fail("household", f"the head of household {key!r} (row {head_row.line}) failed")
                self._count(row, "failed")
            return
        joining: list[tuple[Row, Record, str]] = []
        for row in others:
            try:
                record, outcome = await self._resident(row)
                if _membership(row, record, target) is None:
                    joining.append((row, record, outcome))
                else:
                    self._count(row, outcome)
            except RowFailed:
                self._count(row, "failed")
        # Joining fails only on a concurrent change to one of these people. The residents
        # written for the rows stay (each a whole registration) and the rows are reported
        # failed; re-running the file then finds them existing and completes the household.
        if target is None:
            try:
                await self._create(head, joining)
            except HuiminError as exc:
                for row, _, _ in [(head_row, head, head_outcome), *joining]:
                    self._errors_of(row, exc, column="household")
                    self._count(row, "failed")
                return
            head_outcome = "updated" if head_outcome == "existing" else head_outcome
        self._count(head_row, head_outcome)
        for row, record, outcome in joining:
            if target is not None:
                add = AddMember(resident_id=record.id, relationship=row.relationship or "other")
                try:
                    await self.runner.households.add_member(self.caller, target, add, None)
                except HuiminError as exc:
                    self._errors_of(row, exc, column="household")
                    self._count(row, "failed")
                    continue
            self._count(row, "updated" if outcome == "existing" else outcome)

    async def _create(self, head: Record, joining: list[tuple[Row, Record, str]]) -> None:
        members = [MemberIn(resident_id=head.id, relationship="head")]
        members += [
            MemberIn(resident_id=r.id, relationship=row.relationship or "other")
            for row, r, _ in joining
        ]
        data = CreateHousehold(
            community=head.body["address"]["community"],
            address=head.body["address"]["line"],
            members=members,
        )
        await self.runner.households.create(self.caller, data)

    # bookkeeping

    def _errors_of(self, row: Row, exc: HuiminError, column: str | None = None) -> None:
        if exc.errors and column is None:
            for e in exc.errors:
                row.fail(pointer_column(e.get("pointer")), str(e.get("message")))
        else:
            row.fail(column, exc.detail or exc.title)

    def _count(self, row: Row, outcome: str) -> None:
        self.counts[outcome] += 1
        self.counts["done"] += 1
        if outcome == "failed":
            self.failed_rows.append(row)

    async def _maybe_flush(self) -> None:
        if time.monotonic() - self._flushed >= FLUSH_SECONDS:
            await self._flush({})
        await asyncio.sleep(0)

    async def _flush(self, changes: Mapping[str, Any], extra: Sequence[WriteOp] = ()) -> None:
        ops: list[WriteOp] = [
            Create(
                IMPORT_ERRORS,
                {"job": self.id, "row": row.line, "errors": row.errors[:20]},
                f"{self.id}.{row.line}",
            )
            for row in self.failed_rows
        ]
        self.failed_rows = []
        await self.runner.save(self.id, {"rows": dict(self.counts), **changes}, [*ops, *extra])
        self._flushed = time.monotonic()

    async def _finish(self, state: str, error: str | None) -> None:
        c = self.counts
        detail = (
            f"job {self.id} {state}: {c['created']} created, {c['existing']} existing,"
            f" {c['updated']} updated, {c['failed']} failed of {c['total']}"
        )
        audit = entry(self.caller.access, "import.finish", detail=detail, client=self.caller.client)
        changes = {"state": state, "error": error, "finished_at": now_iso()}
        await self._flush(changes, [as_op(audit)])


def _membership(row: Row, record: Record, target: str | None = None) -> str | None:
    """For the head (`target` None): the household it already heads, or None. For a
    member: None when it must join `target`, the household id when it is in it already;
    RowFailed when it belongs elsewhere or in another role."""
    current = record.body.get("household")
    if current is None:
        return None
    if row.relationship == "head":
        if current["relationship"] == "head":
            return str(current["id"])
    elif current["id"] == target and current["relationship"] == row.relationship:
        return target
    row.fail(
        "household",
        f"resident {record.id} is already in household {current['id']}"
        f" as {current['relationship']}",
    )
    raise RowFailed
