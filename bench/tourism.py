"""Tourism benchmark: near-me searches (1-5 km), open-now filters and reads over HTTP
against the real tourism process, at 100,000 places around Beijing on the embedded store.

    make bench                                          # 100,000 places
    python -m bench.tourism --places 5000 --duration 3 --warmup 1
    python -m bench.tourism --scenarios near-5km --profile

The data set (bench/tourism_data.py, deterministic) is written straight into the store under
var/bench/tourism-sqlite-<size>/ through the service's own `make_store`, `PlaceIn` and
`new_body`, in batches of `--batch` `Create`s, so the index keys are those the service
writes; loaded.json marks a finished load and later runs reuse it (`--reload` rebuilds it;
a data set loaded by other storage or tourism code is reported as stale).

Each scenario is a closed-loop vegeta attack of `--connections` connections for `--duration`
seconds after a warm-up; a quarter of the requests carry a citizen's token. Only 2xx
responses count. Then every scenario runs again with one connection for `--alone` seconds
(0 skips it): a request's own latency, with no queue in front of it; and then open loop,
paced at `--paced` (default 0.5, 0 skips it) times the 2xx/s the closed loop served, for as
long: the latency while the process is busy that share of the time. Results go to
bench/results/tourism.md, one section per data set size.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.education import token
from bench.health import console, human, minutes
from bench.loadgen.servers import DevIssuer, HealthServer
from bench.loadgen.vegeta import Attack, install
from bench.service_bench import (
    Attacker,
    Contention,
    Measured,
    Profiled,
    Scenario,
    add_run_args,
    check_run_args,
    code_line,
    discard,
    mark_loaded,
    measure_all,
    measure_alone,
    measure_paced,
    one_client,
    print_passes,
    profile_again,
    reuse_loaded,
    run_lines,
    run_section,
    stored_prefix,
    target_attacker,
    write_batches,
    write_results,
)
from bench.tourism_data import Places, fingerprint, targets
from services.tourism.repository import PLACES, make_store
from shared.storage import Create, WriteOp
from tools._server import file_lock

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
RESULTS = Path(__file__).parent / "results" / "tourism.md"
P95_MS = 30.0  # issue 7, item 6

SCENARIOS = [
    Scenario("read", "GET /places/{id}", None),
    Scenario("near-1km", "GET /places?lat=&lon=&radius=1000", P95_MS),
    Scenario("near-5km", "GET /places?lat=&lon=&radius=5000", P95_MS),
    Scenario("near-open", "GET /places?lat=&lon=&radius={1-5 km}&open_now=true", P95_MS),
    Scenario("open-category", "GET /places?open_now=true&category=&wheelchair=true", P95_MS),
]
BY_NAME = {s.name: s for s in SCENARIOS}
CODE = ("services/tourism", "shared")
SAMPLE = 40  # queries per search scenario whose first page is counted for the report


class TourismServer(HealthServer):
    """`python -m services.tourism` on a free port (optionally under py-spy)."""

    name = "tourism service"
    log_prefix = "tourism"
    log_name = "tourism.log"
    module_name = "services.tourism"

    def extra_env(self) -> dict[str, str]:
        """No demo data: the places are the benchmark's."""
        return {"HUIMIN_DEMO_DATA": "false"}


@dataclasses.dataclass(frozen=True)
class LoadInfo:
    """How the stored data set was loaded (kept beside it in loaded.json)."""

    places: int
    seconds: float
    date: str
    batch: int
    code: str = ""

    def describe(self) -> str:
        """E.g. `100,000 places written ... in 1m 10s`."""
        rate = self.places / max(self.seconds, 0.001)
        return (
            f"{self.places:,} places written straight into the store with the tourism"
            f" service's own collection specs (batches of {self.batch} `Create`s through"
            f" `Store.write`) in {minutes(self.seconds)} ({rate:,.0f} places/s) on {self.date}"
        )


async def load(data: Places, url: str, batch: int) -> float:
    """Write the places an earlier load did not; the seconds it took."""
    store = make_store(url)
    await store.open()
    started = time.perf_counter()
    try:
        done = await stored_prefix(store, PLACES, data.size, data.id)

        def ops(start: int, stop: int) -> list[WriteOp]:
            return [Create(PLACES, data.document(i), data.id(i)) for i in range(start, stop)]

        await write_batches(store, data.size, done, batch, ops, "places")
    finally:
        await store.close()
    return time.perf_counter() - started


def ensure_loaded(data: Places, url: str, home: Path, batch: int) -> tuple[LoadInfo, bool]:
    """Load the data set unless `home` holds it; (how it was loaded, whether it is stale)."""
    code = fingerprint(data)
    stale_warning = "[yellow]stale: loaded by other code (`--reload` loads it again)[/]"
    reused = reuse_loaded(home, LoadInfo, code, stale_warning)
    if reused is not None:
        return reused
    home.mkdir(parents=True, exist_ok=True)
    console.print(f"loading {data.size:,} places into {os.path.relpath(home, ROOT)}")
    seconds = asyncio.run(load(data, url, batch))
    info = LoadInfo(data.size, round(seconds, 1), f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC", batch)
    info = dataclasses.replace(info, code=code)
    mark_loaded(home, info)
    return info, False


def found_per_page(data: Places, base: str) -> dict[str, list[int]]:
    """How many places the first page (of 20) of a sample of each search scenario holds."""
    out = {}
    with httpx.Client(timeout=600.0) as client:
        for scenario in SCENARIOS:
            if scenario.name == "read":
                continue
            counts = []
            for t in targets(scenario.name, data, base, SAMPLE, ""):
                response = client.get(t.url)
                response.raise_for_status()
                counts.append(len(response.json()["items"]))
            out[scenario.name] = sorted(counts)
    return out


def describe_found(found: dict[str, list[int]]) -> str:
    """E.g. `near-1km median 20 (min 3)`."""
    return "; ".join(
        f"{n} median {statistics.median(c):g} (min {c[0]})" for n, c in found.items() if c
    )


@dataclasses.dataclass
class Run:
    """What one run measured."""

    info: LoadInfo
    found: dict[str, list[int]]
    attack: Attack
    results: Measured
    profiled: Profiled | None = None
    stale: bool = False
    contention: str = ""
    alone: Measured = dataclasses.field(default_factory=list)
    paced: Measured = dataclasses.field(default_factory=list)


def attacker(
    data: Places, base: str, citizen: str, home: Path, args: argparse.Namespace
) -> Attacker:
    """A function running one attack of a scenario on fresh targets."""
    return target_attacker(
        home,
        args,
        lambda name, count: targets(name, data, base, count, citizen),
        {"Accept": "application/json"},
    )


def measure(args: argparse.Namespace, data: Places, home: Path) -> Run:
    """Load if needed, start the issuer and the service, run the scenarios."""
    url = f"sqlite:///{home / 'tourism.db'}"
    info, stale = ensure_loaded(data, url, home, args.batch)
    scenarios = [BY_NAME[n] for n in args.scenarios.split(",")]
    args.load_before = os.getloadavg()[0]
    contention = Contention.start()
    with DevIssuer(VAR / "issuer") as issuer:
        citizen = token(issuer, "citizen", valid_for=6 * 3600)
        with TourismServer(home, url, issuer.issuer) as server:
            for i in (0, data.size - 1):
                httpx.get(f"{server.base_url}/places/{data.id(i)}", timeout=60).raise_for_status()
            found = found_per_page(data, server.base_url)
            console.print(f"places on a first page: {describe_found(found)}")
            attack = attacker(data, server.base_url, citizen, home, args)
            last, results = measure_all(scenarios, attack, args)
            alone = measure_alone(
                scenarios, attacker(data, server.base_url, citizen, home, one_client(args)), args
            )
            paced = measure_paced(
                results, lambda a: attacker(data, server.base_url, citizen, home, a), args
            )
        run = Run(info, found, last, results, stale=stale, alone=alone, paced=paced)
        if args.profile:
            run.profiled = profile_again(
                results,
                args,
                BY_NAME,
                home,
                lambda output: TourismServer(home, url, issuer.issuer, profile=output),
                lambda base: attacker(data, base, citizen, home, args),
            )
    run.contention = contention.line()
    console.print(run.contention.removeprefix("- "))
    return run


def section(args: argparse.Namespace, command: str, run: Run) -> str:
    """This run's section of the results file."""
    size = human(args.places)
    head = [
        f"## {args.places:,} places (embedded store, SQLite)",
        "",
        *run_lines(args, command, run.attack)[:1],
        code_line(CODE),
        f"- dataset: {run.info.describe()}"
        + (
            "; **stale: loaded by other storage or tourism code (`--reload`)**" if run.stale else ""
        ),
        "- places: 60 % spread normally (8 km) about Tiananmen, 40 % evenly over the plain;"
        " near-me centres drawn the same way (bench/tourism_data.py)",
        f"- places on a first page of 20 ({SAMPLE} queries per scenario):"
        f" {describe_found(run.found)}",
        *run_lines(args, command, run.attack)[1:],
        run.contention,
        "- auth: three quarters of the requests as the public, a quarter as a citizen",
        "- 2xx/s and latencies count 2xx responses only",
    ]
    return run_section(f"tourism:{size}", head, run, args)


HEADER = """# Tourism benchmark

`make bench` (`python -m bench.tourism`, see its docstring). The tourism service runs as in
production (`python -m services.tourism`, one process) and is driven over loopback by
vegeta. Target (issue 7, item 6): near-me (1-5 km) and open-now searches p95 under 30 ms at
100,000 places on the embedded store.
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.tourism", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--places", type=int, default=100_000, help="data set size")
    parser.add_argument("--seed", type=int, default=Places.seed)
    add_run_args(
        parser,
        SCENARIOS,
        duration=20.0,
        connections=8,
        timeout=60.0,
        batch=500,
        out=RESULTS,
        alone=True,
    )
    parser.add_argument("--load-only", action="store_true", help="build the data set and stop")
    args = parser.parse_args(argv)
    check_run_args(parser, args, list(BY_NAME))
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    install()
    data = Places(args.places, args.seed)
    suffix = "" if args.seed == Places.seed else f"-s{args.seed}"
    home = VAR / f"tourism-sqlite-{human(args.places)}{suffix}"
    with file_lock(home / "bench.lock", f"the other benchmark run on {home.name}", "bench"):
        if args.reload:
            discard(home, "tourism.db")
        if args.load_only:
            ensure_loaded(data, f"sqlite:///{home / 'tourism.db'}", home, args.batch)
            return 0
        run = measure(args, data, home)
    command = "python -m bench.tourism" + (" " + " ".join(argv) if argv else "")
    title = f"Tourism benchmark: {args.places:,} places"
    print_passes(run, title, command, args)
    write_results(args.out, f"tourism:{human(args.places)}", HEADER, section(args, command, run))
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
