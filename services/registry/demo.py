"""Demo data for the dev stack (`make run`) and the tests: a small piece of Dongcheng and
Xicheng, about thirty residents in households.

The dev users fit it: `worker` works in community 110101/002/007, `officer` for street
110101/002, and `citizen` is resident R-00000001, 张伟, born 1980-05-03, the same person
as the health service's demo Patient (services/health/demo.py). Loading is idempotent:
places are upserted, and residents are only registered when R-00000001 is absent.
"""

from __future__ import annotations

from datetime import date

from services.registry import national_id
from services.registry.access import Access
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
from shared.auth.principal import Principal

DEMO_PRINCIPAL = Principal(
    subject="huimin-registry-demo",
    username="demo-loader",
    roles=frozenset({"admin"}),
    scopes=frozenset(),
    client_id="huimin-registry",
)

PLACES = [
    PlaceRow("110101", "东城区", "Dongcheng District"),
    PlaceRow("110101/001", "东华门街道", "Donghuamen Subdistrict"),
    PlaceRow("110101/001/003", "多福巷社区", "Duofuxiang Community"),
    PlaceRow("110101/002", "景山街道", "Jingshan Subdistrict"),
    PlaceRow("110101/002/007", "吉祥社区", "Jixiang Community"),
    PlaceRow("110101/002/008", "三眼井社区", "Sanyanjing Community"),
    PlaceRow("110102", "西城区", "Xicheng District"),
    PlaceRow("110102/001", "西长安街街道", "Xichang'anjie Subdistrict"),
    PlaceRow("110102/001/001", "府右街社区", "Fuyoujie Community"),
]

# (zh, latin or None, sex, birth date, community, household number, relationship)
Row = tuple[str | None, str | None, str, str, str, int, str]
C7, C8, C3, X1 = "110101/002/007", "110101/002/008", "110101/001/003", "110102/001/001"
RESIDENTS: list[Row] = [
    ("张伟", None, "male", "1980-05-03", C7, 1, "head"),
    ("王芳", None, "female", "1975-11-20", C7, 2, "head"),
    (None, "José Müller", "male", "1992-02-29", C8, 3, "head"),
    ("李娜", None, "female", "1982-08-14", C7, 1, "spouse"),
    ("张子涵", None, "female", "2010-03-09", C7, 1, "child"),
    ("张建国", None, "male", "1952-01-30", C7, 1, "parent"),
    ("刘洋", None, "male", "1973-06-18", C7, 2, "spouse"),
    ("刘思远", None, "male", "2001-12-05", C7, 2, "child"),
    ("陈静", None, "female", "1990-04-22", C7, 4, "head"),
    ("杨磊", None, "male", "1988-09-11", C7, 4, "spouse"),
    ("杨一诺", None, "female", "2019-07-01", C7, 4, "child"),
    ("赵敏", None, "female", "1945-02-14", C7, 5, "head"),
    ("黄勇", None, "male", "1968-10-03", C7, 6, "head"),
    ("周杰", None, "male", "1995-01-17", C7, 0, ""),
    ("吴秀英", None, "female", "1939-05-25", C7, 0, ""),
    ("徐明", None, "male", "1984-11-30", C8, 7, "head"),
    ("孙丽", None, "female", "1986-03-12", C8, 7, "spouse"),
    ("徐浩然", None, "male", "2014-06-06", C8, 7, "child"),
    (None, "Anna Schmidt", "female", "1991-08-08", C8, 3, "spouse"),
    ("马超", None, "male", "1979-12-24", C8, 8, "head"),
    ("朱婷", None, "female", "1994-11-29", C8, 0, ""),
    ("胡军", None, "male", "1970-07-07", C3, 9, "head"),
    ("郭敏", None, "female", "1972-02-02", C3, 9, "spouse"),
    ("胡小红", None, "female", "1999-09-09", C3, 9, "child"),
    ("林涛", None, "male", "1983-05-15", C3, 10, "head"),
    ("何静", None, "female", "1987-01-21", C3, 0, ""),
    ("高峰", None, "male", "1965-04-04", X1, 11, "head"),
    ("罗霞", None, "female", "1967-06-16", X1, 11, "spouse"),
    ("梁晨", None, "male", "1997-10-10", X1, 0, ""),
    ("宋佳", None, "female", "2003-03-03", X1, 12, "head"),
]
FIRST = "R-00000001"


def demo_national_id(i: int, sex: str, birth: str) -> str:
    """A valid number for demo resident `i` (sequence parity follows the sex)."""
    seq = 100 + 2 * i + (1 if sex == "male" else 0)
    return national_id.make("110101", date.fromisoformat(birth), seq)


async def load_demo(residents: RegistryService, households: HouseholdService) -> int:
    """Load places, residents and households (idempotent); the number of demo residents."""
    await import_places(residents.repo, PLACES)
    if await residents.repo.resident(FIRST) is not None:
        return len(RESIDENTS)
    caller = Caller(Access.of(DEMO_PRINCIPAL))
    groups: dict[int, list[MemberIn]] = {}
    for i, (zh, latin, sex, birth, community, household, rel) in enumerate(RESIDENTS, 1):
        rid = f"R-{i:08d}"
        foreign = zh is None
        data = RegisterResident(
            name=NameIn(zh=zh, latin=latin),
            sex=sex,
            birth_date=date.fromisoformat(birth),
            national_id=None if foreign else demo_national_id(i, sex, birth),
            phone=f"1380013{i:04d}" if i != 1 else "13800138000",
            address=AddressIn(line=f"{i}号院 {i % 5 + 1}单元", community=community),
        )
        await residents.register(caller, data, resident_id=rid)
        if household:
            groups.setdefault(household, []).append(MemberIn(resident_id=rid, relationship=rel))
    for number in sorted(groups):
        members = groups[number]
        head = next(m.resident_id for m in members if m.relationship == "head")
        community = RESIDENTS[int(head[2:]) - 1][4]
        await households.create(
            caller,
            CreateHousehold(community=community, address=f"{number}号院", members=members),
        )
    return len(RESIDENTS)
