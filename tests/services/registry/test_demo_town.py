"""The generated part of the dev stack's demo data: deterministic, valid, loaded once."""

from __future__ import annotations

from pathlib import Path

from services.registry import national_id
from services.registry.audit import AuditQueue
from services.registry.demo import PLACES, RESIDENTS, load_demo
from services.registry.demo_town import COMMUNITIES, TOWN_PLACES, households, load_town
from services.registry.households import HouseholdService
from services.registry.repository import RegistryRepository, make_store
from services.registry.service import RegistryService


def test_households_are_the_same_on_every_call_and_follow_the_hand_written_ids():
    assert households(100) == households(100)
    first = households(3)
    assert households(100)[:3] == first
    assert first[0].members[0].resident_id == f"R-{len(RESIDENTS) + 1:08d}"


def test_about_three_hundred_valid_residents_in_one_district():
    generated = households(100)
    people = [person for household in generated for person in household.members]
    assert 250 <= len(people) <= 400
    assert len({p.resident_id for p in people}) == len(people)
    assert len({p.national_id for p in people}) == len(people)
    for person in people:
        parsed = national_id.parse(person.national_id)
        assert parsed.birth_date == person.birth
    for household in generated:
        assert [m.relationship for m in household.members].count("head") == 1
        assert household.members[0].relationship == "head"
        assert household.community.startswith("110101/")
    assert {h.community for h in generated} == set(COMMUNITIES)
    # Every community hangs under a street that exists (hand-written or generated).
    codes = {row.code for row in PLACES + TOWN_PLACES}
    assert all(c.rsplit("/", 1)[0] in codes for c in COMMUNITIES)
    # None in the dev worker's community: what `worker` sees stays the hand-written demo.
    assert "110101/002/007" not in COMMUNITIES


async def test_loading_twice_registers_everyone_once(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path}/registry.db")
    await store.open()
    try:
        repo = RegistryRepository(store)
        audit = AuditQueue(repo, flush_seconds=0.1, batch_size=200, max_pending=20_000)
        residents = RegistryService(repo, audit)
        homes = HouseholdService(residents)
        async with audit.running():
            await load_demo(residents, homes)
            first = await load_town(residents, homes, 10)
            second = await load_town(residents, homes, 10)
        assert first == second == sum(len(h.members) for h in households(10))
        last = households(10)[-1].members[-1]
        record = await repo.resident(last.resident_id)
        assert record is not None
        assert record.body["national_id"] == last.national_id
        assert await repo.resident(f"R-{int(last.resident_id[2:]) + 1:08d}") is None
    finally:
        await store.close()


async def test_nothing_is_loaded_when_switched_off(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path}/registry.db")
    await store.open()
    try:
        repo = RegistryRepository(store)
        audit = AuditQueue(repo, flush_seconds=0.1, batch_size=200, max_pending=20_000)
        residents = RegistryService(repo, audit)
        async with audit.running():
            assert await load_town(residents, HouseholdService(residents), 0) == 0
        assert await repo.resident(f"R-{len(RESIDENTS) + 1:08d}") is None
        assert await repo.place(TOWN_PLACES[0].code) is None
    finally:
        await store.close()
