"""Bulk loading: transaction Bundles of PUT entries, bounded in entries and bytes."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import httpx
import pytest

from bench.health_data import Dataset
from bench.loadgen.loader import (
    MAX_BUNDLE_BYTES,
    Checkpoint,
    Loaded,
    LoadError,
    bundles,
    expected_counts,
    load,
)
from bench.loadgen.servers import TokenSource

SMALL = Dataset(patients=80, observations=900)


def test_expected_counts_are_what_the_records_hold():
    types = Counter(r["resourceType"] for rec in SMALL.records() for r in rec.resources())
    assert types == expected_counts(SMALL)


def test_patients_come_before_what_refers_to_them():
    order = [
        json.loads(body)["entry"][0]["resource"]["resourceType"]
        for _, body in bundles(SMALL, "http://fhir.test", 40)
    ]
    assert order[:2] == ["Patient", "Patient"]
    assert "Patient" not in order[2:]


def test_transaction_bundles_are_bounded_and_complete():
    sizes = []
    for count, body in bundles(SMALL, "http://fhir.test", 100):
        bundle = json.loads(body)
        assert bundle["type"] == "transaction"
        assert len(bundle["entry"]) == count <= 100
        assert len(body) <= MAX_BUNDLE_BYTES
        entry = bundle["entry"][0]
        url = f"{entry['resource']['resourceType']}/{entry['resource']['id']}"
        assert entry["request"] == {"method": "PUT", "url": url}
        sizes.append(count)
    assert sum(sizes) == sum(expected_counts(SMALL).values())


class FixedToken(TokenSource):
    def __init__(self) -> None:
        super().__init__("http://issuer.test")

    def token(self, *, valid_for: float = 60.0) -> str:
        return "token"


def test_an_interrupted_load_resumes_where_it_stopped(tmp_path):
    data = Dataset(patients=6, observations=30)
    seen: list[str] = []

    def serve(fail_after: int | None):
        def handler(request: httpx.Request) -> httpx.Response:
            if fail_after is not None and len(seen) >= fail_after:
                return httpx.Response(503, json={"resourceType": "OperationOutcome"})
            seen.append(request.url.path)
            return httpx.Response(201, json=json.loads(request.content))

        return httpx.MockTransport(handler)

    def run(checkpoint: Checkpoint, fail_after: int | None) -> Loaded:
        return asyncio.run(
            load(
                data,
                "http://fhir.test",
                FixedToken(),
                bundle_size=0,
                concurrency=1,
                checkpoint=checkpoint,
                transport=serve(fail_after),
            )
        )

    path = tmp_path / "loading.json"
    with pytest.raises(LoadError, match="HTTP 503"):
        run(Checkpoint.resume(path, bundle=0), fail_after=10)
    saved = Checkpoint.resume(path, bundle=0)
    assert (saved.writes, saved.resources) == (10, 10)
    assert Checkpoint.resume(path, bundle=400).writes == 0  # another write order: from 0
    loaded = run(saved, fail_after=None)
    every = [f"/{r['resourceType']}/{r['id']}" for rec in data.records() for r in rec.resources()]
    assert sorted(seen) == sorted(every)  # each resource once: resumed after the tenth write
    assert loaded.total == len(every)
    assert Checkpoint.resume(path, bundle=0).resources == len(every)
