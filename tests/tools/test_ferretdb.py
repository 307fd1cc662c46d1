"""The FerretDB test server (tools/ferretdb.py): answers the wire protocol, keeps acked data."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pymongo import AsyncMongoClient, MongoClient

from tools.ferretdb import FerretDB, binary_path

pytestmark = pytest.mark.mongo


def test_ping(ferretdb: FerretDB) -> None:
    assert ferretdb.running
    assert ferretdb.uri == f"mongodb://127.0.0.1:{ferretdb.port}/"
    client: MongoClient[dict[str, Any]] = MongoClient(ferretdb.uri, serverSelectionTimeoutMS=5000)
    with client:
        assert client.admin.command("ping")["ok"] == 1.0
        assert client.admin.command("buildInfo")["ferretdbVersion"].startswith("v1.24.2")


def test_binary_is_cached_outside_the_repo(ferretdb: FerretDB) -> None:
    repo = Path(__file__).resolve().parents[2]
    path = binary_path()
    assert path.is_file()
    assert not path.is_relative_to(repo)


def test_log_goes_to_the_data_dir(ferretdb: FerretDB) -> None:
    assert ferretdb.log_path.parent == ferretdb.data_dir
    assert "Listening on TCP" in ferretdb.log_path.read_text()


async def test_insert_find_round_trip(mongo_uri: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    try:
        coll = client.get_default_database()["people"]
        docs = [{"_id": f"p{i}", "name": f"n{i}", "u": {"nid": str(i)}} for i in range(5)]
        result = await coll.insert_many(docs)
        assert result.inserted_ids == [d["_id"] for d in docs]
        found = await coll.find({"u.nid": {"$in": ["1", "3"]}}).sort("_id").to_list()
        assert found == [docs[1], docs[3]]
        assert await coll.count_documents({}) == 5
    finally:
        await client.close()


@pytest.mark.slow
async def test_kill_and_restart_keep_acknowledged_data(ferretdb: FerretDB, tmp_path: Path) -> None:
    # A dedicated server: the shared one must stay up for the other tests.
    with FerretDB(tmp_path / "data") as server:
        port, pid = server.port, server.pid
        client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
            server.uri, serverSelectionTimeoutMS=10_000
        )
        try:
            coll = client["durable"]["items"]
            for i in range(200):  # one acknowledged write each (default write concern)
                await coll.insert_one({"_id": i, "v": f"value-{i}"})
            server.kill()
            assert not server.running
            server.restart()
            assert server.port == port
            assert server.pid != pid
            found = await coll.find().sort("_id").to_list()
            assert found == [{"_id": i, "v": f"value-{i}"} for i in range(200)]
        finally:
            await client.close()
