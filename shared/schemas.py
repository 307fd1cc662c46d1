"""Request-model pieces the services share: bodies that refuse unknown members, and
Chinese/English text fields cleaned of stray white space. Pydantic models, so every problem
comes back as a field error with a JSON pointer."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

_SPACE = re.compile(r"\s+")


def clean(value: str) -> str:
    """Trimmed text with runs of white space as one space."""
    return _SPACE.sub(" ", value).strip()


def non_blank(value: str) -> str:
    """`clean` text, refusing a text that is only white space."""
    cleaned = clean(value)
    if not cleaned:
        raise ValueError("must not be blank")
    return cleaned


def unique(values: list[Any]) -> list[Any]:
    """The values in their order, each once (repeats in a list field are dropped)."""
    return list(dict.fromkeys(values))


ShortText = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(non_blank)]
LongText = Annotated[str, Field(min_length=1, max_length=4000), AfterValidator(non_blank)]


class Strict(BaseModel):
    """Request bodies: unknown members are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")


class Bilingual(Strict):
    """A short text in Chinese and/or English (at least one)."""

    zh: ShortText | None = None
    en: ShortText | None = None

    @model_validator(mode="after")
    def _one(self) -> Bilingual:
        if self.zh is None and self.en is None:
            raise ValueError("give the text in Chinese (zh), English (en) or both")
        return self


class BilingualLong(Strict):
    """A description in Chinese and/or English."""

    zh: LongText | None = None
    en: LongText | None = None
