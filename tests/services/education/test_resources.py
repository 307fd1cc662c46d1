"""Learning resources: metadata validation, publication states, visibility, versions."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fixtures.education import Education, new_resource, unique_word
from tests.services.education.helpers import PROBLEM, create, pointers, publish, published

CASES: list[tuple[str, Any, set[str]]] = [
    ("no name", lambda b: {**b, "name": {}}, {"#/name"}),
    ("blank name", lambda b: {**b, "name": {"zh": "  "}}, {"#/name/zh"}),
    ("unknown subject", lambda b: {**b, "subject": ["alchemy"]}, {"#/subject/0"}),
    ("no level", lambda b: {**b, "educational_level": []}, {"#/educational_level"}),
    (
        "bad type",
        lambda b: {**b, "learning_resource_type": ["movie"]},
        {"#/learning_resource_type/0"},
    ),
    ("bad language", lambda b: {**b, "in_language": ["xx"]}, {"#/in_language/0"}),
    ("bad license", lambda b: {**b, "license": "GPL"}, {"#/license"}),
    ("bad url", lambda b: {**b, "url": "not a url"}, {"#/url"}),
    ("no location", lambda b: {**b, "url": None}, {"#"}),
    (
        "bad attachment",
        lambda b: {
            **b,
            "attachment": {
                "name": "x",
                "content_url": "https://x.example/a.pdf",
                "encoding_format": "pdf",
                "content_size": -1,
            },
        },
        {"#/attachment/encoding_format", "#/attachment/content_size"},
    ),
    (
        "bad feature",
        lambda b: {**b, "accessibility_feature": ["glitter"]},
        {"#/accessibility_feature/0"},
    ),
    ("no author", lambda b: {**b, "author": []}, {"#/author"}),
    ("unknown member", lambda b: {**b, "rating": 5}, {"#/rating"}),
    (
        "wrong types",
        lambda b: {**b, "keywords": "maths", "license": 4},
        {"#/keywords", "#/license"},
    ),
    ("future date", lambda b: {**b, "date_created": "2999-01-01"}, {"#"}),
]


@pytest.mark.parametrize(("label", "change", "expected"), CASES, ids=[c[0] for c in CASES])
def test_invalid_metadata_gets_field_errors_and_nothing_is_written(
    education: Education, label: str, change: Any, expected: set[str]
) -> None:
    word = unique_word()
    body = change(new_resource(name={"en": f"Broken {word}"}))
    with education.client("teacher") as teacher:
        r = teacher.post("/resources", json=body)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert pointers(r) >= expected, r.json()
        found = teacher.get("/resources", params={"q": word, "mine": "true", "facets": "false"})
    assert found.json()["total"] == 0


def test_a_resource_keeps_every_lrmi_field(education: Education) -> None:
    body = new_resource(
        name={"zh": "光合作用", "en": f"Photosynthesis {unique_word()}"},
        description={"zh": "植物如何利用阳光制造养分。", "en": "How plants make food from light."},
        subject=["biology", "science"],
        educational_level=["lower-secondary"],
        learning_resource_type=["interactive", "exercise"],
        in_language=["zh"],
        license="CC-BY-SA-4.0",
        keywords=["植物", "photosynthesis"],
        teaches=["描述光合作用的过程"],
        accessibility_feature=["captions", "transcript"],
        educational_alignment=[
            {
                "alignment_type": "teaches",
                "framework": "义务教育科学课程标准（2022年版）",
                "target_name": "生命系统的构成层次",
            }
        ],
        attachment={
            "name": "worksheet.pdf",
            "content_url": "https://files.huimin.example/worksheet.pdf",
            "encoding_format": "application/pdf",
            "content_size": 123456,
        },
        author=[{"type": "Person", "name": "李老师"}],
        date_created="2024-09-01",
    )
    with education.client("teacher") as teacher:
        r = teacher.post("/resources", json=body)
        assert r.status_code == 201, r.text
        made = r.json()
        assert r.headers["ETag"] == 'W/"1"'
        assert r.headers["Location"] == f"/resources/{made['id']}"
        again = teacher.get(f"/resources/{made['id']}").json()
    assert again == made
    assert made["state"] == "draft"
    assert made["version"] == 1
    assert made["owner"]["username"] == "teacher"
    for key in ("subject", "keywords", "teaches", "accessibility_feature", "license"):
        assert made[key] == body[key]
    assert made["educational_alignment"][0]["target_name"] == "生命系统的构成层次"
    assert made["attachment"]["content_size"] == 123456
    assert made["date_created"] == "2024-09-01"
    assert made["date_published"] is None


def test_only_published_resources_are_public(education: Education) -> None:
    word = unique_word()
    with education.client("teacher") as teacher:
        draft = create(teacher, name={"en": f"Draft {word}"})
        shown = published(teacher, name={"en": f"Shown {word}"})
        gone = published(teacher, name={"en": f"Retired {word}"})
        r = teacher.post(f"/resources/{gone['id']}/retire")
        assert r.status_code == 200
        assert r.json()["state"] == "retired"
        assert r.json()["date_retired"]
        mine = teacher.get("/resources", params={"q": word, "facets": "false"}).json()
    assert {i["id"] for i in mine["items"]} == {draft["id"], shown["id"], gone["id"]}
    with education.anonymous() as public, education.client("citizen") as citizen:
        for client in (public, citizen):
            found = client.get("/resources", params={"q": word, "facets": "false"}).json()
            assert [i["id"] for i in found["items"]] == [shown["id"]]
            assert client.get(f"/resources/{shown['id']}").status_code == 200
            for hidden in (draft, gone):
                r = client.get(f"/resources/{hidden['id']}")
                assert r.status_code == 404
                assert r.headers["content-type"].startswith(PROBLEM)
    # Another educator sees published resources only, an admin everything.
    with education.as_("educator") as other, education.client("admin") as admin:
        assert other.get(f"/resources/{draft['id']}").status_code == 404
        seen = admin.get("/resources", params={"q": word, "facets": "false"}).json()
        assert seen["total"] == 3


def test_states_move_forward_only(education: Education) -> None:
    with education.client("teacher") as teacher:
        made = create(teacher)
        rid = made["id"]
        assert teacher.post(f"/resources/{rid}/retire").json()["state"] == "retired"
        r = teacher.post(f"/resources/{rid}/publish")
        assert r.status_code == 409, r.text
        r = teacher.patch(f"/resources/{rid}", json={"keywords": ["x"]})
        assert r.status_code == 409, r.text
        other = publish(teacher, create(teacher))
        again = teacher.post(f"/resources/{other['id']}/publish")  # a retried request
        assert again.status_code == 200
        assert again.json()["version"] == other["version"]


def test_who_may_write(education: Education) -> None:
    with education.client("citizen") as citizen:
        r = citizen.post("/resources", json=new_resource())
        assert r.status_code == 403
        assert r.headers["content-type"].startswith(PROBLEM)
    with education.anonymous() as public:
        assert public.post("/resources", json=new_resource()).status_code == 401
    with education.client("teacher") as teacher:
        shown = published(teacher)
    with education.as_("educator") as other:
        r = other.patch(f"/resources/{shown['id']}", json={"keywords": ["mine"]})
        assert r.status_code == 403
        assert other.post(f"/resources/{shown['id']}/retire").status_code == 403
    with education.client("admin") as admin:
        r = admin.patch(f"/resources/{shown['id']}", json={"keywords": ["checked"]})
        assert r.status_code == 200
        assert r.json()["keywords"] == ["checked"]
    with education.anonymous() as public:
        r = public.get("/resources", headers={"Authorization": "Bearer nonsense"})
        assert r.status_code == 401


def test_changes_are_versioned_with_if_match(education: Education) -> None:
    with education.client("teacher") as teacher:
        made = create(teacher)
        rid = made["id"]
        r = teacher.patch(
            f"/resources/{rid}", json={"keywords": ["a", "b"]}, headers={"If-Match": 'W/"1"'}
        )
        assert r.status_code == 200, r.text
        assert r.headers["ETag"] == 'W/"2"'
        assert r.json()["version"] == 2
        stale = teacher.patch(
            f"/resources/{rid}", json={"keywords": ["c"]}, headers={"If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
        assert stale.json()["current_version"] == 2
        same = teacher.patch(f"/resources/{rid}", json={"keywords": ["a", "b"]})
        assert same.json()["version"] == 2  # nothing changed, nothing written
        # A change that leaves the resource invalid is refused whole.
        bad = teacher.patch(f"/resources/{rid}", json={"url": None, "subject": ["alchemy"]})
        assert bad.status_code == 422
        assert pointers(bad) == {"#/subject/0"}
        after = teacher.get(f"/resources/{rid}").json()
    assert after["version"] == 2
    assert after["subject"] == ["mathematics"]
    assert after["url"] == made["url"]
