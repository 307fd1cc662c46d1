"""Education benchmark: catalogue searches (Chinese and English full text, facet filters,
facet counts) and reads over HTTP against the real education process, at 200,000 learning
resources on the embedded store.

    make bench                                          # 200,000 resources
    python -m bench.education --resources 5000 --duration 3 --warmup 1
    python -m bench.education --scenarios zh,browse --profile
    python -m bench.education --load-only               # just build the data set

The data set (bench/education_data.py, deterministic, mixed Chinese and English) is written
straight into the store under var/bench/education-sqlite-<size>/, not over HTTP: through
the education service's own `make_store` and collection specs, the documents
`ResourceService.create` and `transition` would store, as `Create` operations in batches of
`--batch` through `Store.write`, so the index keys are exactly those the service writes.
Batches are written in order, so an interrupted load resumes after the last stored one;
loaded.json marks a finished load, and later runs reuse it (`--reload` builds it again).
Before anything is measured, the service counts the catalogue over the API (as an admin:
every resource; as the public: the published ones).

Each scenario is then a closed-loop vegeta attack of `--connections` connections for
`--duration` seconds after a warm-up. Searches ask for facet counts (the API's default) and
the first page of 20; three quarters of the requests come from the public (no token), a
quarter from a citizen (a token signed with the dev issuer's key). Query words are drawn
Zipf-like from the catalogue's topics, so some match many thousands of resources and many a
few hundred or fewer; the report states how many each scenario's queries match. Only 2xx
responses count. Then every scenario runs again with one connection for `--alone` seconds
(0 skips it): a request's own latency, with no queue in front of it; and then open loop,
paced at `--paced` (default 0.5, 0 skips it) times the 2xx/s the closed loop served, for as
long: the latency while the process is busy that share of the time. `--profile` runs the
slowest scenario (or the one named) again under py-spy. Results go to
bench/results/education.md, one section per data set size.
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
from urllib.parse import parse_qsl, urlencode, urlsplit

import httpx

from bench.education_data import Catalogue, LoadInfo, fingerprint, load, profile_of, targets
from bench.health import console, human
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
    target_attacker,
    write_results,
)
from tests.fixtures.identity import dev_idp
from tools._server import file_lock

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
RESULTS = Path(__file__).parent / "results" / "education.md"
JSON = "application/json"
SEARCH_P95_MS = 50.0  # issue 6, item 6

SCENARIOS = [
    Scenario("read", "GET /resources/{id} (published)", None),
    Scenario("zh", "GET /resources?q={1-2 Chinese words}", SEARCH_P95_MS),
    Scenario("en", "GET /resources?q={English words, or a word's start}", SEARCH_P95_MS),
    Scenario("filtered", "GET /resources?q={zh or en}&subject=&level=|type=", SEARCH_P95_MS),
    Scenario("browse", "GET /resources?subject=|level=|type=|language=&sort=newest", SEARCH_P95_MS),
]
BY_NAME = {s.name: s for s in SCENARIOS}
SEARCHES = [s.name for s in SCENARIOS if s.name != "read"]
# The code a run measures: the service, and the storage and other shared code it runs on.
CODE = ("services/education", "shared")
MATCH_SAMPLE = 40  # queries per search scenario whose matches are counted for the report


class EducationServer(HealthServer):
    """`python -m services.education` on a free port (optionally under py-spy)."""

    name = "education service"
    log_prefix = "education"
    log_name = "education.log"
    module_name = "services.education"

    def extra_env(self) -> dict[str, str]:
        """No demo data (the catalogue is the benchmark's), no registry feed to consume."""
        return {"HUIMIN_DEMO_DATA": "false", "HUIMIN_REGISTRY_EVENTS_URL": ""}


def token(issuer: DevIssuer, role: str, valid_for: float) -> str:
    """A token of a made-up user with `role` (a citizen has a resident id), signed with the
    dev issuer's key."""
    idp = dev_idp(issuer)
    claims = idp.claims(
        sub=f"bench-{role}",
        preferred_username=f"bench-{role}",
        realm_access={"roles": [role]},
        resident_id="R-00000001" if role == "citizen" else None,
        exp=int(time.time() + valid_for),
    )
    return idp.sign(claims)


# --- loading -----------------------------------------------------------------------------


def ensure_loaded(data: Catalogue, url: str, home: Path, batch: int) -> tuple[LoadInfo, bool]:
    """Load the data set unless `home` already holds it; (how it was loaded, whether it is
    stale: loaded by other storage code, collection spec or generator than this run's)."""
    code = fingerprint(data)
    stale_warning = (
        "[yellow]the storage code or the generated documents changed since this data"
        " set was loaded: it may be stale (`--reload` loads it again)[/yellow]"
    )
    reused = reuse_loaded(home, LoadInfo, code, stale_warning)
    if reused is not None:
        return reused
    console.print(f"loading {data.size:,} learning resources into {os.path.relpath(home, ROOT)}")
    seconds = asyncio.run(load(data, url, batch))
    info = LoadInfo(
        resources=data.size,
        published=data.published(),
        seconds=round(seconds, 1),
        date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        batch=batch,
        code=code,
    )
    mark_loaded(home, info)
    return info, False


class LoadError(RuntimeError):
    """The stored data set is not what it should be."""


def total(base: str, params: dict[str, str], bearer: str | None = None) -> int:
    """How many resources a search matches (no facets, one item)."""
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    query = urlencode({**params, "limit": "1", "facets": "false"})
    response = httpx.get(f"{base}/resources?{query}", headers=headers, timeout=600.0)
    if response.status_code != 200:
        raise LoadError(f"GET /resources?{query}: HTTP {response.status_code} {response.text}")
    return int(response.json()["total"])


def check_count(base: str, admin: str, info: LoadInfo) -> tuple[int, int]:
    """(resources, published) as the service counts them (LoadError if they differ)."""
    everything, published = total(base, {}, admin), total(base, {})
    console.print(f"the service counts {everything:,} resources, {published:,} published")
    if (everything, published) != (info.resources, info.published):
        raise LoadError(
            f"the store holds {everything:,} resources ({published:,} published), expected"
            f" {info.resources:,} ({info.published:,})"
        )
    return everything, published


def matches(data: Catalogue, base: str) -> dict[str, list[int]]:
    """How many resources a sample of each search scenario's queries match (sorted)."""
    found = {}
    for name in SEARCHES:
        urls = [t.url for t in targets(name, data, base, MATCH_SAMPLE, "")]
        found[name] = sorted(total(base, dict(parse_qsl(urlsplit(u).query))) for u in urls)
    return found


def describe_matches(found: dict[str, list[int]]) -> str:
    """E.g. `zh median 1,100 (p10 140, p90 13,060, max 36,690)`."""
    parts = []
    for name, counts in found.items():
        p10, p90 = counts[len(counts) // 10], counts[len(counts) * 9 // 10]
        parts.append(
            f"{name} median {statistics.median(counts):,.0f} (p10 {p10:,}, p90 {p90:,},"
            f" max {counts[-1]:,})"
        )
    return "; ".join(parts)


# --- measuring ---------------------------------------------------------------------------


@dataclasses.dataclass
class Run:
    """What one run measured."""

    info: LoadInfo
    counted: tuple[int, int]
    found: dict[str, list[int]]
    attack: Attack
    results: Measured
    profiled: Profiled | None = None
    stale: bool = False
    contention: str = ""
    alone: Measured = dataclasses.field(default_factory=list)
    paced: Measured = dataclasses.field(default_factory=list)


def attacker(
    data: Catalogue, base: str, citizen: str, home: Path, args: argparse.Namespace
) -> Attacker:
    """A function running one attack of a scenario on fresh targets."""
    return target_attacker(
        home,
        args,
        lambda name, count: targets(name, data, base, count, citizen),
        {"Accept": JSON},
    )


def measure(args: argparse.Namespace, data: Catalogue, home: Path) -> Run:
    """Load if needed, start the issuer and the service, check the count, run scenarios."""
    url = f"sqlite:///{home / 'education.db'}"
    info, stale = ensure_loaded(data, url, home, args.batch)
    scenarios = [BY_NAME[n] for n in args.scenarios.split(",")]
    args.load_before = os.getloadavg()[0]
    contention = Contention.start()  # from here on: the measurement, not the load
    with DevIssuer(VAR / "issuer") as issuer:
        admin = token(issuer, "admin", valid_for=6 * 3600)
        citizen = token(issuer, "citizen", valid_for=6 * 3600)
        with EducationServer(home, url, issuer.issuer) as server:
            counted = check_count(server.base_url, admin, info)
            found = matches(data, server.base_url)
            console.print(f"matches per search: {describe_matches(found)}")
            console.print(
                f"{len(scenarios)} scenarios, {args.connections} connections,"
                f" {args.duration:g} s each (+{args.warmup:g} s warm-up)"
            )
            attack = attacker(data, server.base_url, citizen, home, args)
            last, results = measure_all(scenarios, attack, args)
            alone = measure_alone(
                scenarios, attacker(data, server.base_url, citizen, home, one_client(args)), args
            )
            paced = measure_paced(
                results, lambda a: attacker(data, server.base_url, citizen, home, a), args
            )
        run = Run(info, counted, found, last, results, stale=stale, alone=alone, paced=paced)
        if args.profile:
            run.profiled = profile_again(
                results,
                args,
                BY_NAME,
                home,
                lambda output: EducationServer(home, url, issuer.issuer, profile=output),
                lambda base: attacker(data, base, citizen, home, args),
            )
    run.contention = contention.line()  # the service, vegeta and the issuer have exited
    console.print(run.contention.removeprefix("- "))
    return run


# --- reporting ---------------------------------------------------------------------------


def section(args: argparse.Namespace, command: str, data: Catalogue, run: Run) -> str:
    """This run's section of the results file."""
    size = human(args.resources)
    everything, published = run.counted
    head = [
        f"## {args.resources:,} learning resources (embedded store, SQLite)",
        "",
        *run_lines(args, command, run.attack)[:1],
        code_line(CODE),
        f"- dataset: {run.info.describe()}; {everything:,} resources ({published:,} published)"
        " counted by the service (`GET /resources?limit=1&facets=false` as an admin and as"
        " the public) before the run"
        + (
            "; **stale: loaded by other storage code, collection spec or generator than this"
            " run's, so its index may not be what the service writes now (`--reload`)**"
            if run.stale
            else ""
        ),
        "- catalogue (a sample of 2,000): " + "; ".join(profile_of(data)),
        f"- matches per search ({MATCH_SAMPLE} of each scenario's queries, as the public):"
        f" {describe_matches(run.found)}",
        *run_lines(args, command, run.attack)[1:],
        run.contention,
        "- auth: three quarters of the requests as the public (no token), a quarter as a"
        " citizen (token signed with the dev issuer's key); every search asks for facet"
        " counts (subject, level, type, language, license; the API's default) and a first"
        " page of 20",
        "- 2xx/s and latencies count 2xx responses only; any other status or transport"
        " error is an error",
    ]
    return run_section(f"education:{size}", head, run, args)


HEADER = """# Education benchmark

`make bench` (`python -m bench.education`, see its docstring). The education service runs as
in production (`python -m services.education`, one process) and is driven over loopback by
vegeta. Target (issue 6, item 6): full-text and faceted catalogue searches p95 under 50 ms
at 200,000 learning resources (mixed Chinese and English) on the embedded store.
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.education", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--resources", type=int, default=200_000, help="data set size")
    parser.add_argument("--seed", type=int, default=Catalogue.seed)
    # 8 closed-loop users at once on one process; a faceted search can take a second at
    # this size, hence the long timeout (a timeout would hide the latency it cut short).
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
    data = Catalogue(args.resources, args.seed)
    suffix = "" if args.seed == Catalogue.seed else f"-s{args.seed}"
    home = VAR / f"education-sqlite-{human(args.resources)}{suffix}"
    # One run per data set at a time: two would write the same store and share the cores.
    with file_lock(home / "bench.lock", f"the other benchmark run on {home.name}", "bench"):
        if args.reload:
            discard(home, "education.db")
        if args.load_only:
            ensure_loaded(data, f"sqlite:///{home / 'education.db'}", home, args.batch)
            return 0
        try:
            run = measure(args, data, home)
        except LoadError as exc:
            console.print(f"[red]{exc}[/red]\n(`--reload` discards the stored data set)")
            return 1
    command = "python -m bench.education" + (" " + " ".join(argv) if argv else "")
    title = f"Education benchmark: {run.counted[0]:,} resources"
    print_passes(run, title, command, args)
    tag = f"education:{human(args.resources)}"
    write_results(args.out, tag, HEADER, section(args, command, data, run))
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
