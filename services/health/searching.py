"""Search, history and `$everything`: interactions that answer with a Bundle of many resources.

Paging is stateless: the `_page` parameter of a link carries the store's keyset cursors
(opaque), so a next link stays correct while resources are added or removed, and a previous
link is the cursor stack one step back (kept for the last 50 pages).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import orjson

from services.health.access import PATIENT_DATA
from services.health.repository import compartment_of
from services.health.resources import check_id, check_type, summary_elements
from services.health.search import MAX_CHAIN_MATCHES, Include, SearchPlan
from services.health.searchparams import PATIENT_COMPARTMENT, SEARCH_PARAMS, extract
from services.health.service import Caller, FhirService, _fhir_error
from shared.errors import BadRequest, HuiminError, NotFound
from shared.storage import Eq, In, Predicate, Query, Record
from shared.storage.keys import date_span, fold

MAX_PAGE_STACK = 50
MAX_REVINCLUDE = 1000
SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
}


def encode_page(stack: Sequence[str]) -> str:
    """The `_page` token of a position (the cursors that lead to it)."""
    raw = orjson.dumps(list(stack)[-MAX_PAGE_STACK:])
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page(token: str | None) -> list[str]:
    """The cursor stack of a `_page` token; 400 for a token this server did not make."""
    if not token:
        return []
    try:
        stack = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    except (ValueError, binascii.Error):
        raise BadRequest("The _page token is malformed; follow the Bundle's links.") from None
    if not isinstance(stack, list) or not all(isinstance(c, str) for c in stack):
        raise BadRequest("The _page token is malformed; follow the Bundle's links.")
    return stack


@dataclass(frozen=True, slots=True)
class Base:
    """Where the FHIR API is, for fullUrl and links."""

    url: str  # e.g. http://127.0.0.1:8000/fhir (no trailing slash)

    def ref(self, resource_type: str, id: str) -> str:
        """The absolute URL of a resource."""
        return f"{self.url}/{resource_type}/{id}"

    def link(self, path: str, params: Sequence[tuple[str, str]]) -> str:
        """An absolute link with a query."""
        query = urlencode(list(params))
        return f"{self.url}/{path}" + (f"?{query}" if query else "")


def shape(resource: Mapping[str, Any], plan: SearchPlan | None, *, match: bool) -> dict[str, Any]:
    """Apply `_summary` / `_elements` to one resource (marked SUBSETTED when trimmed)."""
    body = dict(resource)
    if plan is None:
        return body
    keep: set[str] | None = None
    if plan.summary == "true":
        keep = set(summary_elements(str(body.get("resourceType"))))
    elif plan.summary == "data":
        body.pop("text", None)
    elif plan.summary == "text":
        keep = {"resourceType", "id", "meta", "text"}
    elif plan.elements and match:
        keep = {"resourceType", "id", "meta", *plan.elements}
    if keep is None and plan.summary != "data":
        return body
    if keep is not None:
        body = {k: v for k, v in body.items() if k in keep or k.lstrip("_") in keep}
    meta = dict(body.get("meta") or {})
    meta["tag"] = [*(meta.get("tag") or []), SUBSETTED]
    body["meta"] = meta
    return body


class Searcher:
    """Type search, history and $everything on top of the single-resource service."""

    def __init__(self, service: FhirService) -> None:
        self.service = service
        self.repo = service.repo

    # --- search --------------------------------------------------------------------------

    async def search(
        self,
        caller: Caller,
        resource_type: str,
        items: Sequence[tuple[str, str]],
        base: Base,
        *,
        strict: bool = False,
    ) -> dict[str, Any]:
        """A searchset Bundle for `GET /{type}?...` or `POST /{type}/_search`."""
        check_type(resource_type)
        reach = caller.access.require(resource_type, "s")
        plan = self.service.parser(resource_type).parse(items, strict=strict)
        query_text = urlencode(list(items))
        where = list(plan.where)
        if reach.restricted and resource_type in PATIENT_DATA:
            where.append(Eq("_compartment", str(reach.compartment)))
        empty = False
        for chain in plan.chains:
            refs = await self._chain_refs(caller, chain.target, chain.inner_name, chain.value)
            if not refs:
                empty = True
                break
            where.append(In(chain.param.key(), refs))
        stack = decode_page(plan.page)
        want_total = (
            plan.total in ("accurate", "estimate") or plan.summary == "count" or plan.count == 0
        )
        limit = 0 if plan.summary == "count" else plan.count
        if empty:
            items_page: list[Record] = []
            next_cursor = None
            total: int | None = 0
        else:
            query = Query(
                where=where,
                sort=plan.sort,
                limit=limit,
                cursor=stack[-1] if stack else None,
                count=want_total,
            )
            try:
                page = await self.repo.search(resource_type, query)
            except HuiminError as exc:
                raise _query_error(exc) from None
            items_page = list(page.items)
            next_cursor, total = page.next_cursor, page.total
        if plan.contains:
            items_page = [r for r in items_page if _contains_all(resource_type, r.body, plan)]
        entries = [self._entry(base, r.body, "match", plan) for r in items_page]
        included = await self._includes(caller, resource_type, items_page, plan)
        entries += [self._entry(base, body, "include", plan) for body in included]
        bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset"}
        if total is not None:
            bundle["total"] = total
        params = list(plan.used)
        links = [{"relation": "self", "url": base.link(resource_type, params + _page_param(stack))}]
        if stack:
            links.append({"relation": "first", "url": base.link(resource_type, params)})
        if next_cursor:
            links.append(
                {
                    "relation": "next",
                    "url": base.link(resource_type, params + _page_param([*stack, next_cursor])),
                }
            )
        if stack and len(stack) < MAX_PAGE_STACK:
            links.append(
                {
                    "relation": "previous",
                    "url": base.link(resource_type, params + _page_param(stack[:-1])),
                }
            )
        bundle["link"] = links
        bundle["entry"] = entries
        all_bodies = [r.body for r in items_page] + included
        self._audit_many(caller, "search-type", all_bodies, query=f"{resource_type}?{query_text}")
        return bundle

    def _audit_many(
        self,
        caller: Caller,
        interaction: str,
        bodies: Sequence[Mapping[str, Any]],
        *,
        query: str | None,
    ) -> None:
        touched = [
            (f"{rtype}/{body.get('id')}", compartment_of(rtype, body))
            for body in bodies
            if (rtype := str(body.get("resourceType"))) in PATIENT_DATA
        ]
        if touched or (query is not None and query.split("?")[0] in PATIENT_DATA):
            # One event per patient: see FhirService.log_each_patient.
            for event in self.service.log_each_patient(caller, interaction, touched, query=query):
                self.service.audit.add(event)

    def _entry(
        self, base: Base, body: Mapping[str, Any], mode: str, plan: SearchPlan | None
    ) -> dict[str, Any]:
        return {
            "fullUrl": base.ref(str(body.get("resourceType")), str(body.get("id"))),
            "resource": shape(body, plan, match=mode == "match"),
            "search": {"mode": mode},
        }

    async def _chain_refs(self, caller: Caller, target: str, inner: str, value: str) -> list[str]:
        reach = caller.access.require(target, "s")
        plan = self.service.parser(target).parse([(inner, value)], strict=True)
        where = list(plan.where)
        if reach.restricted and target in PATIENT_DATA:
            where.append(Eq("_compartment", str(reach.compartment)))
        page = await self.repo.search(target, Query(where=where, limit=MAX_CHAIN_MATCHES))
        if page.next_cursor:
            raise BadRequest(
                f"The chained criterion {inner}={value} matches more than {MAX_CHAIN_MATCHES}"
                f" {target} resources; narrow it.",
                issue_code="too-costly",
            )
        return [f"{target}/{r.id}" for r in page.items]

    async def _includes(
        self, caller: Caller, resource_type: str, page: Sequence[Record], plan: SearchPlan
    ) -> list[dict[str, Any]]:
        if not page or (not plan.includes and not plan.revincludes):
            return []
        seen = {f"{resource_type}/{r.id}" for r in page}
        out: list[dict[str, Any]] = []
        for inc in plan.includes:
            wanted: dict[str, list[str]] = {}
            for rec in page:
                for ref in extract(resource_type, rec.body).get(inc.param.key(), []):
                    rtype, _, rid = str(ref).partition("/")
                    wanted_type = inc.target is None or rtype == inc.target
                    if wanted_type and rtype in SEARCH_PARAMS and ref not in seen:
                        wanted.setdefault(rtype, []).append(rid)
            for rtype, ids in wanted.items():
                out += await self._fetch_visible(caller, rtype, ids, seen)
        for inc in plan.revincludes:
            out += await self._revinclude(caller, resource_type, page, inc, seen)
        return out

    async def _fetch_visible(
        self, caller: Caller, rtype: str, ids: Sequence[str], seen: set[str]
    ) -> list[dict[str, Any]]:
        # Included resources pass the same checks as direct reads: what the caller may not
        # read is left out, never leaked through an _include.
        reach = caller.access.reach(rtype, "r")
        if reach is None:
            return []
        where: list[Predicate] = []
        if reach.restricted and rtype in PATIENT_DATA:
            where.append(Eq("_compartment", str(reach.compartment)))
        out = []
        for rec in await self.repo.get_many(rtype, ids, where):
            ref = f"{rtype}/{rec.id}"
            if ref not in seen:
                seen.add(ref)
                out.append(dict(rec.body))
        return out

    async def _revinclude(
        self,
        caller: Caller,
        resource_type: str,
        page: Sequence[Record],
        inc: Include,
        seen: set[str],
    ) -> list[dict[str, Any]]:
        reach = caller.access.reach(inc.source, "s")
        if reach is None:
            return []
        refs = [f"{resource_type}/{r.id}" for r in page]
        where: list[Predicate] = [In(inc.param.key(), refs)]
        if reach.restricted and inc.source in PATIENT_DATA:
            where.append(Eq("_compartment", str(reach.compartment)))
        found = await self.repo.search(inc.source, Query(where=where, limit=MAX_REVINCLUDE))
        out = []
        for rec in found.items:
            ref = f"{inc.source}/{rec.id}"
            if ref not in seen:
                seen.add(ref)
                out.append(dict(rec.body))
        return out

    # --- history -------------------------------------------------------------------------

    async def instance_history(
        self,
        caller: Caller,
        resource_type: str,
        id: str,
        items: Sequence[tuple[str, str]],
        base: Base,
    ) -> dict[str, Any]:
        """A history Bundle of one resource, newest first, paged by version."""
        check_type(resource_type)
        check_id(id)
        reach = caller.access.require(resource_type, "r")
        params = dict(items)
        count = self._count(params)
        before = params.get("_page")
        if before is not None and not before.isdigit():
            raise BadRequest("The _page of a history is a version number; follow the links.")
        ref = f"{resource_type}/{id}"
        try:
            current = await self.repo.get(resource_type, id, include_deleted=True)
        except HuiminError as exc:
            raise _fhir_error(exc, ref) from None
        since = _since_of(params)
        versions = await self.repo.history(
            resource_type, id, limit=count + 1, before_version=int(before) if before else None
        )
        if since is not None:  # newest first: what is kept is a prefix
            versions = [r for r in versions if _version_at(r) >= since]
        # Every version is checked, not only the current one: a resource moved out of the
        # caller's compartment must not show its earlier versions either.
        last_live = current.body or await self.service._last_body(
            resource_type, id, current.version
        )
        if not self.service.visible(resource_type, last_live, reach):
            raise NotFound(f"{ref} is not known.")
        more = len(versions) > count
        versions = versions[:count]
        entries = []
        for rec in versions:
            if rec.body and not self.service.visible(resource_type, rec.body, reach):
                continue
            entries.append(self._history_entry(base, resource_type, rec))
        links = [{"relation": "self", "url": base.link(f"{ref}/_history", list(items))}]
        if more and versions:
            keep = [("_count", str(count)), *[(k, v) for k, v in items if k == "_since"]]
            links.append(
                {
                    "relation": "next",
                    "url": base.link(
                        f"{ref}/_history", [*keep, ("_page", str(versions[-1].version))]
                    ),
                }
            )
        if resource_type in PATIENT_DATA:
            self.service.log_later(
                caller,
                "history-instance",
                resources=[ref],
                patients=compartment_of(resource_type, last_live),
            )
        return {"resourceType": "Bundle", "type": "history", "link": links, "entry": entries}

    def _count(self, params: Mapping[str, str]) -> int:
        raw = params.get("_count")
        if raw is None:
            return self.service.settings.default_count
        if not raw.isdigit() or int(raw) < 1:
            raise BadRequest("_count must be a positive whole number.")
        return min(int(raw), self.service.settings.max_count)

    def _history_entry(self, base: Base, resource_type: str, rec: Record) -> dict[str, Any]:
        url = f"{resource_type}/{rec.id}"
        entry: dict[str, Any] = {"fullUrl": base.ref(resource_type, rec.id)}
        if rec.deleted:
            entry["request"] = {"method": "DELETE", "url": url}
            entry["response"] = {"status": "204", "etag": f'W/"{rec.version}"'}
        else:
            entry["resource"] = dict(rec.body)
            entry["request"] = {
                "method": "POST" if rec.version == 1 else "PUT",
                "url": resource_type if rec.version == 1 else url,
            }
            entry["response"] = {
                "status": "201" if rec.version == 1 else "200",
                "etag": f'W/"{rec.version}"',
            }
        return entry

    async def type_history(
        self, caller: Caller, resource_type: str, items: Sequence[tuple[str, str]], base: Base
    ) -> dict[str, Any]:
        """A history Bundle of every resource of a type (what the caller may see), newest first."""
        check_type(resource_type)
        reach = caller.access.require(resource_type, "s")
        params = dict(items)
        count = self._count(params)
        since = _since_of(params)
        compartment = (
            str(reach.compartment) if reach.restricted and resource_type in PATIENT_DATA else None
        )
        stack = decode_page(params.get("_page"))
        page = await self.repo.versions(
            resource_type,
            compartment=compartment,
            since=since,
            limit=count,
            cursor=stack[-1] if stack else None,
        )
        entries = []
        bodies = []
        for row in page.items:
            rid, version = str(row.body["id"]), int(row.body["version"])
            rec = await self.repo.get_version(resource_type, rid, version)
            if rec.body and not self.service.visible(resource_type, rec.body, reach):
                continue
            entries.append(self._history_entry(base, resource_type, rec))
            if rec.body:
                bodies.append(rec.body)
        keep = [(k, v) for k, v in items if k in ("_count", "_since")]
        path = f"{resource_type}/_history"
        links = [{"relation": "self", "url": base.link(path, keep + _page_param(stack))}]
        if page.next_cursor:
            links.append(
                {
                    "relation": "next",
                    "url": base.link(path, keep + _page_param([*stack, page.next_cursor])),
                }
            )
        if stack:
            links.append(
                {"relation": "previous", "url": base.link(path, keep + _page_param(stack[:-1]))}
            )
        self._audit_many(caller, "history-type", bodies, query=f"{resource_type}/_history")
        return {"resourceType": "Bundle", "type": "history", "link": links, "entry": entries}

    # --- $everything ---------------------------------------------------------------------

    async def everything(
        self, caller: Caller, id: str, items: Sequence[tuple[str, str]], base: Base
    ) -> dict[str, Any]:
        """`Patient/{id}/$everything`: the patient and their compartment, paged type by type."""
        patient = await self.service.read(caller, "Patient", id)
        params = dict(items)
        count = self._count(params)
        # The audit trail is about the patient too, but it is not their record, and every
        # $everything call would grow it: it is listed only when asked for by _type.
        wanted = [t for t in PATIENT_COMPARTMENT if t != "AuditEvent"]
        if "_type" in params:
            asked = [t.strip() for t in params["_type"].split(",") if t.strip()]
            unknown = [t for t in asked if t not in PATIENT_COMPARTMENT and t != "Patient"]
            if unknown:
                raise BadRequest(
                    f"_type names types outside the patient compartment: {', '.join(unknown)}."
                )
            wanted = [t for t in PATIENT_COMPARTMENT if t in asked]
        types = [t for t in wanted if caller.access.reach(t, "s") is not None]
        # Position: index of the type being listed, and the cursor within it.
        token = params.get("_page")
        type_index, cursor = 0, None
        if token:
            stack = decode_page(token)
            if len(stack) != 2 or not stack[0].isdigit():
                raise BadRequest("The _page token is malformed; follow the Bundle's links.")
            type_index, cursor = int(stack[0]), stack[1] or None
        entries: list[dict[str, Any]] = []
        bodies: list[Mapping[str, Any]] = []
        if token is None:
            entries.append(self._entry(base, patient.body, "match", None))
            bodies.append(patient.body)
        ref = f"Patient/{id}"
        next_token = None
        while type_index < len(types) and len(entries) < count:
            rtype = types[type_index]
            page = await self.repo.search(
                rtype,
                Query(where=[Eq("_compartment", ref)], limit=count - len(entries), cursor=cursor),
            )
            for rec in page.items:
                if rtype == "Patient" and rec.id == id:
                    continue  # a Patient is in its own compartment; it was listed first
                entries.append(self._entry(base, rec.body, "match", None))
                bodies.append(rec.body)
            if page.next_cursor:
                cursor = page.next_cursor
                break
            type_index, cursor = type_index + 1, None
        if type_index < len(types):
            next_token = encode_page([str(type_index), cursor or ""])
        keep = [(k, v) for k, v in items if k in ("_count", "_type")]
        path = f"Patient/{id}/$everything"
        links = [{"relation": "self", "url": base.link(path, list(items))}]
        if next_token:
            links.append(
                {"relation": "next", "url": base.link(path, [*keep, ("_page", next_token)])}
            )
        self._audit_many(caller, "operation", bodies, query=f"Patient/{id}/$everything")
        return {"resourceType": "Bundle", "type": "searchset", "link": links, "entry": entries}


def _since_of(params: Mapping[str, str]) -> datetime | None:
    """The `_since` of a history interaction, if given."""
    if "_since" not in params:
        return None
    try:
        return date_span(params["_since"])[0]
    except (ValueError, OverflowError):
        raise BadRequest("_since must be a FHIR instant (with a time zone).") from None


def _version_at(rec: Record) -> datetime:
    """When a version was made: its meta.lastUpdated (a deletion has only the store's time)."""
    at = (rec.body.get("meta") or {}).get("lastUpdated") if rec.body else None
    return date_span(at)[0] if isinstance(at, str) else rec.updated_at


def _page_param(stack: Sequence[str]) -> list[tuple[str, str]]:
    return [("_page", encode_page(stack))] if stack else []


def _contains_all(resource_type: str, body: Mapping[str, Any], plan: SearchPlan) -> bool:
    keys = extract(resource_type, body)
    for param, values in plan.contains:
        needles = [fold(v).strip() for v in values]
        parts = [fold(str(p)) for p in keys.get(param.key(":exact"), [])]
        if not any(n in p for n in needles for p in parts):
            return False
    return True


def _query_error(exc: HuiminError) -> HuiminError:
    if exc.status == 400:
        return BadRequest(f"The search cannot be run: {exc.detail}", issue_code="invalid")
    return exc
