"""The tourism benchmark's data set: deterministic places around Beijing, and the requests
of each scenario.

Places: 60 % drawn around the city centre (a normal spread of 8 km about Tiananmen, as
attractions, hotels and restaurants crowd the old city), 40 % spread evenly over the
municipality's plain (39.6-40.2° N, 116.0-116.8° E). Types and categories are skewed like a
city's (restaurants most), opening hours are daytime (70 %), overnight (10 %), all day
(10 %) or unknown (10 %), a tenth with a closed special day. Document `i` is always the
same, built through the service's own `PlaceIn` and `PlaceService.new_body`, so the stored
bodies and index keys are what the service writes.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from bench.loadgen.vegeta import Target
from bench.service_bench import code_hash
from services.tourism.demo import EDITOR
from services.tourism.repository import derived_id, place_keys
from services.tourism.schemas import PlaceIn
from services.tourism.service import new_body

CENTRE = (39.9087, 116.3975)
SPREAD_KM = 8.0
WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
# (type, category, weight)
KINDS = [
    ("Restaurant", "chinese-cuisine", 30),
    ("Restaurant", "snack", 15),
    ("Restaurant", "cafe", 10),
    ("LodgingBusiness", "hotel", 12),
    ("LodgingBusiness", "guesthouse", 6),
    ("TouristAttraction", "park", 8),
    ("TouristAttraction", "museum", 6),
    ("TouristAttraction", "historic-site", 5),
    ("TouristAttraction", "temple", 4),
    ("TouristAttraction", "landmark", 2),
    ("TouristDestination", "shopping", 2),
]
WORDS_ZH = ["胡同", "老北京", "四合院", "园林", "烤鸭", "涮肉", "茶馆", "书店", "故居", "庙会"]
WORDS_EN = ["hutong", "old", "courtyard", "garden", "duck", "hotpot", "teahouse", "books"]
CITIZEN_SHARE = 0.25
# The storage code (what the tourism code stores is hashed by what it produces: a sample of
# documents and their index keys).
STORED_BY = ("shared/storage/*.py",)


def point(r: random.Random) -> tuple[float, float]:
    """A place's position (see the module docstring)."""
    if r.random() < 0.6:
        north, east = r.gauss(0, SPREAD_KM), r.gauss(0, SPREAD_KM)
        lat = CENTRE[0] + north / 111.2
        lon = CENTRE[1] + east / (111.2 * math.cos(math.radians(CENTRE[0])))
        return round(lat, 6), round(lon, 6)
    return round(r.uniform(39.6, 40.2), 6), round(r.uniform(116.0, 116.8), 6)


def hours(r: random.Random) -> dict[str, Any] | None:
    """Opening hours: daytime, overnight, all day or unknown; some with a closed day."""
    roll = r.random()
    if roll < 0.1:
        return None
    if roll < 0.2:
        regular = [{"day_of_week": WEEK, "opens": "00:00", "closes": "24:00"}]
    elif roll < 0.3:
        regular = [{"day_of_week": WEEK[4:], "opens": "18:00", "closes": "02:00"}]
    else:
        days = WEEK[1:] if r.random() < 0.4 else WEEK
        opens = f"{r.choice([6, 7, 8, 9, 10, 11]):02d}:{r.choice(['00', '30'])}"
        closes = f"{r.choice([16, 17, 18, 20, 21, 22]):02d}:00"
        regular = [{"day_of_week": days, "opens": opens, "closes": closes}]
    special = [{"valid_from": "2026-12-25"}] if r.random() < 0.1 else []
    return {"regular": regular, "special": special}


@dataclass(frozen=True)
class Places:
    """`size` deterministic places."""

    size: int
    seed: int = 11

    def id(self, i: int) -> str:
        """Place `i`'s id."""
        return derived_id("bench", str(self.seed), str(i))

    def document(self, i: int) -> dict[str, Any]:
        """Place `i` as the service stores it."""
        r = random.Random(f"{self.seed}:{i}")
        kind, category = r.choices([(t, c) for t, c, _ in KINDS], [w for *_, w in KINDS])[0]
        lat, lon = point(r)
        zh, en = r.choice(WORDS_ZH), r.choice(WORDS_EN)
        free = kind == "TouristAttraction" and r.random() < 0.3
        data = PlaceIn.model_validate(
            {
                "type": kind,
                "category": category,
                "name": {"zh": f"{zh}{i}号", "en": f"{en.title()} {i}"},
                "description": {"zh": f"位于北京的{zh}，编号{i}。"},
                "geo": {"latitude": lat, "longitude": lon},
                "opening_hours": hours(r),
                "is_accessible_for_free": free,
                "admission": [] if free or kind != "TouristAttraction" else [{"price": 30}],
                "accessibility": {"wheelchair": r.choice(["yes", "limited", "no", "unknown"])},
                "tags": [zh, en],
            }
        )
        body = new_body(EDITOR, data, self.id(i))
        # A fixed date: the same document on every load.
        body["date_created"] = body["date_modified"] = "2026-11-01T00:00:00Z"
        return body


def fingerprint(data: Places) -> str:
    """A hash of the storage and tourism code that decide what is stored, and of a sample of
    documents with their keys: a change of any makes a stored data set stale."""
    digest = hashlib.sha256(code_hash(STORED_BY).encode())
    for i in range(0, data.size, max(1, data.size // 64)):
        doc = data.document(i)
        digest.update(json.dumps([doc, place_keys(doc)], sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def search_params(name: str, r: random.Random) -> dict[str, str]:
    """The query of one request of a search scenario."""
    lat, lon = point(r)
    where = {"lat": f"{lat}", "lon": f"{lon}"}
    if name == "near-1km":
        return {**where, "radius": "1000"}
    if name == "near-5km":
        return {**where, "radius": "5000"}
    if name == "near-open":
        return {**where, "radius": str(r.choice([1000, 2000, 3000, 5000])), "open_now": "true"}
    if name == "open-category":
        kinds = [c for _, c, _ in KINDS]
        return {"open_now": "true", "category": r.choice(kinds), "wheelchair": "true"}
    raise ValueError(name)


def targets(name: str, data: Places, base: str, count: int, citizen: str) -> Iterator[Target]:
    """`count` requests of a scenario, a quarter with a citizen's token."""
    r = random.Random(f"{name}:{data.seed}")
    for _ in range(count):
        headers = {"Authorization": f"Bearer {citizen}"} if r.random() < CITIZEN_SHARE else {}
        if name == "read":
            yield Target("GET", f"{base}/places/{data.id(r.randrange(data.size))}", headers=headers)
        else:
            query = urlencode(search_params(name, r))
            yield Target("GET", f"{base}/places?{query}", headers=headers)
