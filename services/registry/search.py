"""Searching residents and the audit trail, and per-community counts.

The caller's reach is part of every query as an index predicate (`place` equals their
jurisdiction, or `_id` in a citizen's own household), never a filter applied to results,
so pages, cursors and counts only ever reflect what the caller may see.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from services.registry import national_id
from services.registry.audit import entry, public_entry
from services.registry.names import query_form
from services.registry.places import is_code, level_of
from services.registry.repository import day_instant
from services.registry.schemas import normalize_phone
from services.registry.service import Caller, RegistryService
from shared.auth.errors import InsufficientScope
from shared.errors import NotFound, Unprocessable
from shared.storage import AnyOf, Eq, In, Not, Page, Predicate, Prefix, Query, Range

ONE_DAY = timedelta(days=1)


@dataclass(frozen=True, slots=True)
class ResidentFilter:
    """The criteria of `GET /residents` (all optional, AND-combined)."""

    name: str | None = None
    national_id: str | None = None
    phone: str | None = None
    place: str | None = None
    status: str | None = None
    review: str | None = None
    age_min: int | None = None
    age_max: int | None = None
    born_from: date | None = None
    born_to: date | None = None


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February in a year that has none
        return today.replace(year=today.year - years, day=28)


def predicates(f: ResidentFilter, *, today: date | None = None) -> list[Predicate]:
    """Index predicates of a filter; 422 naming the parameter for values that cannot match."""
    where: list[Predicate] = []
    errors: list[dict[str, str]] = []
    if f.name is not None:
        prefix, pinyin = query_form(f.name)
        if not prefix:
            errors.append({"field": "name", "in": "query", "message": "must not be blank"})
        elif pinyin:
            where.append(AnyOf([Prefix("name", prefix), Prefix("pinyin", pinyin)]))
        else:
            where.append(Prefix("name", prefix))
    if f.national_id is not None:
        where.append(Eq("national_id", national_id.normalize(f.national_id)))
    if f.phone is not None:
        try:
            where.append(Eq("phone", normalize_phone(f.phone)))
        except ValueError as exc:
            errors.append({"field": "phone", "in": "query", "message": str(exc)})
    if f.place is not None:
        if not is_code(f.place):
            errors.append({"field": "place", "in": "query", "message": "not a place code"})
        else:
            where.append(Eq("place", f.place))
    if f.status is not None:
        where.append(Eq("status", f.status))
    else:
        # A merged record is a redirect to its survivor, not a person to list twice.
        where.append(Not(Eq("status", "merged")))
    if f.review is not None:
        where.append(Eq("review", f.review))
    today = today or date.today()
    low: datetime | None = None  # birth >= low
    high: datetime | None = None  # birth < high
    if f.age_max is not None:  # younger than age_max + 1 years
        low = day_instant(_years_before(today, f.age_max + 1)) + ONE_DAY
    if f.age_min is not None:
        high = day_instant(_years_before(today, f.age_min)) + ONE_DAY
    if f.born_from is not None:
        low = max(low, day_instant(f.born_from)) if low else day_instant(f.born_from)
    if f.born_to is not None:
        end = day_instant(f.born_to) + ONE_DAY
        high = min(high, end) if high else end
    if low is not None or high is not None:
        where.append(Range("birth", ge=low, lt=high))
    if errors:
        raise Unprocessable("The search has invalid parameters.", errors=errors)
    return where


class Searcher:
    """Resident search, counts and the audit trail queries."""

    def __init__(self, service: RegistryService) -> None:
        self.service = service
        self.repo = service.repo

    async def residents(
        self, caller: Caller, f: ResidentFilter, *, limit: int, cursor: str | None, query: str
    ) -> Page:
        """One page of residents in the caller's reach (the search is audited)."""
        access = caller.access
        access.require_registry()
        await self.service.audit.room()
        where = [*access.search_scope(), *predicates(f)]
        if not access.reads_all and access.scope is None:
            # A citizen: their own record and their household's members.
            ids = [access.citizen_id or ""]
            household = await self.service.own_household(caller)
            if household:
                ids += [r.id for r in await self.repo.members(household)]
            where.append(In("_id", ids))
        if not where:
            where.append(Range("birth", ge=datetime(1, 1, 1, tzinfo=UTC)))
        page = await self.repo.search_residents(Query(where=where, limit=limit, cursor=cursor))
        self.service.audit.add(
            entry(
                access,
                "resident.search",
                [r.id for r in page.items],
                detail=query or None,
                client=caller.client,
            )
        )
        return page

    async def counts(self, caller: Caller, code: str) -> dict[str, Any]:
        """Residents by status for every community in or under a place."""
        access = caller.access
        access.require_registry()
        place = await self.repo.place(code)
        if place is None:
            raise NotFound(f"There is no place {code}.")
        if not access.reads_place(code):
            raise InsufficientScope(f"Place {code} is outside your jurisdiction.")
        if level_of(code) == "community":
            communities = [place]
        else:
            communities = []
            for child in await self.repo.children(code):
                if child.body["level"] == "community":
                    communities.append(child)
                else:
                    communities.extend(await self.repo.children(child.body["code"]))
        rows = []
        total = {"active": 0, "moved_out": 0, "deceased": 0, "pending_review": 0}
        for c in communities:
            here = Eq("place", c.body["code"])
            row = {
                "active": await self.repo.count_residents([here, Eq("status", "active")]),
                "moved_out": await self.repo.count_residents([here, Eq("status", "moved-out")]),
                "deceased": await self.repo.count_residents([here, Eq("status", "deceased")]),
                "pending_review": await self.repo.count_residents([here, Eq("review", "pending")]),
            }
            for k, v in row.items():
                total[k] += v
            rows.append({"code": c.body["code"], "name": c.body["name"], **row})
        return {"place": code, "communities": rows, "total": total}

    async def access_log(
        self, caller: Caller, resident: str, *, limit: int, cursor: str | None
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Who did what with one resident's record, newest first."""
        access = caller.access
        access.require_registry()
        own = access.citizen_id == resident
        if not own:
            await self.service.load(caller, resident, "resident.access-log")
            if not (access.reads_all or access.scope is not None):
                # A household member's log is theirs alone to read.
                raise NotFound(f"Resident {resident} is not known.")
        page = await self.repo.search_audit([Eq("resident", resident)], limit=limit, cursor=cursor)
        for_citizen = own and access.scope is None and not access.reads_all
        return [public_entry(r.body, for_citizen=for_citizen) for r in page.items], (
            page.next_cursor
        )

    async def trail(
        self,
        caller: Caller,
        *,
        resident: str | None,
        actor: str | None,
        since: datetime | None,
        until: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """The whole trail, for auditors (and admins)."""
        access = caller.access
        if not (access.is_auditor or access.is_admin):
            raise InsufficientScope("Only auditors search the audit trail.")
        where: list[Predicate] = []
        if resident:
            where.append(Eq("resident", resident))
        if actor:
            where.append(Eq("actor", actor))
        if since or until or not where:
            where.append(Range("at", ge=since or datetime(1, 1, 1, tzinfo=UTC), lt=until))
        page = await self.repo.search_audit(where, limit=limit, cursor=cursor)
        return [public_entry(r.body, for_citizen=False) for r in page.items], page.next_cursor
