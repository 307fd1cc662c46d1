"""Events: schema.org Event fields and statuses, the calendar by date range with paging,
roles, versions and bad input."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import httpx
import pytest

from tests.fixtures.tourism import Tourism, unique_word
from tests.services.tourism.helpers import PROBLEM, create, ids, ok, pointers


def new_event(location: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": {"zh": "灯会", "en": f"Lantern fair {unique_word()}"},
        "description": {"zh": "元宵灯会"},
        "start_date": "2027-02-11T18:00:00+08:00",
        "end_date": "2027-02-11T22:00:00+08:00",
        "location": location,
        "offers": [
            {"name": {"zh": "门票", "en": "Ticket"}, "price": 30, "url": "https://t.example/"}
        ],
    }
    body.update(changes)
    return body


@pytest.fixture
def place(tourism: Tourism) -> dict[str, Any]:
    with tourism.client("editor") as editor:
        made: dict[str, Any] = create(editor)
        return made


def calendar(client: httpx.Client, place: str, start: str, end: str, **more: Any) -> Any:
    params = {"from": start, "to": end, "place": place, **more}
    return ok(client.get("/events", params=params))


def test_events_keep_their_fields_and_statuses(tourism: Tourism, place: dict[str, Any]) -> None:
    with tourism.client("editor") as editor:
        r = editor.post("/events", json=new_event(place["id"]))
        assert r.status_code == 201, r.text
        event = r.json()
        assert r.headers["ETag"] == 'W/"1"'
        assert event["event_status"] == "scheduled"
        assert event["location_name"] == place["name"]
        moved = editor.patch(
            f"/events/{event['id']}",
            json={
                "event_status": "postponed",
                "previous_start_date": event["start_date"],
                "start_date": "2027-02-18T18:00:00+08:00",
                "end_date": "2027-02-18T22:00:00+08:00",
            },
            headers={"If-Match": 'W/"1"'},
        )
        assert moved.status_code == 200, moved.text
        stale = editor.patch(
            f"/events/{event['id']}", json={"tags": ["x"]}, headers={"If-Match": 'W/"1"'}
        )
        assert stale.status_code == 412
    with tourism.anonymous() as public:
        r = public.get(f"/events/{event['id']}", headers={"Accept-Language": "en"})
        shown = r.json()
    assert r.headers["Content-Language"] == "en"
    assert shown["event_status"] == "postponed"
    assert shown["previous_start_date"] == "2027-02-11T18:00:00+08:00"
    assert shown["start_date"] == "2027-02-18T18:00:00+08:00"
    assert shown["offers"][0] == {
        "name": "Ticket",
        "price": 30.0,
        "currency": "CNY",
        "url": "https://t.example/",
    }
    assert shown["name"].startswith("Lantern fair")


def test_the_calendar_by_date_range(tourism: Tourism, place: dict[str, Any]) -> None:
    pid = place["id"]
    with tourism.client("editor") as editor:

        def add(start: str, end: str, **more: Any) -> str:
            made: str = ok(
                editor.post("/events", json=new_event(pid, start_date=start, end_date=end, **more)),
                201,
            )["id"]
            return made

        early = add("2027-03-01T09:00:00+08:00", "2027-03-01T11:00:00+08:00")
        long = add("2027-02-20T09:00:00+08:00", "2027-03-10T18:00:00+08:00")
        night = add("2027-03-02T23:00:00+08:00", "2027-03-03T01:00:00+08:00")
        cancelled = add(
            "2027-03-02T10:00:00+08:00", "2027-03-02T12:00:00+08:00", event_status="cancelled"
        )
        later = add("2027-03-05T10:00:00+08:00", "2027-03-05T12:00:00+08:00")
        gone = add("2027-03-02T08:00:00+08:00", "2027-03-02T09:00:00+08:00")
        ok(editor.post(f"/events/{gone}/retire"))
    with tourism.anonymous() as public:
        # Overlapping 1-3 March (Beijing days, both included), in start order.
        assert ids(calendar(public, pid, "2027-03-01", "2027-03-03")) == [
            long,
            early,
            cancelled,
            night,
        ]
        assert ids(calendar(public, pid, "2027-03-03", "2027-03-03")) == [
            long,
            night,
        ]  # night runs into the 3rd
        assert ids(calendar(public, pid, "2027-03-04", "2027-03-04")) == [long]
        assert ids(calendar(public, pid, "2027-03-02", "2027-03-02", status="cancelled")) == [
            cancelled
        ]
        assert ids(calendar(public, pid, "2027-03-11", "2027-04-01")) == []
        seen: list[str] = []
        page = calendar(public, pid, "2027-01-01", "2027-12-31", limit=2)
        while True:
            seen += ids(page)
            if not page["next"]:
                break
            page = ok(public.get(page["next"]))
        assert seen == [long, early, cancelled, night, later]
        assert public.get(f"/events/{gone}").status_code == 404
    with tourism.client("editor") as editor:
        retired = calendar(editor, pid, "2027-03-02", "2027-03-02", state="retired")
        assert ids(retired) == [gone]


BAD: list[tuple[str, Any, set[str]]] = [
    ("ends before it starts", {"end_date": "2030-01-01T17:00:00+08:00"}, {"#"}),
    ("no time zone", {"start_date": "2030-01-01T18:00:00"}, {"#/start_date"}),
    ("postponed without previous", {"event_status": "postponed"}, {"#"}),
    ("previous while scheduled", {"previous_start_date": "2027-02-01T18:00:00+08:00"}, {"#"}),
    ("unknown status", {"event_status": "maybe"}, {"#/event_status"}),
    ("no such place", {"location": "0" * 32}, {"#/location"}),
    ("bad place id", {"location": "here"}, {"#/location"}),
    ("negative price", {"offers": [{"price": -1}]}, {"#/offers/0/price"}),
]


@pytest.mark.parametrize(("label", "change", "expected"), BAD, ids=[b[0] for b in BAD])
def test_bad_events_are_refused_and_nothing_is_written(
    tourism: Tourism, place: dict[str, Any], label: str, change: dict[str, Any], expected: set[str]
) -> None:
    # A day of its own in 2030: whatever location the bad event names, the calendar of that
    # day shows whether anything was written.
    day = date(2030, 1, 1) + timedelta(days=random.randrange(365))
    times = {"start_date": f"{day}T18:00:00+08:00", "end_date": f"{day}T20:00:00+08:00"}
    body = {**new_event(place["id"]), **times, **change}
    with tourism.client("editor") as editor:
        r = editor.post("/events", json=body)
        assert r.status_code == 422, r.text
        assert pointers(r) >= expected
        shown = ok(editor.get("/events", params={"from": str(day), "to": str(day)}))
    assert shown["items"] == []


def test_event_roles_and_calendar_parameters(tourism: Tourism, place: dict[str, Any]) -> None:
    body = new_event(place["id"])
    with tourism.anonymous() as public:
        assert public.post("/events", json=body).status_code == 401
        for params, field in (
            ({"from": "2027-03-02", "to": "2027-03-01"}, "to"),
            ({"from": "2027-01-01", "to": "2028-06-01"}, "to"),
            ({"from": "yesterday", "to": "2027-03-01"}, "from"),
            ({"to": "2027-03-01"}, "from"),
        ):
            r = public.get("/events", params=params)
            assert r.status_code == 422, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
            assert field in pointers(r)
    with tourism.client("citizen") as citizen:
        assert citizen.post("/events", json=body).status_code == 403
    with tourism.client("editor") as editor:
        event = ok(editor.post("/events", json=body), 201)
    with tourism.client("citizen") as citizen:
        assert citizen.patch(f"/events/{event['id']}", json={"tags": ["x"]}).status_code == 403
        assert citizen.post(f"/events/{event['id']}/retire").status_code == 403
