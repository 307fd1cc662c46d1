"""The education benchmark's catalogue: valid for the catalogue's schema, deterministic,
stored exactly as the service stores a created and published resource; its loader and its
request targets."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from bench.education_data import (
    Catalogue,
    en_query,
    fingerprint,
    load,
    search_params,
    targets,
    zh_query,
)
from bench.education_vocab import TOPICS
from services.education.access import Viewer
from services.education.repository import RESOURCES, EducationRepository, make_store
from services.education.schemas import ResourceIn
from services.education.service import ResourceService
from services.education.vocab import FACETS
from shared.auth.principal import Principal
from shared.storage import Create, Eq

DATA = Catalogue(size=20_000)
SAMPLE = range(0, DATA.size, 50)  # 400 resources across the catalogue


def test_every_resource_is_valid_and_stored_as_validated():
    for i in SAMPLE:
        body = DATA.body(i)
        stored = ResourceIn.model_validate(body).model_dump(mode="json")
        document = DATA.document(i)
        assert {k: document[k] for k in stored} == stored
        assert document["state"] in ("draft", "published", "retired")


def test_same_seed_same_catalogue_other_seed_other_catalogue():
    assert [Catalogue(20_000).document(i) for i in range(30)] == [
        DATA.document(i) for i in range(30)
    ]
    other = Catalogue(20_000, seed=1)
    assert [other.document(i)["name"] for i in range(30)] != [
        DATA.document(i)["name"] for i in range(30)
    ]


def test_ids_are_unique_and_time_ordered_like_the_services():
    ids = [DATA.meta(i).id for i in range(2_000)]
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i[12] == "7" for i in ids)  # UUIDv7 layout


def test_the_catalogue_is_mixed_and_skewed():
    documents = [DATA.document(i) for i in SAMPLE]
    n = len(documents)
    zh_first = sum(d["in_language"][0] == "zh" for d in documents) / n
    assert 0.45 < zh_first < 0.65
    assert any(d["name"]["zh"] and d["name"]["en"] for d in documents)  # bilingual names
    assert any(d["name"]["zh"] is None for d in documents)  # English only
    states = Counter(d["state"] for d in documents)
    assert 0.85 < states["published"] / n < 0.95
    assert states["draft"]
    assert states["retired"]
    subjects = Counter(s for d in documents for s in d["subject"])
    assert {s for s, _ in subjects.most_common(3)} == {"mathematics", "chinese", "english"}
    for facet, (_, vocabulary) in FACETS.items():
        key = {"level": "educational_level", "type": "learning_resource_type"}.get(facet, facet)
        key = "in_language" if facet == "language" else key
        values = [v for d in documents for v in ([d[key]] if facet == "license" else d[key])]
        assert set(values) <= set(vocabulary)
        counts = Counter(values).most_common()
        assert counts[0][1] > 2 * counts[-1][1]  # skewed, not uniform
    words = Counter(k for d in documents for k in d["keywords"])
    assert words.most_common(1)[0][1] > 10 * sum(c == 1 for c in words.values()) / len(words)
    assert len({d["owner"]["sub"] for d in documents}) > 20


async def test_documents_are_what_the_service_stores_for_create_and_publish(tmp_path: Path):
    store = make_store(f"sqlite:///{tmp_path / 'e.db'}")
    await store.open()
    try:
        service = ResourceService(EducationRepository(store))
        for i in range(40):
            ours = DATA.document(i)
            owner = Viewer(
                Principal(
                    subject=ours["owner"]["sub"],
                    username=ours["owner"]["username"],
                    roles=frozenset({"educator"}),
                    scopes=frozenset(),
                    client_id="huimin-mobile",
                )
            )
            made = await service.create(owner, ResourceIn.model_validate(DATA.body(i)))
            final = made
            if ours["state"] != "draft" and ours["date_published"]:
                final = await service.transition(owner, made.id, "publish", None)
            if ours["state"] == "retired":
                final = await service.transition(owner, made.id, "retire", None)
            theirs = dict(final.body)
            dates = ("id", "date_modified", "date_published", "date_retired")
            assert {k: v for k, v in theirs.items() if k not in dates} == {
                k: v for k, v in ours.items() if k not in dates
            }
            assert {k for k in dates if theirs[k] is None} == {k for k in dates if ours[k] is None}
    finally:
        await store.close()


async def test_load_writes_every_resource_once_and_resumes(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'e.db'}"
    data = Catalogue(size=300)
    store = make_store(url)
    await store.open()
    try:  # as an interrupted load leaves it: the first 120 written
        await store.write(
            [Create(RESOURCES, data.document(i), data.meta(i).id) for i in range(120)]
        )
    finally:
        await store.close()
    await load(data, url, batch=100)
    await load(data, url, batch=100)  # nothing left: nothing written twice
    store = make_store(url)
    await store.open()
    try:
        published = await store.count(RESOURCES, [Eq("state", "published")])
        assert published == data.published()
        assert (
            await store.count(RESOURCES, [Eq("state", "draft")])
            + await store.count(RESOURCES, [Eq("state", "retired")])
            == 300 - published
        )
        last = await store.get(RESOURCES, data.meta(299).id)
        assert last.version == 1
        assert last.body == data.document(299)
    finally:
        await store.close()


def test_fingerprint_follows_the_documents():
    assert fingerprint(Catalogue(500)) == fingerprint(Catalogue(500))
    assert fingerprint(Catalogue(500)) != fingerprint(Catalogue(500, seed=2))


@pytest.mark.parametrize("name", ["read", "zh", "en", "filtered", "browse"])
def test_targets_are_varied_requests_some_as_a_citizen(name: str):
    made = list(targets(name, DATA, "http://x", 400, "TOKEN"))
    assert len(made) == 400
    assert {t.method for t in made} == {"GET"}
    assert len({t.url for t in made}) > 150
    signed = sum("Authorization" in t.headers for t in made)
    assert 50 < signed < 150
    if name == "read":
        published = {DATA.meta(i).id for i in range(DATA.size) if DATA.meta(i).state == "published"}
        assert all(t.url.rsplit("/", 1)[1] in published for t in made)
        return
    params = [parse_qs(urlsplit(t.url).query) for t in made]
    for p in params:
        for facet in ("subject", "level", "type", "language"):
            assert all(v in FACETS[facet][1] for v in p.get(facet, []))
    if name == "browse":
        assert all("q" not in p and p["sort"] == ["newest"] for p in params)
    else:
        assert all(p["q"] for p in params)
    if name == "filtered":
        assert all(set(p) - {"q"} for p in params)


def test_queries_favour_common_topics_but_reach_the_tail():
    r = random.Random(1)
    asked = Counter(zh_query(r)[1] for _ in range(3_000))
    common = TOPICS["mathematics"][0][0]
    assert asked[common] > 3 * asked[TOPICS["mathematics"][-1][0]] > 0
    english = [en_query(r)[1] for _ in range(1_000)]
    words = {w.lower() for topics in TOPICS.values() for _, en in topics for w in en.split()}
    typing = [q for q in english if q not in words and any(w.startswith(q) for w in words)]
    assert len(typing) > 100  # the start of a word ("photo"), matched as a prefix
    assert search_params("browse", r)["sort"] == "newest"


@pytest.mark.slow
def test_a_tiny_run_end_to_end_and_a_second_one_on_the_same_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    from bench import education

    monkeypatch.setattr(education, "VAR", tmp_path)
    out = tmp_path / "education.md"
    argv = ["--resources", "1000", "--duration", "1", "--warmup", "0.5", "--targets", "300"]
    argv += ["--out", str(out)]
    assert education.main(argv) == 0
    assert education.main(argv) == 0  # reuses the store
    text = out.read_text()
    assert text.count("<!-- education:1k -->") == 1
    # Three tables: the closed loop, one client, paced at half the throughput (open loop).
    assert "One client at a time" in text
    assert "Paced at 50 % of the throughput above (open loop)" in text
    for name in ("read", "zh", "en", "filtered", "browse"):
        rows = [line for line in text.splitlines() if line.startswith(f"| {name} |")]
        assert len(rows) == 3, rows
        for row in rows:
            assert row.split(" | ")[7] == "0", row  # no errors
    assert "matches per search" in text
