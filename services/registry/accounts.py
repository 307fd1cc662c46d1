"""Citizen accounts: the resident's Keycloak login, created or linked on request.

The registry is the master person index, so it is the one place that may say "this login
is resident R-00000042": it writes the `resident_id` user attribute (read-only for the
user in the realm's user profile) and the realm role `citizen`, and every service then
knows the person from the token alone. It does so with python-keycloak's admin API as its
own service account (`huimin-registry`, realm-management `manage-users` and `view-users`),
so no Keycloak administrator password lives in the registry.

Policy (docs/registry.md, "Citizen accounts"):
- username = the resident id lower-cased (`r-00000042`): stable for life, unique by
  construction, and no personal data in a name that shows up in logs and tokens;
- no password from the registry: a new account carries the required action
  UPDATE_PASSWORD, so the citizen chooses one at first login (or an admin sets it);
- idempotent: an account already carrying this resident id is returned (200), a new link
  is 201; an account named `r-00000042` that carries another resident id is a 409;
- the link (Keycloak user id and username) is stored on the resident record in the same
  atomic batch as its audit entry and a `resident.updated` event (versions on the feed
  stay gap-free).
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from keycloak import KeycloakAdmin, KeycloakOpenIDConnection
from keycloak.exceptions import KeycloakError

from services.registry.audit import as_op, entry, now_iso
from services.registry.events import resident_event
from services.registry.guards import refuse_merged
from services.registry.repository import RESIDENTS
from services.registry.service import Caller, RegistryService, backoff
from services.registry.settings import RegistrySettings
from shared.app import LifespanHook
from shared.auth.admin import CitizenAccount, ensure_citizen_account
from shared.auth.service_tokens import split_issuer
from shared.errors import Conflict, ServiceUnavailable, Unprocessable
from shared.storage import Record, Update, VersionConflict, WriteOp

logger = logging.getLogger(__name__)

# A registry write can lose a race against another change of the same resident.
WRITE_ATTEMPTS = 5
NOT_CONFIGURED = (
    "Citizen accounts are not configured on this registry: it has no Keycloak admin"
    " connection (set HUIMIN_CITIZEN_ACCOUNTS=true with the registry's Keycloak client"
    " credentials; the embedded dev issuer has no admin API)."
)


def username_for(resident_id: str) -> str:
    """The login name of a resident's account: their id, lower-cased (Keycloak's form)."""
    return resident_id.lower()


def profile_names(name: Mapping[str, Any]) -> tuple[str, str]:
    """(first name, last name) for the Keycloak profile, which requires both of a user.

    A Chinese name is family name first: the first character is the family name (a
    compound family name splits after its first character too; the profile is only a
    display name, the registry keeps the real one). A Latin-only name is taken in Western
    order, the last word as family name; a single word fills both.
    """
    zh = (name.get("zh") or "").strip()
    if len(zh) >= 2:
        return zh[1:], zh[:1]
    words = (name.get("latin") or zh).split()
    if not words:
        return "-", "-"
    if len(words) == 1:
        return words[0], words[0]
    return " ".join(words[:-1]), words[-1]


@dataclass(frozen=True)
class AccountLink:
    """What the registry knows of a resident's account."""

    resident_id: str
    link: Mapping[str, Any] | None
    created: bool = False  # the Keycloak user was created by this request
    new_link: bool = False  # the record was linked (or re-linked) by this request


def _keycloak_message(exc: KeycloakError) -> str:
    body = exc.response_body or b""
    with contextlib.suppress(ValueError, AttributeError):
        data = json.loads(body)
        if isinstance(data, Mapping):
            return str(data.get("errorMessage") or data.get("error") or data)
    return body.decode("utf-8", "replace")[:200] if body else str(exc)


def _translate(exc: KeycloakError) -> Exception:
    """A Keycloak failure as the registry's answer: bad data is the caller's (409/422),
    anything else is Keycloak being unreachable or misconfigured (503)."""
    message = _keycloak_message(exc)
    code = exc.response_code
    if code == 409:
        field = "email" if "email" in message.lower() else "username"
        return Conflict(
            f"Keycloak refused the account: {message}.",
            errors=[{"pointer": f"#/{field}", "message": "already used by another account"}],
        )
    if code == 400:
        return Unprocessable(
            f"Keycloak refused the account data: {message}.",
            errors=[{"pointer": "#/email", "message": message}],
        )
    if code in (401, 403):
        return ServiceUnavailable(
            "The registry's Keycloak service account may not manage users"
            " (it needs realm-management manage-users and view-users)."
        )
    return ServiceUnavailable(f"Keycloak is not available for account changes: {message}.")


class AccountService:
    """Creates, links and reports residents' Keycloak citizen accounts."""

    def __init__(self, registry: RegistryService, admin: KeycloakAdmin | None) -> None:
        self.registry = registry
        self.admin = admin

    async def status(self, caller: Caller, resident_id: str) -> AccountLink:
        """The stored link, for anyone who may read the record (404 otherwise)."""
        record = await self.registry.load(caller, resident_id, "resident.account.read")
        return AccountLink(resident_id, record.body.get("account"))

    async def ensure(self, caller: Caller, resident_id: str, email: str | None) -> AccountLink:
        """Create or link the account (workers and officers in reach, admins)."""
        record = await self.registry.load(caller, resident_id, "resident.account")
        access = caller.access
        access.require_writer()
        access.require_write_place(record.body["address"]["community"])
        if self.admin is None:
            raise ServiceUnavailable(NOT_CONFIGURED)
        refuse_merged(record.body)  # the id now stands for the survivor: ask for theirs
        if record.body["status"] == "deceased":
            raise Conflict(f"Resident {resident_id} is deceased; no account is created.")
        first, last = profile_names(record.body["name"])
        username = username_for(resident_id)
        try:
            account = await self._keycloak(
                lambda admin: ensure_citizen_account(
                    admin,
                    resident_id=resident_id,
                    username=username,
                    email=email,
                    first_name=first,
                    last_name=last,
                )
            )
        except Conflict as exc:
            if exc.errors and exc.errors[0].get("field") == "username":
                # The username is the registry's choice, not a field of the request.
                raise Conflict(
                    f"The Keycloak account {username} belongs to another resident; an"
                    " administrator must resolve it in Keycloak before it can be linked.",
                    username=username,
                ) from exc
            raise
        return await self._store_link(caller, record, account)

    async def _keycloak(
        self, call: Callable[[KeycloakAdmin], Awaitable[CitizenAccount]]
    ) -> CitizenAccount:
        assert self.admin is not None
        try:
            return await call(self.admin)
        except KeycloakError as exc:
            # Two requests for one resident at once: the loser's create meets the winner's
            # user (a 409, whose message may name the username or the email, as "User exists
            # with same username or email"); looking again finds and returns that user. An
            # email truly held by another account fails the second call too.
            if exc.response_code != 409:
                logger.warning("Keycloak account call failed: %s", exc)
                raise _translate(exc) from exc
        try:
            return await call(self.admin)
        except KeycloakError as exc:
            logger.warning("Keycloak account call failed: %s", exc)
            raise _translate(exc) from exc

    async def _store_link(
        self, caller: Caller, record: Record, account: CitizenAccount
    ) -> AccountLink:
        rid = record.id
        for attempt in range(WRITE_ATTEMPTS):
            current = record.body.get("account")
            if current is not None and current.get("user_id") == account.user_id:
                # Already linked: nothing to write, but the request is still on the trail.
                self.registry.audit.add(
                    entry(
                        caller.access,
                        "resident.account",
                        [rid],
                        client=caller.client,
                        detail=f"already linked to {account.username}",
                    )
                )
                return AccountLink(rid, current, account.created)
            link = {
                "user_id": account.user_id,
                "username": account.username,
                "linked_at": now_iso(),
                "linked_by": caller.access.principal.username or caller.access.principal.subject,
            }
            new = {**record.body, "account": link, "updated_at": link["linked_at"]}
            detail = ("created" if account.created else "linked") + f" {account.username}"
            audit = entry(
                caller.access,
                "resident.account",
                [rid],
                status=201,
                client=caller.client,
                detail=detail,
            )
            event = resident_event("resident.updated", new, record.version + 1)
            ops: list[WriteOp] = [Update(RESIDENTS, rid, new, record.version), as_op(audit)]
            try:
                await self.registry.repo.write(ops, [event])
            except VersionConflict:
                # Someone changed the resident meanwhile: link onto their version.
                await backoff(attempt)
                fresh = await self.registry.repo.resident(rid)
                if fresh is None:
                    break
                record = fresh
                continue
            return AccountLink(rid, link, account.created, new_link=True)
        raise Conflict(f"Resident {rid} keeps changing; try again.")


def build_admin(settings: RegistrySettings) -> KeycloakAdmin | None:
    """The admin client (service account, client credentials) or None when accounts are
    off. No request is made here: the first account call fetches the token, so the
    registry starts (and serves everything else) while Keycloak is still starting."""
    if not settings.citizen_accounts:
        return None
    server, realm = split_issuer(settings.oidc_issuer)
    if settings.keycloak_admin_url:
        # The issuer is the public URL; the registry may reach Keycloak at another address
        # (in-cluster service name), given as the server root.
        server = settings.keycloak_admin_url.rstrip("/") + "/"
    connection = KeycloakOpenIDConnection(
        server_url=server,
        realm_name=realm,
        client_id=settings.client_id,
        client_secret_key=settings.client_secret.get_secret_value(),
        grant_type="client_credentials",
        timeout=15,
    )
    return KeycloakAdmin(connection=connection)


def accounts_lifespan(settings: RegistrySettings) -> LifespanHook:
    """Create the admin client once per process; close its connections on shutdown."""

    @contextlib.asynccontextmanager
    async def hook(app: FastAPI) -> AsyncIterator[None]:
        admin = build_admin(settings)
        app.state.account_admin = admin
        try:
            yield
        finally:
            if admin is not None:
                with contextlib.suppress(Exception):
                    await admin.connection.aclose()
                openid = admin.connection._keycloak_openid
                if openid is not None:
                    with contextlib.suppress(Exception):
                        await openid.connection.aclose()

    return hook
