"""The larger, generated part of the dev stack's tourism demo: about a hundred small places
(cafés, noodle houses, courtyard guesthouses, playhouses, craft markets...) in the lanes
around real Beijing neighbourhoods, and events at some of them, on top of the hand-written
landmarks of services/tourism/demo.py (which the tests rely on and which stay as they are).

Coordinates are a neighbourhood's real centre plus a few hundred metres, so near searches
and maps look like a city. Generated from a fixed seed, ids derived from the demo's own
keys: the same data on every machine. Loaded only with `HUIMIN_DEMO_PLACES` above 0 (the
dev stack sets it), in one atomic batch, skipped when its first place already exists.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from services.tourism.demo import EDITOR, WEEK, _hours
from services.tourism.repository import EVENTS, PLACES, derived_id
from services.tourism.schemas import EventIn, PlaceIn
from services.tourism.service import EventService, PlaceService
from shared.storage import Create

SEED = 20261127
# Neighbourhoods: (key, zh, en, latitude, longitude of their centre).
AREAS = [
    ("nanluoguxiang", "南锣鼓巷", "Nanluoguxiang", 39.9373, 116.4030),
    ("yandai", "烟袋斜街", "Yandai Xiejie", 39.9405, 116.3930),
    ("guozijian", "国子监街", "Guozijian Street", 39.9465, 116.4105),
    ("dongsi", "东四", "Dongsi", 39.9310, 116.4170),
    ("qianmen", "前门大街", "Qianmen Street", 39.8960, 116.3980),
    ("dashilar", "大栅栏", "Dashilar", 39.8950, 116.3930),
    ("liulichang", "琉璃厂", "Liulichang", 39.8940, 116.3850),
    ("shichahai", "什刹海", "Shichahai", 39.9400, 116.3850),
    ("wangfujing", "王府井", "Wangfujing", 39.9140, 116.4110),
    ("gulou", "鼓楼", "Gulou", 39.9400, 116.3960),
    ("jiaodaokou", "交道口", "Jiaodaokou", 39.9400, 116.4080),
    ("beixinqiao", "北新桥", "Beixinqiao", 39.9400, 116.4170),
    ("dengshikou", "灯市口", "Dengshikou", 39.9180, 116.4130),
    ("xisi", "西四", "Xisi", 39.9240, 116.3730),
    ("sanlitun", "三里屯", "Sanlitun", 39.9330, 116.4540),
]
# What can be found there: (key, type, category, zh suffix, en suffix, opens, closes,
# lowest and highest price or None when free).
KINDS = [
    ("cafe", "Restaurant", "cafe", "胡同咖啡", "Hutong Café", "09:00", "22:00", None),
    (
        "noodles",
        "Restaurant",
        "chinese-cuisine",
        "炸酱面馆",
        "Zhajiang Noodle House",
        "10:30",
        "21:30",
        None,
    ),
    ("snacks", "Restaurant", "snack", "小吃店", "Snack Bar", "07:00", "20:00", None),
    ("tea", "Restaurant", "vegetarian", "素食茶馆", "Vegetarian Teahouse", "10:00", "21:00", None),
    (
        "guesthouse",
        "LodgingBusiness",
        "guesthouse",
        "四合院民宿",
        "Courtyard Guesthouse",
        "00:00",
        "23:59",
        None,
    ),
    (
        "hostel",
        "LodgingBusiness",
        "hostel",
        "国际青年旅舍",
        "International Youth Hostel",
        "00:00",
        "23:59",
        None,
    ),
    (
        "exhibition",
        "TouristAttraction",
        "museum",
        "民俗展览馆",
        "Folk Culture Exhibition",
        "09:30",
        "17:00",
        (10, 40),
    ),
    (
        "playhouse",
        "TouristAttraction",
        "theatre",
        "小剧场",
        "Playhouse",
        "13:00",
        "22:00",
        (80, 280),
    ),
    ("garden", "TouristAttraction", "park", "街心花园", "Pocket Garden", "06:00", "21:00", None),
    ("market", "TouristAttraction", "shopping", "文创市集", "Craft Market", "10:00", "20:00", None),
]
# Events at the places that host them: (kind of place, zh, en, hours long).
EVENT_KINDS = {
    "playhouse": [
        ("周末相声专场", "Weekend crosstalk night", 2),
        ("京剧折子戏", "Peking opera excerpts", 3),
    ],
    "exhibition": [
        ("胡同文化讲座", "Talk: life in the hutongs", 2),
        ("剪纸体验课", "Paper-cutting workshop", 2),
    ],
    "market": [
        ("冬季手作市集", "Winter handicraft fair", 8),
        ("年货大集", "New Year goods fair", 9),
    ],
    "garden": [("晨练太极", "Morning tai chi", 1)],
}
WHEELCHAIR = ["yes", "limited", "no", "unknown"]
METRES_PER_DEGREE = 111_000.0


def place_key(area: str, kind: str) -> str:
    """The demo key of the generated place of `kind` in `area` (one of each at most)."""
    return f"city-{area}-{kind}"


def city_places(count: int) -> list[tuple[str, str, PlaceIn]]:
    """(key, kind, body) of the first `count` generated places: the same on every call."""
    rng = random.Random(SEED)
    pairs = [(area, kind) for area in AREAS for kind in KINDS]
    rng.shuffle(pairs)
    result = []
    for (akey, azh, aen, lat, lon), (kkey, ptype, category, zh, en, opens, closes, price) in pairs[
        :count
    ]:
        north, east = rng.uniform(-400, 400), rng.uniform(-400, 400)
        fee = None if price is None else rng.randrange(price[0], price[1] + 1, 10)
        body = {
            "type": ptype,
            "category": category,
            "name": {"zh": f"{azh}{zh}", "en": f"{aen} {en}"},
            "description": {"zh": f"位于{azh}一带的{zh}，步行可达附近的胡同和景点。"},
            "geo": {
                "latitude": round(lat + north / METRES_PER_DEGREE, 6),
                # A degree of longitude is shorter at Beijing's latitude (cos 39.9° ≈ 0.767).
                "longitude": round(lon + east / (METRES_PER_DEGREE * 0.767), 6),
            },
            "address": {"locality": "北京市", "region": "北京"},
            "opening_hours": _hours(WEEK, opens, closes),
            "is_accessible_for_free": fee is None,
            "admission": []
            if fee is None
            else [{"name": {"zh": "成人", "en": "Adult"}, "price": fee}],
            "accessibility": {"wheelchair": rng.choice(WHEELCHAIR)},
            "tags": [azh, zh],
        }
        result.append((place_key(akey, kkey), kkey, PlaceIn.model_validate(body)))
    return result


def city_events(places: list[tuple[str, str, PlaceIn]]) -> list[tuple[str, EventIn]]:
    """(key, body) of events at those of `places` that host some, this winter."""
    rng = random.Random(SEED + 1)
    result = []
    for key, kind, _ in places:
        for n, (zh, en, hours) in enumerate(EVENT_KINDS.get(kind, [])):
            start = datetime(2026, 12, 1, 10) + timedelta(
                days=rng.randrange(110), hours=rng.randrange(9)
            )
            free = rng.random() < 0.5
            data = EventIn.model_validate(
                {
                    "name": {"zh": zh, "en": en},
                    "location": derived_id("demo", "place", key),
                    "start_date": start.isoformat() + "+08:00",
                    "end_date": (start + timedelta(hours=hours)).isoformat() + "+08:00",
                    "event_status": "scheduled",
                    "is_accessible_for_free": free,
                    "offers": [] if free else [{"price": rng.randrange(20, 120, 10)}],
                }
            )
            result.append((f"{key}-{n}", data))
    return result


async def load_city(places: PlaceService, events: EventService, count: int) -> tuple[int, int]:
    """Write the generated places and events unless present; how many of each there are."""
    generated = city_places(count)
    happening = city_events(generated)
    if not generated:
        return 0, 0
    first = derived_id("demo", "place", generated[0][0])
    if await places.repo.get(PLACES, first) is not None:
        return len(generated), len(happening)
    ops = []
    for key, _, body in generated:
        pid = derived_id("demo", "place", key)
        ops.append(Create(PLACES, places.new_body(EDITOR, body, pid), pid))
    for key, data in happening:
        eid = derived_id("demo", "event", key)
        ops.append(Create(EVENTS, events.new_body(EDITOR, data, eid), eid))
    # One atomic batch, as the hand-written demo: present whole or not at all.
    await places.repo.write(ops)
    return len(generated), len(happening)
