"""The health benchmark's scenarios: one kind of FHIR request each, with targets that vary the
patient (and so the id, name, birth date or identifier) from request to request.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.health_data import LOINC, RESIDENT_ID, Dataset, patient_id, resident_id
from bench.loadgen.vegeta import Stats, Target

FHIR_JSON = "application/fhir+json"
WRITE_HEADERS = {"Content-Type": FHIR_JSON}


@dataclass(frozen=True)
class Goal:
    """A target figure: at least `rate` successful requests/s and, if set, a p95 bound."""

    rate: float
    p95_ms: float | None = None

    def text(self) -> str:
        """E.g. `≥ 800/s, p95 ≤ 50 ms`."""
        text = f"≥ {self.rate:,.0f}/s"
        return text + (f", p95 ≤ {self.p95_ms:g} ms" if self.p95_ms is not None else "")

    def met(self, stats: Stats) -> bool:
        """Whether the attack reached the goal (and had no errors)."""
        p95 = stats.percentile(95)
        fast = self.p95_ms is None or (p95 is not None and p95 <= self.p95_ms)
        return stats.error_count == 0 and stats.rate >= self.rate and fast


READ = Goal(3000)
CREATE = Goal(1000)
SEARCH = Goal(800, 50)

Make = Callable[[Dataset, str, random.Random], Target]


@dataclass(frozen=True)
class Scenario:
    """One scenario: a name, the request pattern shown in reports, a target maker, a goal."""

    name: str
    request: str
    make: Make
    goal: Goal | None

    def targets(self, data: Dataset, base: str, count: int, seed: int) -> Iterator[Target]:
        """`count` targets (vegeta cycles through them if the attack outlasts them)."""
        rng = random.Random(f"{self.name}:{seed}")
        for _ in range(count):
            yield self.make(data, base, rng)


def _get(base: str, path: str, **params: str) -> Target:
    query = f"?{urlencode(params)}" if params else ""
    return Target("GET", f"{base}/{path}{query}")


def _body(resource: dict[str, Any]) -> bytes:
    return json.dumps(resource, ensure_ascii=False, separators=(",", ":")).encode()


def _read(data: Dataset, base: str, rng: random.Random) -> Target:
    return _get(base, f"Patient/{patient_id(rng.randrange(data.patients))}")


def _create(data: Dataset, base: str, rng: random.Random) -> Target:
    observation = data.observation(None, rng, rng.randrange(data.patients))
    return Target("POST", f"{base}/Observation", _body(observation), WRITE_HEADERS)


def _update(data: Dataset, base: str, rng: random.Random) -> Target:
    i = rng.randrange(data.patients)
    patient = data.patient(i)
    patient["telecom"] = [{"system": "phone", "value": f"139{rng.randrange(10**8):08d}"}]
    return Target("PUT", f"{base}/Patient/{patient['id']}", _body(patient), WRITE_HEADERS)


def _by_identifier(data: Dataset, base: str, rng: random.Random) -> Target:
    value = resident_id(rng.randrange(data.patients))
    return _get(base, "Patient", identifier=f"{RESIDENT_ID}|{value}")


def name_prefix(patient: dict[str, Any], rng: random.Random) -> str:
    """What a clerk types to find this patient: the Chinese name, a pinyin family name, or
    the first letters of a Latin family name (accents kept)."""
    official = patient["name"][0]
    if len(patient["name"]) > 1 and rng.random() < 0.3:
        return str(patient["name"][1]["family"]).lower()
    if len(patient["name"]) > 1:
        return str(official["text"])
    return str(official["family"])[:4]


def _by_name(data: Dataset, base: str, rng: random.Random) -> Target:
    return _get(base, "Patient", name=name_prefix(data.patient(rng.randrange(data.patients)), rng))


def _by_birthdate(data: Dataset, base: str, rng: random.Random) -> Target:
    born = data.patient(rng.randrange(data.patients))["birthDate"]
    return _get(base, "Patient", birthdate=born)


def _observations(data: Dataset, base: str, rng: random.Random) -> Target:
    subject = f"Patient/{patient_id(rng.randrange(data.patients))}"
    return _get(base, "Observation", patient=subject, code=f"{LOINC}|8867-4", date="ge2020-01-01")


def _everything(data: Dataset, base: str, rng: random.Random) -> Target:
    return _get(base, f"Patient/{patient_id(rng.randrange(data.patients))}/$everything")


# Reads and searches first, writes last: what the writes add does not shift the searches.
SCENARIOS = [
    Scenario("read", "GET /Patient/{id}", _read, READ),
    Scenario(
        "search-identifier",
        "GET /Patient?identifier=https://huimin.example/sid/resident-id|R-…",
        _by_identifier,
        SEARCH,
    ),
    Scenario("search-name", "GET /Patient?name={prefix}", _by_name, SEARCH),
    Scenario("search-birthdate", "GET /Patient?birthdate={date}", _by_birthdate, SEARCH),
    Scenario(
        "search-observation",
        "GET /Observation?patient=Patient/{id}&code=http://loinc.org|8867-4&date=ge2020-01-01",
        _observations,
        SEARCH,
    ),
    Scenario("everything", "GET /Patient/{id}/$everything", _everything, SEARCH),
    Scenario("update", "PUT /Patient/{id}", _update, None),
    Scenario("create", "POST /Observation", _create, CREATE),
]
BY_NAME = {s.name: s for s in SCENARIOS}
