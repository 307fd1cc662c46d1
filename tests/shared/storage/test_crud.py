"""Storage contract: create, read, update, delete, versions, history, unique keys.

Every test runs on both adapters (the `store` fixture): SQLite and MongoDB (FerretDB).
"""

from __future__ import annotations

from typing import Any

import pytest

from shared.storage import (
    AlreadyExists,
    DocumentTooLarge,
    InvalidDocument,
    RecordDeleted,
    RecordNotFound,
    Store,
    UniqueViolation,
    VersionConflict,
)


async def test_create_assigns_id_and_version(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "Zhang Wei", "age": 30})
    assert rec.version == 1
    assert not rec.deleted
    assert rec.id
    got = await people.get(rec.id)
    assert got.body == {"name": "Zhang Wei", "age": 30}
    assert got.version == 1
    assert got.updated_at == rec.updated_at


async def test_server_ids_are_unique_and_time_ordered(store: Store) -> None:
    people = store.collection("people")
    ids = [(await people.create({"name": f"p{i}"})).id for i in range(20)]
    assert len(set(ids)) == 20
    assert ids == sorted(ids)


async def test_create_with_client_id_and_duplicate(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A"}, id="resident-1")
    assert rec.id == "resident-1"
    with pytest.raises(AlreadyExists):
        await people.create({"name": "B"}, id="resident-1")
    assert (await people.get("resident-1")).body == {"name": "A"}


async def test_update_with_expected_version(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A", "age": 1})
    v2 = await people.update(rec.id, {"name": "A", "age": 2}, expected_version=1)
    assert v2.version == 2
    with pytest.raises(VersionConflict) as exc:
        await people.update(rec.id, {"name": "A", "age": 3}, expected_version=1)
    assert exc.value.status == 409
    assert exc.value.extra["current_version"] == 2
    assert (await people.get(rec.id)).body["age"] == 2
    v3 = await people.update(rec.id, {"name": "A", "age": 4})  # unconditional
    assert v3.version == 3


async def test_update_or_delete_missing_is_not_found(store: Store) -> None:
    people = store.collection("people")
    with pytest.raises(RecordNotFound):
        await people.update("nobody", {"name": "x"})
    with pytest.raises(RecordNotFound):
        await people.delete("nobody")
    with pytest.raises(RecordNotFound):
        await people.get("nobody")


async def test_delete_is_a_versioned_tombstone(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A"})
    await people.update(rec.id, {"name": "B"})
    gone = await people.delete(rec.id, expected_version=2)
    assert gone.deleted
    assert gone.version == 3
    with pytest.raises(RecordDeleted) as exc:
        await people.get(rec.id)
    assert exc.value.status == 410
    assert (await people.get(rec.id, include_deleted=True)).version == 3
    again = await people.delete(rec.id)  # idempotent: no new version
    assert again.version == 3
    assert again.deleted
    history = await people.history(rec.id)
    assert [(h.version, h.deleted, h.body) for h in history] == [
        (3, True, {}),
        (2, False, {"name": "B"}),
        (1, False, {"name": "A"}),
    ]
    assert (await people.get_version(rec.id, 1)).body == {"name": "A"}
    with pytest.raises(RecordNotFound):
        await people.get_version(rec.id, 4)
    back = await people.update(rec.id, {"name": "C"})  # update brings it back
    assert back.version == 4
    assert (await people.get(rec.id)).body == {"name": "C"}


async def test_delete_with_wrong_version_conflicts(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "A"})
    with pytest.raises(VersionConflict):
        await people.delete(rec.id, expected_version=7)
    assert (await people.get(rec.id)).version == 1


async def test_history_paging(store: Store) -> None:
    people = store.collection("people")
    rec = await people.create({"name": "v1"})
    for i in range(2, 8):
        await people.update(rec.id, {"name": f"v{i}"})
    first = await people.history(rec.id, limit=3)
    assert [h.version for h in first] == [7, 6, 5]
    rest = await people.history(rec.id, limit=10, before_version=5)
    assert [h.version for h in rest] == [4, 3, 2, 1]
    assert [h.body["name"] for h in rest] == ["v4", "v3", "v2", "v1"]


async def test_unique_keys(store: Store) -> None:
    people = store.collection("people")
    a = await people.create({"name": "A", "nid": "110101199003077777"})
    with pytest.raises(UniqueViolation) as exc:
        await people.create({"name": "B", "nid": "110101199003077777"})
    assert exc.value.extra["existing_id"] == a.id
    b = await people.create({"name": "B", "nid": "2"})
    with pytest.raises(UniqueViolation):
        await people.update(b.id, {"name": "B", "nid": "110101199003077777"})
    assert (await people.get(b.id)).body["nid"] == "2"
    await people.update(a.id, {"name": "A", "nid": "110101199003077777", "age": 3})  # own value
    await people.update(a.id, {"name": "A", "nid": "3"})  # frees the old value
    await people.update(b.id, {"name": "B", "nid": "110101199003077777"})
    await people.delete(b.id)  # frees it again
    c = await people.create({"name": "C", "nid": "110101199003077777"})
    assert c.version == 1


async def test_oversized_document_is_refused_and_not_written(store: Store) -> None:
    people = store.collection("people")
    with pytest.raises(DocumentTooLarge) as exc:
        await people.create({"name": "big", "blob": "x" * 70_000}, id="big")
    assert exc.value.status == 413
    with pytest.raises(RecordNotFound):
        await people.get("big")


@pytest.mark.parametrize(
    ("body", "doc_id"),
    [
        ({"name": "bad", "blob": float("nan")}, None),  # not JSON
        ({"name": "bad", "age": "thirty"}, None),  # wrong key type
        ({"name": "bad", "born": "1990-13-45x"}, None),  # extractor refuses
        ({"name": "bad"}, "has space"),  # bad id
        ({"name": "bad"}, "x" * 65),
    ],
)
async def test_bad_documents_are_refused(
    store: Store, body: dict[str, Any], doc_id: str | None
) -> None:
    people = store.collection("people")
    with pytest.raises(InvalidDocument):
        await people.create(body, id=doc_id)
    assert await people.count() == 0
