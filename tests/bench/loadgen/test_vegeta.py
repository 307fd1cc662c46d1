"""vegeta results: only 2xx responses count as throughput; the rest are errors."""

from __future__ import annotations

import base64
import csv
from pathlib import Path

from bench.loadgen.vegeta import Attack, Target, parse_results


def write(path: Path, rows: list[tuple[int, int, int, str, bytes]]) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        for start_ms, code, latency_ms, error, body in rows:
            writer.writerow(
                [
                    start_ms * 1_000_000,
                    code,
                    latency_ms * 1_000_000,
                    0,
                    0,
                    error,
                    base64.b64encode(body).decode(),
                    "",
                    0,
                    "GET",
                    "http://127.0.0.1/Patient/p1",
                    "",
                ]
            )


def test_non_2xx_and_transport_errors_are_errors_not_throughput(tmp_path):
    rows = [(i, 200, 10 + i, "", b"") for i in range(8)]
    rows += [
        (8, 404, 1, "404 Not Found", b'{"resourceType":"OperationOutcome"}'),
        (9, 302, 1, "", b""),
        (10, 0, 990, "Get: context deadline exceeded (Client.Timeout exceeded)", b""),
        (11, 500, 2, "500 Internal Server Error", b""),
    ]
    path = tmp_path / "results.csv"
    write(path, rows)
    stats = parse_results(path)
    assert stats.requests == 12
    assert stats.ok == 8
    assert stats.error_count == 4
    assert stats.errors == {"404": 1, "302": 1, "timeout": 1, "500": 1}
    assert "OperationOutcome" in stats.samples["404"]
    assert stats.seconds == 1.0  # first start 0 ms, last end 10 + 990 ms
    assert stats.rate == 8.0
    assert stats.latencies_ms == [10.0 + i for i in range(8)]  # 2xx only
    assert stats.percentile(50) == 13.0
    assert stats.percentile(100) == 17.0


def test_targets_and_command_line_keep_the_token_out_of_reports(tmp_path):
    line = Target("POST", "http://h/Observation", b"{}", {"Content-Type": "x"}).line()
    assert line == (
        '{"method":"POST","url":"http://h/Observation","header":{"Content-Type":["x"]},'
        '"body":"e30="}'
    )
    attack = Attack(tmp_path / "t.jsonl", 15, 64, {"Authorization": "Bearer secret"})
    command = attack.command("vegeta", "out.bin")
    assert "-rate=0" in command
    assert "-max-workers=64" in command
    assert "-duration=15s" in command
    assert "-header=Authorization: Bearer secret" in command
    assert "secret" not in attack.shown()
    paced = Attack(tmp_path / "t.jsonl", 15, 8, rate=42.5)
    assert "-rate=2550/1m" in paced.command("vegeta", "out.bin")
    assert "-rate=2550/1m" in paced.shown()
