"""Reviews: one per citizen and place, editable, averaged on the place — also under
concurrent writes, on both stores (FerretDB has no transactions)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx

from tests.fixtures.tourism import Tourism, new_resident_id
from tests.services.tourism.helpers import PROBLEM, create, ok, pointers


def _rating(tourism: Tourism, pid: str) -> dict[str, object]:
    with tourism.anonymous() as public:
        rating: dict[str, object] = ok(public.get(f"/places/{pid}"))["aggregate_rating"]
        return rating


def test_one_review_per_citizen_editable_and_averaged(tourism: Tourism) -> None:
    with tourism.client("editor") as editor:
        place = create(editor)
    pid = place["id"]
    with tourism.client("citizen") as citizen:
        r = citizen.put(f"/places/{pid}/reviews/mine", json={"rating": 4, "comment": "很好"})
        assert r.status_code == 201, r.text
        first = r.json()
        assert first["mine"] is True
        assert first["rating"] == 4
        again = ok(
            citizen.put(f"/places/{pid}/reviews/mine", json={"rating": 2, "comment": "排队太久"})
        )
        assert again["id"] == first["id"]  # the same review, changed
        assert again["version"] == 2
        assert ok(citizen.get(f"/places/{pid}/reviews/mine"))["rating"] == 2
    assert _rating(tourism, pid) == {"count": 1, "average": 2.0}
    with tourism.as_("citizen", resident_id=new_resident_id()) as other:
        assert other.put(f"/places/{pid}/reviews/mine", json={"rating": 5}).status_code == 201
    assert _rating(tourism, pid) == {"count": 2, "average": 3.5}
    with tourism.anonymous() as public:
        listed = ok(public.get(f"/places/{pid}/reviews"))
        assert [i["rating"] for i in listed["items"]] == [5, 2]  # newest first
        assert all("author" not in i for i in listed["items"])  # resident ids stay private
        found = ok(public.get("/places", params={"q": place["tags"][0]}))
        assert found["items"][0]["aggregate_rating"] == {"count": 2, "average": 3.5}
    with tourism.client("citizen") as citizen:
        assert citizen.delete(f"/places/{pid}/reviews/mine").status_code == 204
        assert citizen.get(f"/places/{pid}/reviews/mine").status_code == 404
    assert _rating(tourism, pid) == {"count": 1, "average": 5.0}
    # Reviews never move the place's version: an editor's If-Match still holds.
    with tourism.client("editor") as editor:
        r = editor.patch(
            f"/places/{pid}", json={"tags": ["reviewed"]}, headers={"If-Match": 'W/"1"'}
        )
        assert r.status_code == 200, r.text


def test_concurrent_reviews_keep_the_aggregate_right(tourism: Tourism) -> None:
    with tourism.client("editor") as editor:
        pid = create(editor)["id"]
    ratings = [1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 5, 5]
    clients = [tourism.as_("citizen", resident_id=new_resident_id()) for _ in ratings]

    def rate(pair: tuple[httpx.Client, int]) -> int:
        client, stars = pair
        return client.put(f"/places/{pid}/reviews/mine", json={"rating": stars}).status_code

    with ThreadPoolExecutor(len(ratings)) as pool:
        statuses = list(pool.map(rate, zip(clients, ratings, strict=True)))
    for c in clients:
        c.close()
    assert statuses == [201] * len(ratings)
    expected = round(sum(ratings) / len(ratings), 2)
    assert _rating(tourism, pid) == {"count": len(ratings), "average": expected}


def test_who_may_review(tourism: Tourism) -> None:
    with tourism.client("editor") as editor:
        place = create(editor)
        pid = place["id"]
        r = editor.put(f"/places/{pid}/reviews/mine", json={"rating": 5})
        assert r.status_code == 403  # an editor is not a citizen
        assert r.headers["content-type"].startswith(PROBLEM)
    with tourism.anonymous() as public:
        assert public.put(f"/places/{pid}/reviews/mine", json={"rating": 5}).status_code == 401
    with tourism.as_("citizen") as no_resident_id:
        assert (
            no_resident_id.put(f"/places/{pid}/reviews/mine", json={"rating": 5}).status_code == 403
        )
    with tourism.as_("citizen", resident_id=new_resident_id()) as citizen:
        for bad in ({"rating": 0}, {"rating": 6}, {"rating": "five"}, {"rating": 3, "stars": 1}):
            r = citizen.put(f"/places/{pid}/reviews/mine", json=bad)
            assert r.status_code == 422, r.text
            assert pointers(r)
        assert (
            citizen.put(f"/places/{'0' * 32}/reviews/mine", json={"rating": 5}).status_code == 404
        )
    assert _rating(tourism, pid) == {"count": 0, "average": None}
    with tourism.client("editor") as editor:
        ok(editor.post(f"/places/{pid}/retire"))
    with tourism.client("citizen") as citizen:
        assert citizen.put(f"/places/{pid}/reviews/mine", json={"rating": 5}).status_code == 404
