"""Storage benchmark: inserts, reads by id and indexed searches on both adapters.

    make bench            # 100,000 documents per adapter
    python -m bench.storage --docs 20000 --adapters sqlite

Prints a Markdown table and writes it to bench/results/storage.md. Single-client,
sequential operations: each figure is operations per second of one event loop, and the
latency percentiles of those operations. Nothing here is asserted by tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from rich.progress import Progress

from bench.dataset import PERSONS, people
from shared.storage import (
    AllOf,
    Bounds,
    Create,
    Eq,
    Prefix,
    Query,
    Range,
    Sort,
    Span,
    Store,
    open_store,
)
from shared.storage.keys import date_span, terms

RESULTS = Path(__file__).parent / "results" / "storage.md"


@dataclass
class Row:
    """One measured operation on one adapter."""

    adapter: str
    operation: str
    ops: int
    seconds: float
    latencies: list[float]

    def cells(self) -> list[str]:
        lat = sorted(self.latencies)
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        return [
            self.adapter,
            self.operation,
            f"{self.ops:,}",
            f"{self.ops / self.seconds:,.0f}",
            f"{p50:.2f}",
            f"{p99:.2f}",
        ]


async def measure(
    adapter: str, name: str, count: int, budget: float, op: Callable[[int], Awaitable[object]]
) -> Row:
    """Run op(i) sequentially up to `count` times or `budget` seconds."""
    latencies: list[float] = []
    start = time.perf_counter()
    for i in range(count):
        t0 = time.perf_counter()
        await op(i)
        latencies.append(time.perf_counter() - t0)
        if t0 - start > budget:
            break
    return Row(adapter, name, len(latencies), time.perf_counter() - start, latencies)


SEARCHES: list[tuple[str, Callable[[random.Random], Query]]] = [
    (
        "search: national id (eq)",
        lambda r: Query(where=[Eq("nid", f"{110101000000000000 + r.randrange(1000):018d}")]),
    ),
    (
        "search: name prefix, sorted by age",
        lambda r: Query(
            where=[Prefix("name", r.choice(["wang", "li", "zhang x", "chen"]))],
            sort=[Sort("age")],
            limit=20,
        ),
    ),
    (
        "search: Chinese name terms (all-of)",
        lambda r: Query(
            where=[AllOf("term", terms(r.choice(["王伟", "李娜", "张秀英", "刘强"])))], limit=20
        ),
    ),
    (
        "search: community + age range",
        lambda r: Query(
            where=[
                Eq("community", f"110101/{r.randint(1, 20):03d}/{r.randint(1, 30):03d}"),
                Range("age", ge=60, lt=80),
            ],
            limit=20,
        ),
    ),
    (
        "search: birth date (span eq, day)",
        lambda r: Query(
            where=[
                Span("born", low=Bounds(ge=date_span(d)[0]), high=Bounds(le=date_span(d)[1]))
                for d in [f"{r.randint(1930, 2020)}-05-{r.randint(1, 28):02d}"]
            ],
            limit=20,
        ),
    ),
    (
        "search: condition token + count",
        lambda r: Query(
            where=[Eq("condition", "http://snomed.info/sct|44054006")], limit=20, count=True
        ),
    ),
]


async def load(adapter: str, store: Store, docs: int, progress: Progress) -> tuple[Row, list[str]]:
    """Load the data set: atomic batches of 500 on SQLite; on MongoDB single creates from 8
    concurrent writers (a batch costs FerretDB a scan per document: see docs/storage.md)."""
    coll = store.collection(PERSONS.name)
    task = progress.add_task(f"{adapter}: loading", total=docs)
    ids: list[str] = []
    lat: list[float] = []
    start = time.perf_counter()
    bodies = people(docs)
    if store.kind == "sqlite":
        name = "bulk load (atomic batches of 500)"
        while len(ids) < docs:
            chunk = [Create(PERSONS.name, b) for _, b in zip(range(500), bodies, strict=False)]
            t0 = time.perf_counter()
            ids += [r.id for r in await store.write(chunk)]
            lat.append((time.perf_counter() - t0) / len(chunk))
            progress.advance(task, len(chunk))
    else:
        name = "bulk load (single creates, 8 writers)"

        async def writer() -> None:
            for body in bodies:
                t0 = time.perf_counter()
                ids.append((await coll.create(body)).id)
                lat.append(time.perf_counter() - t0)
                progress.advance(task, 1)

        await asyncio.gather(*(writer() for _ in range(8)))
    progress.remove_task(task)
    return Row(adapter, name, len(ids), time.perf_counter() - start, lat), ids


async def run_adapter(
    adapter: str, store: Store, docs: int, ops: int, budget: float, progress: Progress
) -> list[Row]:
    """Load `docs` persons, then measure single inserts, reads and searches."""
    coll = store.collection(PERSONS.name)
    loaded, ids = await load(adapter, store, docs, progress)
    rows = [loaded]
    rng = random.Random(11)
    rest = list(people(docs + ops))[docs:]
    progress.console.print(f"[{adapter}] measuring single inserts, reads and searches")
    rows.append(
        await measure(
            adapter, "insert (one document per write)", ops, budget, lambda i: coll.create(rest[i])
        )
    )
    rows.append(
        await measure(adapter, "read by id", ops * 2, budget, lambda i: coll.get(rng.choice(ids)))
    )
    for name, make in SEARCHES:

        async def search(_i: int, make: Callable[[random.Random], Query] = make) -> object:
            return await coll.search(make(rng))

        rows.append(await measure(adapter, name, ops, budget, search))
    return rows


def table(rows: list[Row], docs: int, command: str) -> str:
    """The results as Markdown."""
    head = ["adapter", "operation", "ops", "ops/s", "p50 ms", "p99 ms"]
    lines = [
        "# Storage benchmark",
        "",
        f"- command: `{command}`",
        f"- dataset: {docs:,} person documents per adapter (8 index keys each, 1 unique)",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "- one client, sequential operations (the load generator shares the machine)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "|".join("---" for _ in head) + "|",
    ]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines) + "\n"


async def main(argv: list[str]) -> None:
    """Run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=100_000)
    parser.add_argument("--ops", type=int, default=2_000, help="operations per measurement")
    parser.add_argument("--budget", type=float, default=30.0, help="seconds per measurement")
    parser.add_argument("--adapters", default="sqlite,mongo")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="huimin-bench-") as tmp, Progress() as progress:
        for adapter in args.adapters.split(","):
            if adapter == "sqlite":
                store = open_store(f"sqlite:///{tmp}/bench.db", [PERSONS])
                async with store:
                    rows += await run_adapter(
                        "sqlite", store, args.docs, args.ops, args.budget, progress
                    )
            elif adapter == "mongo":
                from tools.ferretdb import FerretDB

                with FerretDB(Path(tmp) / "ferretdb") as server:
                    async with open_store(server.uri + "bench", [PERSONS]) as store:
                        rows += await run_adapter(
                            "mongodb (FerretDB 1.24.2, SQLite)",
                            store,
                            args.docs,
                            args.ops,
                            args.budget,
                            progress,
                        )
            else:
                parser.error(f"unknown adapter {adapter!r}")
    command = "python -m bench.storage " + " ".join(argv) if argv else "make bench"
    text = table(rows, args.docs, command)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
