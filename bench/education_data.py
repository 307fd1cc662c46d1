"""Synthetic learning resources for the education benchmark: deterministic for a seed, valid
for the catalogue's own schema (`ResourceIn`), stored exactly as the service stores them.

- Language: 55 % Chinese-first (a Chinese name and description, often an English name
  too), 45 % English-first (a third of them with a Chinese name, some with a Chinese
  description); a few carry a minority or traditional-script language as well.
- Facets: subject, level, type, language and license from `services/education/vocab.py`,
  each drawn with skewed frequencies (mathematics, Chinese and English lead; video and text
  lead; CC BY leads), levels and types that fit the subject.
- Text: names, descriptions, keywords and `teaches` are built from per-subject topic lists
  (`_TOPIC_TEXT`, Chinese and English), topics drawn Zipf-like, so a few words (函数, 古诗,
  photosynthesis) are in many thousands of resources and most in a few hundred or fewer;
  descriptions use common words of their own (学生, 练习, examples).
- States: 90 % published, 6 % drafts, 4 % retired (most of them after publication);
  owners are 60 educators (the dev user `teacher` the busiest), dates spread over
  2018-2025, ids time-ordered like the service's (UUIDv7 layout, from the creation time).

Every resource is generated from its own index (`random.Random` seeded by seed and index),
so the loader, the request targets and the tests agree without keeping a list.
`Catalogue.document(i)` is resource i as `ResourceService.create` (and `transition`) would
store it; only its version differs (1: the loader writes each once, a migration).

Also here: the request targets of the scenarios (`targets`) and the loader (`load`), which
writes the resources straight into the education service's store.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import random
import time
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from bench.education_vocab import (
    CURRICULUM_LEVELS,
    EN_NAMES,
    EN_SENTENCES,
    FEATURES,
    FILES,
    LEVEL_TABLES,
    LICENSE_TABLE,
    MINORITY,
    NO_CURRICULUM,
    ORGS,
    PDF,
    QUERY_CUM,
    SUBJECT_TABLE,
    SUBJECTS_EN,
    TOPIC_CUM,
    TOPICS,
    TYPE_TABLE,
    ZH_NAMES,
    ZH_SENTENCES,
    cumulative,
)
from bench.health import console, minutes
from bench.health_data import LATIN_FAMILIES, LATIN_GIVENS
from bench.loadgen.vegeta import Target
from bench.registry_data import FEMALE_GIVEN, MALE_GIVEN, SURNAMES
from bench.service_bench import code_hash, stored_prefix, write_batches
from services.education.demo import TEACHER_SUB
from services.education.repository import RESOURCES, SPECS, make_store, resource_keys
from services.education.schemas import ResourceIn
from services.education.vocab import LEVELS, SUBJECTS, TYPES
from shared.storage import Create, WriteOp

START = datetime(2018, 1, 1, tzinfo=UTC)
END = datetime(2025, 12, 31, tzinfo=UTC)  # nothing is created after it (date_created <= today)
EDUCATORS = 60
EDUCATOR_CUM = cumulative([1 / (k + 3) for k in range(EDUCATORS)])
SURNAME_CUM = cumulative([w for _, w in SURNAMES])


def educator(k: int) -> dict[str, str]:
    """Owner k of loaded resources: 0 is the dev user `teacher` (whose drafts it can see)."""
    if k == 0:
        return {"sub": TEACHER_SUB, "username": "teacher"}
    sub = str(uuid.uuid5(uuid.NAMESPACE_URL, f"urn:huimin:bench:educator:{k}"))
    return {"sub": sub, "username": f"educator{k:02d}"}


def stamp(at: datetime) -> str:
    """An instant as the service writes it (`service.now_iso`)."""
    return at.isoformat().replace("+00:00", "Z")


def _pick(r: random.Random, table: tuple[list[str], list[float]]) -> str:
    return r.choices(table[0], cum_weights=table[1])[0]


@dataclass(frozen=True)
class Meta:
    """What a resource's id, state and dates are (cheap: for targets and counts)."""

    id: str
    state: str
    created: datetime
    published: datetime | None
    retired: datetime | None


@dataclass(frozen=True)
class Catalogue:
    """`size` learning resources."""

    size: int
    seed: int = 20_250_601

    def rng(self, i: int, salt: int = 0) -> random.Random:
        """The random source of resource i (salt: an independent stream)."""
        return random.Random((self.seed * 1_000_003 + i) * 11 + salt)

    def meta(self, i: int) -> Meta:
        """Id, state and dates of resource i: creation times grow with i, so ids do too."""
        r = self.rng(i, 1)
        slot = (END - START) / self.size
        created = START + slot * (i + r.random())
        # UUIDv7 (RFC 9562): 48-bit Unix milliseconds, version, variant, random bits.
        ms = int(created.timestamp() * 1000)
        bits = r.getrandbits(74)
        value = (ms << 80) | (7 << 76) | (bits >> 62 << 64) | (2 << 62) | (bits & (2**62 - 1))
        roll = r.random()
        published = created + timedelta(seconds=math.exp(r.uniform(6.4, 14.0)))  # 10 min-14 d
        if roll < 0.90:
            return Meta(f"{value:032x}", "published", created, published, None)
        if roll < 0.96:
            return Meta(f"{value:032x}", "draft", created, None, None)
        was_published = roll < 0.992
        since = published if was_published else created
        retired = since + (max(END, since) - since) * r.random() ** 2 + timedelta(hours=1)
        return Meta(
            f"{value:032x}", "retired", created, published if was_published else None, retired
        )

    def topics(self, r: random.Random, subject: str, k: int) -> list[tuple[str, str]]:
        """k distinct topics of a subject, common ones more often."""
        pool, cum = TOPICS[subject], TOPIC_CUM[subject]
        chosen = dict.fromkeys(r.choices(pool, cum_weights=cum, k=k + 2))
        return list(chosen)[:k] if len(chosen) >= k else [*chosen]

    def body(self, i: int) -> dict[str, Any]:
        """Resource i as the `POST /resources` body its educator would send."""
        r = self.rng(i)
        zh_first = r.random() < 0.55
        subject = _pick(r, SUBJECT_TABLE if zh_first else SUBJECTS_EN)
        subjects = [subject]
        if r.random() < 0.12:
            subjects.append(_pick(r, SUBJECT_TABLE))
        drawn = {_pick(r, LEVEL_TABLES[subject]) for _ in range(r.choice((1, 1, 2)))}
        levels = [lv for lv in LEVELS if lv in drawn]
        kinds = [_pick(r, TYPE_TABLE)]
        if r.random() < 0.15:
            kinds.append(_pick(r, TYPE_TABLE))
        kinds = list(dict.fromkeys(kinds))
        topics = self.topics(r, subject, r.randint(3, 5))
        if zh_first:
            with_en_name, with_zh_name = r.random() < 0.4, True
        else:
            with_en_name, with_zh_name = True, r.random() < 0.35
        with_en_desc = with_en_name and (not zh_first or r.random() < 0.3)
        with_zh_desc = with_zh_name and (zh_first or r.random() < 0.4)
        fill = self._fill(r, topics, subject, levels[0], kinds[0])
        name: dict[str, str] = {}
        if with_zh_name:
            name["zh"] = r.choice(ZH_NAMES).format(**fill["zh"])
        if with_en_name:
            name["en"] = r.choice(EN_NAMES).format(**fill["en"])
        description: dict[str, str] = {}
        if with_zh_desc:
            description["zh"] = "".join(
                s.format(**fill["zh"]) for s in r.sample(ZH_SENTENCES, r.randint(1, 3))
            )
        if with_en_desc:
            description["en"] = " ".join(
                s.format(**fill["en"]) for s in r.sample(EN_SENTENCES, r.randint(1, 3))
            )
        languages = ["zh" if zh_first else "en"]
        if r.random() < (0.1 if zh_first else 0.3):
            languages.append("en" if zh_first else "zh")
        if zh_first and r.random() < 0.03:
            languages.append(r.choice(MINORITY))
        words = [t[0] for t in topics[: r.randint(2, 4)]] if with_zh_name else []
        words += [t[1] for t in topics[: r.randint(1, 3)]] if with_en_name else []
        body: dict[str, Any] = {
            "name": name,
            "subject": subjects,
            "educational_level": levels,
            "learning_resource_type": kinds,
            "in_language": languages,
            "license": _pick(r, LICENSE_TABLE),
            "keywords": list(dict.fromkeys(words)),
            "author": self._authors(r, zh_first),
        }
        if description:
            body["description"] = description
        if r.random() < 0.5:
            body["teaches"] = [t[0] if zh_first else t[1] for t in topics[:2]]
        features = [f for f, p in FEATURES.get(kinds[0], []) if r.random() < p]
        if features:
            body["accessibility_feature"] = features
        aligned = levels[0] in CURRICULUM_LEVELS and subject not in NO_CURRICULUM
        if aligned and r.random() < 0.35:
            body["educational_alignment"] = [
                self._alignment(r, subject, levels[0], kinds[0], topics)
            ]
        self._locate(r, i, kinds[0], body)
        if r.random() < 0.75:
            made = self.meta(i).created.date() - timedelta(days=r.randrange(400))
            body["date_created"] = made.isoformat()
        return body

    @staticmethod
    def _fill(
        r: random.Random, topics: list[tuple[str, str]], subject: str, level: str, kind: str
    ) -> dict[str, dict[str, object]]:
        (zh, en), (zh2, en2), (zh3, en3) = (topics * 3)[:3]
        lv_zh, lv_en = LEVELS[level]
        k_zh, k_en = TYPES[kind]
        n = r.randint(1, 12)
        return {
            "zh": {
                "t": zh,
                "t2": zh2,
                "t3": zh3,
                "lv": lv_zh,
                "k": k_zh,
                "n": n,
                "subj": SUBJECTS[subject][0],
            },
            "en": {
                "t": en,
                "T": en[:1].upper() + en[1:],
                "t2": en2,
                "t3": en3,
                "lv": lv_en.lower(),
                "k": k_en.lower(),
                "n": n,
            },
        }

    @staticmethod
    def _authors(r: random.Random, zh_first: bool) -> list[dict[str, Any]]:
        authors: list[dict[str, Any]] = []
        for _ in range(1 if r.random() < 0.85 else 2):
            if r.random() < 0.25:
                zh, en = r.choice(ORGS)
                authors.append({"type": "Organization", "name": zh if zh_first else en})
            elif zh_first:
                surname = r.choices(SURNAMES, cum_weights=SURNAME_CUM)[0][0]
                given = r.choice(MALE_GIVEN + FEMALE_GIVEN) + r.choice(FEMALE_GIVEN + MALE_GIVEN)
                authors.append({"type": "Person", "name": surname + given})
            else:
                name = f"{r.choice(LATIN_GIVENS)} {r.choice(LATIN_FAMILIES)}"
                authors.append({"type": "Person", "name": name})
        return authors

    @staticmethod
    def _alignment(
        r: random.Random, subject: str, level: str, kind: str, topics: list[tuple[str, str]]
    ) -> dict[str, str]:
        label = SUBJECTS[subject][0]
        framework = (
            f"普通高中{label}课程标准（2017年版2020年修订）"
            if level == "upper-secondary"
            else f"义务教育{label}课程标准（2022年版）"
        )
        graded = kind in ("exercise", "assessment")
        return {
            "alignment_type": "assesses" if graded else "teaches",
            "framework": framework,
            "target_name": r.choice(topics)[0],
        }

    @staticmethod
    def _locate(r: random.Random, i: int, kind: str, body: dict[str, Any]) -> None:
        mime, suffix, size = FILES.get(kind, PDF)
        if kind == "course" or r.random() < 0.6:
            body["url"] = f"https://learn.huimin.example/r/{i + 1}"
        if "url" not in body or r.random() < 0.3:
            body["attachment"] = {
                "name": f"resource-{i + 1}.{suffix}",
                "content_url": f"https://files.huimin.example/r/{i + 1}.{suffix}",
                "encoding_format": mime,
                "content_size": int(size * math.exp(r.uniform(-2, 1.5))),
            }

    def document(self, i: int) -> dict[str, Any]:
        """Resource i as the service stores it: `create` by its owner, then `publish`
        (and `retire`) at its dates; tests check it is."""
        meta = self.meta(i)
        owner = educator(self.rng(i, 2).choices(range(EDUCATORS), cum_weights=EDUCATOR_CUM)[0])
        modified = meta.retired or meta.published or meta.created
        return {
            "id": meta.id,
            "state": meta.state,
            "owner": owner,
            **ResourceIn.model_validate(self.body(i)).model_dump(mode="json"),
            "date_modified": stamp(modified),
            "date_published": stamp(meta.published) if meta.published else None,
            "date_retired": stamp(meta.retired) if meta.retired else None,
        }

    def published(self) -> int:
        """How many of the resources are published."""
        return sum(self.meta(i).state == "published" for i in range(self.size))


# --- request targets ---------------------------------------------------------------------

# Words of no one topic that people type too (they are in names and descriptions).
GENERIC_ZH = ["练习", "复习", "例题", "视频", "小学", "初中", "精讲", "趣味", "课时"]
GENERIC_EN = ["practice", "examples", "lesson", "introduction", "activities", "quiz"]
CITIZEN_SHARE = 0.25  # of the requests, sent with a citizen's token (the rest: no token)


def _topic(r: random.Random, english: bool) -> tuple[str, tuple[str, str]]:
    subject = _pick(r, SUBJECTS_EN if english else SUBJECT_TABLE)
    return subject, r.choices(TOPICS[subject], cum_weights=QUERY_CUM[subject])[0]


def zh_query(r: random.Random) -> tuple[str, str]:
    """(subject, q): a Chinese topic, two topics of one subject, or a common word."""
    subject, (zh, _) = _topic(r, english=False)
    roll = r.random()
    if roll < 0.1:
        return subject, r.choice(GENERIC_ZH)
    if roll < 0.3:
        other = r.choices(TOPICS[subject], cum_weights=QUERY_CUM[subject])[0][0]
        return subject, zh if other == zh else f"{zh} {other}"
    return subject, zh


def en_query(r: random.Random) -> tuple[str, str]:
    """(subject, q): an English topic, the start of a word still being typed ("photo"),
    two topics, or a common word."""
    subject, (_, en) = _topic(r, english=True)
    roll = r.random()
    if roll < 0.1:
        return subject, r.choice(GENERIC_EN)
    long_words = [w for w in en.split() if len(w) >= 6 and w.isalpha()]
    if roll < 0.35 and long_words:
        word = r.choice(long_words).lower()
        return subject, word[: r.randint(4, len(word) - 1)]
    if roll < 0.45:
        other = r.choices(TOPICS[subject], cum_weights=QUERY_CUM[subject])[0][1]
        return subject, en if other == en else f"{en} {other}"
    return subject, en


def _filters(r: random.Random, subject: str | None) -> dict[str, str]:
    """One or two facet filters: the subject of the text (if any), a level of it, a type."""
    subject = subject or _pick(r, SUBJECT_TABLE)
    chosen: dict[str, str] = {}
    if r.random() < 0.7:
        chosen["subject"] = subject
    if r.random() < 0.5:
        chosen["level"] = _pick(r, LEVEL_TABLES[subject])
    if not chosen or (len(chosen) < 2 and r.random() < 0.3):
        chosen["type" if chosen else "subject"] = _pick(r, TYPE_TABLE) if chosen else subject
    return chosen


def search_params(name: str, r: random.Random) -> dict[str, str]:
    """The query parameters of one request of a search scenario."""
    if name == "zh":
        return {"q": zh_query(r)[1]}
    if name == "en":
        return {"q": en_query(r)[1]}
    if name == "filtered":
        subject, q = zh_query(r) if r.random() < 0.55 else en_query(r)
        return {"q": q, **_filters(r, subject)}
    if name == "browse":
        params = _filters(r, None)
        if r.random() < 0.2:
            params["language"] = r.choice(["en", "zh", "en", *MINORITY[:1]])
        return {**params, "sort": "newest"}
    raise ValueError(f"not a search scenario: {name}")


def targets(name: str, data: Catalogue, base: str, count: int, citizen: str) -> Iterator[Target]:
    """`count` requests of a scenario (`read` or a search), a quarter of them sent with
    the `citizen` token, the rest as the public (no token)."""
    r = random.Random(f"{name}:{data.seed}")
    for _ in range(count):
        headers = {"Authorization": f"Bearer {citizen}"} if r.random() < CITIZEN_SHARE else {}
        if name == "read":
            while True:  # the public sees published resources only
                meta = data.meta(r.randrange(data.size))
                if meta.state == "published":
                    break
            yield Target("GET", f"{base}/resources/{meta.id}", headers=headers)
        else:
            query = urlencode(search_params(name, r))
            yield Target("GET", f"{base}/resources?{query}", headers=headers)


# --- loading -----------------------------------------------------------------------------

# The storage code (`Catalogue` and `resource_keys` are hashed by what they produce).
STORED_BY = ("shared/storage/*.py",)
_SAMPLE = 64


def _spec() -> str:
    """The resources' collection spec as text: keys, and what the store keeps beside them
    (e.g. values carried on key rows, which only a store loaded after they were declared has)."""
    spec = next(s for s in SPECS if s.name == RESOURCES)
    described = {}
    for f in dataclasses.fields(spec):
        value = getattr(spec, f.name)
        if not callable(value):
            described[f.name] = sorted(value) if isinstance(value, frozenset) else value
    return json.dumps(described, sort_keys=True, default=str)


def fingerprint(data: Catalogue) -> str:
    """A hash of what a sample of documents and their index keys are, of the resources'
    collection spec, and of the storage code: a change of any makes a stored data set stale."""
    digest = hashlib.sha256(code_hash(STORED_BY).encode() + _spec().encode())
    for i in range(0, data.size, max(1, data.size // _SAMPLE)):
        document = data.document(i)
        item = {"document": document, "keys": resource_keys(document)}
        digest.update(json.dumps(item, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


async def load(data: Catalogue, url: str, batch: int) -> float:
    """Write the resources an earlier load did not; returns the seconds it took."""
    store = make_store(url)
    await store.open()
    started = time.perf_counter()
    try:
        done = await stored_prefix(store, RESOURCES, data.size, lambda i: data.meta(i).id)
        if done:
            console.print(f"resuming an interrupted load at {done:,} resources")

        def ops(start: int, stop: int) -> list[WriteOp]:
            documents = (data.document(i) for i in range(start, stop))
            return [Create(RESOURCES, d, d["id"]) for d in documents]

        await write_batches(store, data.size, done, batch, ops, "resources")
    finally:
        await store.close()
    return time.perf_counter() - started


@dataclass(frozen=True)
class LoadInfo:
    """How the stored data set was loaded (kept beside it in loaded.json)."""

    resources: int
    published: int
    seconds: float
    date: str
    batch: int
    code: str = ""

    def describe(self) -> str:
        """E.g. `200,000 learning resources (180,123 published), written ... in 12m 05s`."""
        rate = self.resources / max(self.seconds, 0.001)
        return (
            f"{self.resources:,} learning resources ({self.published:,} published), written"
            " straight into the store with the education service's own collection specs"
            f" (batches of {self.batch} `Create`s through `Store.write`) in"
            f" {minutes(self.seconds)} ({rate:,.0f} resources/s) on {self.date}"
        )


def _shares(values: Iterable[str], n: int) -> str:
    counts = Counter(values).most_common(6)
    return ", ".join(f"{v} {100 * c / n:.2g} %" for v, c in counts)


def profile_of(data: Catalogue, sample: int = 2_000) -> list[str]:
    """What a sample of the resources looks like (the commonest facet values), for the report."""
    bodies = [data.body(i) for i in range(0, data.size, max(1, data.size // sample))]
    fields = {"subject": "subject", "level": "educational_level"}
    fields |= {"type": "learning_resource_type", "language": "in_language"}
    shares = [
        f"{facet} " + _shares((v for b in bodies for v in b[key]), len(bodies))
        for facet, key in fields.items()
    ]
    return [*shares, "license " + _shares((b["license"] for b in bodies), len(bodies))]
