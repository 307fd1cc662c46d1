"""Registry benchmark: registration with duplicate detection, search and reads over HTTP
against the real registry process, at 1,000,000 residents on the embedded store.

    make bench                                          # 1,000,000 residents
    python -m bench.registry --residents 50000 --duration 10 --warmup 3
    python -m bench.registry --scenarios search-id,read --profile

The data set (bench/registry_data.py, deterministic) is written straight into the store
under var/bench/registry-sqlite-<size>/, not over HTTP (a million registrations through
the API would take hours on two cores): through the registry's own `make_store` and
`RegistryRepository`, with the documents `RegistryService.register` would store, as
`Create` operations in batches of `--batch` through `Store.write`, so the index keys are
exactly those the service writes. Each batch also moves the registry's resident counter,
which is therefore the load's checkpoint: an interrupted load resumes where it stopped.
Loaded records have no audit entries or events (a migration, not registrations). The
store is reused by later runs (`--reload` builds it again); the service's place counts
check it over the API before anything is measured.

Each scenario is then a closed-loop vegeta attack of `--connections` connections for
`--duration` seconds after a warm-up, as a district officer of 110101 (whose jurisdiction
holds every resident), with a token signed by the dev issuer's key. `register` sends new,
distinct people, a fifth of them probable duplicates of loaded residents (same name and
birth date, or the same phone), so every request runs the duplicate check for real; which
people a run registered is remembered beside the store, so the next run sends others.
Only 2xx responses count. `--profile` runs the slowest scenario (or the one named) again
under py-spy. Results go to bench/results/registry.md, one section per data set size.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx

from bench.health import (
    console,
    human,
)
from bench.loadgen.servers import DevIssuer, HealthServer
from bench.loadgen.vegeta import Attack, Stats, install, write_targets
from bench.registry_data import (
    DISTRICT,
    DUPLICATE_SHARE,
    LoadInfo,
    Population,
    Registered,
    fingerprint,
    load,
    read_targets,
    register_targets,
)
from bench.service_bench import (
    Attacker,
    Measured,
    Profiled,
    Scenario,
    add_run_args,
    check_run_args,
    discard,
    mark_loaded,
    measure_all,
    print_run,
    profile_again,
    render,
    reuse_loaded,
    run_lines,
    section_text,
    write_results,
)
from tests.fixtures.identity import dev_idp
from tools._server import file_lock

ROOT = Path(__file__).resolve().parents[1]
VAR = ROOT / "var" / "bench"
RESULTS = Path(__file__).parent / "results" / "registry.md"
JSON = "application/json"


# Reads and searches first, registration last: what it adds does not shift the searches.
SCENARIOS = [
    Scenario("read", "GET /residents/{id}", None),
    Scenario("search-name", "GET /residents?name={zh prefix, pinyin or Latin}", 30),
    Scenario("search-id", "GET /residents?national_id={id}", 30),
    Scenario("register", "POST /residents (20 % probable duplicates)", 50),
]
BY_NAME = {s.name: s for s in SCENARIOS}


class RegistryServer(HealthServer):
    """`python -m services.registry` on a free port (optionally under py-spy)."""

    name = "registry service"
    log_prefix = "registry"
    log_name = "registry.log"
    module_name = "services.registry"

    def extra_env(self) -> dict[str, str]:
        """No demo data: the benchmark's own places and residents are in the store."""
        return {"HUIMIN_DEMO_DATA": "false"}


def officer_token(issuer: DevIssuer, valid_for: float) -> str:
    """A district officer of 110101, signed with the dev issuer's key (it has no such user)."""
    idp = dev_idp(issuer)
    claims = idp.claims(
        sub="bench-district-officer",
        preferred_username="bench-officer",
        realm_access={"roles": ["district-officer"]},
        jurisdiction=DISTRICT.code,
        exp=int(time.time() + valid_for),
    )
    return idp.sign(claims)


# --- loading -----------------------------------------------------------------------------


def ensure_loaded(data: Population, url: str, home: Path, batch: int) -> LoadInfo:
    """Load the data set unless `home` already holds it."""
    code = fingerprint()
    stale_warning = (
        "[yellow]storage, index or generator code changed since this data set was"
        " loaded: its index keys may be stale (`--reload` loads it again)[/yellow]"
    )
    reused = reuse_loaded(home, LoadInfo, code, stale_warning)
    if reused is not None:
        return reused[0]
    console.print(f"loading {data.size:,} residents into {os.path.relpath(home, ROOT)} ...")
    seconds = asyncio.run(load(data, url, batch))
    info = LoadInfo(
        residents=data.size,
        seconds=round(seconds, 1),
        date=f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        batch=batch,
        code=code,
    )
    mark_loaded(home, info)
    return info


def check_count(base: str, token: str, expected: int) -> int:
    """The number of residents the service counts in the district (LoadError if too few)."""
    response = httpx.get(
        f"{base}/places/{DISTRICT.code}/counts",
        headers={"Authorization": f"Bearer {token}"},
        timeout=600.0,
    )
    if response.status_code != 200:
        raise LoadError(f"GET /places/{DISTRICT.code}/counts: HTTP {response.status_code}")
    total = response.json()["total"]
    count = int(total["active"] + total["moved_out"] + total["deceased"])
    console.print(f"the service counts {count:,} residents ({total})")
    if count < expected:
        raise LoadError(f"the store holds {count:,} residents, expected {expected:,}")
    return count


class LoadError(RuntimeError):
    """The stored data set is not what it should be."""


# --- measuring ---------------------------------------------------------------------------


def attacker(
    data: Population, base: str, token: str, home: Path, args: argparse.Namespace
) -> Attacker:
    """Runs one attack of a scenario for some seconds, on fresh targets."""
    return lambda scenario, duration: attack(scenario, data, base, token, home, duration, args)


def attack(
    scenario: Scenario,
    data: Population,
    base: str,
    token: str,
    home: Path,
    duration: float,
    args: argparse.Namespace,
) -> tuple[Attack, Stats]:
    """Write fresh targets and run one attack of `duration` seconds."""
    work = home / "targets"
    work.mkdir(parents=True, exist_ok=True)
    path = work / f"{scenario.name}.jsonl"
    state = Registered.read(home / "registered.json")
    if scenario.name == "register":
        # Every request must be a new person: vegeta starts the file over when it runs out,
        # and a repeated national ID is a 409. Enough for 3,000 registrations/s, as far as
        # the data set has residents left to make probable duplicates of (every fifth).
        people = max(args.targets, int(duration * 3000))
        people = min(people, (data.size - state.duplicates) * round(1 / DUPLICATE_SHARE))
        written = write_targets(path, register_targets(data, base, people, state))
    else:
        written = write_targets(path, read_targets(scenario.name, data, base, args.targets))
    headers = {"Authorization": f"Bearer {token}", "Accept": JSON}
    run = Attack(path, duration, args.connections, headers, args.timeout)
    stats = run.run(work)
    if scenario.name == "register":
        state.created += stats.ok
        state.save()
        if stats.requests > written:
            console.print(
                f"[yellow]register sent {stats.requests:,} requests for {written:,} people:"
                " vegeta repeated some (409s); raise --targets[/yellow]"
            )
    return run, stats


def measure(
    args: argparse.Namespace, data: Population, home: Path
) -> tuple[LoadInfo, int, Attack, Measured, Profiled | None]:
    """Load if needed, start the issuer and the service, check the count, run scenarios."""
    url = f"sqlite:///{home / 'registry.db'}"
    info = ensure_loaded(data, url, home, args.batch)
    scenarios = [BY_NAME[n] for n in args.scenarios.split(",")]
    with DevIssuer(VAR / "issuer") as issuer:
        token = officer_token(issuer, valid_for=6 * 3600)
        with RegistryServer(home, url, issuer.issuer) as server:
            created = Registered.read(home / "registered.json").created
            count = check_count(server.base_url, token, data.size)
            if count != data.size + created:
                console.print(
                    f"[yellow]expected {data.size + created:,} ({data.size:,} loaded and"
                    f" {created:,} registered by earlier runs)[/yellow]"
                )
            console.print(
                f"{len(scenarios)} scenarios, {args.connections} connections,"
                f" {args.duration:g} s each (+{args.warmup:g} s warm-up)"
            )
            attack = attacker(data, server.base_url, token, home, args)
            run, results = measure_all(scenarios, attack, args)
        if not args.profile:
            return info, count, run, results, None
        profiled = profile_again(
            results,
            args,
            BY_NAME,
            home,
            lambda output: RegistryServer(home, url, issuer.issuer, profile=output),
            lambda base: attacker(data, base, token, home, args),
        )
        return info, count, run, results, profiled


# --- reporting ---------------------------------------------------------------------------


def section(
    args: argparse.Namespace,
    command: str,
    info: LoadInfo,
    count: int,
    run: Attack,
    results: Measured,
    profiled: Profiled | None,
) -> str:
    """This run's section of the results file."""
    size = human(args.residents)
    head = [
        f"## {args.residents:,} residents (embedded store, SQLite)",
        "",
        *run_lines(args, command, run)[:1],
        f"- dataset: {info.describe()}; {count:,} residents counted by the service"
        " (`GET /places/110101/counts`) before the run",
        *run_lines(args, command, run)[1:],
        "- auth: a district officer of 110101 (jurisdiction holding every resident), token"
        " signed with the dev issuer's key; national ID and phone unmasked, every read and"
        " search audited",
        "- 2xx/s and latencies count 2xx responses only; any other status or transport"
        " error is an error",
    ]
    return section_text(f"registry:{size}", head, results, profiled, args.top)


HEADER = """# Registry benchmark

`make bench` (`python -m bench.registry`, see its docstring). The registry runs as in
production (`python -m services.registry`, one process) and is driven over loopback by
vegeta. Targets (issue 5, item 11): duplicate check + registration p95 under 50 ms, search
by name or national ID p95 under 30 ms, at 1,000,000 residents on the embedded store.
"""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.registry", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--residents", type=int, default=1_000_000, help="data set size")
    parser.add_argument("--seed", type=int, default=Population.seed)
    # Clerks at a few counters, each sending as soon as the last answer came: p95 at 64
    # connections would measure the queue in front of one process, not the request.
    add_run_args(
        parser, SCENARIOS, duration=15.0, connections=8, timeout=10.0, batch=500, out=RESULTS
    )
    args = parser.parse_args(argv)
    check_run_args(parser, args, list(BY_NAME))
    return args


def main(argv: list[str]) -> int:
    """Run the benchmark."""
    args = parse_args(argv)
    install()
    data = Population(args.residents, args.seed)
    suffix = "" if args.seed == Population.seed else f"-s{args.seed}"
    home = VAR / f"registry-sqlite-{human(args.residents)}{suffix}"
    # One run per data set at a time: two would write the same store and share the cores.
    with file_lock(home / "bench.lock", f"the other benchmark run on {home.name}", "bench"):
        if args.reload:
            discard(home, "registry.db", markers=("loaded.json", "registered.json"))
        args.load_before = os.getloadavg()[0]
        try:
            info, count, run, results, profiled = measure(args, data, home)
        except LoadError as exc:
            console.print(f"[red]{exc}[/red]\n(`--reload` discards the stored data set)")
            return 1
    command = "python -m bench.registry" + (" " + " ".join(argv) if argv else "")
    title = f"Registry benchmark: {count:,} residents (SQLite)"
    print_run(render(results, title), command, run, profiled, args.top)
    tag = f"registry:{human(args.residents)}"
    write_results(
        args.out, tag, HEADER, section(args, command, info, count, run, results, profiled)
    )
    console.print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
