"""The events calendar: events that overlap a date range, in start order, paged."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from services.tourism.hours import DEFAULT_ZONE, zone
from services.tourism.repository import EVENTS, TourismRepository
from shared.errors import Unprocessable
from shared.storage import Bounds, Eq, Predicate, Query, Record, Sort, Span

MAX_DAYS = 366


@dataclass(frozen=True, slots=True)
class Calendar:
    """`GET /events`: local dates (Asia/Shanghai), both included, and filters."""

    start: date
    end: date
    location: str | None = None
    status: str | None = None
    state: str = "active"

    def bounds(self) -> tuple[datetime, datetime]:
        """[from midnight, day after `end` midnight) as instants; 422 for a bad range."""
        if self.end < self.start:
            raise Unprocessable(
                "The calendar range ends before it starts.",
                errors=[{"field": "to", "in": "query", "message": "before from"}],
            )
        if (self.end - self.start).days >= MAX_DAYS:
            raise Unprocessable(
                f"The calendar shows at most {MAX_DAYS} days at once.",
                errors=[{"field": "to", "in": "query", "message": f"over {MAX_DAYS} days"}],
            )
        tz = zone(DEFAULT_ZONE)
        low = datetime(self.start.year, self.start.month, self.start.day, tzinfo=tz)
        last = self.end + timedelta(days=1)
        return low, datetime(last.year, last.month, last.day, tzinfo=tz)


async def calendar(
    repo: TourismRepository, c: Calendar, *, limit: int, cursor: str | None
) -> tuple[list[Record], str | None]:
    """Events overlapping the range (starting before its end, ending after its start)."""
    low, high = c.bounds()
    where: list[Predicate] = [Span("when", low=Bounds(lt=high), high=Bounds(gt=low))]
    if c.location:
        where.insert(0, Eq("location", c.location))
    if c.status:
        where.append(Eq("status", c.status))
    where.append(Eq("state", c.state))
    page = await repo.search(
        EVENTS, Query(where=where, sort=[Sort("start")], limit=limit, cursor=cursor)
    )
    return list(page.items), page.next_cursor
