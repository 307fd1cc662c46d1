"""Request and response models of the registry API (pydantic; unknown fields are refused).

Format checks that need nothing but the value (national ID check digit, phone, place
codes, dates in the future) live here so that they come back as field errors with a JSON
pointer; checks across fields or against stored data live in the service.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from services.registry import national_id
from services.registry.names import clean
from services.registry.places import is_code

Sex = Literal["male", "female", "unknown"]
Status = Literal["active", "moved-out", "deceased"]
# As stored and served: a duplicate retired by a merge is `merged` (never set by PATCH).
RecordStatus = Literal["active", "moved-out", "deceased", "merged"]
Relationship = Literal[
    "head",
    "spouse",
    "child",
    "parent",
    "grandchild",
    "grandparent",
    "sibling",
    "child-in-law",
    "parent-in-law",
    "other-relative",
    "other",
]
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
RESIDENT_ID = r"^R-\d{8}$"
HOUSEHOLD_ID = r"^H-\d{8}$"


def normalize_phone(value: str) -> str:
    """A mainland mobile number as 11 digits (`+86`, spaces and dashes accepted)."""
    digits = re.sub(r"[\s\-()]", "", value)
    if digits.startswith("+86"):
        digits = digits[3:]
    elif digits.startswith("0086"):
        digits = digits[4:]
    if not _MOBILE.match(digits):
        raise ValueError("must be a mainland China mobile number: 11 digits starting 13-19")
    return digits


def _national_id(value: str) -> str:
    try:
        return national_id.parse(value).number
    except national_id.NationalIdError as exc:
        raise ValueError(str(exc)) from None


def _community(value: str) -> str:
    if not is_code(value, level="community"):
        raise ValueError("must be a community code such as 110101/002/007")
    return value


def _past(value: date) -> date:
    if value > date.today():
        raise ValueError("must not be in the future")
    if value < national_id.EARLIEST_BIRTH:
        raise ValueError("must not be before 1900-01-01")
    return value


def _name(value: str) -> str:
    cleaned = clean(value)
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


NationalIdStr = Annotated[str, Field(max_length=40), AfterValidator(_national_id)]
PhoneStr = Annotated[str, Field(max_length=30), AfterValidator(normalize_phone)]
CommunityCode = Annotated[str, Field(max_length=20), AfterValidator(_community)]
PastDate = Annotated[date, AfterValidator(_past)]
ZhName = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_name)]
LatinName = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(_name)]
AddressLine = Annotated[str, Field(min_length=1, max_length=200)]


class Strict(BaseModel):
    """Request bodies: unknown members are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class NameIn(Strict):
    """A person's name in Chinese and/or Latin letters (at least one)."""

    zh: ZhName | None = None
    latin: LatinName | None = None

    @model_validator(mode="after")
    def _one(self) -> NameIn:
        if self.zh is None and self.latin is None:
            raise ValueError("give the name in Chinese (zh), Latin letters (latin) or both")
        return self


class AddressIn(Strict):
    """Address line within a community."""

    line: AddressLine
    community: CommunityCode


class RegisterResident(Strict):
    """Body of `POST /residents`."""

    name: NameIn
    sex: Sex
    birth_date: PastDate
    national_id: NationalIdStr | None = None
    phone: PhoneStr | None = None
    address: AddressIn


class UpdateResident(Strict):
    """Body of `PATCH /residents/{id}`: the members given replace the stored ones (`null`
    clears phone or national ID)."""

    name: NameIn | None = None
    sex: Sex | None = None
    birth_date: PastDate | None = None
    national_id: NationalIdStr | None = None
    phone: PhoneStr | None = None
    address: AddressIn | None = None
    status: Status | None = None
    deceased_date: PastDate | None = None


class Name(BaseModel):
    """A name as stored."""

    zh: str | None = None
    latin: str | None = None


class Address(BaseModel):
    """An address as stored."""

    line: str
    community: str


class HouseholdRef(BaseModel):
    """The household a resident belongs to."""

    id: str
    relationship: Relationship


class Candidate(BaseModel):
    """A probable duplicate of a newly registered resident."""

    resident_id: str
    reasons: list[str]


class Review(BaseModel):
    """Duplicate review state (`pending` until an officer decides)."""

    status: Literal["pending", "resolved"]
    candidates: list[Candidate] = []


class AccountRef(BaseModel):
    """The resident's linked login (details at `/residents/{id}/account`)."""

    username: str
    linked_at: str


class Resident(BaseModel):
    """A resident record. `national_id` and `phone` are masked unless `masked` is false."""

    id: str
    version: int
    name: Name
    sex: Sex
    birth_date: date
    national_id: str | None = None
    phone: str | None = None
    address: Address
    status: RecordStatus
    deceased_date: date | None = None
    household: HouseholdRef | None = None
    review: Review | None = None
    merged_into: str | None = None
    account: AccountRef | None = None
    masked: bool
    registered_at: str
    updated_at: str


class ResidentSummary(BaseModel):
    """A search hit: enough to pick the right person, nothing more (no ID, no phone)."""

    id: str
    name: Name
    sex: Sex
    birth_date: date
    community: str
    status: RecordStatus
    review: Literal["pending", "resolved"] | None = None


class ResidentPage(BaseModel):
    """One page of search results; `next` is the URL of the following page."""

    items: list[ResidentSummary]
    next: str | None = None


class HistoryPage(BaseModel):
    """Versions of a resident, newest first."""

    items: list[Resident]
    next: str | None = None


class MemberIn(Strict):
    """A member to put in a household."""

    resident_id: Annotated[str, Field(pattern=RESIDENT_ID)]
    relationship: Relationship


class CreateHousehold(Strict):
    """Body of `POST /households`: exactly one member is the head."""

    community: CommunityCode
    address: AddressLine
    members: Annotated[list[MemberIn], Field(min_length=1, max_length=50)]

    @model_validator(mode="after")
    def _one_head(self) -> CreateHousehold:
        heads = [m for m in self.members if m.relationship == "head"]
        if len(heads) != 1:
            raise ValueError("exactly one member must have the relationship head")
        ids = [m.resident_id for m in self.members]
        if len(set(ids)) != len(ids):
            raise ValueError("a resident is listed twice")
        return self


class AddMember(Strict):
    """Body of `POST /households/{id}/members` (not the head: change the head with PATCH)."""

    resident_id: Annotated[str, Field(pattern=RESIDENT_ID)]
    relationship: Relationship


class MoveMember(Strict):
    """Body of `POST /households/{id}/members/{resident}/move`."""

    to: Annotated[str, Field(pattern=HOUSEHOLD_ID)]
    relationship: Relationship


class UpdateHousehold(Strict):
    """Body of `PATCH /households/{id}`: a new address line and/or new relationships
    (resident id → relationship) of existing members; exactly one head must remain."""

    address: AddressLine | None = None
    relationships: Annotated[dict[str, Relationship] | None, Field(max_length=50)] = None


class Member(BaseModel):
    """A household member with the name to recognise them."""

    resident_id: str
    relationship: Relationship
    name: Name
    status: Status


class Household(BaseModel):
    """A household and its members."""

    id: str
    version: int
    community: str
    address: str
    head: str
    members: list[Member]


class PlaceName(BaseModel):
    """A place name in Chinese and English."""

    zh: str
    en: str


class Place(BaseModel):
    """A district, street or community."""

    code: str
    level: Literal["district", "street", "community"]
    parent: str | None = None
    name: PlaceName


class PlaceList(BaseModel):
    """Places (children of a place, or the districts)."""

    items: list[Place]


class ImportResult(BaseModel):
    """What a places import did."""

    created: int
    updated: int
    unchanged: int


class CommunityCount(BaseModel):
    """Residents of one community by status."""

    code: str
    name: PlaceName
    active: int
    moved_out: int
    deceased: int
    pending_review: int


class Counts(BaseModel):
    """Per-community counts under a place."""

    place: str
    communities: list[CommunityCount]
    total: dict[str, int]


class AuditEntry(BaseModel):
    """One audit record: who did what to which residents, when, and how it ended."""

    id: str
    at: str
    action: str
    outcome: str
    actor: dict[str, Any]
    residents: list[str] = []
    detail: str | None = None


class AuditPage(BaseModel):
    """One page of audit records, newest first."""

    items: list[AuditEntry]
    next: str | None = None


class ImportRows(BaseModel):
    """Progress of an import job, in rows of the file."""

    total: int
    done: int
    created: int
    existing: int
    updated: int
    failed: int


class ImportJob(BaseModel):
    """A bulk import job (`POST /imports`): state `queued`, `running`, `done` or `failed`."""

    id: str
    state: Literal["queued", "running", "done", "failed"]
    filename: str
    encoding: str
    rows: ImportRows
    error: str | None = None
    owner: str | None = None
    created_at: str
    started_at: str | None = None
    finished_at: str | None = None
    errors: str


class ImportJobPage(BaseModel):
    """Import jobs of the caller, newest first."""

    items: list[ImportJob]
    next: str | None = None


class RowProblem(BaseModel):
    """One problem of a row: the column (None for the line as a whole) and what is wrong."""

    field: str | None = None
    message: str


class ImportRowError(BaseModel):
    """A failed row: its line number in the file (the header is line 1) and its problems."""

    row: int
    errors: list[RowProblem]


class ImportErrorPage(BaseModel):
    """Failed rows of a job in file order."""

    items: list[ImportRowError]
    next: str | None = None
