"""Request and response models of the learning-resource catalogue (schema.org
LearningResource / LRMI), pydantic with unknown members refused.

Field names follow schema.org in snake case (`educational_level`, `learning_resource_type`,
`in_language`, `educational_alignment`, `accessibility_feature`, `teaches`). Facet fields
take codes from `vocab.py`; everything that needs only the value is checked here, so it
comes back as a field error with a JSON pointer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    HttpUrl,
    ValidationError,
    model_validator,
)

from services.education.vocab import (
    ACCESSIBILITY_FEATURES,
    LANGUAGES,
    LEVELS,
    LICENSES,
    SUBJECTS,
    TYPES,
)
from shared.errors import Unprocessable, field_problem
from shared.schemas import Bilingual as Bilingual
from shared.schemas import BilingualLong as BilingualLong
from shared.schemas import LongText as LongText
from shared.schemas import ShortText as ShortText
from shared.schemas import non_blank, unique

State = Literal["draft", "published", "retired"]
RESOURCE_ID = r"^[0-9a-f]{32}$"


def _in(vocabulary: Any, what: str) -> Any:
    def check(value: str) -> str:
        if value not in vocabulary:
            shown = ", ".join(sorted(vocabulary))
            raise ValueError(f"unknown {what} {value!r}; one of: {shown}")
        return value

    return AfterValidator(check)


Keyword = Annotated[str, Field(min_length=1, max_length=50), AfterValidator(non_blank)]
Subject = Annotated[str, _in(SUBJECTS, "subject")]
Level = Annotated[str, _in(LEVELS, "educational level")]
ResourceType = Annotated[str, _in(TYPES, "learning resource type")]
Language = Annotated[str, _in(LANGUAGES, "language")]
License = Annotated[str, _in(LICENSES, "license")]
Feature = Annotated[str, _in(ACCESSIBILITY_FEATURES, "accessibility feature")]
MimeType = Annotated[str, Field(pattern=r"^[a-z]+/[A-Za-z0-9.+\-]+$", max_length=100)]


class Strict(BaseModel):
    """Request bodies: unknown members are an error, not silently dropped."""

    # The same as `shared.schemas.Strict`, declared here so that ruff sees the models below
    # are pydantic ones (RUF012 follows base classes within a file only).
    model_config = ConfigDict(extra="forbid")


class Author(Strict):
    """schema.org `author`: a Person or an Organization."""

    type: Literal["Person", "Organization"] = "Person"
    name: ShortText
    url: HttpUrl | None = None


class Alignment(Strict):
    """schema.org `AlignmentObject`: a curriculum standard the resource is aligned to."""

    alignment_type: Literal["teaches", "assesses", "requires", "educationalLevel"]
    framework: ShortText = Field(description="e.g. 义务教育数学课程标准（2022年版）")
    target_name: ShortText
    target_url: HttpUrl | None = None


class Attachment(Strict):
    """A file that carries the resource (schema.org `MediaObject` metadata)."""

    name: ShortText
    content_url: HttpUrl
    encoding_format: MimeType = Field(description="MIME type, e.g. application/pdf")
    content_size: int = Field(ge=0, le=50 * 2**30, description="bytes")


class ResourceIn(Strict):
    """Body of `POST /resources`, and what a resource must be after any change."""

    name: Bilingual
    description: BilingualLong | None = None
    subject: Annotated[list[Subject], Field(min_length=1, max_length=5), AfterValidator(unique)]
    educational_level: Annotated[
        list[Level], Field(min_length=1, max_length=8), AfterValidator(unique)
    ]
    learning_resource_type: Annotated[
        list[ResourceType], Field(min_length=1, max_length=5), AfterValidator(unique)
    ]
    in_language: Annotated[
        list[Language], Field(min_length=1, max_length=6), AfterValidator(unique)
    ]
    license: License
    keywords: Annotated[list[Keyword], Field(max_length=20), AfterValidator(unique)] = []
    teaches: Annotated[list[ShortText], Field(max_length=20)] = []
    accessibility_feature: Annotated[
        list[Feature], Field(max_length=14), AfterValidator(unique)
    ] = []
    educational_alignment: Annotated[list[Alignment], Field(max_length=20)] = []
    url: HttpUrl | None = None
    attachment: Attachment | None = None
    author: Annotated[list[Author], Field(min_length=1, max_length=10)]
    date_created: date | None = None

    @model_validator(mode="after")
    def _located(self) -> ResourceIn:
        if self.url is None and self.attachment is None:
            raise ValueError("give the resource's url, its attachment, or both")
        if self.date_created is not None and self.date_created > date.today():
            raise ValueError("date_created must not be in the future")
        return self


class ResourcePatch(Strict):
    """Body of `PATCH /resources/{id}`: the members given replace the stored ones (`null`
    clears an optional one); the result must still be a valid resource."""

    name: dict[str, Any] | None = None
    description: dict[str, Any] | None = None
    subject: list[Any] | None = None
    educational_level: list[Any] | None = None
    learning_resource_type: list[Any] | None = None
    in_language: list[Any] | None = None
    license: Any = None
    keywords: list[Any] | None = None
    teaches: list[Any] | None = None
    accessibility_feature: list[Any] | None = None
    educational_alignment: list[Any] | None = None
    url: Any = None
    attachment: dict[str, Any] | None = None
    author: list[Any] | None = None
    date_created: Any = None


def validate_resource(data: dict[str, Any]) -> ResourceIn:
    """A merged (patched) resource checked as a whole; 422 with pointers into the body."""
    try:
        return ResourceIn.model_validate(data)
    except ValidationError as exc:
        errors = [field_problem({**e, "loc": ("body", *e["loc"])}) for e in exc.errors()]
        raise Unprocessable("The changed resource is not valid.", errors=errors) from None


class Owner(BaseModel):
    """The educator who created a resource."""

    sub: str
    username: str | None = None


class Resource(BaseModel):
    """A learning resource as served."""

    id: str
    version: int
    state: State
    owner: Owner
    name: dict[str, str | None]
    description: dict[str, str | None] | None = None
    subject: list[str]
    educational_level: list[str]
    learning_resource_type: list[str]
    in_language: list[str]
    license: str
    keywords: list[str]
    teaches: list[str]
    accessibility_feature: list[str]
    educational_alignment: list[dict[str, Any]]
    url: str | None = None
    attachment: dict[str, Any] | None = None
    author: list[dict[str, Any]]
    date_created: str | None = None
    date_modified: str
    date_published: str | None = None
    date_retired: str | None = None


class FacetValue(BaseModel):
    """One value of a facet and how many matching resources carry it."""

    value: str
    label: dict[str, str]
    count: int


class ResourcePage(BaseModel):
    """One page of a catalogue search, with facet counts over every match."""

    items: list[Resource]
    total: int
    facets: dict[str, list[FacetValue]] | None = None
    next: str | None = None
