"""vegeta: install it (pinned, from the Go module proxy), attack with a targets file, and
turn its results into throughput, latency percentiles and errors.

Only 2xx responses count as successes: throughput is successful responses per second, the
latency percentiles are those of the successful responses, and every other status (and
every transport error or timeout) is an error.
"""

from __future__ import annotations

import base64
import csv
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote

from tools._server import file_lock, log
from tools.ferretdb import find_go

VEGETA_MODULE = "github.com/tsenart/vegeta/v12"
VEGETA_VERSION = "v12.13.0"
ROOT = Path(__file__).resolve().parents[2]
GOBIN = ROOT / ".tools" / "bin"
# csv's default field limit (128 KiB) is below what a captured error body may be.
csv.field_size_limit(16 * 1024 * 1024)


def binary() -> Path:
    """Where the pinned vegeta is installed (it may not be yet)."""
    return GOBIN / f"vegeta-{VEGETA_VERSION}"


def install() -> Path:
    """`go install` the pinned vegeta into .tools/bin once; returns the binary."""
    target = binary()
    if target.is_file():
        return target
    with file_lock(GOBIN / ".vegeta.lock", "another vegeta install", "vegeta"):
        if target.is_file():
            return target
        go = find_go()
        build = GOBIN / ".build"
        env = {**os.environ, "GOBIN": str(build), "CGO_ENABLED": "0", "GOFLAGS": "-trimpath"}
        log("vegeta", f"installing {VEGETA_MODULE}@{VEGETA_VERSION} with {go} into {GOBIN}")
        started = time.monotonic()
        result = subprocess.run(
            [go, "install", f"{VEGETA_MODULE}@{VEGETA_VERSION}"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"go install vegeta failed:\n{result.stderr[-4000:]}")
        (build / "vegeta").replace(target)
        log("vegeta", f"installed {target} in {time.monotonic() - started:.0f}s")
        return target


@dataclass(frozen=True)
class Target:
    """One request of a targets file (vegeta's JSON target format)."""

    method: str
    url: str
    body: bytes | None = None
    headers: Mapping[str, str] = field(default_factory=dict)

    def line(self) -> str:
        """The target as one JSON line."""
        item: dict[str, object] = {"method": self.method, "url": self.url}
        if self.headers:
            item["header"] = {k: [v] for k, v in self.headers.items()}
        if self.body is not None:
            item["body"] = base64.b64encode(self.body).decode()
        return json.dumps(item, separators=(",", ":"))


def write_targets(path: Path, targets: Iterable[Target]) -> int:
    """Write a targets file; returns the number of targets."""
    count = 0
    with path.open("w") as out:
        for target in targets:
            out.write(target.line() + "\n")
            count += 1
    return count


@dataclass
class Stats:
    """What one attack measured."""

    requests: int = 0
    ok: int = 0
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)  # of 2xx responses, sorted
    errors: Counter[str] = field(default_factory=Counter)  # "404", "timeout", ... -> count
    samples: dict[str, str] = field(default_factory=dict)  # error -> one response body

    @property
    def error_count(self) -> int:
        """Requests that did not get a 2xx response."""
        return self.requests - self.ok

    @property
    def rate(self) -> float:
        """Successful (2xx) responses per second."""
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float | None:
        """Latency percentile p (0-100) of the 2xx responses in ms (nearest rank)."""
        if not self.latencies_ms:
            return None
        rank = max(0, min(len(self.latencies_ms) - 1, round(p / 100 * len(self.latencies_ms)) - 1))
        return self.latencies_ms[rank]


def _error_kind(code: int, error: str) -> str:
    if code:
        return str(code)
    lowered = error.lower()
    if "timeout" in lowered or "deadline" in lowered:
        return "timeout"
    if "refused" in lowered or "reset" in lowered or "eof" in lowered:
        return "connection"
    return "transport"


def parse_results(csv_path: Path) -> Stats:
    """Stats of a results file in vegeta's CSV encoding."""
    stats = Stats()
    first_start: int | None = None
    last_end = 0
    with csv_path.open(newline="") as handle:
        for row in csv.reader(handle):
            start, code, latency = int(row[0]), int(row[1]), int(row[2])
            stats.requests += 1
            first_start = start if first_start is None else min(first_start, start)
            last_end = max(last_end, start + latency)
            if 200 <= code < 300 and not row[5]:
                stats.ok += 1
                stats.latencies_ms.append(latency / 1e6)
                continue
            kind = _error_kind(code, row[5])
            stats.errors[kind] += 1
            if kind not in stats.samples:
                body = base64.b64decode(row[6]).decode(errors="replace") if row[6] else ""
                what = "; ".join(part for part in (row[5], body) if part)
                stats.samples[kind] = f"{row[9]} {unquote(row[10])}: {what}"[:600]
    stats.latencies_ms.sort()
    if first_start is not None:
        stats.seconds = (last_end - first_start) / 1e9
    return stats


@dataclass(frozen=True)
class Attack:
    """One attack: closed loop, `connections` workers each sending as soon as it has an
    answer; or, with a `rate`, open loop: requests sent at that many per second whatever
    the answers, by up to `connections` workers."""

    targets: Path
    duration: float
    connections: int
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout: float = 10.0
    rate: float = 0.0  # requests per second; 0: closed loop

    def command(self, vegeta: Path | str, output: Path | str) -> list[str]:
        """The vegeta command line (header values are part of it: see `shown`)."""
        command = [
            str(vegeta),
            "attack",
            "-format=json",
            f"-targets={self.targets}",
            # No pacing: as fast as the workers get answers; or a fixed rate (vegeta's
            # frequency is a whole number: per minute, to a 60th of a request a second).
            f"-rate={round(self.rate * 60)}/1m" if self.rate > 0 else "-rate=0",
            f"-workers={self.connections}",
            f"-max-workers={self.connections}",
            f"-connections={self.connections}",
            f"-max-connections={self.connections}",
            f"-duration={self.duration:g}s",
            f"-timeout={self.timeout:g}s",
            "-redirects=-1",  # a redirect is not followed (and counted as an error below)
            "-max-body=512",  # enough of an error body to show what went wrong
            f"-output={output}",
        ]
        for name, value in self.headers.items():
            command.append(f"-header={name}: {value}")
        return command

    def shown(self) -> str:
        """The command line as printed in reports: secrets redacted, paths shortened."""
        redacted = Attack(
            Path(self.targets.name),
            self.duration,
            self.connections,
            {
                k: ("Bearer …" if k.lower() == "authorization" else v)
                for k, v in self.headers.items()
            },
            self.timeout,
            self.rate,
        )
        return shlex.join(redacted.command("vegeta", "results.bin"))

    def run(self, workdir: Path) -> Stats:
        """Attack, then decode and summarize the results (kept in a temporary directory)."""
        vegeta = install()
        with tempfile.TemporaryDirectory(prefix="vegeta-", dir=workdir) as tmp:
            results, decoded = Path(tmp) / "results.bin", Path(tmp) / "results.csv"
            subprocess.run(self.command(vegeta, results), check=True)
            with decoded.open("wb") as out:
                subprocess.run(
                    [str(vegeta), "encode", "--to", "csv", str(results)], stdout=out, check=True
                )
            return parse_results(decoded)


def main(argv: list[str]) -> int:
    """`python -m bench.loadgen install`: install vegeta and print its path."""
    if argv != ["install"]:
        print("usage: python -m bench.loadgen install", file=sys.stderr)
        return 2
    print(install())
    return 0
