"""A synthetic, realistic-looking person data set for storage benchmarks."""

from __future__ import annotations

import random
from collections.abc import Iterator, Mapping
from typing import Any

from shared.storage import CollectionSpec, KeyType
from shared.storage.keys import date_span, prefixes, terms, token

SURNAMES = [
    "王",
    "李",
    "张",
    "刘",
    "陈",
    "杨",
    "黄",
    "赵",
    "吴",
    "周",
    "徐",
    "孙",
    "马",
    "朱",
    "胡",
]
GIVEN = ["伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军", "洋", "勇", "艳", "杰", "娟"]
PINYIN = {
    "王": "wang",
    "李": "li",
    "张": "zhang",
    "刘": "liu",
    "陈": "chen",
    "杨": "yang",
    "黄": "huang",
    "赵": "zhao",
    "吴": "wu",
    "周": "zhou",
    "徐": "xu",
    "孙": "sun",
    "马": "ma",
    "朱": "zhu",
    "胡": "hu",
    "伟": "wei",
    "芳": "fang",
    "娜": "na",
    "秀英": "xiuying",
    "敏": "min",
    "静": "jing",
    "丽": "li",
    "强": "qiang",
    "磊": "lei",
    "军": "jun",
    "洋": "yang",
    "勇": "yong",
    "艳": "yan",
    "杰": "jie",
    "娟": "juan",
}
CONDITIONS = ["44054006", "38341003", "195967001", "13645005", "35489007", "73211009"]


def person_keys(body: Mapping[str, Any]) -> dict[str, Any]:
    """Index keys of a benchmark person."""
    return {
        "name": prefixes(body["name"]) + prefixes(body["pinyin"]),
        "term": terms(body["name"] + " " + body["pinyin"]),
        "nid": body["nid"],
        "community": body["community"],
        "age": body["age"],
        "born": date_span(body["born"]),
        "condition": [t for c in body["conditions"] for t in token("http://snomed.info/sct", c)],
    }


PERSONS = CollectionSpec(
    name="persons",
    keys={
        "name": KeyType.TEXT,
        "term": KeyType.TEXT,
        "nid": KeyType.TEXT,
        "community": KeyType.TEXT,
        "age": KeyType.NUMBER,
        "born": KeyType.SPAN,
        "condition": KeyType.TEXT,
    },
    unique=["nid"],
    extract=person_keys,
)


def person(i: int, rng: random.Random) -> dict[str, Any]:
    """The i-th synthetic person (deterministic for a given rng state)."""
    surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
    year = rng.randint(1930, 2020)
    born = f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"
    return {
        "name": surname + given,
        "pinyin": f"{PINYIN[surname]} {PINYIN[given]}",
        "nid": f"{110101000000000000 + i:018d}",
        "community": f"110101/{rng.randint(1, 20):03d}/{rng.randint(1, 30):03d}",
        "age": 2026 - year,
        "born": born,
        "conditions": rng.sample(CONDITIONS, rng.randint(0, 2)),
        "phone": f"1{rng.randint(3000000000, 9999999999)}",
        "address": {"line": f"{rng.randint(1, 200)}号", "city": "北京市"},
    }


def people(n: int, seed: int = 7) -> Iterator[dict[str, Any]]:
    """n synthetic persons."""
    rng = random.Random(seed)
    for i in range(n):
        yield person(i, rng)
