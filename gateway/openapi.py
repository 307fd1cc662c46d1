"""One API description: the services' OpenAPI documents merged under their prefixes.

Each service's document is fetched from its upstream (`/openapi.json`) and cached; paths
get the service's public prefix, component names the service's name (two services may
both define `Problem` or `Resource`), and every `$ref` follows. A service that cannot be
reached is left out and named in `x-huimin-unavailable`, and asked again sooner.
"""

from __future__ import annotations

import asyncio
import copy
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp

from gateway.proxy import Upstream

logger = logging.getLogger(__name__)

# Probes and scrapes of each service: the gateway has its own, documented once.
_OPS_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})
_REF_PREFIX = "#/components/"
# Security schemes are referred to by name from `security`, not by $ref: kept unrenamed
# (every service declares the same bearer scheme).
_UNRENAMED = frozenset({"securitySchemes"})
RETRY_UNAVAILABLE_SECONDS = 5.0
FHIR_PREFIX = "/fhir"

Document = dict[str, Any]


def merge(base: Document, services: Mapping[str, tuple[str, Document]]) -> Document:
    """`base` (the gateway's own document) plus each service's `(prefix, document)`."""
    merged = copy.deepcopy(base)
    paths: dict[str, Any] = merged.setdefault("paths", {})
    components: dict[str, dict[str, Any]] = merged.setdefault("components", {})
    tags: list[dict[str, Any]] = merged.setdefault("tags", [])
    for name, (prefix, document) in sorted(services.items()):
        renamed = _rename_refs(document, name)
        for kind, entries in (renamed.get("components") or {}).items():
            target = components.setdefault(kind, {})
            for key, value in entries.items():
                target[key if kind in _UNRENAMED else f"{name}_{key}"] = value
        for path, item in (renamed.get("paths") or {}).items():
            if path in _OPS_PATHS:
                continue
            paths[prefix + path] = _tag_operations(item, name)
        tag: dict[str, Any] = {
            "name": name,
            "description": (document.get("info") or {}).get("title", name) + f" ({prefix})",
        }
        if prefix == FHIR_PREFIX:
            # FHIR clients discover the server from its CapabilityStatement, not OpenAPI.
            tag["externalDocs"] = {
                "description": "FHIR R4 CapabilityStatement",
                "url": f"{FHIR_PREFIX}/metadata",
            }
            merged["x-fhir-capability-statement"] = f"{FHIR_PREFIX}/metadata"
        tags.append(tag)
    return merged


def _rename_refs(node: Any, service: str) -> Any:
    if isinstance(node, dict):
        return {key: _rename_refs(value, service) for key, value in node.items()}
    if isinstance(node, list):
        return [_rename_refs(value, service) for value in node]
    if isinstance(node, str) and node.startswith(_REF_PREFIX):
        kind, _, key = node[len(_REF_PREFIX) :].partition("/")
        if kind not in _UNRENAMED:
            return f"{_REF_PREFIX}{kind}/{service}_{key}"
    return node


def _tag_operations(item: dict[str, Any], service: str) -> dict[str, Any]:
    for operation in item.values():
        if isinstance(operation, dict) and ("responses" in operation or "summary" in operation):
            operation["tags"] = [service]
            if "operationId" in operation:
                operation["operationId"] = f"{service}_{operation['operationId']}"
    return item


class MergedOpenAPI:
    """The merged document, fetched at most every `ttl` seconds (one fetch at a time)."""

    def __init__(
        self,
        base: Callable[[], Document],
        upstreams: Callable[[], Mapping[str, Upstream]],
        mounts: Mapping[str, str],
        ttl: float,
    ) -> None:
        self._base = base
        self._upstreams = upstreams
        self._mounts = dict(mounts)
        self._ttl = ttl
        self._lock = asyncio.Lock()
        self._document: Document | None = None
        self._expires = 0.0

    async def document(self) -> Document:
        """The merged document (cached)."""
        async with self._lock:
            if self._document is None or time.monotonic() >= self._expires:
                self._document, complete = await self._build()
                wait = self._ttl if complete else min(self._ttl, RETRY_UNAVAILABLE_SECONDS)
                self._expires = time.monotonic() + wait
            return self._document

    async def _build(self) -> tuple[Document, bool]:
        upstreams = self._upstreams()
        names = [name for name in self._mounts if name in upstreams]
        fetched = await asyncio.gather(*(_fetch(upstreams[name]) for name in names))
        found = {
            name: (self._mounts[name], doc)
            for name, doc in zip(names, fetched, strict=True)
            if doc is not None
        }
        merged = merge(self._base(), found)
        missing = sorted(set(names) - set(found))
        if missing:
            merged["x-huimin-unavailable"] = missing
        return merged, not missing


async def _fetch(upstream: Upstream) -> Document | None:
    try:
        async with upstream.session.get(
            upstream.base_url + "/openapi.json", timeout=aiohttp.ClientTimeout(total=5)
        ) as response:
            if response.status != 200:
                raise RuntimeError(f"status {response.status}")
            document = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, RuntimeError, ValueError) as exc:
        logger.warning("OpenAPI of %s unavailable: %r", upstream.name, exc)
        return None
    return document if isinstance(document, dict) else None
