"""In-process cost of catalogue searches: `CatalogueSearch` over the education benchmark's
queries (bench/education_data.py, the same requests as its scenarios, a quarter as a
citizen), one at a time against its stored data set, without HTTP.

    python -m bench.education_search                        # 200,000 resources
    python -m bench.education_search --resources 20000 --queries 100 --cold

What a request costs the service's process, which at 8 connections on one process is
what its rate and queue are made of (`python -m bench.education` measures those): wall
time, and the process's CPU time (steadier on a machine shared with other work). The
embedded store remembers tallies while the catalogue is unchanged; `--cold` forgets them
before every search, so each pays its whole cost. Load the data set first
(`python -m bench.education --load-only`).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import time
from typing import Any

from bench.education import VAR
from bench.education_data import CITIZEN_SHARE, Catalogue, search_params
from bench.health import human
from services.education.access import Viewer
from services.education.repository import EducationRepository, make_store
from services.education.search import CatalogueSearch, Criteria
from services.education.vocab import FACETS
from shared.auth.principal import Principal

SCENARIOS = ["zh", "en", "filtered", "browse"]
CITIZEN = Viewer(
    Principal("bench-citizen", "bench-citizen", frozenset({"citizen"}), frozenset(), None)
)
PUBLIC = Viewer(None)


def criteria(params: dict[str, str]) -> Criteria:
    """The criteria `GET /resources` makes of a scenario's query parameters."""
    filters = {name: [params[name]] for name in FACETS if name in params}
    sort: Any = params.get("sort", "relevance")
    return Criteria(params.get("q"), filters, sort=sort)


def percentile(sorted_ms: list[float], share: float) -> float:
    """The value below which `share` of the measurements lie (nearest rank)."""
    return sorted_ms[min(len(sorted_ms) - 1, int(len(sorted_ms) * share))]


async def run(args: argparse.Namespace) -> None:
    """Time every scenario's searches and print one line per scenario."""
    path = VAR / f"education-sqlite-{human(args.resources)}" / "education.db"
    if not path.exists():
        raise SystemExit(f"no data set at {path}: python -m bench.education --load-only")
    store = make_store(f"sqlite:///{path}")
    await store.open()
    # The store's remembered tallies (SQLiteStore._memo), forgotten for --cold.
    memo = getattr(store, "_memo", None)
    try:
        search = CatalogueSearch(EducationRepository(store))
        for name in args.scenarios.split(","):
            r = random.Random(f"{name}:{Catalogue.seed}")
            asks = [
                (
                    CITIZEN if r.random() < CITIZEN_SHARE else PUBLIC,
                    criteria(search_params(name, r)),
                )
                for _ in range(args.queries + args.warmup)
            ]
            took: list[float] = []
            cpu: list[float] = []
            for i, (viewer, c) in enumerate(asks):
                if args.cold and memo is not None:
                    memo.found.clear()
                started, used = time.perf_counter(), time.process_time()
                await search.search(viewer, c, limit=20, cursor=None, facets=True)
                if i >= args.warmup:
                    took.append((time.perf_counter() - started) * 1000)
                    cpu.append((time.process_time() - used) * 1000)
            for what, values in (("wall", took), ("cpu", cpu)):
                ms = sorted(values)
                print(
                    f"{name:9s} {what:4s} {len(ms)} searches: mean {statistics.mean(ms):6.1f} ms,"
                    f" p50 {percentile(ms, 0.5):6.1f}, p95 {percentile(ms, 0.95):6.1f},"
                    f" max {ms[-1]:6.1f}"
                )
    finally:
        await store.close()


def main(argv: list[str]) -> int:
    """Parse the command line and run."""
    parser = argparse.ArgumentParser(
        prog="python -m bench.education_search", description=(__doc__ or "").splitlines()[0]
    )
    parser.add_argument("--resources", type=int, default=200_000, help="data set size")
    parser.add_argument("--queries", type=int, default=200, help="timed searches per scenario")
    parser.add_argument("--warmup", type=int, default=20, help="untimed searches first")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--cold", action="store_true", help="forget remembered tallies first")
    args = parser.parse_args(argv)
    asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
