"""Durability: every acknowledged write survives SIGKILL of the writer or of the server.

A child process writes and prints each acknowledged write; the parent kills it (or the
FerretDB server) mid-stream with SIGKILL, restarts, and looks for every acknowledged write.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest

from shared.storage import Query, Store, open_store
from shared.storage.mongo import MongoStore
from tests.fixtures.storage import SPECS
from tests.fixtures.writer import BATCH_IDS

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[3]


def run_writer(
    url: str, mode: str, acks_before_kill: int, kill: Callable[[subprocess.Popen[str]], None]
) -> list[str]:
    """Start the writer, let it acknowledge some writes, kill, and return every ack."""
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.fixtures.writer", url, mode],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert child.stdout is not None
    acks: list[str] = []
    try:
        first = child.stdout.readline()
        assert first.strip() == "ready", first + (child.stderr.read() if child.stderr else "")
        while len(acks) < acks_before_kill:
            line = child.stdout.readline()
            assert line.startswith("ack "), line
            acks.append(line.split()[1])
        kill(child)
        # Anything the writer printed before dying was acknowledged too.
        for line in child.stdout:
            if line.startswith("ack "):
                acks.append(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(30)
    return acks


def sigkill(child: subprocess.Popen[str]) -> None:
    """SIGKILL the writer a moment after an ack, so the kill often lands mid-batch."""
    time.sleep(random.uniform(0, 0.03))
    child.send_signal(signal.SIGKILL)


def kill_server(server, child: subprocess.Popen[str]) -> None:
    """SIGKILL the server mid-stream; the writer then fails (or is killed if it waits on)."""
    time.sleep(random.uniform(0, 0.03))
    server.kill()
    try:
        child.wait(15)
    except subprocess.TimeoutExpired:
        child.kill()


async def check_records(store: Store, acks: list[str]) -> None:
    people = store.collection("people")
    for doc_id in acks:
        assert (await people.get(doc_id)).body["name"].startswith("durable ")
    assert await people.count() >= len(acks)


async def check_batches(store: Store, acks: list[str]) -> None:
    """Every batch is all-or-nothing, and the last acknowledged one is there."""
    page = await store.collection("people").search(Query(limit=100))
    gens = {r.id: r.body["gen"] for r in page.items}
    assert set(gens) == set(BATCH_IDS)
    assert len(set(gens.values())) == 1, gens
    assert next(iter(gens.values())) >= int(acks[-1])


async def test_sqlite_survives_writer_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/durable.db"
    acks = run_writer(url, "records", 300, sigkill)
    async with open_store(url, SPECS) as store:
        await check_records(store, acks)


async def test_sqlite_batches_survive_writer_sigkill(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/durable.db"
    acks = run_writer(url, "batches", 100, sigkill)
    async with open_store(url, SPECS) as store:
        await check_batches(store, acks)


@pytest.mark.mongo
async def test_ferretdb_survives_server_sigkill(ferretdb_factory) -> None:
    server = ferretdb_factory()
    url = server.uri + f"d{uuid.uuid4().hex[:8]}"
    acks = run_writer(url, "records", 150, lambda child: kill_server(server, child))
    server.start()  # same port and data directory
    async with open_store(url, SPECS) as store:
        await check_records(store, acks)


@pytest.mark.mongo
async def test_ferretdb_batches_survive_writer_sigkill(ferretdb_factory) -> None:
    server = ferretdb_factory()
    url = server.uri + f"d{uuid.uuid4().hex[:8]}"
    acks: list[str] = []
    for _ in range(4):  # each round kills the writer, often in the middle of a batch
        acks += run_writer(url, "batches", 15, sigkill)
        async with open_store(url, SPECS) as store:
            await check_batches(store, acks)  # a dead writer's half batch is invisible
    # Presume dead batches dead at once, so that the sweep at open settles them now.
    async with open_store(url, SPECS, batch_timeout=0) as store:
        await check_batches(store, acks)
        assert isinstance(store, MongoStore)
        marked = await store.coll("people").count_documents({"_tx": {"$ne": None}})
        assert marked == 0, "the sweep left batch markers behind"


@pytest.mark.mongo
async def test_ferretdb_batches_survive_server_sigkill(ferretdb_factory) -> None:
    server = ferretdb_factory()
    url = server.uri + f"d{uuid.uuid4().hex[:8]}"
    acks = run_writer(url, "batches", 40, lambda child: kill_server(server, child))
    server.start()
    async with open_store(url, SPECS, batch_timeout=0) as store:
        await check_batches(store, acks)
        assert isinstance(store, MongoStore)
        marked = await store.coll("people").count_documents({"_tx": {"$ne": None}})
        assert marked == 0
