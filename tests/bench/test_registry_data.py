"""The registry benchmark's residents: valid for the registry's own checks, unique national
IDs, deterministic, stored exactly as the service stores a registration; and the loader."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench.registry_data import (
    COMMUNITIES,
    PLACES,
    Population,
    Registered,
    load,
    read_targets,
    register_targets,
    resident_id,
)
from services.registry import national_id
from services.registry.access import Access
from services.registry.audit import AuditQueue
from services.registry.demo import DEMO_PRINCIPAL
from services.registry.demo import PLACES as DEMO_PLACES
from services.registry.places import import_places
from services.registry.repository import COUNTERS, RESIDENTS, RegistryRepository, make_store
from services.registry.schemas import RegisterResident
from services.registry.service import Caller, RegistryService, cross_check
from shared.storage import Eq, Query

DATA = Population(size=3_000)


def test_every_person_passes_the_registrys_checks():
    for i in [*range(3_000), *range(3_000, 3_200)]:
        body = DATA.person(i).body
        data = RegisterResident.model_validate(body)  # check digit, phone, community, dates
        cross_check(data.birth_date, data.sex, data.national_id)  # ID agrees with birth, sex
        assert data.model_dump(exclude_none=True, mode="json") == body
    for k in range(200):
        RegisterResident.model_validate(DATA.duplicate(k, 3_000 + k))


def test_national_ids_are_unique_also_for_new_people_and_duplicates():
    numbers = [DATA.person(i).body.get("national_id") for i in range(8_000)]
    numbers += [DATA.duplicate(k, 8_000 + k).get("national_id") for k in range(2_000)]
    given = [n for n in numbers if n]
    assert len(given) > 9_900  # foreigners (0.5 %) have none
    assert len(set(given)) == len(given)
    assert national_id.parse(given[0]).number == given[0]


def test_same_seed_same_people_other_seed_other_people():
    assert [Population(50).person(i) for i in range(50)] == [DATA.person(i) for i in range(50)]
    other = Population(50, seed=1)
    assert [other.person(i).body["name"] for i in range(50)] != [
        DATA.person(i).body["name"] for i in range(50)
    ]


def test_people_look_like_a_district_of_beijing():
    people = [DATA.person(i) for i in range(3_000)]
    surnames = Counter(p.body["name"]["zh"][0] for p in people if "zh" in p.body["name"])
    assert {s for s, _ in surnames.most_common(3)} <= {"王", "李", "张", "刘"}
    assert 0.05 < surnames["王"] / sum(surnames.values()) < 0.09  # 7.1 % nationally
    full = Counter(p.body["name"].get("zh") for p in people)
    assert full.most_common(1)[0][1] >= 3  # common names repeat
    assert {p.body["address"]["community"] for p in people} == set(COMMUNITIES)
    assert len(COMMUNITIES) == 100
    assert len(PLACES) == 111
    assert {p.status for p in people} == {"active", "moved-out", "deceased"}
    assert any("zh" not in p.body["name"] for p in people)  # foreigners
    demo = {p.code: p for p in DEMO_PLACES if p.code.startswith("110101")}
    assert all(demo[p.code] == p for p in PLACES if p.code in demo)


def test_duplicates_share_name_and_birth_date_or_phone():
    by_name = DATA.duplicate(0, 3_000)
    original = next(
        DATA.person(j).body
        for j in range(DATA.size)
        if DATA.person(j).body["name"] == by_name["name"]
        and DATA.person(j).body["birth_date"] == by_name["birth_date"]
    )
    assert original.get("national_id") != by_name.get("national_id")
    phones = {DATA.person(j).body.get("phone") for j in range(DATA.size)}
    shared = [DATA.duplicate(k, 3_000 + k) for k in range(1, 40, 2)]
    assert sum(b.get("phone") in phones for b in shared) >= 15


async def test_documents_are_what_the_service_stores_for_a_registration(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path / 'r.db'}")
    await store.open()
    try:
        repo = RegistryRepository(store)
        await import_places(repo, PLACES)
        audit = AuditQueue(repo, flush_seconds=1, batch_size=10, max_pending=100)
        service = RegistryService(repo, audit)
        caller = Caller(Access.of(DEMO_PRINCIPAL))
        for i in range(40):
            data = RegisterResident.model_validate(DATA.person(i).body)
            stored = dict((await service.register(caller, data, resident_id=resident_id(i))).body)
            ours = DATA.document(i, stored["registered_at"])
            ours["status"], ours["deceased_date"] = "active", None  # register makes them so
            assert stored == ours
    finally:
        await store.close()


async def test_load_writes_places_residents_and_the_counter_and_resumes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'r.db'}"
    data = Population(size=250)
    await load(data, url, batch=100)
    await load(data, url, batch=100)  # resumes at the counter: nothing is written twice
    store = make_store(url)
    await store.open()
    try:
        assert await store.count(RESIDENTS, [Eq("place", "110101")]) == 250
        assert (await store.get(COUNTERS, "resident")).body == {"next": 251}
        last = await store.get(RESIDENTS, resident_id(249))
        assert last.version == 1
        assert last.body["national_id"] == data.person(249).body.get("national_id")
        number = data.person(7).body.get("national_id") or data.person(8).body["national_id"]
        page = await store.search(RESIDENTS, Query(where=[Eq("national_id", number)]))
        assert len(page.items) == 1
    finally:
        await store.close()


def test_register_targets_are_new_people_every_run(tmp_path: Path):
    state = Registered.read(tmp_path / "registered.json")
    first = register_targets(DATA, "http://x", 50, state)
    again = register_targets(DATA, "http://x", 50, Registered.read(tmp_path / "registered.json"))
    bodies = [json.loads(t.body or b"") for t in first + again]
    numbers = [b["national_id"] for b in bodies if "national_id" in b]
    assert len(set(numbers)) == len(numbers) > 90
    assert Registered.read(tmp_path / "registered.json").fresh == 100
    loaded = {DATA.person(i).body.get("national_id") for i in range(DATA.size)}
    assert not loaded & set(numbers)
    assert {t.method for t in first} == {"POST"}


@pytest.mark.parametrize("name", ["read", "search-name", "search-id"])
def test_read_targets_name_loaded_residents(name: str):
    targets = list(read_targets(name, DATA, "http://x", 30))
    assert len(targets) == 30
    assert all(t.method == "GET" for t in targets)
    assert len({t.url for t in targets}) > 15


@pytest.mark.slow
def test_a_tiny_run_end_to_end_and_a_second_one_on_the_same_store(tmp_path: Path, monkeypatch):
    from bench import registry

    monkeypatch.setattr(registry, "VAR", tmp_path)
    out = tmp_path / "registry.md"
    # 3,000 residents: enough to make probable duplicates of for two short runs.
    argv = ["--residents", "3000", "--duration", "1", "--warmup", "0.5", "--targets", "300"]
    argv += ["--out", str(out)]
    assert registry.main(argv) == 0
    assert registry.main(argv) == 0  # reuses the store; registers other people (no 409)
    text = out.read_text()
    assert text.count("<!-- registry:3k -->") == 1
    for name in ("read", "search-name", "search-id", "register"):
        row = next(line for line in text.splitlines() if line.startswith(f"| {name} |"))
        assert row.split(" | ")[7] == "0", row  # no errors
    state = json.loads((tmp_path / "registry-sqlite-3k" / "registered.json").read_text())
    assert state["created"] > 0
