"""Synthetic residents for the registry benchmark: deterministic for a seed, valid for the
registry's own checks, and shaped like a Beijing district's population.

- Names: surnames drawn with their national frequencies (approximately the 2020 ranking of
  the Ministry of Public Security: 王 7.1 %, 李 7.0 %, 张 6.7 %, ... down to compound
  surnames such as 欧阳), given names of one or two characters from sex-specific pools with
  a long tail, so common names (张伟, 王芳) repeat as they do in life; the Latin form is the
  registry's own romanization (`names.romanize`). 0.5 % are foreigners with Latin names
  only and no national ID.
- National IDs (GB 11643): region, birth date and sequence come from a bijection of the
  person's index, so every number is unique by construction (no list to keep) and the
  sequence's parity gives the sex; the check digit is the registry's `national_id.make`.
  Birth dates are uniform over 1935-2023.
- Phones: mainland mobile prefixes (13x-19x); most children have none.
- Places: district 110101 (东城区) with 10 streets of 10 communities (`PLACES`), the demo
  hierarchy's codes and names included.

Every person is generated from their own index (`random.Random` seeded by seed and index),
so the loader, the request targets and the tests agree without keeping a list. Indices
below `size` are the loaded residents (`R-00000001` is index 0); indices from `size` on are
new people for the `register` scenario. `duplicate(k)` is a new person who is a probable
duplicate of a loaded resident: same name and birth date (a different national ID), or a
family member sharing the phone.

Also here: the request targets of the scenarios (`read_targets`, `register_targets` with
the `Registered` state that keeps runs from sending the same person twice) and the loader
(`load`), which writes the residents straight into the registry's store.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
import random
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from bench.health import console, minutes
from bench.health_data import LATIN_FAMILIES, LATIN_GIVENS
from bench.loadgen.vegeta import Target
from bench.service_bench import code_hash, write_batches
from services.registry import national_id
from services.registry.names import romanize
from services.registry.places import PlaceRow, import_places
from services.registry.repository import COUNTERS, RESIDENTS, RegistryRepository, make_store
from shared.storage import Create, RecordNotFound, Update, WriteOp

_SURNAMES = """
王7.12 李7.00 张6.74 刘5.10 陈4.61 杨3.22 赵2.00 黄1.99 周1.87 吴1.84 徐1.42 孙1.38 胡1.26
朱1.23 高1.21 林1.18 何1.17 郭1.15 马1.05 罗.86 梁.84 宋.77 郑.74 谢.69 韩.66 唐.64 冯.63
于.62 董.60 萧.59 程.57 曹.57 袁.54 邓.54 许.54 傅.53 沈.52 曾.50 彭.50 吕.47 苏.46 卢.46
蒋.45 蔡.44 贾.42 丁.41 魏.40 薛.39 叶.39 阎.38 余.37 潘.36 杜.35 戴.34 夏.34 钟.33 汪.32
田.32 任.31 姜.31 范.30 方.30 石.30 姚.29 谭.28 廖.27 邹.26 熊.26 金.25 陆.24 郝.24 孔.23
白.23 崔.23 康.22 毛.22 邱.21 秦.21 江.20 史.20 顾.20 侯.19 邵.19 孟.18 龙.18 万.17 段.17
雷.16 钱.16 汤.16 尹.15 黎.15 易.15 常.14 武.14 乔.14 贺.13 赖.13 龚.13 文.12 欧阳.05
司马.01 诸葛.005 上官.005
"""
SURNAMES = [(m[1], float(m[2])) for m in re.finditer(r"(\D+?)([\d.]+)", "".join(_SURNAMES.split()))]
# Given-name characters, most frequent first (weights fall off as 1/(rank + 3)).
MALE_GIVEN = (
    "伟强磊军洋勇杰涛明超刚平辉鹏华飞鑫波斌宇浩凯健俊帆"
    "帅旭宁龙林博文建国志海东峰亮成子轩宏晨阳瑞嘉睿"
)
FEMALE_GIVEN = "芳娜敏静丽艳娟霞秀英兰玲燕萍红梅琳雪婷慧佳欣颖洁倩丹蕾晶月莉怡萱涵雨彤诗梓思悦欢"
PHONE_PREFIXES = [
    *(f"13{d}" for d in range(10)),
    *("145", "147", "150", "151", "152", "153", "155", "156", "157", "158", "159"),
    *("166", "173", "176", "177", "178", "180", "181", "182", "183", "184", "185"),
    *("186", "187", "188", "189", "191", "198", "199"),
]
# Birth regions of loaded people (Beijing districts and some provinces people move from),
# and as many others kept for probable duplicates (see `Population.duplicate`).
REGIONS = "110101 110102 110105 110106 110107 110108 110111 110112 110113 110114 110115"
REGIONS += " 130102 370102 410105 420106 510104"
DUP_REGIONS = "120101 120102 130203 140105 210102 220102 230102 320102 330102 340102 350102"
DUP_REGIONS += " 360102 430102 440103 500103 610102"
FIRST_BIRTH = date(1935, 1, 1)
DAYS = (date(2023, 12, 31) - FIRST_BIRTH).days + 1
SEQUENCES = 999  # 001-999
FOREIGN_SHARE = 0.005
DUPLICATE_SHARE = 0.2  # of the register scenario's people
TODAY = date(2026, 1, 1)  # ages and statuses are relative to this day, not the clock

DISTRICT = PlaceRow("110101", "东城区", "Dongcheng District")
_STREETS = [
    ("东华门街道", "Donghuamen"),
    ("景山街道", "Jingshan"),
    ("交道口街道", "Jiaodaokou"),
    ("安定门街道", "Andingmen"),
    ("北新桥街道", "Beixinqiao"),
    ("东四街道", "Dongsi"),
    ("朝阳门街道", "Chaoyangmen"),
    ("建国门街道", "Jianguomen"),
    ("东直门街道", "Dongzhimen"),
    ("和平里街道", "Hepingli"),
]
_COMMUNITY_STEMS = [
    ("多福巷", "Duofuxiang"),
    ("北池子", "Beichizi"),
    ("南池子", "Nanchizi"),
    ("韶九胡同", "Shaojiu Hutong"),
    ("智德", "Zhide"),
    ("黄图岗", "Huangtugang"),
    ("吉祥", "Jixiang"),
    ("三眼井", "Sanyanjing"),
    ("钟鼓", "Zhonggu"),
    ("福祥", "Fuxiang"),
]
# The demo hierarchy's communities keep their demo names (services/registry/demo.py).
_DEMO_COMMUNITIES = {"110101/001/003": 0, "110101/002/007": 6, "110101/002/008": 7}
LANES = ["东四十条", "南锣鼓巷", "史家胡同", "府学胡同", "北新桥三条", "东交民巷", "礼士胡同"]


def _places() -> list[PlaceRow]:
    rows = [DISTRICT]
    for s, (zh, en) in enumerate(_STREETS, 1):
        street = f"110101/{s:03d}"
        rows.append(PlaceRow(street, zh, f"{en} Subdistrict"))
        for c in range(1, 11):
            code = f"{street}/{c:03d}"
            stem, stem_en = _COMMUNITY_STEMS[_DEMO_COMMUNITIES.get(code, (s + c) % 10)]
            if code in _DEMO_COMMUNITIES:
                rows.append(PlaceRow(code, f"{stem}社区", f"{stem_en} Community"))
            else:
                name = f"{zh.removesuffix('街道')}{stem}社区"
                rows.append(PlaceRow(code, name, f"{stem_en} {s}-{c} Community"))
    return rows


PLACES = _places()
COMMUNITIES = [p.code for p in PLACES if p.code.count("/") == 2]


def _coprime(n: int, near: int) -> int:
    while math.gcd(near, n) != 1:
        near += 1
    return near


_CAPACITY = len(REGIONS.split()) * DAYS * SEQUENCES
_STEP = _coprime(_CAPACITY, 2_654_435_761 % _CAPACITY)


def _weights(n: int) -> list[float]:
    return list(itertools.accumulate(1 / (rank + 3) for rank in range(n)))


_SURNAME_CUM = list(itertools.accumulate(w for _, w in SURNAMES))
_MALE_CUM, _FEMALE_CUM = _weights(len(MALE_GIVEN)), _weights(len(FEMALE_GIVEN))


def resident_id(i: int) -> str:
    """The resident id the registry gives the i-th loaded resident (0-based)."""
    return f"R-{i + 1:08d}"


@dataclass(frozen=True)
class Person:
    """One person: the `POST /residents` body, plus the status a loaded record has."""

    body: dict[str, Any]
    status: str = "active"
    deceased_date: str | None = None


@dataclass(frozen=True)
class Population:
    """`size` loaded residents, and the new people registered after them."""

    size: int
    seed: int = 20_250_501

    def rng(self, i: int, salt: int = 0) -> random.Random:
        """The random source of person i (salt: an independent stream)."""
        return random.Random((self.seed * 1_000_003 + i) * 11 + salt)

    def _identity(self, i: int) -> tuple[int, date, int]:
        """(region index, birth date, sequence) of person i: a bijection of i, hence unique."""
        p = (i * _STEP + self.seed) % _CAPACITY
        p, seq = divmod(p, SEQUENCES)
        region, day = divmod(p, DAYS)
        return region, FIRST_BIRTH + timedelta(days=day), seq + 1

    def person(self, i: int) -> Person:
        """Person i: loaded resident for i < size, a new person after."""
        r = self.rng(i)
        community = r.choice(COMMUNITIES)
        lane, yard, building = r.choice(LANES), r.randint(1, 120), r.randint(1, 8)
        line = f"{lane}{yard}号院{building}号楼{r.randint(101, 1806)}"
        address = {"line": line, "community": community}
        if r.random() < FOREIGN_SHARE:
            sex = r.choice(["male", "female"])
            born = FIRST_BIRTH + timedelta(days=r.randrange(DAYS))
            latin = f"{r.choice(LATIN_GIVENS)} {r.choice(LATIN_FAMILIES)}"
            body: dict[str, Any] = {"name": {"latin": latin}, "sex": sex}
            body |= {"birth_date": born.isoformat(), "address": address}
        else:
            region, born, seq = self._identity(i)
            sex = "male" if seq % 2 else "female"
            zh = self._zh_name(r, sex)
            body = {
                "name": {"zh": zh, "latin": romanize(zh)},
                "sex": sex,
                "birth_date": born.isoformat(),
                "national_id": national_id.make(REGIONS.split()[region], born, seq),
                "address": address,
            }
        age = (TODAY - date.fromisoformat(body["birth_date"])).days // 365
        if r.random() < (0.9 if age >= 16 else 0.15):
            body["phone"] = r.choice(PHONE_PREFIXES) + f"{r.randrange(10**8):08d}"
        if i >= self.size:
            return Person(body)
        roll = r.random()
        if age >= 75 and roll < 0.08:
            start = max(date.fromisoformat(body["birth_date"]), date(2015, 1, 1))
            died = start + timedelta(days=r.randrange((TODAY - start).days))
            return Person(body, "deceased", died.isoformat())
        return Person(body, "moved-out" if roll > 0.98 else "active")

    @staticmethod
    def _zh_name(r: random.Random, sex: str) -> str:
        surname = r.choices(SURNAMES, cum_weights=_SURNAME_CUM)[0][0]
        pool, cum = (MALE_GIVEN, _MALE_CUM) if sex == "male" else (FEMALE_GIVEN, _FEMALE_CUM)
        given = r.choices(pool, cum_weights=cum, k=1 if r.random() < 0.3 else 2)
        if len(given) == 2 and given[0] == given[1] and r.random() < 0.7:
            given.pop()  # 丽丽 exists, but less often than chance would give
        return surname + "".join(given)

    def duplicate(self, k: int, fresh: int) -> dict[str, Any]:
        """The k-th probable duplicate (k < size): a new person sharing name and birth date
        with loaded resident j (national ID from a region no loaded resident has), or, for
        odd k, new person `fresh` sharing j's phone. Distinct k give distinct people."""
        j = (k * _coprime(self.size, 7_919)) % self.size  # spread over the population
        original = self.person(j).body
        if k % 2 and "phone" in original:
            body = dict(self.person(fresh).body)
            return body | {"phone": original["phone"]}
        body = {key: v for key, v in original.items() if key != "phone"}
        body["address"] = self.person(fresh).body["address"]
        if "national_id" in body:
            region, born, seq = self._identity(j)
            body["national_id"] = national_id.make(DUP_REGIONS.split()[region], born, seq)
        return body

    def document(self, i: int, at: str) -> dict[str, Any]:
        """Loaded resident i as `RegistryService.register` stores it (the status given,
        no household, no review; `at` the registration time); tests check it is."""
        person = self.person(i)
        b = person.body
        return {
            "id": resident_id(i),
            "name": {"zh": b["name"].get("zh"), "latin": b["name"].get("latin")},
            "sex": b["sex"],
            "birth_date": b["birth_date"],
            "national_id": b.get("national_id"),
            "phone": b.get("phone"),
            "address": dict(b["address"]),
            "status": person.status,
            "deceased_date": person.deceased_date,
            "household": None,
            "review": None,
            "registered_at": at,
            "updated_at": at,
        }


# --- request targets ---------------------------------------------------------------------


@dataclass
class Registered:
    """The new people earlier runs sent (registered.json): the next run sends others, so
    that every registration is a distinct person (a repeated national ID would be a 409)."""

    path: Path
    fresh: int = 0  # new people taken, counted from the data set's size
    duplicates: int = 0  # probable duplicates taken
    created: int = 0  # 201 answers: residents the store holds beyond the data set

    @classmethod
    def read(cls, path: Path) -> Registered:
        """The saved state, or a fresh one."""
        saved = json.loads(path.read_text()) if path.is_file() else {}
        return cls(path, **saved)

    def save(self) -> None:
        """Write it (atomically)."""
        state = {k: v for k, v in dataclasses.asdict(self).items() if k != "path"}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(state) + "\n")
        tmp.replace(self.path)


def name_query(data: Population, rng: random.Random) -> str:
    """What a clerk types to find a loaded resident: the Chinese name or its first two
    characters, the pinyin run together, or the Latin name."""
    name = data.person(rng.randrange(data.size)).body["name"]
    zh, latin = name.get("zh"), name["latin"]
    roll = rng.random()
    if zh is None or roll < 0.15:
        return str(latin)
    if roll < 0.5:
        return str(zh)
    if roll < 0.75:
        return str(zh[:2])
    return str(latin).replace(" ", "").lower()


def _get(base: str, path: str, **params: str) -> Target:
    return Target("GET", f"{base}{path}" + (f"?{urlencode(params)}" if params else ""))


def _with_id(data: Population, rng: random.Random) -> str:
    while True:  # foreigners have no national ID
        number = data.person(rng.randrange(data.size)).body.get("national_id")
        if number:
            return str(number)


def read_targets(name: str, data: Population, base: str, count: int) -> Iterator[Target]:
    """`count` requests of a read scenario, over random loaded residents."""
    rng = random.Random(f"{name}:{data.seed}")
    make: Callable[[], Target] = {
        "read": lambda: _get(base, f"/residents/{resident_id(rng.randrange(data.size))}"),
        "search-name": lambda: _get(base, "/residents", name=name_query(data, rng)),
        "search-id": lambda: _get(base, "/residents", national_id=_with_id(data, rng)),
    }[name]
    for _ in range(count):
        yield make()


def register_targets(data: Population, base: str, count: int, state: Registered) -> list[Target]:
    """`count` new people (every fifth a probable duplicate), taken from `state`."""
    headers = {"Content-Type": "application/json"}
    every = round(1 / DUPLICATE_SHARE)
    targets = []
    for n in range(count):
        fresh = data.size + state.fresh + n
        if n % every == 0:
            body = data.duplicate(state.duplicates + n // every, fresh)
        else:
            body = data.person(fresh).body
        payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
        targets.append(Target("POST", f"{base}/residents", payload, headers))
    state.fresh += count
    state.duplicates += (count + every - 1) // every
    state.save()  # before the attack: an interrupted run never sends these people again
    return targets


# --- loading -----------------------------------------------------------------------------


# The code that decides what is stored and how it is indexed.
STORED_BY: tuple[str, ...] = ("services/registry/repository.py", "services/registry/names.py")
STORED_BY += ("services/registry/places.py", "shared/storage/*.py", "bench/registry_data.py")


def fingerprint() -> str:
    """A hash of the code that decides how residents are stored and indexed."""
    return code_hash(STORED_BY)


@dataclass(frozen=True)
class LoadInfo:
    """How the stored data set was loaded (kept beside it in loaded.json)."""

    residents: int
    seconds: float
    date: str
    batch: int
    code: str = ""

    def describe(self) -> str:
        """E.g. `50,000 residents, written through the store in 41.0s (...)`."""
        rate = self.residents / max(self.seconds, 0.001)
        return (
            f"{self.residents:,} residents in {len(PLACES) - 11} communities of 10 streets of"
            f" district {DISTRICT.code}, written straight into the store with the registry's"
            f" own repository and collection specs (batches of {self.batch} `Create`s through"
            f" `Store.write`) in {minutes(self.seconds)} ({rate:,.0f} residents/s) on {self.date}"
        )


async def _counter(repo: RegistryRepository) -> tuple[int, int]:
    """(residents loaded so far, counter version; 0 when there is no counter yet)."""
    try:
        record = await repo.store.get(COUNTERS, "resident")
    except RecordNotFound:
        return 0, 0
    return int(record.body["next"]) - 1, record.version


async def load(data: Population, url: str, batch: int) -> float:
    """Write places and residents from the counter on; returns the seconds it took."""
    store = make_store(url)
    await store.open()
    started = time.perf_counter()
    try:
        repo = RegistryRepository(store)
        await import_places(repo, PLACES)
        done, version = await _counter(repo)
        if done:
            console.print(f"resuming an interrupted load at {done:,} residents")
        at = datetime.now(UTC).isoformat(timespec="milliseconds")

        def ops(start: int, stop: int) -> list[WriteOp]:
            nonlocal version
            batch_ops: list[WriteOp] = [
                Create(RESIDENTS, data.document(i, at), resident_id(i)) for i in range(start, stop)
            ]
            # The counter moves in the same batch: it is the checkpoint of the load, and
            # the service numbers its registrations after the loaded residents.
            body = {"next": stop + 1}
            batch_ops.append(
                Update(COUNTERS, "resident", body, version)
                if version
                else Create(COUNTERS, body, "resident")
            )
            version += 1
            return batch_ops

        await write_batches(store, data.size, done, batch, ops, "residents")
    finally:
        await store.close()
    return time.perf_counter() - started
