"""Health (FHIR) benchmark: the real service over HTTP, with tokens, SMART scopes and audit on.

    make bench                                          # SQLite: 100,000 patients, 1,000,000
                                                        # observations; then FerretDB, smaller
    python -m bench.health --patients 2000 --observations 20000
    python -m bench.health --store mongo                # FerretDB: 200 / 2,000 by default
    python -m bench.health --scenarios read,search-name --profile

The data set (bench/health_data.py, deterministic) is loaded once over HTTP (transaction
Bundles; single PUTs on FerretDB) into a store under var/bench/ keyed by store and size, and
reused afterwards (`--reload` loads it again). Each scenario is then a closed-loop vegeta
attack (a Go load generator: the client is not Python-bound on a 2-core box shared with the
server) of `--connections` connections for `--duration` seconds after a warm-up. Only 2xx responses
count: throughput is 2xx per second, latency percentiles are those of the 2xx responses,
anything else is an error. `--profile` runs the service under py-spy for the slowest
scenario (or the one named) and prints its top frames.

Results go to the console and to bench/results/health.md (one section per store).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import re
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from bench.health_data import Dataset
from bench.loadgen import loader
from bench.loadgen.profile import Profile, parse
from bench.loadgen.scenarios import BY_NAME, SCENARIOS, Scenario
from bench.loadgen.servers import DevIssuer, HealthServer, TokenSource, service_available
from bench.loadgen.vegeta import VEGETA_VERSION, Attack, Stats, install, write_targets
from tools._server import file_lock

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
RESULTS = Path(__file__).parent / "results" / "health.md"
# The service on FerretDB writes about one resource per second (FerretDB busy, the service
# idle; see bench/results/health.md), so the MongoDB run is small enough to load in ~40 min.
DEFAULT_SIZE = {"sqlite": (100_000, 1_000_000), "mongo": (200, 2_000)}
# (entries per transaction, requests in flight): FerretDB pays a scan per document of an
# atomic batch (docs/storage.md), so the MongoDB run loads with single PUTs.
DEFAULT_LOAD = {"sqlite": (400, 3), "mongo": (0, 8)}
# (connections, request timeout in s): FerretDB answers every query but an `_id` equality by
# reading the whole collection (docs/storage.md), 0.3-1 s a query here, one at a time: more
# than a few clients only queue (at 32, every search timed out), so the MongoDB run uses 4.
DEFAULT_ATTACK = {"sqlite": (64, 10.0), "mongo": (4, 30.0)}
# Seconds a stopping service may take to store the AuditEvents still queued. On FerretDB that
# is slow (a scan per write), and a service killed mid-batch leaves a batch that the next
# start-up settles through the same scans: ten minutes and more before it serves.
STOP_TIMEOUT = {"sqlite": 30.0, "mongo": 900.0}
STORE_TITLE = {"sqlite": "Embedded store (SQLite)", "mongo": "MongoDB store (FerretDB 1.24.2)"}
# What a reader of the figures must know about the store they were measured on.
STORE_NOTE = {
    "sqlite": "",
    "mongo": "- store: FerretDB v1.24.2 on its SQLite backend, the MongoDB server the tests use."
    " It uses no index to read (`explain`: `SCAN`, `filterPushdown: false`; docs/storage.md):"
    " every query but an `_id` equality reads the whole collection, 0.3-1 s here at these"
    " sizes, and a search runs several. These figures measure those scans and the queue"
    " behind them. The adapter creates an index for every predicate and sort path, which"
    " a MongoDB server's planner uses (`tests/shared/storage/test_indexes.py` asserts"
    " `IXSCAN` there; no MongoDB server runs on this machine, so that is not measured).",
}
# Piped output (make bench | tee) is not cut at 80 columns.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 200)


@dataclass
class Measured:
    """One scenario's result."""

    scenario: Scenario
    stats: Stats

    def cells(self, yes: str = "yes", no: str = "**no**") -> list[str]:
        """Table cells: scenario, request, counts, rate, latencies, errors, target, verdict."""
        s = self.stats
        latency = [s.percentile(p) for p in (50, 95, 99)]
        errors = f"{s.error_count:,}"
        if s.errors:
            errors += " (" + ", ".join(f"{k}×{v:,}" for k, v in s.errors.most_common(3)) + ")"
        goal = self.scenario.goal
        return [
            self.scenario.name,
            self.scenario.request,
            f"{s.requests:,}",
            f"{s.rate:,.0f}",
            *("—" if v is None else f"{v:.1f}" for v in latency),
            errors,
            goal.text() if goal else "—",
            (yes if goal.met(s) else no) if goal else "—",
        ]


HEAD = ["scenario", "request", "requests", "2xx/s", "p50 ms", "p95 ms", "p99 ms", "errors"]
HEAD += ["target", "met"]


def human(n: int) -> str:
    """100000 -> 100k, 1000000 -> 1m, 2500 -> 2500."""
    for unit, size in (("m", 1_000_000), ("k", 1_000)):
        if n % size == 0:
            return f"{n // size}{unit}"
    return str(n)


def minutes(seconds: float) -> str:
    """12m 05s, or 41.2s."""
    return f"{int(seconds // 60)}m {seconds % 60:02.0f}s" if seconds >= 60 else f"{seconds:.1f}s"


@contextlib.contextmanager
def store(kind: str, home: Path) -> Iterator[str]:
    """The store URL for the data set in `home` (starting FerretDB for mongo)."""
    if kind == "sqlite":
        yield f"sqlite:///{home / 'health.db'}"
        return
    from tools.ferretdb import FerretDB

    with FerretDB(home / "ferretdb") as server:
        yield f"{server.uri}bench"


def discard(home: Path) -> None:
    """Remove a stored data set, whole or partly loaded."""
    (home / "loaded.json").unlink(missing_ok=True)
    (home / "loading.json").unlink(missing_ok=True)
    for path in home.glob("health.db*"):
        path.unlink()
    shutil.rmtree(home / "ferretdb", ignore_errors=True)


@dataclass(frozen=True)
class LoadInfo:
    """How the stored data set was loaded (kept beside it in loaded.json)."""

    counts: dict[str, int]
    seconds: float
    date: str
    bundle: int
    concurrency: int
    code: str = ""  # fingerprint of the code that decided what was stored (see `fingerprint`)

    @property
    def resources(self) -> int:
        """Resources loaded."""
        return sum(self.counts.values())

    def how(self) -> str:
        """How resources were sent."""
        return f"transaction Bundles of {self.bundle}" if self.bundle else "single PUTs"

    def describe(self) -> str:
        """E.g. `2,000 Patient, ... (24,928 resources), loaded over HTTP in 41.0s (...)`."""
        return (
            ", ".join(f"{v:,} {k}" for k, v in self.counts.items())
            + f" ({self.resources:,} resources), loaded over HTTP in {minutes(self.seconds)}"
            f" ({self.resources / max(self.seconds, 0.001):,.0f} resources/s; {self.how()},"
            f" {self.concurrency} in flight) on {self.date}"
        )


# The code that decides what is stored: index extraction and the storage adapters.
STORED_BY = (
    "services/health/searchparams.py",
    "services/health/indexing.py",
    "shared/storage/*.py",
)


def fingerprint() -> str:
    """A hash of the code that decides how resources are stored and indexed."""
    digest = hashlib.sha256()
    for path in sorted(p for pattern in STORED_BY for p in ROOT.glob(pattern)):
        digest.update(path.relative_to(ROOT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def ensure_loaded(
    data: Dataset, base: str, tokens: TokenSource, home: Path, args: argparse.Namespace
) -> LoadInfo:
    """Load the data set unless `home` already holds it."""
    marker = home / "loaded.json"
    if marker.is_file():
        info = LoadInfo(**json.loads(marker.read_text()))
        console.print(f"reusing the data set in {home.relative_to(ROOT)}: {info.describe()}")
        if info.code != fingerprint():
            console.print(
                "[yellow]index extraction or storage code changed since this data set was"
                " loaded: its index keys may be stale (`--reload` loads it again)[/yellow]"
            )
        asyncio.run(loader.check_loaded(base, tokens, data))
        return info
    console.print(f"loading {data.patients:,} patients, {data.observations:,} observations ...")
    checkpoint = loader.Checkpoint.resume(home / "loading.json", args.bundle)
    if checkpoint.writes:
        console.print(
            f"resuming an interrupted load: {checkpoint.resources:,} resources written"
            f" in {minutes(checkpoint.seconds)}"
        )
    loaded = asyncio.run(
        loader.load(
            data,
            base,
            tokens,
            bundle_size=args.bundle,
            concurrency=args.load_concurrency,
            checkpoint=checkpoint,
        )
    )
    info = LoadInfo(
        counts=loaded.counts,
        seconds=round(loaded.seconds, 1),
        date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        bundle=args.bundle,
        concurrency=args.load_concurrency,
        code=fingerprint(),
    )
    marker.write_text(json.dumps(dataclasses.asdict(info), indent=2) + "\n")
    checkpoint.path.unlink()
    console.print(f"loaded {info.describe()}")
    return info


def attack_for(
    scenario: Scenario, data: Dataset, base: str, token: str, work: Path, args: argparse.Namespace
) -> Attack:
    """Write the scenario's targets and return its attack."""
    path = work / f"{scenario.name}.jsonl"
    write_targets(path, scenario.targets(data, base, args.targets, data.seed))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    return Attack(path, args.duration, args.connections, headers, args.timeout)


def run_scenario(
    scenario: Scenario,
    data: Dataset,
    server: HealthServer,
    tokens: TokenSource,
    work: Path,
    args: argparse.Namespace,
) -> tuple[Attack, Stats]:
    """Warm up, then measure one scenario."""
    token = tokens.token(valid_for=args.warmup + args.duration + 120)
    attack = attack_for(scenario, data, server.base_url, token, work, args)
    if args.warmup > 0:
        dataclasses.replace(attack, duration=args.warmup).run(work)
    stats = attack.run(work)
    print_measured(scenario.name, stats, width=19)
    return attack, stats


def per_second(rate: float) -> str:
    """A rate as shown: 1,192, or 0.8 (not 0) for a slow one."""
    return f"{rate:,.0f}" if rate >= 10 else f"{rate:.1f}"


def print_measured(name: str, stats: Stats, width: int) -> None:
    """One scenario's console line (rate, p95, errors) and its error samples."""
    p95 = stats.percentile(95)
    console.print(
        f"  {name:<{width}} {per_second(stats.rate):>8} 2xx/s  p95 "
        f"{'—' if p95 is None else f'{p95:.1f} ms':>9}  errors {stats.error_count:,}"
    )
    for sample in stats.samples.values():
        console.print(f"    [red]e.g.[/red] {escape(sample)}")


def profile_scenario(
    scenario: Scenario,
    data: Dataset,
    url: str,
    issuer: str,
    tokens: TokenSource,
    home: Path,
    args: argparse.Namespace,
) -> tuple[Profile, Stats]:
    """Run one scenario again with the service under py-spy; returns the profile."""
    output = home / "profiles" / f"{scenario.name}-{datetime.now(UTC):%Y%m%dT%H%M%S}.txt"
    output.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"profiling {scenario.name} under py-spy -> {output.relative_to(ROOT)}")
    server = HealthServer(home, url, issuer, profile=output, stop_timeout=STOP_TIMEOUT[args.store])
    with server:
        _, stats = run_scenario(scenario, data, server, tokens, home / "targets", args)
    return parse(output), stats


def profile_views(profile: Profile, top: int) -> list[tuple[str, list[tuple[str, int]]]]:
    """Top frames by own samples, and our own functions by samples on the stack."""
    return [
        ("Top frames (own samples: running there)", profile.top_self(top)),
        ("services/ and shared/ functions (samples on the stack)", profile.top_own_code(top)),
    ]


def profile_tables(profile: Profile, top: int) -> list[Table]:
    """The profile views as rich tables."""
    tables = []
    for title, rows in profile_views(profile, top):
        table = Table(title=title, title_justify="left")
        table.add_column("%", justify="right")
        table.add_column("samples", justify="right")
        table.add_column("function (file)")
        for name, count in rows:
            table.add_row(f"{100 * count / max(1, profile.samples):.1f}", f"{count:,}", name)
        tables.append(table)
    return tables


def shown(attack: Attack) -> str:
    """The vegeta command line of every scenario (token redacted)."""
    return dataclasses.replace(attack, targets=Path("<scenario>.jsonl")).shown()


def markdown_table(head: list[str], rows: list[list[str]]) -> list[str]:
    """A Markdown table (pipes in cells escaped)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in row) + " |")
    return lines


def failures_and_profile_md(
    failures: list[tuple[str, str]],
    profiled: tuple[Any, Profile, Stats] | None,
    top: int,
) -> list[str]:
    """The error samples and the profile of a results section (Markdown lines)."""
    lines: list[str] = []
    if failures:
        lines += ["", "Error samples:", ""]
        lines += [f"- {name}: `{sample[:300]}`" for name, sample in failures]
    if profiled is not None:
        scenario, profile, stats = profiled
        lines += [
            "",
            f"### Profile: {scenario.name} under py-spy ({profile.samples:,} samples,"
            f" {stats.rate:,.0f} 2xx/s while profiled)",
            "",
        ]
        for title, rows in profile_views(profile, top):
            cells = [[f"{100 * c / max(1, profile.samples):.1f}", f"`{n}`"] for n, c in rows]
            lines += [f"{title}:", "", *markdown_table(["%", "function (file)"], cells), ""]
    return lines


def section(
    args: argparse.Namespace,
    command: str,
    info: LoadInfo,
    attack: Attack,
    results: list[Measured],
    profiled: Profiled | None,
) -> str:
    """This run's section of the results file."""
    lines = [
        f"<!-- health:{args.store} -->",
        f"## {STORE_TITLE[args.store]}",
        "",
        f"- command: `{command}`",
        f"- dataset: {info.describe()}",
        f"- machine: {os.cpu_count()} cores, {platform.processor() or platform.machine()},"
        f" Python {platform.python_version()}, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC;"
        " one uvicorn process, vegeta on the same box; load average before the run"
        f" {args.load_before:.1f} (above ~1, other processes were competing for the cores)",
        f"- load: vegeta {VEGETA_VERSION}, closed loop, {args.connections} connections"
        f" ({args.timeout:g} s timeout),"
        f" {args.duration:g} s per scenario after {args.warmup:g} s of warm-up,"
        f" {args.targets:,} distinct requests per scenario: `{shown(attack)}`",
        *([STORE_NOTE[args.store]] if STORE_NOTE[args.store] else []),
        "- auth: bearer token of `doctor` (`user/*.cruds`) from the dev issuer;"
        " SMART scopes enforced, AuditEvents written",
        "- 2xx/s and latencies count 2xx responses only; any other status or transport"
        " error is an error",
        "",
        *markdown_table(HEAD, [m.cells() for m in results]),
    ]
    failures = [(m.scenario.name, s) for m in results for s in m.stats.samples.values()]
    lines += failures_and_profile_md(failures, profiled, args.top)
    lines.append(f"<!-- /health:{args.store} -->")
    return "\n".join(lines).rstrip() + "\n"


def write_results(path: Path, store_kind: str, text: str) -> None:
    """Replace this store's section of the results file (other stores' sections stay)."""
    header = (
        "# Health (FHIR) benchmark\n\n"
        "`make bench` (`python -m bench.health`, see its docstring). The FHIR service runs as"
        " in production (`python -m services.health`, one process) and is driven over"
        " loopback by vegeta.\n"
    )
    old = path.read_text() if path.is_file() else header
    pattern = re.compile(
        rf"<!-- health:{store_kind} -->.*?<!-- /health:{store_kind} -->\n", re.DOTALL
    )
    new = pattern.sub(lambda _m: text, old) if pattern.search(old) else old + "\n" + text
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(new)


def render(results: list[Measured], title: str) -> Table:
    """The results as a rich table."""
    table = Table(title=title, title_justify="left")
    for name in HEAD:
        table.add_column(name, justify="left" if name in ("scenario", "request") else "right")
    for m in results:
        *cells, met = m.cells(yes="[green]yes[/]", no="[bold red]no[/]")
        table.add_row(*(escape(c) for c in cells), met)
    return table


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.health", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--store", choices=["sqlite", "mongo"], default="sqlite")
    parser.add_argument("--patients", type=int, help="default 100,000 (sqlite), 200 (mongo)")
    parser.add_argument("--observations", type=int, help="default 10 per patient")
    parser.add_argument("--seed", type=int, default=Dataset.seed)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds per scenario")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds before measuring")
    parser.add_argument("--connections", type=int, help="default 64 (sqlite), 4 (mongo)")
    parser.add_argument("--timeout", type=float, help="request timeout, s: 10 (sqlite), 30 (mongo)")
    parser.add_argument("--targets", type=int, default=20_000, help="requests per targets file")
    parser.add_argument("--scenarios", default=",".join(s.name for s in SCENARIOS))
    parser.add_argument(
        "--bundle", type=int, help="entries per transaction; 0: single PUTs (default for mongo)"
    )
    parser.add_argument("--load-concurrency", type=int, help="requests in flight while loading")
    parser.add_argument("--reload", action="store_true", help="discard the stored data set")
    parser.add_argument(
        "--profile",
        nargs="?",
        const="slowest",
        help="run the slowest scenario (or the one named) again under py-spy",
    )
    parser.add_argument("--top", type=int, default=20, help="frames shown by --profile")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    patients, observations = DEFAULT_SIZE[args.store]
    bundle, concurrency = DEFAULT_LOAD[args.store]
    connections, timeout = DEFAULT_ATTACK[args.store]
    args.connections = args.connections or connections
    args.timeout = args.timeout or timeout
    args.bundle = bundle if args.bundle is None else args.bundle
    args.load_concurrency = args.load_concurrency or concurrency
    args.patients = args.patients or patients
    args.observations = args.observations or args.patients * (observations // patients)
    unknown = [n for n in args.scenarios.split(",") if n not in BY_NAME]
    if unknown or (args.profile not in (None, "slowest", *BY_NAME)):
        parser.error(f"unknown scenario {(unknown or [args.profile])[0]!r}; known: {list(BY_NAME)}")
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark."""
    try:
        return run(parse_args(argv), argv)
    except loader.LoadError as exc:
        console.print(f"[red]{exc}[/red]\n(`--reload` discards the stored data set)")
        return 1


def run(args: argparse.Namespace, argv: list[str]) -> int:
    """Run the benchmark as `args` say (`argv`: the command line, for the report)."""
    if not service_available():
        console.print("services/health/__main__.py does not exist yet: nothing to measure")
        return 1
    install()
    data = Dataset(args.patients, args.observations, args.seed)
    suffix = "" if args.seed == Dataset.seed else f"-s{args.seed}"
    home = VAR / f"health-{args.store}-{human(data.patients)}-{human(data.observations)}{suffix}"
    # One run per data set at a time: a second one would write the same store and share the
    # 2 cores, and both would measure nonsense.
    with file_lock(home / "bench.lock", f"the other benchmark run on {home.name}", "bench"):
        if args.reload or not any((home / f).is_file() for f in ("loaded.json", "loading.json")):
            discard(home)  # --reload, or what a run before checkpoints left
        args.load_before = os.getloadavg()[0]
        info, attack, results, profiled = measure(args, data, home)
    command = "python -m bench.health" + (" " + " ".join(argv) if argv else "")
    dataset = ", ".join(f"{v:,} {k}" for k, v in info.counts.items())
    console.print()
    console.print(render(results, f"Health benchmark, {STORE_TITLE[args.store]}: {dataset}"))
    console.print(f"command: {command}")
    console.print(f"vegeta: {shown(attack)}")
    if profiled is not None:
        console.print(f"\nprofile of {profiled[0].name}: {profiled[1].samples:,} samples")
        for table in profile_tables(profiled[1], args.top):
            console.print(table)
    write_results(args.out, args.store, section(args, command, info, attack, results, profiled))
    console.print(f"written to {args.out}")
    return 0


Profiled = tuple[Scenario, Profile, Stats]


def measure(
    args: argparse.Namespace, data: Dataset, home: Path
) -> tuple[LoadInfo, Attack, list[Measured], Profiled | None]:
    """Start the issuer, the store and the service; load if needed; run the scenarios."""
    scenarios = [BY_NAME[n] for n in args.scenarios.split(",")]
    with DevIssuer(VAR / "issuer") as issuer, store(args.store, home) as url:
        tokens = TokenSource(issuer.issuer)
        with HealthServer(
            home, url, issuer.issuer, stop_timeout=STOP_TIMEOUT[args.store]
        ) as server:
            info = ensure_loaded(data, server.base_url, tokens, home, args)
            work = home / "targets"
            work.mkdir(exist_ok=True)
            console.print(
                f"{len(scenarios)} scenarios, {args.connections} connections,"
                f" {args.duration:g} s each (+{args.warmup:g} s warm-up)"
            )
            results: list[Measured] = []
            for scenario in scenarios:
                attack, stats = run_scenario(scenario, data, server, tokens, work, args)
                results.append(Measured(scenario, stats))
        if not args.profile:
            return info, attack, results, None
        slowest = min(results, key=lambda m: m.stats.rate).scenario
        target = slowest if args.profile == "slowest" else BY_NAME[args.profile]
        profile, stats = profile_scenario(target, data, url, issuer.issuer, tokens, home, args)
        return info, attack, results, (target, profile, stats)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
