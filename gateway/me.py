"""`GET /me`: the resident-360 view, assembled from the services in parallel.

Every call carries the caller's own token, so each service applies its own rules (a citizen
sees only their own record). The whole answer has one deadline: a section that is not back
by then, or whose service is down, is marked and the rest is returned (`complete: false`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Mapping
from typing import Any

import aiohttp
from opentelemetry import propagate
from starlette.requests import Request

from gateway.proxy import Upstream
from gateway.resilience import BreakerState
from shared.auth import Principal
from shared.errors import Forbidden

logger = logging.getLogger(__name__)

RESIDENT_SYSTEM = "https://huimin.example/sid/resident-id"
LATEST_OBSERVATIONS = 5
# What the health summary lists, by FHIR type, and how each search is narrowed.
_HEALTH_SEARCHES: dict[str, dict[str, str]] = {
    "conditions": {"type": "Condition", "_count": "50"},
    "allergies": {"type": "AllergyIntolerance", "_count": "50"},
    "observations": {"type": "Observation", "_sort": "-date", "_count": str(LATEST_OBSERVATIONS)},
    "immunizations": {"type": "Immunization", "_count": "50"},
}

Section = dict[str, Any]


class SectionFailed(Exception):
    """A service gave no usable answer; `status` says how (unavailable, forbidden...)."""

    def __init__(self, status: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ResidentView:
    """Builds `/me` from the registry, health and education upstreams."""

    def __init__(self, upstreams: Mapping[str, Upstream], deadline: float) -> None:
        self.upstreams = upstreams
        self.deadline = deadline

    async def build(self, request: Request, principal: Principal) -> dict[str, Any]:
        """The caller's resident-360 document."""
        resident = principal.resident_id
        if not resident:
            raise Forbidden("/me is for residents: the token carries no resident_id.")
        headers = _forwarded_headers(request)
        parts: dict[str, Awaitable[Section]] = {
            "registry": self._registry(resident, headers),
            "health": self._health(resident, headers),
            "education": self._education(headers),
        }
        tasks = {name: asyncio.ensure_future(coro) for name, coro in parts.items()}
        _, pending = await asyncio.wait(tasks.values(), timeout=self.deadline)
        for task in pending:
            task.cancel()
        sections: dict[str, Section] = {}
        for name, task in tasks.items():
            if task in pending:
                sections[name] = {
                    "status": "timeout",
                    "detail": f"no answer in {self.deadline:g} s",
                }
            elif isinstance(task.exception(), SectionFailed):
                failed = task.exception()
                assert isinstance(failed, SectionFailed)
                sections[name] = {"status": failed.status, "detail": failed.detail}
            elif task.exception() is not None:
                logger.warning("/me section %s failed: %r", name, task.exception())
                sections[name] = {"status": "unavailable", "detail": "unexpected error"}
            else:
                sections[name] = {"status": "ok", **task.result()}
        complete = all(section["status"] == "ok" for section in sections.values())
        return {"resident_id": resident, "complete": complete, **sections}

    async def _registry(self, resident: str, headers: dict[str, str]) -> Section:
        record, household = await asyncio.gather(
            self._get("registry", f"/residents/{resident}", headers),
            self._get("registry", f"/residents/{resident}/household", headers, missing_ok=True),
        )
        return {"record": record, "household": household}

    async def _health(self, resident: str, headers: dict[str, str]) -> Section:
        found = await self._get(
            "health", "/Patient", headers, params={"identifier": f"{RESIDENT_SYSTEM}|{resident}"}
        )
        entries = (found or {}).get("entry") or []
        if not entries:
            return {"patient": None, **{key: [] for key in _HEALTH_SEARCHES}}
        patient = entries[0].get("resource") or {}
        reference = f"Patient/{patient.get('id')}"
        names = list(_HEALTH_SEARCHES)
        bundles = await asyncio.gather(
            *(
                self._get(
                    "health",
                    "/" + _HEALTH_SEARCHES[key]["type"],
                    headers,
                    params={
                        "patient": reference,
                        **{k: v for k, v in _HEALTH_SEARCHES[key].items() if k != "type"},
                    },
                )
                for key in names
            )
        )
        summary: Section = {"patient": patient}
        for key, bundle in zip(names, bundles, strict=True):
            summary[key] = [e.get("resource") for e in (bundle or {}).get("entry") or []]
        return summary

    async def _education(self, headers: dict[str, str]) -> Section:
        return {"enrollments": await self._get("education", "/me/enrollments", headers)}

    async def _get(
        self,
        service: str,
        path: str,
        headers: dict[str, str],
        *,
        params: Mapping[str, str] | None = None,
        missing_ok: bool = False,
    ) -> Any:
        upstream = self.upstreams.get(service)
        if upstream is None:
            raise SectionFailed("unavailable", f"no {service} upstream is configured")
        if upstream.breaker.state is BreakerState.open:
            raise SectionFailed("unavailable", f"the {service} service is failing")
        try:
            async with upstream.session.get(
                upstream.base_url + path, headers=headers, params=params
            ) as response:
                if response.status == 404 and missing_ok:
                    return None
                if response.status in (401, 403):
                    raise SectionFailed("forbidden", f"{service} refused ({response.status})")
                if response.status != 200:
                    raise SectionFailed(
                        "unavailable", f"{service} answered {response.status} for {path}"
                    )
                return await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SectionFailed("unavailable", f"the {service} service cannot be reached") from exc


def _forwarded_headers(request: Request) -> dict[str, str]:
    headers = {"Authorization": request.headers["authorization"], "Accept": "application/json"}
    request_id = request.scope.get("state", {}).get("request_id")
    if request_id:
        headers["X-Request-ID"] = request_id
    propagate.inject(headers)  # the services' spans join the caller's trace
    return headers
