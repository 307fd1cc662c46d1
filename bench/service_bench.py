"""What the benchmarks of the problem+json services (registry, education, tourism) share:
writing a data set straight into a store in batches with a progress bar, resuming an
interrupted load, the loaded.json marker of a finished one, the hash of the code that decided
how it was stored, scenarios with a p95 target and their table, the results file's sections,
the command line, and warmed-up, measured (optionally profiled) attacks.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table

from bench.health import (
    console,
    failures_and_profile_md,
    markdown_table,
    per_second,
    print_measured,
    profile_tables,
    shown,
)
from bench.loadgen.profile import Profile, parse
from bench.loadgen.servers import HealthServer
from bench.loadgen.vegeta import VEGETA_VERSION, Attack, Stats, Target, write_targets
from shared.storage import RecordNotFound, Store, WriteOp

ROOT = Path(__file__).resolve().parents[1]

# --- loading -----------------------------------------------------------------------------


def code_hash(patterns: Iterable[str]) -> str:
    """A hash of the files (glob patterns under the repository) that decide what is stored."""
    digest = hashlib.sha256()
    for path in sorted(p for pattern in patterns for p in ROOT.glob(pattern)):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


async def write_batches(
    store: Store,
    total: int,
    done: int,
    batch: int,
    ops: Callable[[int, int], list[WriteOp]],
    unit: str,
) -> None:
    """Write items `done` to `total` in batches of `batch` (`ops(start, stop)` makes one
    batch's operations) through `Store.write`, one batch written (in the store's writer
    thread) while the next is built, with a progress bar (a line per tenth when piped)."""
    started = time.perf_counter()
    with Progress(
        TextColumn("loading"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[rate]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
    ) as progress:
        task = progress.add_task("load", total=total, completed=done, rate="")
        writing: asyncio.Task[object] | None = None
        for start in range(done, total, batch):
            batch_ops = ops(start, min(total, start + batch))
            if writing is not None:
                await writing
            writing = asyncio.ensure_future(store.write(batch_ops))
            rate = (start - done) / (time.perf_counter() - started)
            progress.update(task, completed=start, rate=f"{rate:,.0f} {unit}/s")
            if not console.is_terminal and start // batch % max(1, total // batch // 10) == 0:
                # Piped output (make bench | tee) shows no bar: a line per tenth instead.
                console.print(f"  {start:,} of {total:,} {unit}, {rate:,.0f}/s")
        if writing is not None:
            await writing
        progress.update(task, completed=total)


async def stored_prefix(
    store: Store, collection: str, size: int, id_of: Callable[[int], str]
) -> int:
    """How many items an earlier, interrupted load wrote: batches are written in order, so
    the stored ones are a prefix (items 0 to n - 1), found by bisection."""
    low, high = 0, size
    while low < high:
        middle = (low + high) // 2
        try:
            await store.get(collection, id_of(middle))
            low = middle + 1
        except RecordNotFound:
            high = middle
    return low


class LoadRecord(Protocol):
    """How a stored data set was loaded: a dataclass kept beside it in loaded.json."""

    __dataclass_fields__: ClassVar[dict[str, Any]]

    @property
    def code(self) -> str:
        """The hash of the code that loaded it (see `code_hash`)."""

    def describe(self) -> str:
        """The report's words for the load."""


LoadRecordT = TypeVar("LoadRecordT", bound=LoadRecord)


def reuse_loaded(
    home: Path, kind: type[LoadRecordT], code: str, stale_warning: str
) -> tuple[LoadRecordT, bool] | None:
    """The finished load `home` holds and whether it is stale (loaded by other code than
    `code`, which `stale_warning` then says on the console); None when there is none."""
    marker = home / "loaded.json"
    if not marker.is_file():
        return None
    info = kind(**json.loads(marker.read_text()))
    console.print(f"reusing the data set in {os.path.relpath(home, ROOT)}: {info.describe()}")
    if info.code != code:
        console.print(stale_warning)
    return info, info.code != code


def mark_loaded(home: Path, info: LoadRecord) -> None:
    """Keep how the data set was loaded beside it: later runs reuse it."""
    (home / "loaded.json").write_text(json.dumps(dataclasses.asdict(info), indent=2) + "\n")
    console.print(f"loaded {info.describe()}")


def discard(home: Path, db_name: str, markers: Sequence[str] = ("loaded.json",)) -> None:
    """Remove a stored data set (the store `db_name` and its side files, the `markers`) and
    the targets runs on it left."""
    for name in markers:
        (home / name).unlink(missing_ok=True)
    for path in home.glob(f"{db_name}*"):
        path.unlink()
    shutil.rmtree(home / "targets", ignore_errors=True)


# --- scenarios and their results ---------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One kind of request, and the p95 the issue asks of it (None: no target)."""

    name: str
    request: str
    p95_ms: float | None

    def met(self, stats: Stats) -> bool | None:
        """Whether the attack met the target (no errors, p95 within it)."""
        if self.p95_ms is None:
            return None
        p95 = stats.percentile(95)
        return stats.error_count == 0 and p95 is not None and p95 <= self.p95_ms


Measured = list[tuple[Scenario, Stats]]
Profiled = tuple[Scenario, Profile, Stats]
HEAD = ["scenario", "request", "requests", "2xx/s", "p50 ms", "p95 ms", "p99 ms", "errors"]
HEAD += ["target", "met"]


def cells(scenario: Scenario, s: Stats, yes: str = "yes", no: str = "**no**") -> list[str]:
    """One table row."""
    errors = f"{s.error_count:,}"
    if s.errors:
        errors += " (" + ", ".join(f"{k}×{v:,}" for k, v in s.errors.most_common(3)) + ")"
    met = scenario.met(s)
    return [
        scenario.name,
        scenario.request,
        f"{s.requests:,}",
        per_second(s.rate),
        *("—" if v is None else f"{v:.1f}" for v in (s.percentile(p) for p in (50, 95, 99))),
        errors,
        "—" if scenario.p95_ms is None else f"p95 ≤ {scenario.p95_ms:g} ms",
        "—" if met is None else (yes if met else no),
    ]


def render(results: Measured, title: str) -> Table:
    """The results as a rich table."""
    table = Table(title=title, title_justify="left")
    for name in HEAD:
        table.add_column(name, justify="left" if name in ("scenario", "request") else "right")
    for scenario, stats in results:
        *row, met = cells(scenario, stats, yes="[green]yes[/]", no="[bold red]no[/]")
        table.add_row(*(escape(c) for c in row), met)
    return table


ALONE_TITLE = "One client at a time (a request's own time, no queue)"
ALONE_NOTE = (
    "The same scenarios again with one connection: each request is sent when the last"
    " answer came, so its latency is the service's own time for it (plus loopback HTTP),"
    " with no other request waiting in front of it. With several connections on one"
    " process, latency is mostly that queue: about connections / throughput."
)


PACED_NOTE = (
    "The same scenarios again, open loop: requests sent at a fixed rate, that share of what"
    " the closed-loop run served (its 2xx/s), whatever the answers. The latency a client"
    " sees while the process is busy for part of the time, as a service is run below"
    " saturation; a queue forms only when requests bunch. With every connection waiting on"
    " the process (the closed loop above), the p95 is the queue: about connections /"
    " throughput, whatever the number of connections chosen."
)


def paced_title(share: float) -> str:
    """The title of the paced (open loop) table."""
    return f"Paced at {100 * share:.0f} % of the throughput above (open loop)"


def render_all(
    results: Measured,
    alone: Measured,
    title: str,
    paced: Sequence[tuple[Scenario, Stats]] = (),
    share: float = 0.0,
) -> list[Table]:
    """The results tables on the console: at the run's connections, one client, paced."""
    tables = [render(results, title)]
    if alone:
        tables.append(render(alone, ALONE_TITLE))
    if paced:
        tables.append(render(list(paced), paced_title(share)))
    return tables


def write_results(path: Path, tag: str, header: str, text: str) -> None:
    """Replace the section `<!-- tag -->` of the results file (other sections stay)."""
    old = path.read_text() if path.is_file() else header
    pattern = re.compile(rf"<!-- {tag} -->.*?<!-- /{tag} -->\n", re.DOTALL)
    new = pattern.sub(lambda _m: text, old) if pattern.search(old) else old + "\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def section_text(
    tag: str,
    head: Sequence[str],
    results: Measured,
    profiled: Profiled | None,
    top: int,
    alone: Sequence[tuple[Scenario, Stats]] = (),
    paced: Sequence[tuple[Scenario, Stats]] = (),
    share: float = 0.0,
) -> str:
    """A results section `<!-- tag -->`: the `head` lines, then the results table (and the
    one-client and paced tables, if measured), the error samples and the profile."""
    lines = [
        f"<!-- {tag} -->",
        *head,
        "",
        *markdown_table(HEAD, [cells(sc, st) for sc, st in results]),
    ]
    if alone:
        lines += ["", f"{ALONE_TITLE}. {ALONE_NOTE}", ""]
        lines += markdown_table(HEAD, [cells(sc, st) for sc, st in alone])
    if paced:
        lines += ["", f"{paced_title(share)}. {PACED_NOTE}", ""]
        lines += markdown_table(HEAD, [cells(sc, st) for sc, st in paced])
    everything = [*results, *alone, *paced]
    failures = [(sc.name, x) for sc, st in everything for x in st.samples.values()]
    lines += failures_and_profile_md(failures, profiled, top)
    lines.append(f"<!-- /{tag} -->")
    return "\n".join(lines).rstrip() + "\n"


class Passes(Protocol):
    """What a benchmark's run measured: the closed loop (its last attack), one client,
    paced, the profile."""

    attack: Attack
    results: Measured
    alone: Measured
    paced: Measured
    profiled: Profiled | None


def print_passes(run: Passes, title: str, command: str, args: argparse.Namespace) -> None:
    """`print_run` of a run with every pass (`add_run_args(..., alone=True)`)."""
    tables = render_all(run.results, run.alone, title, run.paced, args.paced)
    print_run(tables, command, run.attack, run.profiled, args.top)


def run_section(tag: str, head: Sequence[str], run: Passes, args: argparse.Namespace) -> str:
    """`section_text` of a run with every pass (`add_run_args(..., alone=True)`)."""
    return section_text(
        tag, head, run.results, run.profiled, args.top, run.alone, run.paced, args.paced
    )


def code_line(paths: Sequence[str]) -> str:
    """The commit measured, and which files under `paths` differed from it (a run on work in
    progress says so)."""

    def git(*argv: str) -> str:
        done = subprocess.run(["git", *argv], cwd=ROOT, capture_output=True, text=True)
        return done.stdout.rstrip() if done.returncode == 0 else ""  # porcelain: " M path"

    head = git("rev-parse", "--short", "HEAD").strip() or "unknown"
    changed = [line[3:] for line in git("status", "--porcelain", "--", *paths).splitlines()]
    if not changed:
        return f"- code: commit {head}, no local changes under {', '.join(paths)}"
    return f"- code: commit {head} with local changes to " + ", ".join(f"`{c}`" for c in changed)


def _busy_seconds() -> float:
    """CPU seconds the whole machine has been busy since boot (Linux /proc/stat)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    user, nice, system, _idle, _iowait, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def _own_seconds() -> float:
    """CPU seconds of this process and its finished children (the service, vegeta)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


@dataclass(frozen=True)
class Contention:
    """How much CPU other processes took while a run went on: the machine's busy time
    minus the run's own (its children's once they have exited and been waited for)."""

    busy: float
    own: float
    wall: float

    @classmethod
    def start(cls) -> Contention:
        """Start counting."""
        return cls(_busy_seconds(), _own_seconds(), time.monotonic())

    def line(self) -> str:
        """The report's line (call once the service and vegeta have exited)."""
        wall = time.monotonic() - self.wall
        others = max(0.0, (_busy_seconds() - self.busy) - (_own_seconds() - self.own))
        share = others / max(wall * (os.cpu_count() or 1), 0.001)
        return (
            f"- other processes while it ran: {others:,.0f} CPU-seconds of the"
            f" {wall * (os.cpu_count() or 1):,.0f} the cores had in {wall:,.0f} s"
            f" ({100 * share:.0f} %; above a few %, they competed with the service and vegeta)"
        )


def run_lines(args: argparse.Namespace, command: str, run: Attack) -> list[str]:
    """The command, machine and load lines of a results section (Markdown)."""
    return [
        f"- command: `{command}`",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
        " one uvicorn process, vegeta on the same box; load average before the run"
        f" {args.load_before:.1f} (above ~1, other processes were competing for the cores)",
        f"- load: vegeta {VEGETA_VERSION}, closed loop, {args.connections} connections"
        f" ({args.timeout:g} s timeout), {args.duration:g} s per scenario after"
        f" {args.warmup:g} s of warm-up, {args.targets:,} distinct requests per attack:"
        f" `{shown(run)}`",
    ]


# --- the command line --------------------------------------------------------------------


def add_run_args(
    parser: argparse.ArgumentParser,
    scenarios: Sequence[Scenario],
    *,
    duration: float,
    connections: int,
    timeout: float,
    batch: int,
    out: Path,
    alone: bool = False,
) -> None:
    """The options every service benchmark has (the data set size is the caller's);
    `alone` adds `--alone` (the one-client pass of `measure_alone`)."""
    parser.add_argument("--duration", type=float, default=duration, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, default=connections)
    parser.add_argument("--timeout", type=float, default=timeout, help="request timeout, s")
    parser.add_argument("--targets", type=int, default=20_000, help="requests per attack")
    parser.add_argument("--scenarios", default=",".join(s.name for s in scenarios))
    parser.add_argument("--batch", type=int, default=batch, help="records per store write")
    parser.add_argument("--reload", action="store_true", help="discard the stored data set")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="slowest",
        help="run the slowest scenario (or the one named) again under py-spy",
    )
    parser.add_argument("--top", type=int, default=20, help="frames shown by --profile")
    if alone:
        parser.add_argument(
            "--alone",
            type=float,
            help="seconds per scenario with one connection, then paced, after the main run"
            " (default: half of --duration; 0: skip both)",
        )
        parser.add_argument(
            "--paced",
            type=float,
            default=0.5,
            help="share of each scenario's closed-loop 2xx/s to send open loop (0: skip)",
        )
    parser.add_argument("--out", type=Path, default=out, help="results file")


def check_run_args(
    parser: argparse.ArgumentParser, args: argparse.Namespace, names: Sequence[str]
) -> None:
    """Refuse unknown scenarios and a batch the store cannot take in one write."""
    unknown = [n for n in args.scenarios.split(",") if n not in names]
    if unknown or (args.profile not in (None, "slowest", *names)):
        parser.error(f"unknown scenario {(unknown or [args.profile])[0]!r}; known: {list(names)}")
    if not 1 <= args.batch <= 999:
        parser.error("--batch is 1-999 (a store batch holds at most 1000 operations)")
    if getattr(args, "alone", 0) is None:  # the one-client and paced passes: half as long
        args.alone = args.duration / 2


# --- measuring ---------------------------------------------------------------------------

# Runs one attack of a scenario for the given seconds.
Attacker = Callable[[Scenario, float], tuple[Attack, Stats]]


def measure_one(
    scenario: Scenario, attack: Attacker, warmup: float, duration: float
) -> tuple[Attack, Stats]:
    """Warm up, then measure one scenario (printing the line and any error samples)."""
    if warmup > 0:
        attack(scenario, warmup)
    run, stats = attack(scenario, duration)
    print_measured(scenario.name, stats, width=12)
    return run, stats


def target_attacker(
    home: Path,
    args: argparse.Namespace,
    targets_of: Callable[[str, int], Iterable[Target]],
    headers: Mapping[str, str],
) -> Attacker:
    """Runs one attack of a scenario for some seconds, on fresh targets:
    `targets_of(scenario name, args.targets)`, written under home/targets."""
    work = home / "targets"
    work.mkdir(parents=True, exist_ok=True)

    def attack(scenario: Scenario, duration: float) -> tuple[Attack, Stats]:
        path = work / f"{scenario.name}.jsonl"
        write_targets(path, targets_of(scenario.name, args.targets))
        rate = getattr(args, "rate", 0.0)
        run = Attack(path, duration, args.connections, dict(headers), args.timeout, rate)
        return run, run.run(work)

    return attack


def measure_all(
    scenarios: Sequence[Scenario], attack: Attacker, args: argparse.Namespace
) -> tuple[Attack, Measured]:
    """Measure each scenario in turn; the last attack (its vegeta line is the report's) and
    the results."""
    results: Measured = []
    for scenario in scenarios:
        last, stats = measure_one(scenario, attack, args.warmup, args.duration)
        results.append((scenario, stats))
    return last, results


def one_client(args: argparse.Namespace) -> argparse.Namespace:
    """The run's options with one connection (for an attacker of `measure_alone`)."""
    return argparse.Namespace(**{**vars(args), "connections": 1})


def measure_alone(
    scenarios: Sequence[Scenario], attack: Attacker, args: argparse.Namespace
) -> Measured:
    """Measure each scenario again with `attack` (one connection: see `one_client`) for
    `--alone` seconds, right after the main run (the service is warm)."""
    if args.alone <= 0:
        return []
    console.print(f"one client at a time, {args.alone:g} s per scenario")
    results: Measured = []
    for scenario in scenarios:
        results.append((scenario, measure_one(scenario, attack, 0, args.alone)[1]))
    return results


def measure_paced(
    results: Measured,
    attacker_at: Callable[[argparse.Namespace], Attacker],
    args: argparse.Namespace,
) -> Measured:
    """Measure each scenario of `results` again, open loop, at `--paced` times the 2xx/s it
    served, for `--alone` seconds (`attacker_at(options with that rate)` attacks)."""
    if args.alone <= 0 or args.paced <= 0:
        return []
    console.print(
        f"paced at {100 * args.paced:.0f} % of each scenario's throughput, {args.alone:g} s each"
    )
    paced: Measured = []
    for scenario, stats in results:
        rate = round(args.paced * stats.rate, 1)
        if rate <= 0:
            continue
        attack = attacker_at(argparse.Namespace(**{**vars(args), "rate": rate}))
        paced.append((scenario, measure_one(scenario, attack, 0, args.alone)[1]))
    return paced


def profile_again(
    results: Measured,
    args: argparse.Namespace,
    by_name: Mapping[str, Scenario],
    home: Path,
    serve: Callable[[Path], AbstractContextManager[HealthServer]],
    attacker_at: Callable[[str], Attacker],
) -> Profiled:
    """Run the scenario `--profile` names (or the slowest) again, on a service that
    `serve(profile file)` starts under py-spy; `attacker_at(base URL)` attacks it."""
    target, output = to_profile(results, args.profile, by_name, home)
    with serve(output) as server:
        _, stats = measure_one(target, attacker_at(server.base_url), args.warmup, args.duration)
    return target, parse(output), stats


def to_profile(
    results: Measured, choice: str, by_name: Mapping[str, Scenario], home: Path
) -> tuple[Scenario, Path]:
    """The scenario `--profile` names (or the slowest) and the file for its profile."""
    target = min(results, key=lambda m: m[1].rate)[0] if choice == "slowest" else by_name[choice]
    output = home / "profiles" / f"{target.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"profiling {target.name} under py-spy -> {os.path.relpath(output, ROOT)}")
    return target, output


def print_run(
    table: Table | Sequence[Table],
    command: str,
    attack: Attack,
    profiled: tuple[Scenario, Profile, Stats] | None,
    top: int,
) -> None:
    """The end of a run on the console: the results table, the command, the vegeta line,
    and the profile of the scenario run again under py-spy, if any."""
    for shown_table in [table] if isinstance(table, Table) else table:
        console.print()
        console.print(shown_table)
    console.print(f"command: {command}")
    console.print(f"vegeta: {shown(attack)}")
    if profiled is not None:
        scenario, profile, _ = profiled
        console.print(f"\nprofile of {scenario.name}: {profile.samples:,} samples")
        for t in profile_tables(profile, top):
            console.print(t)
