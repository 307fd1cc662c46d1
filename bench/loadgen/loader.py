"""Bulk loading over HTTP, with a progress bar: the data set as FHIR transaction Bundles of
PUT entries (client ids), a few in flight at once; or as single PUTs, more in flight (on
FerretDB, where one large atomic batch costs a scan per document).

Patients go first; then, patient by patient, their encounters, conditions and observations,
so that every reference points at a resource already loaded or in the same Bundle.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bench.health_data import Dataset, patient_id
from bench.loadgen.servers import TokenSource

FHIR_JSON = "application/fhir+json"
# The service's default request body limit is 1 MiB; stay well below it.
MAX_BUNDLE_BYTES = 900_000


@dataclass(frozen=True)
class Loaded:
    """What a load wrote and how long it took."""

    counts: dict[str, int]
    seconds: float

    @property
    def total(self) -> int:
        """Resources written."""
        return sum(self.counts.values())


def _entry(base: str, resource: dict[str, Any]) -> bytes:
    url = f"{resource['resourceType']}/{resource['id']}"
    entry = {
        "fullUrl": f"{base}/{url}",
        "resource": resource,
        "request": {"method": "PUT", "url": url},
    }
    return json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode()


def _resources(data: Dataset) -> Iterator[dict[str, Any]]:
    for i in range(data.patients):
        yield data.patient(i)
    for i in range(data.patients):
        record = data.record(i)
        yield from record.encounters
        yield from record.conditions
        yield from record.observations


def bundles(data: Dataset, base: str, size: int) -> Iterator[tuple[int, bytes]]:
    """(entry count, transaction Bundle body) of at most `size` entries and ~900 kB each."""
    head, tail = b'{"resourceType":"Bundle","type":"transaction","entry":[', b"]}"
    entries: list[bytes] = []
    length = 0
    for resource in _resources(data):
        entry = _entry(base, resource)
        if entries and (len(entries) >= size or length + len(entry) > MAX_BUNDLE_BYTES):
            yield len(entries), head + b",".join(entries) + tail
            entries, length = [], 0
        entries.append(entry)
        length += len(entry) + 1
    if entries:
        yield len(entries), head + b",".join(entries) + tail


def expected_counts(data: Dataset) -> dict[str, int]:
    """Resources per type the data set holds."""
    encounters = conditions = 0
    for i in range(data.patients):
        e, c, _ = data.counts(i)
        encounters, conditions = encounters + e, conditions + c
    return {
        "Patient": data.patients,
        "Encounter": encounters,
        "Condition": conditions,
        "Observation": data.observations,
    }


class LoadError(RuntimeError):
    """The service refused a write."""


@dataclass(frozen=True)
class Write:
    """One request of the load: a transaction Bundle of `count` entries, or one PUT."""

    count: int
    path: str  # "/" for a transaction, "Patient/p000001" for a PUT
    body: bytes


def writes(data: Dataset, base: str, bundle_size: int) -> Iterator[Write]:
    """Transactions of up to `bundle_size` entries, or single PUTs when it is 0."""
    if bundle_size:
        for count, body in bundles(data, base, bundle_size):
            yield Write(count, "/", body)
        return
    for resource in _resources(data):
        path = f"{resource['resourceType']}/{resource['id']}"
        yield Write(1, path, json.dumps(resource, ensure_ascii=False).encode())


async def _send(client: httpx.AsyncClient, tokens: TokenSource, write: Write) -> None:
    headers = {
        "Authorization": f"Bearer {tokens.token()}",
        "Content-Type": FHIR_JSON,
        "Accept": FHIR_JSON,
    }
    if write.path != "/":
        response = await client.put(write.path, content=write.body, headers=headers)
        if response.status_code not in (200, 201):
            raise LoadError(
                f"PUT {write.path}: HTTP {response.status_code}: {response.text[:2000]}"
            )
        return
    response = await client.post("/", content=write.body, headers=headers)
    what = f"transaction of {write.count} entries"
    if response.status_code != 200:
        raise LoadError(f"{what}: HTTP {response.status_code}: {response.text[:2000]}")
    entries = response.json().get("entry", [])
    bad = [e["response"] for e in entries if not e["response"]["status"].startswith(("200", "201"))]
    if len(entries) != write.count or bad:
        raise LoadError(f"{what} answered {len(entries)}: {bad[:3]}")


@dataclass
class Checkpoint:
    """How far a load got, kept in a JSON file so that an interrupted load resumes: the first
    `writes` requests (`resources` resources) are done, in `seconds`. Every write is a PUT of
    a client id, so sending one again after an interruption changes nothing but a version."""

    path: Path
    bundle: int
    writes: int = 0
    resources: int = 0
    seconds: float = 0.0

    @classmethod
    def resume(cls, path: Path, bundle: int) -> Checkpoint:
        """The saved checkpoint of a load with the same bundle size, else a fresh one."""
        if path.is_file():
            saved = json.loads(path.read_text())
            if saved.get("bundle") == bundle:
                return cls(path, bundle, saved["writes"], saved["resources"], saved["seconds"])
        return cls(path, bundle)

    def save(self) -> None:
        """Write the checkpoint (atomically: a kill never leaves half a file)."""
        state = {k: v for k, v in dataclasses.asdict(self).items() if k != "path"}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state) + "\n")
        tmp.replace(self.path)


async def load(
    data: Dataset,
    base: str,
    tokens: TokenSource,
    *,
    bundle_size: int,
    concurrency: int,
    checkpoint: Checkpoint,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Loaded:
    """Write the data set from the checkpoint on (`bundle_size` 0: one PUT per resource),
    saving progress as it goes; returns counts and the wall time of the whole load."""
    counts = expected_counts(data)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    queue: asyncio.Queue[tuple[int, Write] | None] = asyncio.Queue(maxsize=concurrency * 2)
    skip, before = checkpoint.writes, checkpoint.seconds
    started = last_save = time.perf_counter()
    finished: dict[int, int] = {}  # write number -> resources, beyond the checkpoint

    def done(number: int, resources: int) -> None:
        nonlocal last_save
        finished[number] = resources
        while checkpoint.writes in finished:  # the checkpoint moves over contiguous writes
            checkpoint.resources += finished.pop(checkpoint.writes)
            checkpoint.writes += 1
        now = time.perf_counter()
        if now - last_save >= 1.0:
            checkpoint.seconds, last_save = before + now - started, now
            checkpoint.save()

    limits = httpx.Limits(max_connections=concurrency)
    client = httpx.AsyncClient(base_url=base, timeout=300.0, limits=limits, transport=transport)
    async with client:
        with Progress(*columns) as progress:
            task = progress.add_task(
                "loading", total=sum(counts.values()), completed=checkpoint.resources, rate=""
            )
            resumed = checkpoint.resources

            async def sender() -> None:
                while (item := await queue.get()) is not None:
                    number, write = item
                    await _send(client, tokens, write)
                    done(number, write.count)
                    progress.advance(task, write.count)
                    sent = progress.tasks[task].completed - resumed
                    rate = sent / (time.perf_counter() - started)
                    progress.update(task, rate=f"{rate:,.0f} resources/s")

            async def producer() -> None:
                for number, write in enumerate(writes(data, base, bundle_size)):
                    if number >= skip:
                        await queue.put((number, write))
                        await asyncio.sleep(0)  # let the senders run while requests are built
                for _ in range(concurrency):
                    await queue.put(None)

            # A refused write fails the group, which cancels the other senders.
            try:
                async with asyncio.TaskGroup() as group:
                    group.create_task(producer())
                    for _ in range(concurrency):
                        group.create_task(sender())
            except ExceptionGroup as failed:
                raise failed.exceptions[0] from None
            finally:
                checkpoint.seconds = before + time.perf_counter() - started
                checkpoint.save()
    return Loaded(counts, checkpoint.seconds)


async def check_loaded(base: str, tokens: TokenSource, data: Dataset) -> None:
    """Fail early if the store does not hold the data set's last patient."""
    last = patient_id(data.patients - 1)
    async with httpx.AsyncClient(base_url=base, timeout=30.0) as client:
        response = await client.get(
            f"/Patient/{last}", headers={"Authorization": f"Bearer {tokens.token()}"}
        )
    if response.status_code != 200:
        raise LoadError(f"the stored data set lacks Patient/{last}: HTTP {response.status_code}")
