"""`batch` and `transaction` Bundles (POST to the base URL).

A batch runs each entry on its own and reports each outcome. A transaction is all or
nothing: every write entry is planned first (ids assigned, `urn:uuid:` references rewritten
to them, conditional creates and updates resolved, every resource validated and checked
against the caller's scopes), then all of them are committed as one atomic store batch;
any failure answers with one OperationOutcome and leaves nothing behind. Entries are
processed in the order the spec gives (DELETE, POST, PUT/PATCH, GET) and answered in the
order they were sent.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from services.health.outcome import error_outcome
from services.health.resources import check_id, check_type
from services.health.searching import Base, Searcher
from services.health.service import Caller, FhirService, Planned, etag
from services.health.settings import HealthSettings
from shared.errors import BadRequest, HuiminError
from shared.ids import new_id as make_id

_ORDER = {"DELETE": 0, "POST": 1, "PUT": 2, "PATCH": 2, "GET": 3, "HEAD": 3}


@dataclass
class Entry:
    """One Bundle entry's request, parsed."""

    index: int
    method: str
    path: str  # "Patient", "Patient/1", "Patient/1/_history/2", "Patient?identifier=..."
    query: str
    resource: dict[str, Any] | None
    full_url: str | None
    if_none_exist: str | None
    if_match: str | None


def _parse_entries(bundle: Mapping[str, Any], max_entries: int) -> list[Entry]:
    entries = bundle.get("entry") or []
    if not isinstance(entries, list):
        raise BadRequest("Bundle.entry must be an array.")
    if len(entries) > max_entries:
        raise BadRequest(
            f"The Bundle has {len(entries)} entries; at most {max_entries} are accepted.",
            issue_code="too-costly",
        )
    out = []
    for i, raw in enumerate(entries):
        where = f"Bundle.entry[{i}]"
        if not isinstance(raw, dict):
            raise BadRequest(f"{where} must be an object.")
        request = raw.get("request")
        if not isinstance(request, dict):
            raise BadRequest(
                f"{where}.request is required.",
                errors=[{"expression": f"{where}.request", "message": "required"}],
            )
        method, url = request.get("method"), request.get("url")
        if method not in _ORDER or not isinstance(url, str) or not url:
            raise BadRequest(
                f"{where}.request needs a method (GET POST PUT PATCH DELETE) and a url."
            )
        resource = raw.get("resource")
        if resource is not None and not isinstance(resource, dict):
            raise BadRequest(f"{where}.resource must be an object.")
        for name in ("ifNoneExist", "ifMatch"):
            if request.get(name) is not None and not isinstance(request[name], str):
                raise BadRequest(
                    f"{where}.request.{name} must be a string.",
                    errors=[{"expression": f"{where}.request.{name}", "message": "not a string"}],
                )
        parts = urlsplit(url)
        path = parts.path.strip("/")
        out.append(
            Entry(
                i,
                str(method),
                path,
                parts.query,
                resource,
                raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None,
                request.get("ifNoneExist"),
                request.get("ifMatch"),
            )
        )
    return out


def _rewrite(value: Any, ids: Mapping[str, str]) -> Any:
    """Replace `urn:uuid:` references (and fullUrls) by the ids assigned in this transaction."""
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if k == "reference" and isinstance(v, str) and v in ids:
                out[k] = ids[v]
            else:
                out[k] = _rewrite(v, ids)
        return out
    if isinstance(value, list):
        return [_rewrite(v, ids) for v in value]
    return value


class BundleProcessor:
    """Runs batch and transaction Bundles through the single-resource service."""

    def __init__(self, service: FhirService, searcher: Searcher, settings: HealthSettings) -> None:
        self.service = service
        self.searcher = searcher
        self.settings = settings

    async def process(
        self, caller: Caller, bundle: Mapping[str, Any], base: Base
    ) -> dict[str, Any]:
        """Answer a batch or transaction Bundle."""
        if bundle.get("resourceType") != "Bundle":
            raise BadRequest("POST to the base URL takes a Bundle (batch or transaction).")
        kind = bundle.get("type")
        entries = _parse_entries(bundle, self.settings.max_bundle_entries)
        if kind == "batch":
            return await self._batch(caller, entries, base)
        if kind == "transaction":
            return await self._transaction(caller, entries, base)
        raise BadRequest(f"Bundle.type must be batch or transaction, got {kind!r}.")

    # --- batch ---------------------------------------------------------------------------

    async def _batch(self, caller: Caller, entries: list[Entry], base: Base) -> dict[str, Any]:
        answers: list[dict[str, Any]] = [{} for _ in entries]
        for entry in sorted(entries, key=lambda e: _ORDER[e.method]):
            try:
                if entry.method in ("GET", "HEAD"):
                    answers[entry.index] = await self._read_entry(caller, entry, base)
                else:
                    planned = await self._plan(caller, entry, {})
                    if planned is not None:
                        await self.service.commit(caller, [planned])
                    answers[entry.index] = self._write_answer(planned, base)
            except HuiminError as exc:
                answers[entry.index] = {
                    "response": {"status": str(exc.status), "outcome": error_outcome(exc)}
                }
        return {"resourceType": "Bundle", "type": "batch-response", "entry": answers}

    # --- transaction ---------------------------------------------------------------------

    async def _transaction(
        self, caller: Caller, entries: list[Entry], base: Base
    ) -> dict[str, Any]:
        ids: dict[str, str] = {}
        # Ids first, so that any entry may reference any other (urn:uuid or fullUrl).
        for e in entries:
            if e.method == "POST" and e.full_url:
                if not e.path or "/" in e.path:
                    raise BadRequest(f"Bundle.entry[{e.index}]: POST goes to a type, e.g. Patient.")
                ids[e.full_url] = f"{e.path}/{make_id()}"
        # A conditional create that matches points its urn at the existing resource.
        for e in entries:
            if e.method == "POST" and e.if_none_exist and e.full_url:
                try:
                    rtype = check_type(e.path)
                    reach = caller.access.require(rtype, "c")
                    found = await self.service.find_one(caller, rtype, e.if_none_exist, reach)
                except HuiminError as exc:
                    raise _in_entry(exc, e) from None
                if len(found) == 1:
                    ids[e.full_url] = f"{rtype}/{found[0].id}"
        # A PUT's fullUrl names what it writes: upserts by business identifier are referenced
        # by their urn:uuid too (IPS and other document-derived Bundles do this).
        for e in entries:
            if e.method == "PUT" and e.full_url and e.resource is not None:
                try:
                    target = await self._put_target(caller, e)
                except HuiminError as exc:
                    raise _in_entry(exc, e) from None
                if target is not None:
                    ids[e.full_url] = target
        for e in entries:
            if e.resource is not None:
                e.resource = _rewrite(e.resource, ids)
        planned: list[tuple[Entry, Planned | None]] = []
        touched: set[str] = set()
        for e in sorted(entries, key=lambda x: _ORDER[x.method]):
            if e.method in ("GET", "HEAD"):
                continue
            try:
                p = await self._plan(caller, e, ids)
            except HuiminError as exc:
                raise _in_entry(exc, e) from None
            if p is not None:
                ref = f"{p.resource_type}/{p.id}"
                if ref in touched:
                    raise BadRequest(
                        f"Bundle.entry[{e.index}]: {ref} is the target of two entries."
                    )
                touched.add(ref)
            planned.append((e, p))
        await self.service.commit(
            caller, [p for _, p in planned if p is not None], interaction="transaction"
        )
        answers: list[dict[str, Any]] = [{} for _ in entries]
        for e, p in planned:
            answers[e.index] = self._write_answer(p, base)
        for e in entries:
            if e.method in ("GET", "HEAD"):
                try:
                    answers[e.index] = await self._read_entry(caller, e, base)
                except HuiminError as exc:
                    answers[e.index] = {
                        "response": {"status": str(exc.status), "outcome": error_outcome(exc)}
                    }
        return {"resourceType": "Bundle", "type": "transaction-response", "entry": answers}

    # --- entries -------------------------------------------------------------------------

    async def _put_target(self, caller: Caller, e: Entry) -> str | None:
        """ "Type/id" that a PUT entry will write (None for a URL that _plan refuses)."""
        segments = e.path.split("/") if e.path else []
        if len(segments) == 2:
            return f"{check_type(segments[0])}/{check_id(segments[1])}"
        if len(segments) != 1 or not e.query or e.resource is None:
            return None
        rtype = check_type(segments[0])
        target = await self.service.conditional_target(caller, rtype, e.query, "u")
        if target is not None:
            return f"{rtype}/{target.id}"
        return f"{rtype}/{e.resource.get('id') or make_id()}"

    async def _plan(self, caller: Caller, e: Entry, ids: Mapping[str, str]) -> Planned | None:
        segments = e.path.split("/") if e.path else []
        if not segments:
            raise BadRequest(f"Bundle.entry[{e.index}].request.url names no resource type.")
        rtype = check_type(segments[0])
        left = _unresolved(e.resource)
        if left is not None:
            # Stored as is, it would be a dangling reference no search or read can follow.
            raise BadRequest(
                f"The reference {left} names no entry (fullUrl) of this transaction.",
                errors=[
                    {
                        "expression": f"Bundle.entry[{e.index}].resource",
                        "message": f"unresolved reference {left}",
                    }
                ],
            )
        if e.method == "POST":
            if len(segments) != 1 or e.resource is None:
                raise BadRequest(
                    f"Bundle.entry[{e.index}]: POST {e.path} needs a resource and a type URL."
                )
            new_id = None
            if e.full_url and e.full_url in ids and ids[e.full_url].startswith(rtype + "/"):
                new_id = ids[e.full_url].split("/", 1)[1]
            return await self.service.plan_create(
                caller, rtype, e.resource, if_none_exist=e.if_none_exist, id=new_id
            )
        if e.method == "PUT":
            if e.resource is None:
                raise BadRequest(f"Bundle.entry[{e.index}]: PUT needs a resource.")
            if len(segments) == 1 and e.query:
                target = await self.service.conditional_target(caller, rtype, e.query, "u")
                if target is not None:
                    rid = target.id
                elif e.full_url is not None and e.full_url in ids:  # its references' id
                    rid = ids[e.full_url].split("/", 1)[1]
                else:
                    rid = str(e.resource.get("id") or make_id())
                body = {**e.resource, "id": rid}
                return await self.service.plan_update(caller, rtype, rid, body, if_match=e.if_match)
            if len(segments) != 2:
                raise BadRequest(f"Bundle.entry[{e.index}]: PUT goes to Type/id.")
            return await self.service.plan_update(
                caller, rtype, check_id(segments[1]), e.resource, if_match=e.if_match
            )
        if e.method == "PATCH":
            raise BadRequest(
                f"Bundle.entry[{e.index}]: PATCH in Bundles is not supported (use PUT).",
                issue_code="not-supported",
            )
        # DELETE
        if len(segments) == 1 and e.query:
            target = await self.service.conditional_target(caller, rtype, e.query, "d")
            if target is None:
                return None
            return await self.service.plan_delete(caller, rtype, target.id, if_match=e.if_match)
        if len(segments) != 2:
            raise BadRequest(f"Bundle.entry[{e.index}]: DELETE goes to Type/id.")
        return await self.service.plan_delete(
            caller, rtype, check_id(segments[1]), if_match=e.if_match
        )

    def _write_answer(self, p: Planned | None, base: Base) -> dict[str, Any]:
        if p is None:
            return {"response": {"status": "204 No Content"}}
        if p.interaction == "delete":
            return {"response": {"status": "204 No Content", "etag": etag(p.version)}}
        status = {200: "200 OK", 201: "201 Created"}[p.status]
        return {
            "fullUrl": base.ref(p.resource_type, p.id),
            "resource": dict(p.resource),
            "response": {
                "status": status,
                "location": f"{p.resource_type}/{p.id}/_history/{p.version}",
                "etag": etag(p.version),
                "lastModified": p.resource.get("meta", {}).get("lastUpdated"),
            },
        }

    async def _read_entry(self, caller: Caller, e: Entry, base: Base) -> dict[str, Any]:
        segments = e.path.split("/") if e.path else []
        if not segments:
            raise BadRequest(f"Bundle.entry[{e.index}]: GET of the base is not supported here.")
        items = parse_qsl(e.query, keep_blank_values=True)
        if len(segments) == 1:
            bundle = await self.searcher.search(caller, segments[0], items, base)
            return {"resource": bundle, "response": {"status": "200 OK"}}
        if len(segments) == 2:
            rec = await self.service.read(caller, segments[0], segments[1])
        elif len(segments) == 4 and segments[2] == "_history":
            rec = await self.service.vread(caller, segments[0], segments[1], segments[3])
        else:
            raise BadRequest(f"Bundle.entry[{e.index}]: unsupported GET {e.path}.")
        return {
            "fullUrl": base.ref(segments[0], rec.id),
            "resource": dict(rec.body),
            "response": {
                "status": "200 OK",
                "etag": etag(rec.version),
                "lastModified": rec.body.get("meta", {}).get("lastUpdated"),
            },
        }


def _unresolved(value: Any) -> str | None:
    """The first `urn:` reference in a resource: one that no fullUrl of the Bundle resolved."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            ref = item.get("reference")
            if isinstance(ref, str) and ref.startswith(("urn:uuid:", "urn:oid:")):
                return ref
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def _in_entry(exc: HuiminError, e: Entry) -> HuiminError:
    """The error of a failed transaction, saying which entry failed."""
    exc.detail = f"Bundle.entry[{e.index}] ({e.method} {e.path}): {exc.detail or exc.title}"
    issues = exc.extra.get("issues")
    if issues:
        exc.extra["issues"] = [
            {
                **i,
                "expression": [
                    f"Bundle.entry[{e.index}].resource." + x.split(".", 1)[-1]
                    for x in i.get("expression", [])
                ],
            }
            if i.get("expression")
            else i
            for i in issues
        ]
    return exc
