"""Bulk loading: transaction Bundles of PUT entries, bounded in entries and bytes."""

from __future__ import annotations

import json
from collections import Counter

from bench.health_data import Dataset
from bench.loadgen.loader import MAX_BUNDLE_BYTES, bundles, expected_counts

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
