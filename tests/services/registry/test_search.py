"""Search and listing: criteria, paging, and the caller's reach as an index predicate."""

from __future__ import annotations

from datetime import date

from tests.fixtures.registry import Registry, new_national_id, unique_word
from tests.services.registry.helpers import register


def _ids(page: dict) -> list[str]:  # type: ignore[type-arg]
    return [i["id"] for i in page["items"]]


def test_name_prefix_pinyin_and_initials(registry: Registry) -> None:
    with registry.client("worker") as c:
        by_zh = _ids(c.get("/residents", params={"name": "张"}).json())
        by_full = _ids(c.get("/residents", params={"name": "zhangwei"}).json())
        by_spaced = _ids(c.get("/residents", params={"name": "Zhang Wei"}).json())
        by_initials = _ids(c.get("/residents", params={"name": "zw"}).json())
        by_family = _ids(c.get("/residents", params={"name": "zhang"}).json())
    assert {"R-00000001", "R-00000005", "R-00000006"} <= set(by_zh)
    assert "R-00000002" not in by_zh
    assert "R-00000001" in by_full
    assert "R-00000001" in by_spaced
    assert "R-00000001" in by_initials
    assert {"R-00000001", "R-00000005"} <= set(by_family)


def test_latin_name_word_prefix_folds_accents(registry: Registry) -> None:
    with registry.client("officer") as x:
        assert "R-00000003" in _ids(x.get("/residents", params={"name": "mull"}).json())
        assert "R-00000003" in _ids(x.get("/residents", params={"name": "JOSÉ"}).json())


def test_exact_national_id_and_phone(registry: Registry) -> None:
    with registry.client("worker") as c:
        person = register(c)
        by_id = c.get("/residents", params={"national_id": person["national_id"].lower()}).json()
        by_phone = c.get("/residents", params={"phone": "+86 " + person["phone"]}).json()
    assert _ids(by_id) == [person["id"]]
    assert _ids(by_phone) == [person["id"]]
    assert "national_id" not in by_id["items"][0]
    assert "phone" not in by_id["items"][0]


def test_place_status_and_age(registry: Registry) -> None:
    today = date.today()
    born = date(today.year - 30, 1, 1)
    name = unique_word()
    with registry.client("officer") as x:
        young = register(
            x,
            name={"latin": f"{name} Young"},
            birth_date=born.isoformat(),
            sex="male",
            national_id=new_national_id(born, "male"),
        )
        old = register(
            x,
            name={"latin": f"{name} Old"},
            birth_date="1940-01-01",
            sex="male",
            national_id=None,
            community="110101/002/008",
        )
        x.patch(f"/residents/{old['id']}", json={"status": "moved-out"})

        def find(**params: str | int) -> set[str]:
            return set(_ids(x.get("/residents", params={"name": name, **params}).json()))

        assert find() == {young["id"], old["id"]}
        assert find(place="110101/002/008") == {old["id"]}
        assert find(place="110101/002") == {young["id"], old["id"]}
        assert find(status="active") == {young["id"]}
        assert find(age_min=30, age_max=30) == {young["id"]}
        assert find(age_min=31) == {old["id"]}
        assert find(age_max=29) == set()
        assert find(born_from="1940-01-01", born_to="1940-01-01") == {old["id"]}


def test_cursor_paging_with_next_links(registry: Registry) -> None:
    name = unique_word()
    with registry.client("worker") as c:
        made = [register(c, name={"latin": f"{name} {unique_word()}"})["id"] for _ in range(5)]
        page = c.get("/residents", params={"name": name, "limit": 2}).json()
        seen = _ids(page)
        while page["next"]:
            page = c.get(page["next"]).json()
            seen += _ids(page)
    assert seen == sorted(made)


def test_results_are_limited_to_the_callers_reach(registry: Registry) -> None:
    with registry.as_("community-worker", jurisdiction="110101/002/008") as b:
        assert "R-00000001" not in _ids(b.get("/residents", params={"name": "张伟"}).json())
        # Asking for another community's place finds nothing rather than failing.
        assert _ids(b.get("/residents", params={"place": "110101/002/007"}).json()) == []
    with registry.client("citizen") as me:
        mine = set(_ids(me.get("/residents", params={"limit": 100}).json()))
    assert mine == {"R-00000001", "R-00000004", "R-00000005", "R-00000006"}
    with registry.client("auditor") as au:
        assert "R-00000027" in _ids(au.get("/residents", params={"name": "高"}).json())


def test_counts_per_community(registry: Registry) -> None:
    with registry.client("officer") as x:
        r = x.get("/places/110101/002/counts")
        assert r.status_code == 200, r.text
        counts = r.json()
        assert [c["code"] for c in counts["communities"]] == ["110101/002/007", "110101/002/008"]
        assert counts["total"]["active"] == sum(c["active"] for c in counts["communities"])
        assert counts["communities"][0]["active"] >= 15
        assert x.get("/places/110101/001/counts").status_code == 403
        assert x.get("/places/110101/009/counts").status_code == 404
    with registry.client("worker") as a:
        assert a.get("/places/110101/002/007/counts").status_code == 200
        assert a.get("/places/110101/002/counts").status_code == 403
    with registry.as_("district-officer", jurisdiction="110101") as d:
        codes = [c["code"] for c in d.get("/places/110101/counts").json()["communities"]]
    assert codes == ["110101/001/003", "110101/002/007", "110101/002/008"]
