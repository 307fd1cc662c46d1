"""Demo data for the dev stack (`make run`): well-known places of Beijing (real
coordinates) and a few events at them, edited by the dev user `editor`.

Idempotent: nothing is written when the first demo place already exists. Ids are derived
from the demo's own keys, so the data is the same on every machine.
"""

from __future__ import annotations

import uuid
from typing import Any

from services.tourism.access import Viewer
from services.tourism.repository import EVENTS, PLACES, derived_id
from services.tourism.schemas import EventIn, PlaceIn
from services.tourism.service import EventService, PlaceService
from shared.auth.principal import Principal
from shared.storage import Create

EDITOR = Viewer(
    Principal(
        # The dev issuer's `sub` of the dev user `editor` (a UUIDv5 of realm and username).
        subject=str(uuid.uuid5(uuid.NAMESPACE_URL, "urn:huimin:realm:huimin:user:editor")),
        username="editor",
        roles=frozenset({"tourism-editor"}),
        scopes=frozenset(),
        client_id="huimin-tourism",
    )
)
WEEK = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
NOT_MONDAY = WEEK[1:]


def _hours(days: list[str], opens: str, closes: str, **extra: Any) -> dict[str, Any]:
    return {"regular": [{"day_of_week": days, "opens": opens, "closes": closes}], **extra}


# key, type, category, zh, en, lat, lon, hours, price (None: free), wheelchair, tags, zh description
PLACES_DATA: list[tuple[Any, ...]] = [
    (
        "palace-museum",
        "TouristAttraction",
        "museum",
        "故宫博物院",
        "Palace Museum",
        39.9163,
        116.3972,
        _hours(
            NOT_MONDAY,
            "08:30",
            "17:00",
            special=[
                {
                    "valid_from": "2026-10-01",
                    "valid_through": "2026-10-07",
                    "opens": "08:00",
                    "closes": "17:30",
                }
            ],
        ),
        60,
        "limited",
        ["故宫", "紫禁城", "Forbidden City"],
        "明清两代的皇家宫殿，世界上现存规模最大的木质结构古建筑群之一。",
    ),
    (
        "temple-of-heaven",
        "TouristAttraction",
        "park",
        "天坛公园",
        "Temple of Heaven",
        39.8822,
        116.4066,
        _hours(WEEK, "06:00", "22:00"),
        15,
        "yes",
        ["祈年殿"],
        "明清皇帝祭天、祈谷的场所，祈年殿是北京的标志。",
    ),
    (
        "summer-palace",
        "TouristAttraction",
        "park",
        "颐和园",
        "Summer Palace",
        39.9999,
        116.2755,
        _hours(WEEK, "06:30", "18:00"),
        30,
        "limited",
        ["昆明湖"],
        "以昆明湖、万寿山为基址的皇家园林。",
    ),
    (
        "tiananmen",
        "TouristAttraction",
        "landmark",
        "天安门广场",
        "Tiananmen Square",
        39.9055,
        116.3976,
        _hours(WEEK, "05:00", "22:00"),
        None,
        "yes",
        ["升旗"],
        "世界上最大的城市广场之一，清晨可观看升旗仪式。",
    ),
    (
        "lama-temple",
        "TouristAttraction",
        "temple",
        "雍和宫",
        "Lama Temple",
        39.9470,
        116.4174,
        _hours(WEEK, "09:00", "16:30"),
        25,
        "limited",
        ["藏传佛教"],
        "北京规模最大的藏传佛教寺院。",
    ),
    (
        "national-museum",
        "TouristAttraction",
        "museum",
        "中国国家博物馆",
        "National Museum of China",
        39.9050,
        116.4010,
        _hours(NOT_MONDAY, "09:00", "17:00"),
        None,
        "yes",
        ["历史"],
        "展示中华文明的综合性博物馆，免费预约参观。",
    ),
    (
        "jingshan",
        "TouristAttraction",
        "park",
        "景山公园",
        "Jingshan Park",
        39.9254,
        116.3967,
        _hours(WEEK, "06:30", "21:00"),
        2,
        "no",
        ["万春亭"],
        "登万春亭可俯瞰故宫全景。",
    ),
    (
        "beijing-zoo",
        "TouristAttraction",
        "zoo",
        "北京动物园",
        "Beijing Zoo",
        39.9388,
        116.3392,
        _hours(WEEK, "07:30", "17:00"),
        15,
        "yes",
        ["大熊猫", "panda"],
        "中国开放最早、动物种类最多的动物园之一。",
    ),
    (
        "hotel-beijing",
        "LodgingBusiness",
        "hotel",
        "北京饭店",
        "Beijing Hotel",
        39.9087,
        116.4112,
        _hours(WEEK, "00:00", "24:00"),
        None,
        "yes",
        ["长安街"],
        "长安街上的百年老饭店。",
    ),
    (
        "quanjude-qianmen",
        "Restaurant",
        "chinese-cuisine",
        "全聚德（前门店）",
        "Quanjude Roast Duck (Qianmen)",
        39.8985,
        116.3977,
        _hours(WEEK, "11:00", "21:00"),
        None,
        "limited",
        ["烤鸭", "roast duck"],
        "创立于1864年的北京烤鸭老字号。",
    ),
    (
        "gui-street",
        "Restaurant",
        "snack",
        "簋街小吃",
        "Gui Street Snacks",
        39.9405,
        116.4253,
        _hours(WEEK, "17:00", "04:00"),
        None,
        "no",
        ["小龙虾", "夜宵"],
        "通宵营业的美食街，麻辣小龙虾最有名。",
    ),
    (
        "sanlitun",
        "TouristDestination",
        "shopping",
        "三里屯",
        "Sanlitun",
        39.9365,
        116.4546,
        None,
        None,
        "yes",
        ["购物", "nightlife"],
        "时尚购物与夜生活街区。",
    ),
]
CENTRAL_AXIS = ("central-axis", ["palace-museum", "jingshan", "tiananmen", "temple-of-heaven"])

# key, zh, en, place key, start, end, status, previous start, price (None: free)
EVENTS_DATA: list[tuple[Any, ...]] = [
    (
        "palace-exhibition",
        "故宫冬季文物特展",
        "Palace Museum winter exhibition",
        "palace-museum",
        "2026-12-01T08:30:00+08:00",
        "2027-03-01T17:00:00+08:00",
        "scheduled",
        None,
        20,
    ),
    (
        "ice-festival",
        "什刹海冰上嘉年华",
        "Shichahai ice carnival",
        "jingshan",
        "2027-01-05T10:00:00+08:00",
        "2027-02-10T18:00:00+08:00",
        "postponed",
        "2026-12-20T10:00:00+08:00",
        40,
    ),
    (
        "museum-lecture",
        "国博公开讲座：青铜器",
        "Lecture: bronzes of ancient China",
        "national-museum",
        "2026-12-12T14:00:00+08:00",
        "2026-12-12T16:00:00+08:00",
        "cancelled",
        None,
        None,
    ),
    (
        "countdown",
        "三里屯新年倒计时",
        "Sanlitun New Year countdown",
        "sanlitun",
        "2026-12-31T21:00:00+08:00",
        "2027-01-01T01:00:00+08:00",
        "scheduled",
        None,
        None,
    ),
]


def _place(row: tuple[Any, ...], ids: dict[str, str]) -> PlaceIn:
    key, kind, category, zh, en, lat, lon, hours, price, wheelchair, tags, desc = row
    body: dict[str, Any] = {
        "type": kind,
        "category": category,
        "name": {"zh": zh, "en": en},
        "description": {"zh": desc},
        "geo": {"latitude": lat, "longitude": lon},
        "address": {"locality": "北京市", "region": "北京"},
        "opening_hours": hours,
        "is_accessible_for_free": price is None,
        "admission": []
        if price is None
        else [{"name": {"zh": "成人", "en": "Adult"}, "price": price}],
        "accessibility": {"wheelchair": wheelchair},
        "images": [f"https://img.huimin.example/places/{key}.jpg"],
        "tags": tags,
    }
    if key == CENTRAL_AXIS[0]:
        body["includes_attraction"] = [ids[k] for k in CENTRAL_AXIS[1]]
    return PlaceIn.model_validate(body)


async def load_demo(places: PlaceService, events: EventService) -> tuple[int, int]:
    """Write the demo places and events unless present; how many of each the demo has."""
    ids = {row[0]: derived_id("demo", "place", row[0]) for row in PLACES_DATA}
    ids[CENTRAL_AXIS[0]] = derived_id("demo", "place", CENTRAL_AXIS[0])
    if await places.repo.get(PLACES, ids["palace-museum"]) is not None:
        return len(ids), len(EVENTS_DATA)
    axis = (
        CENTRAL_AXIS[0],
        "TouristDestination",
        "scenic-area",
        "北京中轴线",
        "Beijing Central Axis",
        39.9087,
        116.3975,
        None,
        None,
        "limited",
        ["中轴线", "世界遗产"],
        "从永定门到钟鼓楼，贯穿北京老城的七百年中轴线。",
    )
    ops = [
        Create(PLACES, places.new_body(EDITOR, _place(row, ids), ids[row[0]]), ids[row[0]])
        for row in [*PLACES_DATA, axis]
    ]
    for key, zh, en, at, start, end, status, previous, price in EVENTS_DATA:
        data = EventIn.model_validate(
            {
                "name": {"zh": zh, "en": en},
                "location": ids[at],
                "start_date": start,
                "end_date": end,
                "event_status": status,
                "previous_start_date": previous,
                "is_accessible_for_free": price is None,
                "offers": [] if price is None else [{"price": price}],
            }
        )
        eid = derived_id("demo", "event", key)
        ops.append(Create(EVENTS, events.new_body(EDITOR, data, eid), eid))
    # One atomic batch: the demo is present whole or not at all.
    await places.repo.write(ops)
    return len(ids), len(EVENTS_DATA)
