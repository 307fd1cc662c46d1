"""The declarative route table (`gateway/routes.toml`), validated once at start-up.

A bad file stops the gateway with a message naming the file, the line and the entry
(`RouteFileError`), never with a traceback or a route silently dropped.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

Method = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
ALL_METHODS: tuple[Method, ...] = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
# Whole segments of unreserved characters: no dot segments, no empty segments, nothing that
# needs percent-encoding, so a prefix compares equal to what the normalised path holds.
_PREFIX = r"^(/[A-Za-z0-9_~-][A-Za-z0-9._~-]*)+$"
_ENTRY_HEADER = re.compile(r"^\s*\[\[\s*routes\s*\]\]")


class RouteFileError(ValueError):
    """The route table cannot be used; the message names the file, line and entry."""


class RouteSpec(BaseModel):
    """One entry of `[[routes]]`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    prefix: str = Field(pattern=_PREFIX)
    upstream: str = Field(min_length=1)
    strip: str | None = Field(default=None, pattern=_PREFIX)
    methods: tuple[Method, ...] = ALL_METHODS
    auth: Literal["public", "authenticated"] = "authenticated"
    public_methods: tuple[Method, ...] = ()
    roles: tuple[str, ...] = ()  # any one of them admits the caller
    scopes: tuple[str, ...] = ()  # every one of them is needed

    @model_validator(mode="after")
    def _consistent(self) -> RouteSpec:
        if self.strip is not None and not _within(self.prefix, self.strip):
            raise ValueError(f"strip {self.strip!r} is not a leading part of {self.prefix!r}")
        stray = sorted(set(self.public_methods) - set(self.methods))
        if stray:
            raise ValueError(f"public_methods {stray} are not among the route's methods")
        if self.auth == "public" and (self.roles or self.scopes):
            raise ValueError("a public route cannot require roles or scopes")
        return self

    def is_public(self, method: str) -> bool:
        """Whether `method` on this route is served without a token."""
        return self.auth == "public" or method in self.public_methods

    @property
    def strip_prefix(self) -> str:
        """The leading path removed before the request goes upstream."""
        return self.strip if self.strip is not None else self.prefix


class RouteFile(BaseModel):
    """The whole file: upstream base URLs and routes."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    upstreams: dict[str, str] = Field(min_length=1)
    routes: list[RouteSpec] = Field(min_length=1)


@dataclass(frozen=True)
class RouteTable:
    """Routes by prefix (longest first) and the upstream base URLs they name."""

    routes: tuple[RouteSpec, ...]
    upstreams: Mapping[str, str]

    def match(self, path: str) -> RouteSpec | None:
        """The route whose prefix is the longest whole-segment match of `path`."""
        for route in self.routes:
            if _within(path, route.prefix):
                return route
        return None

    def mounts(self) -> dict[str, str]:
        """Each upstream's public prefix (a route that strips exactly its own prefix)."""
        found: dict[str, str] = {}
        for route in sorted(self.routes, key=lambda r: len(r.prefix)):
            if route.strip_prefix == route.prefix:
                found.setdefault(route.upstream, route.prefix)
        return found


def _within(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def load_routes(path: Path, upstream_urls: Mapping[str, str] | None = None) -> RouteTable:
    """Read and check the route file; `upstream_urls` overrides the file's URLs."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise RouteFileError(f"{path}: cannot read the route table: {exc.strerror}") from None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise RouteFileError(f"{path}: not valid TOML: {exc}") from None
    try:
        parsed = RouteFile.model_validate(raw)
    except ValidationError as exc:
        raise RouteFileError(_describe(path, text, raw, exc)) from None
    upstreams = {**parsed.upstreams, **(upstream_urls or {})}
    problems = list(_cross_check(parsed.routes, upstreams))
    if problems:
        lines = _entry_lines(text)
        raise RouteFileError(
            "\n".join(f"{path}:{lines.get(i, 1)}: routes[{i}]: {why}" for i, why in problems)
        )
    for name, url in upstreams.items():
        if not re.match(r"^https?://[^/\s]+/?$", url):
            raise RouteFileError(f"{path}: upstream {name!r}: {url!r} is not an http(s) base URL")
    ordered = sorted(parsed.routes, key=lambda r: len(r.prefix), reverse=True)
    return RouteTable(tuple(ordered), {k: v.rstrip("/") for k, v in upstreams.items()})


def _cross_check(
    routes: Iterable[RouteSpec], upstreams: Mapping[str, str]
) -> Iterable[tuple[int, str]]:
    seen: dict[str, int] = {}
    for index, route in enumerate(routes):
        if route.upstream not in upstreams:
            yield index, f"upstream {route.upstream!r} is not in [upstreams]"
        if route.prefix in seen:
            yield (
                index,
                f"prefix {route.prefix!r} is already routed by routes[{seen[route.prefix]}]",
            )
        seen.setdefault(route.prefix, index)


def _entry_lines(text: str) -> dict[int, int]:
    """Line number (1-based) of each `[[routes]]` header, by entry index."""
    numbers = [n for n, line in enumerate(text.splitlines(), 1) if _ENTRY_HEADER.match(line)]
    return dict(enumerate(numbers))


def _describe(path: Path, text: str, raw: object, exc: ValidationError) -> str:
    lines = _entry_lines(text)
    routes = raw.get("routes") if isinstance(raw, dict) else None
    out = []
    for error in exc.errors():
        loc = list(error["loc"])
        where = f"{path}"
        if len(loc) >= 2 and loc[0] == "routes" and isinstance(loc[1], int):
            index = loc[1]
            where += f":{lines.get(index, 1)}: routes[{index}]"
            entry = routes[index] if isinstance(routes, list) and index < len(routes) else None
            if isinstance(entry, dict) and "prefix" in entry:
                where += f" (prefix {entry['prefix']!r})"
            loc = loc[2:]
        field = ".".join(str(part) for part in loc)
        out.append(f"{where}: {field + ': ' if field else ''}{error['msg']}")
    return "\n".join(out)
