"""Request and response models of the tourism service (schema.org TouristAttraction,
TouristDestination, LodgingBusiness, Restaurant, Event, Review), pydantic with unknown
members refused, so every problem comes back as a field error with a JSON pointer.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    model_validator,
)

from services.tourism import hours
from services.tourism.vocab import ACCESSIBILITY_FEATURES, CATEGORIES
from shared.errors import Unprocessable, field_problem
from shared.schemas import Bilingual as Bilingual
from shared.schemas import BilingualLong as BilingualLong
from shared.schemas import LongText as LongText
from shared.schemas import ShortText as ShortText
from shared.schemas import non_blank, unique

PlaceType = Literal["TouristAttraction", "TouristDestination", "LodgingBusiness", "Restaurant"]
State = Literal["active", "retired"]
EventStatus = Literal["scheduled", "cancelled", "postponed"]
ID = r"^[0-9a-f]{32}$"
MAX_SPECIAL_DAYS = 400


def _in(vocabulary: Any, what: str) -> Any:
    def check(value: str) -> str:
        if value not in vocabulary:
            raise ValueError(f"unknown {what} {value!r}; one of: {', '.join(vocabulary)}")
        return value

    return AfterValidator(check)


def _zone(name: str) -> str:
    try:
        hours.zone(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r} (an IANA name such as Asia/Shanghai)"
        ) from None
    return name


Tag = Annotated[str, Field(min_length=1, max_length=40), AfterValidator(non_blank)]
Clock = Annotated[str, Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$|^24:00$")]
Day = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
Category = Annotated[str, _in(CATEGORIES, "category")]
Feature = Annotated[str, _in(ACCESSIBILITY_FEATURES, "accessibility feature")]
Wheelchair = Literal["yes", "limited", "no", "unknown"]
PlaceId = Annotated[str, Field(pattern=ID)]


class Strict(BaseModel):
    """Request bodies: unknown members are an error, not silently dropped."""

    # The same as `shared.schemas.Strict`, declared here so that ruff sees the models below
    # are pydantic ones (RUF012 follows base classes within a file only).
    model_config = ConfigDict(extra="forbid")


class GeoPoint(Strict):
    """schema.org `GeoCoordinates` (WGS 84 degrees)."""

    latitude: float = Field(ge=-90, le=90)
    longitude: float = Field(ge=-180, le=180)


class Address(Strict):
    """schema.org `PostalAddress`."""

    street_address: ShortText | None = None
    locality: ShortText | None = None
    region: ShortText | None = None
    postal_code: Annotated[str, Field(pattern=r"^[0-9A-Za-z -]{3,10}$")] | None = None
    country: Annotated[str, Field(pattern=r"^[A-Z]{2}$")] = "CN"


class Regular(Strict):
    """Weekly hours: the days, and one opening range (overnight when `closes` <= `opens`)."""

    day_of_week: Annotated[list[Day], Field(min_length=1, max_length=7), AfterValidator(unique)]
    opens: Clock
    closes: Clock

    @model_validator(mode="after")
    def _range(self) -> Regular:
        if self.opens == "24:00" or self.opens == self.closes:
            raise ValueError("opens must be before closes (or closes after midnight)")
        return self


class Special(Strict):
    """Dates off the weekly pattern: other hours, or closed (no `opens`/`closes`)."""

    valid_from: date
    valid_through: date | None = None
    opens: Clock | None = None
    closes: Clock | None = None

    @model_validator(mode="after")
    def _range(self) -> Special:
        if (self.opens is None) != (self.closes is None):
            raise ValueError("give both opens and closes, or neither (closed)")
        if self.opens is not None and (self.opens == "24:00" or self.opens == self.closes):
            raise ValueError("opens must be before closes (or closes after midnight)")
        last = self.valid_through or self.valid_from
        if last < self.valid_from:
            raise ValueError("valid_through must not be before valid_from")
        if last - self.valid_from > timedelta(days=366):
            raise ValueError("a special entry covers at most 366 days")
        return self


class OpeningHours(Strict):
    """Regular and special opening hours in a time zone (see hours.py for the rules)."""

    time_zone: Annotated[str, AfterValidator(_zone)] = hours.DEFAULT_ZONE
    regular: Annotated[list[Regular], Field(max_length=50)] = []
    special: Annotated[list[Special], Field(max_length=100)] = []

    @model_validator(mode="after")
    def _bounded(self) -> OpeningHours:
        dumped = [s.model_dump(mode="json") for s in self.special]
        if hours.special_days(dumped) > MAX_SPECIAL_DAYS:
            raise ValueError(f"special entries cover at most {MAX_SPECIAL_DAYS} dates in all")
        return self


class Price(Strict):
    """An admission price (schema.org `PriceSpecification`)."""

    name: Bilingual | None = None
    price: float = Field(ge=0, le=1_000_000)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"


class Accessibility(Strict):
    """Wheelchair access and other accessibility features."""

    wheelchair: Wheelchair = "unknown"
    features: Annotated[list[Feature], Field(max_length=20), AfterValidator(unique)] = []


class Contact(Strict):
    """How to reach a place."""

    telephone: Annotated[str, Field(pattern=r"^\+?[0-9][0-9 \-]{4,19}$")] | None = None
    email: (
        Annotated[str, Field(pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$", max_length=254)] | None
    ) = None
    url: HttpUrl | None = None


class PlaceIn(Strict):
    """Body of `POST /places`, and what a place must be after any change."""

    type: PlaceType
    name: Bilingual
    description: BilingualLong | None = None
    category: Category
    address: Address | None = None
    geo: GeoPoint
    opening_hours: OpeningHours | None = None
    is_accessible_for_free: bool = False
    admission: Annotated[list[Price], Field(max_length=10)] = []
    accessibility: Accessibility = Accessibility()
    contact: Contact | None = None
    images: Annotated[list[HttpUrl], Field(max_length=20)] = []
    tags: Annotated[list[Tag], Field(max_length=20), AfterValidator(unique)] = []
    includes_attraction: Annotated[
        list[PlaceId], Field(max_length=100), AfterValidator(unique)
    ] = []

    @model_validator(mode="after")
    def _consistent(self) -> PlaceIn:
        if self.type not in CATEGORIES[self.category][2]:
            raise ValueError(f"category {self.category!r} does not fit a {self.type}")
        if self.is_accessible_for_free and any(p.price > 0 for p in self.admission):
            raise ValueError("a free place has no admission price above 0")
        if self.includes_attraction and self.type != "TouristDestination":
            raise ValueError("only a TouristDestination includes attractions")
        return self


class PlacePatch(Strict):
    """Body of `PATCH /places/{id}`: members given replace the stored ones (`null` clears an
    optional one); the result must still be a valid place."""

    type: Any = None
    name: Any = None
    description: Any = None
    category: Any = None
    address: Any = None
    geo: Any = None
    opening_hours: Any = None
    is_accessible_for_free: Any = None
    admission: Any = None
    accessibility: Any = None
    contact: Any = None
    images: Any = None
    tags: Any = None
    includes_attraction: Any = None


def validate_as(model: type[BaseModel], data: dict[str, Any], prefix: tuple[Any, ...] = ()) -> Any:
    """`data` validated as `model`; 422 with pointers (under `prefix`) into the body."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable(
            "The changed document is not valid.", errors=problems(exc, prefix)
        ) from None


def problems(exc: ValidationError, prefix: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
    """Field problems of a pydantic error, with JSON pointers under `prefix`."""
    return [field_problem({**e, "loc": ("body", *prefix, *e["loc"])}) for e in exc.errors()]


class Offer(Strict):
    """schema.org `Offer` of an event."""

    name: Bilingual | None = None
    price: float = Field(ge=0, le=1_000_000)
    currency: Annotated[str, Field(pattern=r"^[A-Z]{3}$")] = "CNY"
    url: HttpUrl | None = None


class EventIn(Strict):
    """Body of `POST /events` (schema.org Event), and an event after any change."""

    name: Bilingual
    description: BilingualLong | None = None
    start_date: AwareDatetime
    end_date: AwareDatetime
    location: PlaceId
    event_status: EventStatus = "scheduled"
    previous_start_date: AwareDatetime | None = None
    is_accessible_for_free: bool = False
    offers: Annotated[list[Offer], Field(max_length=10)] = []
    images: Annotated[list[HttpUrl], Field(max_length=20)] = []
    tags: Annotated[list[Tag], Field(max_length=20), AfterValidator(unique)] = []

    @model_validator(mode="after")
    def _consistent(self) -> EventIn:
        if self.end_date <= self.start_date:
            raise ValueError("end_date must be after start_date")
        if self.end_date - self.start_date > timedelta(days=366):
            raise ValueError("an event lasts at most 366 days")
        if self.event_status == "postponed" and self.previous_start_date is None:
            raise ValueError("a postponed event gives its previous_start_date")
        if self.event_status != "postponed" and self.previous_start_date is not None:
            raise ValueError("previous_start_date is only for a postponed event")
        return self


class EventPatch(Strict):
    """Body of `PATCH /events/{id}`: members given replace the stored ones."""

    name: Any = None
    description: Any = None
    start_date: Any = None
    end_date: Any = None
    location: Any = None
    event_status: Any = None
    previous_start_date: Any = None
    is_accessible_for_free: Any = None
    offers: Any = None
    images: Any = None
    tags: Any = None


class ReviewIn(Strict):
    """Body of `PUT /places/{id}/reviews/mine`: a citizen's rating (1-5) and comment."""

    rating: int = Field(ge=1, le=5)
    comment: Annotated[str, Field(max_length=2000)] | None = None


class Page(BaseModel):
    """One page of a list."""

    items: list[dict[str, Any]]
    next: str | None = None
