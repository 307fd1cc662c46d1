"""Gateway benchmark (`make bench`, or `python -m bench.gateway`): the gateway against nginx.

One run, on loopback, everything with one worker:

1. the same small GET three ways, each with `--connections` (64) closed-loop vegeta workers
   for `--seconds` (10) after a short warm-up: straight to the upstream (a static nginx), through
   nginx as a reverse proxy, and through the gateway (`python -m gateway`, token validated at
   the edge); printed: requests/s, the ratio gateway/nginx (target >= 0.2) and the latency
   each proxy adds over the direct call at p50 (target <= 2 ms) and p99; then the three
   again with one connection for `--alone` (5) seconds: the latency a request itself gains
   in each proxy, with no queue in front of it;
2. a Redis-backed rate limit shared by two gateway processes: both hammered at once by
   anonymous callers (one bucket, `--limit` tokens, refilled negligibly), and the admitted
   count compared with the limit.

Results go to bench/results/gateway.md (its `gateway:run` section is replaced).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.loadgen.servers import DevIssuer, TokenSource
from bench.loadgen.vegeta import Attack, Stats, Target, install, write_targets
from bench.service_bench import code_line, write_results
from tools.nginx import NginxServer
from tools.redis import RedisServer
from tools.service_server import ServiceServer

RESULTS = Path(__file__).resolve().parent / "results" / "gateway.md"
SERVICES = ("health", "registry", "education", "tourism")
STATIC = 'location / { default_type application/json; return 200 \'{"id":"1","ok":true}\'; }'
HEADER = "# Gateway benchmark\n\n`python -m bench.gateway` (see its docstring).\n"


def _proxy_body(upstream: str) -> str:
    # As a production nginx in front of Python services would be set up: keep-alive
    # connections to the upstream, prefix stripped like the gateway's route table does.
    return f"""
        location /registry/ {{
            proxy_pass {upstream}/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $remote_addr;
        }}
    """


def _gateway(directory: Path, issuer: str, upstream: str, **extra: str) -> ServiceServer:
    env = {
        "HUIMIN_ENV": "dev",
        "HUIMIN_OIDC_ISSUER": issuer,
        "HUIMIN_UPSTREAM_URLS": json.dumps({name: upstream for name in SERVICES}),
        "HUIMIN_LOG_LEVEL": "WARNING",  # no access log line per request, as in production
        "HUIMIN_USER_RATE": "0",
        "HUIMIN_CLIENT_RATE": "0",
        **extra,
    }
    return ServiceServer("gateway", directory, env).start()


def _attack(work: Path, name: str, url: str, seconds: float, conns: int, token: str) -> Stats:
    targets = work / f"{name}.targets"
    write_targets(targets, [Target("GET", url)])
    headers = {"Authorization": f"Bearer {token}"}
    Attack(targets, min(2.0, seconds), conns, headers).run(work)  # warm-up: pools, caches
    return Attack(targets, seconds, conns, headers).run(work)


def _row(name: str, stats: Stats, direct: Stats | None) -> str:
    p50, p99 = stats.percentile(50) or 0.0, stats.percentile(99) or 0.0
    added = ""
    if direct is not None:
        added = (
            f"{p50 - (direct.percentile(50) or 0.0):+.2f} | "
            f"{p99 - (direct.percentile(99) or 0.0):+.2f}"
        )
    else:
        added = "- | -"
    return f"| {name} | {stats.rate:,.0f} | {p50:.2f} | {p99:.2f} | {added} | {stats.error_count} |"


def _table(runs: dict[str, Stats]) -> list[str]:
    return [
        "| path | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms | errors |",
        "|---|---|---|---|---|---|---|",
        _row("direct to the upstream", runs["direct"], None),
        _row("nginx proxy", runs["nginx"], runs["direct"]),
        _row("gateway (JWT checked)", runs["gateway"], runs["direct"]),
    ]


def _added_p50(runs: dict[str, Stats]) -> float:
    return (runs["gateway"].percentile(50) or 0.0) - (runs["direct"].percentile(50) or 0.0)


def proxy_comparison(
    work: Path, seconds: float, conns: int, alone: float
) -> tuple[str, dict[str, Stats]]:
    """Direct, nginx and gateway runs at `conns` connections, then (for `alone` seconds,
    unless 0) at one; returns the markdown tables and the stats of the first."""
    issuer = DevIssuer(work / "issuer").start()
    upstream = NginxServer(work / "upstream", STATIC).start()
    proxy = NginxServer(work / "proxy", _proxy_body(upstream.url)).start()
    gateway = _gateway(work / "gateway", issuer.issuer, upstream.url)
    urls = {
        "direct": upstream.url + "/items/1",
        "nginx": proxy.url + "/registry/items/1",
        "gateway": gateway.url + "/registry/items/1",
    }
    try:
        token = TokenSource(issuer.issuer).token(valid_for=(seconds + alone) * 4 + 60)
        runs = {k: _attack(work, k, url, seconds, conns, token) for k, url in urls.items()}
        single = (
            {k: _attack(work, k, url, alone, 1, token) for k, url in urls.items()} if alone else {}
        )
    finally:
        for server in (gateway, proxy, upstream, issuer):
            server.stop()
    ratio = runs["gateway"].rate / runs["nginx"].rate if runs["nginx"].rate else 0.0
    lines = [
        f"{conns} connections, {seconds:g} s per run, one worker each, vegeta on the same box.",
        "",
        *_table(runs),
        "",
        f"Ratio gateway/nginx: **{ratio:.2f}** (target >= 0.2). Added p50 of the gateway: "
        f"**{_added_p50(runs):.2f} ms** (target <= 2 ms). At {conns} connections on one"
        " worker a round trip is mostly waiting behind the others (about connections /"
        " throughput), so the added latency there follows the throughput.",
    ]
    if single:
        lines += [
            "",
            f"One connection, {alone:g} s per run (each request sent when the last answer"
            " came: the time a request itself spends in each proxy, no queue):",
            "",
            *_table(single),
            "",
            f"Added p50 of the gateway at one connection: **{_added_p50(single):.2f} ms**.",
        ]
    return "\n".join(lines), runs


def shared_limit(work: Path, limit: int, seconds: float) -> str:
    """Two gateways, one Redis bucket of `limit` tokens: how many requests got through."""
    issuer = DevIssuer(work / "issuer-limit").start()
    upstream = NginxServer(work / "upstream-limit", STATIC).start()
    redis = RedisServer(work / "redis").start()
    limits = {
        "HUIMIN_REDIS_URL": redis.url,
        "HUIMIN_CLIENT_RATE": "0.001",
        "HUIMIN_CLIENT_BURST": str(limit),
    }
    gateways = [
        _gateway(work / f"gateway-{i}", issuer.issuer, upstream.url, **limits) for i in range(2)
    ]
    try:
        attacks = []
        for i, gateway in enumerate(gateways):
            targets = work / f"limit-{i}.targets"
            write_targets(targets, [Target("GET", gateway.url + "/tourism/items/1")])
            attacks.append(Attack(targets, seconds, 16))
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda attack: attack.run(work), attacks))
    finally:
        for server in (*gateways, redis, upstream, issuer):
            server.stop()
    admitted = sum(r.ok for r in results)
    refused = sum(r.errors.get("429", 0) for r in results)
    other = sum(r.error_count for r in results) - refused
    return (
        f"Two gateways sharing one Redis bucket of {limit} tokens, both hammered for "
        f"{seconds:g} s (16 connections each): **{admitted}** admitted "
        f"({admitted / limit:.1%} of the limit; per gateway {results[0].ok} + "
        f"{results[1].ok}), {refused} refused with 429, {other} other errors."
    )


def main() -> None:
    """Run both parts, print them and write bench/results/gateway.md."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--limit", type=int, default=2000)
    parser.add_argument(
        "--alone", type=float, default=5.0, help="seconds per run at one connection (0: skip)"
    )
    args = parser.parse_args()
    install()
    load = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="huimin-bench-gateway-") as tmp:
        work = Path(tmp)
        table, _ = proxy_comparison(work, args.seconds, args.connections, args.alone)
        limit_line = shared_limit(work, args.limit, min(args.seconds, 5.0))
    text = "\n".join(
        [
            "<!-- gateway:run -->",
            code_line(["gateway", "shared"]),
            # Everything shares two cores with whatever else runs: say how busy it was.
            f"- load average before the run: {load[0]:.1f} (1 min), {load[1]:.1f} (5 min)",
            "",
            table,
            "",
            limit_line,
            "<!-- /gateway:run -->",
            "",
        ]
    )
    print(text)
    write_results(RESULTS, "gateway:run", HEADER, text)


if __name__ == "__main__":
    main()
