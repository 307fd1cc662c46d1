"""Citizen accounts (`/residents/{id}/account`) against a real Keycloak: the registry runs
as a process validating Keycloak's tokens and manages users as its own service account.

Callers are Keycloak users: the dev users (`worker` of 110101/002/007, `officer` of
110101/002, `citizen` = R-00000001, `auditor`, `admin`, `doctor`) and users created here for
another community. Nothing is faked: what Keycloak stores is read back with its admin API.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from tests.fixtures.e2e import (
    Tokens,
    api,
    drop_citizen_accounts,
    kc_admin,
    kc_user,
    start_registry,
)
from tests.fixtures.registry import new_resident
from tests.services.registry.helpers import PROBLEM, pointers, register, wait_for
from tools.keycloak import Keycloak
from tools.service_server import ServiceServer

pytestmark = pytest.mark.keycloak


@pytest.fixture(scope="module")
def tokens(keycloak: Keycloak) -> Tokens:
    return Tokens(keycloak)


@pytest.fixture(scope="module")
def registry_kc(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceServer]:
    """The registry with citizen accounts on (SQLite: the store path is the one every
    change takes, tested on both stores by the registry's own suite and the e2e test)."""
    tmp = tmp_path_factory.mktemp("registry-accounts")
    drop_citizen_accounts(keycloak)
    server = start_registry(keycloak, tmp, f"sqlite:///{tmp}/registry.db", accounts=True)
    yield server
    server.stop()
    drop_citizen_accounts(keycloak)


@pytest.fixture(scope="module")
def registry_off(
    keycloak: Keycloak, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServiceServer]:
    """The same registry with no admin connection (HUIMIN_CITIZEN_ACCOUNTS off)."""
    tmp = tmp_path_factory.mktemp("registry-no-accounts")
    server = start_registry(keycloak, tmp, f"sqlite:///{tmp}/registry.db", accounts=False)
    yield server
    server.stop()


def as_user(server: ServiceServer, tokens: Tokens, user: str, password: str | None = None) -> Any:
    return api(server.url, tokens.get(user, password) if password else tokens.get(user))


def email_of(rid: str) -> str:
    return f"{rid.lower()}@citizens.test.huimin.example"


def test_worker_creates_the_account_once(
    registry_kc: ServiceServer, tokens: Tokens, keycloak: Keycloak
) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        resident = register(worker, new_resident(name={"zh": "李小明"}))
        rid = resident["id"]
        assert worker.get(f"/residents/{rid}/account").json()["linked"] is False

        first = worker.post(f"/residents/{rid}/account", json={"email": email_of(rid)})
        assert first.status_code == 201, first.text
        body = first.json()
        assert body["linked"] is True
        assert body["created"] is True
        assert body["username"] == rid.lower()
        assert body["linked_by"] == "worker"
        assert first.headers["location"] == f"/residents/{rid}/account"

        again = worker.post(f"/residents/{rid}/account")
        assert again.status_code == 200, again.text
        assert again.json()["user_id"] == body["user_id"]
        assert again.json()["created"] is False
        shown = worker.get(f"/residents/{rid}/account").json()
        assert shown["user_id"] == body["user_id"]
        assert shown["linked_at"] == body["linked_at"]

        # The link is a new version of the record (one, not one per request).
        record = worker.get(f"/residents/{rid}")
        assert record.headers["etag"] == 'W/"2"'
        assert record.json()["account"] == {"username": rid.lower(), "linked_at": body["linked_at"]}

    user = kc_admin(keycloak).get_user(body["user_id"])
    assert user["username"] == rid.lower()
    assert user["attributes"]["resident_id"] == [rid]
    assert user["email"] == email_of(rid)
    assert (user["firstName"], user["lastName"]) == ("小明", "李")
    assert user["requiredActions"] == ["UPDATE_PASSWORD"]  # no password from the registry
    assert "credentials" not in user or not user["credentials"]
    roles = {r["name"] for r in kc_admin(keycloak).get_realm_roles_of_user(body["user_id"])}
    assert "citizen" in roles
    assert not roles & {"admin", "community-worker", "service"}


def test_link_is_audited_and_published(registry_kc: ServiceServer, tokens: Tokens) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        rid = register(worker)["id"]
        assert worker.post(f"/residents/{rid}/account", json={"email": email_of(rid)}).is_success
        assert worker.post(f"/residents/{rid}/account").status_code == 200
    with as_user(registry_kc, tokens, "auditor") as auditor:

        def entries() -> list[dict[str, Any]]:
            page = auditor.get("/audit", params={"resident": rid}).json()
            return [e for e in page["items"] if e["action"] == "resident.account"]

        found = wait_for(lambda: len(entries()) == 2 and entries())
        assert found, "both requests are on the audit trail"
        details = sorted(e["detail"] for e in found)
        assert details == [f"already linked to {rid.lower()}", f"created {rid.lower()}"]
        assert {e["actor"]["username"] for e in found} == {"worker"}
    # The feed carries the new version, so consumers' versions stay gap-free.
    service = httpx.post(
        tokens.keycloak.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": "huimin-health",
            "client_secret": tokens.keycloak.client_secret("huimin-health"),
        },
        timeout=30.0,
    ).json()["access_token"]
    with api(registry_kc.url, service) as feed:
        events: list[dict[str, Any]] = []
        after = 0
        while True:
            page = feed.get("/events", params={"limit": 1000, "after": after})
            assert page.status_code == 200, page.text
            data = page.json()
            events += [e for e in data["events"] if e["key"] == rid]
            if not data["events"]:
                break
            after = data["next"]
    assert [(e["type"], e["payload"]["version"]) for e in events] == [
        ("resident.registered", 1),
        ("resident.updated", 2),
    ]


def test_existing_account_of_the_resident_is_linked(
    registry_kc: ServiceServer, tokens: Tokens
) -> None:
    # The dev user `citizen` already carries resident_id R-00000001 (a demo resident of
    # the worker's community): it is linked, not duplicated.
    with as_user(registry_kc, tokens, "worker") as worker:
        r = worker.post("/residents/R-00000001/account")
        assert r.status_code in (200, 201), r.text
        assert r.json()["username"] == "citizen"
        assert r.json()["created"] is False
    with as_user(registry_kc, tokens, "citizen") as citizen:
        own = citizen.get("/residents/R-00000001/account")
        assert own.status_code == 200
        assert own.json()["username"] == "citizen"


def test_who_may_ask(registry_kc: ServiceServer, tokens: Tokens, keycloak: Keycloak) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        rid = register(worker)["id"]
        other_rid = register(worker)["id"]
    other_worker = kc_user(keycloak, "community-worker", jurisdiction="110101/002/008")
    with as_user(registry_kc, tokens, other_worker.username, other_worker.password) as stranger:
        # Outside their community the resident is not there at all (no existence leak).
        for method in ("get", "post"):
            r = getattr(stranger, method)(f"/residents/{rid}/account")
            assert r.status_code == 404, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
        assert stranger.post("/residents/R-99999999/account").status_code == 404
    for user in ("auditor", "citizen"):
        with as_user(registry_kc, tokens, user) as caller:
            # They may know the record (auditor) or it is their own: a write is 403.
            own = "R-00000001" if user == "citizen" else rid
            r = caller.post(f"/residents/{own}/account")
            assert r.status_code == 403, r.text
            assert r.headers["content-type"].startswith(PROBLEM)
    with as_user(registry_kc, tokens, "citizen") as citizen:
        assert citizen.get(f"/residents/{rid}/account").status_code == 404
    with as_user(registry_kc, tokens, "doctor") as doctor:
        assert doctor.post(f"/residents/{rid}/account").status_code == 403
    with api(registry_kc.url, None) as anonymous:
        assert anonymous.post(f"/residents/{rid}/account").status_code == 401
    # The street officer above and an administrator may.
    with as_user(registry_kc, tokens, "officer") as officer:
        assert officer.post(f"/residents/{rid}/account").status_code == 201
    with as_user(registry_kc, tokens, "admin") as admin:
        assert admin.post(f"/residents/{other_rid}/account").status_code == 201
        assert admin.get(f"/residents/{rid}/account").json()["linked_by"] == "officer"


def test_account_of_another_resident_is_a_conflict(
    registry_kc: ServiceServer, tokens: Tokens, keycloak: Keycloak
) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        rid = register(worker)["id"]
        # Someone made an account by hand with this resident's username for another person.
        kc_admin(keycloak).create_user(
            {
                "username": rid.lower(),
                "enabled": True,
                "attributes": {"resident_id": ["R-00000002"]},
            }
        )
        r = worker.post(f"/residents/{rid}/account")
        assert r.status_code == 409, r.text
        assert r.headers["content-type"].startswith(PROBLEM)
        assert r.json()["username"] == rid.lower()
        assert "another resident" in r.json()["detail"]
        assert worker.get(f"/residents/{rid}/account").json()["linked"] is False

        # An email another account uses (the dev user worker's) is refused, nothing linked.
        rid2 = register(worker)["id"]
        r = worker.post(f"/residents/{rid2}/account", json={"email": "worker@huimin.example"})
        assert r.status_code == 409, r.text
        assert pointers(r) == {"#/email"}
        assert worker.get(f"/residents/{rid2}/account").json()["linked"] is False
        assert not kc_admin(keycloak).get_users({"username": rid2.lower(), "exact": True})


def test_bad_requests(registry_kc: ServiceServer, tokens: Tokens) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        rid = register(worker)["id"]
        r = worker.post(f"/residents/{rid}/account", json={"email": "not an email"})
        assert r.status_code == 422
        assert pointers(r) == {"#/email"}
        r = worker.post(f"/residents/{rid}/account", json={"password": "x"})
        assert r.status_code == 422
        assert worker.post("/residents/R-1/account").status_code == 422
        # A deceased resident gets no account.
        dead = register(worker)
        patch = {"status": "deceased", "deceased_date": "2024-01-02"}
        assert worker.patch(f"/residents/{dead['id']}", json=patch).status_code == 200
        r = worker.post(f"/residents/{dead['id']}/account")
        assert r.status_code == 409
        assert r.headers["content-type"].startswith(PROBLEM)
        assert worker.get(f"/residents/{rid}/account").json()["linked"] is False


def test_unconfigured_registry_answers_503(registry_off: ServiceServer, tokens: Tokens) -> None:
    with as_user(registry_off, tokens, "worker") as worker:
        rid = register(worker)["id"]
        r = worker.post(f"/residents/{rid}/account")
        assert r.status_code == 503
        assert r.headers["content-type"].startswith(PROBLEM)
        assert "HUIMIN_CITIZEN_ACCOUNTS" in r.json()["detail"]
        assert worker.get(f"/residents/{rid}/account").json()["linked"] is False
    # Access rules come first: a caller who may not ask learns nothing about the setup.
    with as_user(registry_off, tokens, "citizen") as citizen:
        assert citizen.post("/residents/R-00000001/account").status_code == 403


def test_concurrent_requests_make_one_account(
    registry_kc: ServiceServer, tokens: Tokens, keycloak: Keycloak
) -> None:
    with as_user(registry_kc, tokens, "worker") as worker:
        rid = register(worker)["id"]
    token = tokens.get("worker")

    def ask(_: int) -> httpx.Response:
        with api(registry_kc.url, token) as client:
            return client.post(f"/residents/{rid}/account")

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(ask, range(4)))
    assert all(a.status_code in (200, 201) for a in answers), [a.text for a in answers]
    assert len({a.json()["user_id"] for a in answers}) == 1
    assert sorted(a.status_code for a in answers) == [200, 200, 200, 201]
    assert len(kc_admin(keycloak).get_users({"username": rid.lower(), "exact": True})) == 1
