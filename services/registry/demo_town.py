"""The larger, generated part of the dev stack's demo data: more streets and communities of
Dongcheng and a few hundred residents in households, on top of the hand-written residents
of services/registry/demo.py (which the tests rely on and which stay as they are).

Generated from a fixed seed, so every machine gets the same people with the same resident
ids (R-00000031 onwards: the health service's demo gives some of them clinical records by
these ids, services/health/demo_clinic.py). Loaded only when `HUIMIN_DEMO_HOUSEHOLDS` is
above 0 (the dev stack sets it), so the services' own test fixtures stay small and fast.
Idempotent per household: one whose head is already registered is skipped.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta

from services.registry.access import Access
from services.registry.demo import DEMO_PRINCIPAL, RESIDENTS, demo_national_id
from services.registry.households import HouseholdService
from services.registry.places import PlaceRow, import_places
from services.registry.schemas import (
    AddressIn,
    CreateHousehold,
    MemberIn,
    NameIn,
    RegisterResident,
)
from services.registry.service import Caller, RegistryService

SEED = 20261127
FIRST_NUMBER = len(RESIDENTS) + 1  # the hand-written residents keep R-00000001..

# Real streets (subdistricts) of Dongcheng and communities of theirs; none is the dev
# worker's community, so what `worker` sees stays the hand-written demo.
TOWN_PLACES = [
    PlaceRow("110101/001/004", "韶九社区", "Shaojiu Community"),
    PlaceRow("110101/001/005", "正义路社区", "Zhengyilu Community"),
    PlaceRow("110101/002/009", "黄化门社区", "Huanghuamen Community"),
    PlaceRow("110101/003", "交道口街道", "Jiaodaokou Subdistrict"),
    PlaceRow("110101/003/001", "菊儿社区", "Ju'er Community"),
    PlaceRow("110101/003/002", "福祥社区", "Fuxiang Community"),
    PlaceRow("110101/003/003", "南锣鼓巷社区", "Nanluoguxiang Community"),
    PlaceRow("110101/004", "安定门街道", "Andingmen Subdistrict"),
    PlaceRow("110101/004/001", "国子监社区", "Guozijian Community"),
    PlaceRow("110101/004/002", "钟楼湾社区", "Zhonglouwan Community"),
]
COMMUNITIES = [row.code for row in TOWN_PLACES if row.code.count("/") == 2]
STREETS = {
    "110101/001": "东华门大街",
    "110101/002": "景山东街",
    "110101/003": "交道口南大街",
    "110101/004": "安定门内大街",
}

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN_MALE = [
    "伟",
    "强",
    "磊",
    "军",
    "洋",
    "勇",
    "杰",
    "涛",
    "明",
    "超",
    "浩",
    "宇",
    "俊",
    "鹏",
    "斌",
]
GIVEN_FEMALE = ["芳", "娜", "敏", "静", "丽", "艳", "霞", "婷", "雪", "琳", "颖", "欣", "佳", "倩"]
GIVEN_SECOND = ["", "", "文", "子", "建", "晓", "国", "海", "志", "春", "思", "一", "雨", "嘉"]


@dataclass(frozen=True)
class Person:
    """One generated resident."""

    resident_id: str
    zh: str
    sex: str
    birth: date
    national_id: str
    relationship: str


@dataclass(frozen=True)
class Household:
    """One generated household: its community, address and members (head first)."""

    community: str
    address: str
    members: list[Person]


def _name(rng: random.Random, surname: str, sex: str) -> str:
    given = rng.choice(GIVEN_MALE if sex == "male" else GIVEN_FEMALE)
    return surname + rng.choice(GIVEN_SECOND) + given


def _birth(rng: random.Random, oldest: int, youngest: int) -> date:
    # Ages between `youngest` and `oldest` on the demo's reference day.
    start = date(2026 - oldest, 1, 1)
    return start + timedelta(days=rng.randrange((oldest - youngest) * 365))


def households(count: int) -> list[Household]:
    """The first `count` generated households: the same on every call and machine."""
    rng = random.Random(SEED)
    number = FIRST_NUMBER
    result: list[Household] = []
    for h in range(count):
        community = COMMUNITIES[h % len(COMMUNITIES)]
        street = STREETS[community.rsplit("/", 1)[0]]
        surname = rng.choice(SURNAMES)
        head_sex = rng.choice(["male", "female"])
        plan = [("head", head_sex, surname, 65, 30)]
        if rng.random() < 0.75:
            plan.append(("spouse", "female" if head_sex == "male" else "male", "", 65, 28))
        plan += [("child", rng.choice(["male", "female"]), surname, 25, 1)] * rng.randint(0, 2)
        if rng.random() < 0.25:
            plan.append(("parent", rng.choice(["male", "female"]), surname, 95, 70))
        members = []
        for relationship, sex, family, oldest, youngest in plan:
            birth = _birth(rng, oldest, youngest)
            members.append(
                Person(
                    resident_id=f"R-{number:08d}",
                    zh=_name(rng, family or rng.choice(SURNAMES), sex),
                    sex=sex,
                    birth=birth,
                    national_id=demo_national_id(number, sex, birth.isoformat()),
                    relationship=relationship,
                )
            )
            number += 1
        address = f"{street}{rng.randint(1, 200)}号"
        result.append(Household(community, address, members))
    return result


async def load_town(residents: RegistryService, homes: HouseholdService, count: int) -> int:
    """Load the places and the first `count` generated households (idempotent); the number
    of generated residents."""
    if count == 0:
        return 0  # off: not even the places, so the hand-written demo is all there is
    await import_places(residents.repo, TOWN_PLACES)
    caller = Caller(Access.of(DEMO_PRINCIPAL))
    people = 0
    for household in households(count):
        people += len(household.members)
        if await residents.repo.resident(household.members[0].resident_id) is not None:
            continue
        for person in household.members:
            number = int(person.resident_id[2:])
            data = RegisterResident(
                name=NameIn(zh=person.zh),
                sex=person.sex,
                birth_date=person.birth,
                national_id=person.national_id,
                phone=f"1380013{number:04d}",
                address=AddressIn(line=household.address, community=household.community),
            )
            await residents.register(caller, data, resident_id=person.resident_id)
        members = [
            MemberIn(resident_id=p.resident_id, relationship=p.relationship)
            for p in household.members
        ]
        await homes.create(
            caller,
            CreateHousehold(
                community=household.community, address=household.address, members=members
            ),
        )
    return people
