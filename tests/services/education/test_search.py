"""Catalogue search: Chinese and English text, facet filters and counts, order, paging."""

from __future__ import annotations

import random
from typing import Any

import httpx

from tests.fixtures.education import Education, unique_word
from tests.services.education.helpers import create, pointers, published


def unique_zh(n: int = 4) -> str:
    """Random CJK characters (a text no other test's resources contain)."""
    return "".join(chr(random.randrange(0x4E00, 0x9FA5)) for _ in range(n))


def search(client: httpx.Client, **params: Any) -> Any:
    r = client.get("/resources", params={"facets": "false", **params})
    assert r.status_code == 200, r.text
    return r.json()


def ids(page: Any) -> list[str]:
    return [i["id"] for i in page["items"]]


def test_chinese_text_without_word_spaces(education: Education) -> None:
    zh = unique_zh(6)
    with education.client("teacher") as teacher:
        in_name = published(teacher, name={"zh": f"认识{zh}的课"})
        in_desc = published(teacher, name={"zh": "别的名字"}, description={"zh": f"本课介绍{zh}。"})
        in_keyword = published(teacher, keywords=[zh])
    with education.anonymous() as public:
        # The whole run, a piece from its middle, and the text around it.
        assert set(ids(search(public, q=zh))) == {in_name["id"], in_desc["id"], in_keyword["id"]}
        assert set(ids(search(public, q=zh[2:5]))) == {
            in_name["id"],
            in_desc["id"],
            in_keyword["id"],
        }
        assert ids(search(public, q=f"认识{zh}")) == [in_name["id"]]
        # A name match ranks above a keyword match, above a description match.
        assert ids(search(public, q=zh)) == [in_name["id"], in_keyword["id"], in_desc["id"]]
        # Characters in another order are another text.
        assert search(public, q=zh[::-1])["total"] == 0


def test_single_chinese_character_finds_names_and_keywords(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        made = published(teacher, name={"zh": "诗词", "en": f"Poems {word}"})
    with education.anonymous() as public:
        assert ids(search(public, q=f"词 {word}")) == [made["id"]]
        assert ids(search(public, q=f"诗 {word}")) == [made["id"]]


def test_english_words_prefixes_and_case(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        made = published(
            teacher,
            name={"en": f"Photosynthesis {word}"},
            description={"en": "How Plants make their FOOD from light."},
        )
    with education.anonymous() as public:
        for q in (
            word,
            word.upper(),
            f"photo {word}",
            f"plants food {word[:5]}",
            f"ＰＨＯＴＯ {word}",
        ):
            assert ids(search(public, q=q)) == [made["id"]], q
        assert search(public, q=f"animals {word}")["total"] == 0


def test_relevance_uses_fields_and_phrase(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        desc = published(teacher, name={"en": "Other"}, description={"en": f"about {word}"})
        name = published(teacher, name={"en": f"{word} basics"})
        kw = published(teacher, name={"en": "Another"}, keywords=[word])
        phrase = published(teacher, name={"en": f"Geometry {word}"}, keywords=["geometry"])
    with education.anonymous() as public:
        assert ids(search(public, q=word)) == [phrase["id"], name["id"], kw["id"], desc["id"]]
        assert ids(search(public, q=f"geometry {word}"))[0] == phrase["id"]
        newest = ids(search(public, q=word, sort="newest"))
        assert newest == [phrase["id"], kw["id"], name["id"], desc["id"]]
        assert ids(search(public, q=word, sort="oldest")) == newest[::-1]


def _all_pages(client: httpx.Client, **params: Any) -> list[str]:
    seen: list[str] = []
    page = search(client, **params)
    pages = 1
    seen += ids(page)
    while page["next"]:
        r = client.get(page["next"])
        assert r.status_code == 200, r.text
        page = r.json()
        seen += ids(page)
        pages += 1
        assert pages < 20
    return seen


def test_cursor_paging_reaches_every_match_once(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        made = [published(teacher, name={"en": f"Part {i} {word}"})["id"] for i in range(13)]
    with education.anonymous() as public:
        # 13 matches, 10 relevance candidates: the last 3 follow in date order.
        for sort in ("relevance", "newest", "oldest"):
            got = _all_pages(public, q=word, sort=sort, limit=4)
            assert sorted(got) == sorted(made), sort
            assert len(got) == len(set(got)), sort
        assert search(public, q=word, limit=4)["total"] == 13


def _counts(page: Any, facet: str) -> dict[str, int]:
    return {v["value"]: v["count"] for v in page["facets"][facet]}


def test_facet_counts_and_filters(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        a = published(
            teacher,
            keywords=[word],
            subject=["mathematics"],
            educational_level=["primary"],
            learning_resource_type=["video"],
            in_language=["zh"],
            license="CC-BY-4.0",
        )
        b = published(
            teacher,
            keywords=[word],
            subject=["mathematics", "science"],
            educational_level=["primary", "lower-secondary"],
            learning_resource_type=["exercise"],
            in_language=["zh", "en"],
            license="CC0-1.0",
        )
        c = published(
            teacher,
            keywords=[word],
            subject=["english"],
            educational_level=["adult"],
            learning_resource_type=["video", "audio"],
            in_language=["en"],
            license="CC-BY-4.0",
        )
        create(teacher, keywords=[word], subject=["history"])  # a draft: never counted
    with education.anonymous() as public:
        page = search(public, q=word, facets="true")
        assert page["total"] == 3
        assert _counts(page, "subject") == {"mathematics": 2, "science": 1, "english": 1}
        assert _counts(page, "level") == {"primary": 2, "lower-secondary": 1, "adult": 1}
        assert _counts(page, "type") == {"video": 2, "exercise": 1, "audio": 1}
        assert _counts(page, "language") == {"zh": 2, "en": 2}
        assert _counts(page, "license") == {"CC-BY-4.0": 2, "CC0-1.0": 1}
        labels = {v["value"]: v["label"] for v in page["facets"]["subject"]}
        assert labels["mathematics"] == {"zh": "数学", "en": "Mathematics"}
        # A filter narrows the results and the other facets, not its own facet's counts.
        page = search(public, q=word, type="video", facets="true")
        assert set(ids(page)) == {a["id"], c["id"]}
        assert _counts(page, "type") == {"video": 2, "exercise": 1, "audio": 1}
        assert _counts(page, "subject") == {"mathematics": 1, "english": 1}
        assert _counts(page, "license") == {"CC-BY-4.0": 2}
        # Several values of one facet are alternatives; facets are combined.
        page = search(public, q=word, language=["zh", "en"], license="CC0-1.0")
        assert ids(page) == [b["id"]]
        page = search(public, q=word, subject="history", facets="true")
        assert page["total"] == 0
        assert {"value": "history", "label": {"zh": "历史", "en": "History"}, "count": 0} in page[
            "facets"
        ]["subject"]
    with education.client("teacher") as teacher:
        mine = search(teacher, q=word, facets="true")
        assert mine["total"] == 4
        assert _counts(mine, "subject")["history"] == 1


def test_bad_search_input(education: Education) -> None:
    with education.anonymous() as public:
        r = public.get("/resources", params={"subject": "alchemy", "level": "phd"})
        assert r.status_code == 422
        assert pointers(r) == {"subject", "level"}
        r = public.get("/resources", params={"q": "!!! ..."})
        assert r.status_code == 422
        assert pointers(r) == {"q"}
        r = public.get("/resources", params={"sort": "random", "limit": 0})
        assert r.status_code == 422
        assert pointers(r) == {"sort", "limit"}
        assert public.get("/resources", params={"cursor": "%%%"}).status_code == 400
        word = unique_word()
        with education.client("teacher") as teacher:
            for _ in range(2):
                published(teacher, keywords=[word])
        first = search(public, q=word, limit=1)
        assert first["next"]
        cursor = first["next"].split("cursor=")[1]
        r = public.get("/resources", params={"q": "other", "cursor": cursor})
        assert r.status_code == 400
