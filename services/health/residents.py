"""The health service's side of the shared identity: registry events → linked FHIR Patients.

The registry is the master person index. Its `resident.*` events (shared.events.residents)
create or update the Patient whose identifier is the resident id
(`https://huimin.example/sid/resident-id`), through `FhirService`'s plan/commit API as the
health service's own service account, so versions, history and the audit trail are the
same as for any other write.

What the registry owns on a Patient, and what it leaves alone:

- the resident-id identifier (other identifiers are kept);
- the `official` names (zh as text/family/given, latin as a second HumanName with text);
  names of other uses (nickname, old, maiden...) are kept;
- gender, birthDate, deceased[x]; `active` (false once merged away);
- the phone and the home address it sent, marked with the `source` extension, so a newer
  event replaces them without touching the contact details clinics added;
- Patient extensions `registry-version` and `community`.

Everything clinical (other resources, and any other element of the Patient) is untouched.

Idempotent (the feed is at-least-once): an event whose `version` the Patient already
carries in `registry-version` is skipped, and a change that would write the same body is
not written, so a replay never adds a Patient or a version.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from services.health.access import RESIDENT_ID_SYSTEM, Access
from services.health.service import Caller, FhirService, Planned
from shared.auth.principal import Principal
from shared.errors import Conflict
from shared.events import FeedEvent
from shared.events.residents import (
    ResidentMerged,
    ResidentSnapshot,
    resident_event_or_skip,
)
from shared.storage import Record

logger = logging.getLogger(__name__)

EXTENSION_BASE = "https://huimin.example/fhir/StructureDefinition/"
REGISTRY_VERSION_URL = EXTENSION_BASE + "registry-version"
COMMUNITY_URL = EXTENSION_BASE + "community"
SOURCE_URL = EXTENSION_BASE + "source"
_FROM_REGISTRY = {"url": SOURCE_URL, "valueCode": "registry"}
_OURS = frozenset({REGISTRY_VERSION_URL, COMMUNITY_URL})
# Two-character Chinese family names: the rest of a name is the given name. The common ones
# only; an unknown compound family name splits after its first character, which is how
# most systems would file it too, and the full name stays in HumanName.text.
_COMPOUNDS = (
    "欧阳司马诸葛上官东方皇甫尉迟公孙慕容令狐长孙宇文司徒夏侯"
    "轩辕端木独孤南宫西门百里呼延万俟申屠闻人澹台公冶太史钟离赫连拓跋"
)
_COMPOUND_FAMILY = frozenset(_COMPOUNDS[i : i + 2] for i in range(0, len(_COMPOUNDS), 2))
CONFLICT_RETRIES = 3  # a clinic writing the same Patient at the same moment: read again


def registry_caller(client_id: str) -> Caller:
    """The health service acting on its own behalf (its service account, system scopes)."""
    principal = Principal(
        subject=f"service-account-{client_id}",
        username=f"service-account-{client_id}",
        roles=frozenset({"service"}),
        scopes=frozenset({"system/Patient.cru"}),
        client_id=client_id,
    )
    return Caller(principal, Access(principal))


class ResidentLinker:
    """The feed handler for the registry's events (idempotent: safe to replay)."""

    def __init__(self, service: FhirService, client_id: str) -> None:
        self.service = service
        self.caller = registry_caller(client_id)

    async def handle(self, event: FeedEvent) -> None:
        """Apply one registry event to the linked Patient(s)."""
        parsed = resident_event_or_skip(event)
        if parsed is None:
            return  # households and other registry events are not the health service's
        for attempt in range(1, CONFLICT_RETRIES + 1):
            try:
                if isinstance(parsed, ResidentMerged):
                    await self._merge(parsed)
                else:
                    await self._apply(parsed)
                return
            except Conflict:
                if attempt == CONFLICT_RETRIES:
                    raise  # the consumer backs off and hands the event over again
                logger.info("Patient of %s changed meanwhile; applying again", event.key)

    async def find(self, resident_id: str) -> Record | None:
        """The live Patient linked to a resident id (ValueError when there are several)."""
        query = f"identifier={RESIDENT_ID_SYSTEM}|{resident_id}"
        reach = self.caller.access.require("Patient", "r")
        found = await self.service.find_one(self.caller, "Patient", query, reach)
        if len(found) > 1:
            raise ValueError(f"several Patients carry resident id {resident_id}")
        return found[0] if found else None

    async def _find_or_skip(self, resident_id: str) -> tuple[bool, Record | None]:
        try:
            return True, await self.find(resident_id)
        except ValueError as exc:
            # Duplicates made by hand are for a person to merge; guessing one would put the
            # registry's data on the wrong record.
            logger.error("%s: registry event not applied, merge them first", exc)
            return False, None

    async def _apply(self, resident: ResidentSnapshot) -> None:
        ok, current = await self._find_or_skip(resident.resident_id)
        if not ok:
            return
        if current is not None and registry_version(current.body) >= resident.version:
            return  # already applied (a replay, or an older event after a newer one)
        body = patient_from(resident, current.body if current is not None else None)
        planned = await self._plan(current, body)
        if planned is not None:
            await self.service.commit(self.caller, [planned])

    async def _merge(self, merge: ResidentMerged) -> None:
        ok, retired = await self._find_or_skip(merge.resident_id)
        if not ok:
            return
        if retired is None:
            # Nothing of the duplicate reached the health record: nothing to retire or link.
            logger.info("merge of %s into %s: no Patient to retire", merge.resident_id, merge.into)
            return
        ok, survivor = await self._find_or_skip(merge.into)
        if not ok:
            return
        changes: list[Planned] = []
        if survivor is None:
            # The retired Patient must point somewhere; the survivor's own events fill it in.
            body: dict[str, Any] = {
                "resourceType": "Patient",
                "identifier": [{"system": RESIDENT_ID_SYSTEM, "value": merge.into}],
                "active": True,
            }
            planned = await self.service.plan_create(
                self.caller, "Patient", _with_link(body, retired.id, "replaces")
            )
            changes.append(planned)
            survivor_id = planned.id
        else:
            survivor_id = survivor.id
            linked = await self._plan(survivor, _with_link(survivor.body, retired.id, "replaces"))
            if linked is not None:
                changes.append(linked)
        retired_body = _with_link(retired.body, survivor_id, "replaced-by")
        retired_body["active"] = False
        if registry_version(retired.body) < merge.version:
            retired_body["extension"] = _extensions(retired_body, merge.version, None)
        planned_retired = await self._plan(retired, retired_body)
        if planned_retired is not None:
            changes.append(planned_retired)
        if changes:
            await self.service.commit(self.caller, changes)

    async def _plan(self, current: Record | None, body: dict[str, Any]) -> Planned | None:
        """A create, an update, or None when the Patient already is exactly `body`."""
        if current is None:
            return await self.service.plan_create(self.caller, "Patient", body)
        if _content(body) == _content(current.body):
            return None
        return await self.service.plan_update(self.caller, "Patient", current.id, body)


def registry_version(patient: Mapping[str, Any]) -> int:
    """The registry version a Patient reflects (0 when none was applied)."""
    for ext in patient.get("extension") or ():
        if isinstance(ext, Mapping) and ext.get("url") == REGISTRY_VERSION_URL:
            value = ext.get("valueInteger")
            return value if isinstance(value, int) else 0
    return 0


def patient_from(
    resident: ResidentSnapshot, current: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The Patient body for a registry snapshot, keeping what the registry does not own."""
    body: dict[str, Any] = dict(current) if current else {"resourceType": "Patient"}
    identifiers = list(body.get("identifier") or ())
    if not any(
        i.get("system") == RESIDENT_ID_SYSTEM and i.get("value") == resident.resident_id
        for i in identifiers
    ):
        identifiers.insert(0, {"system": RESIDENT_ID_SYSTEM, "value": resident.resident_id})
    body["identifier"] = identifiers
    if not _links(body, "replaced-by"):
        body["active"] = True  # a merged-away record stays inactive whatever comes later
    names = [*_names(resident)]
    names += [n for n in body.get("name") or () if n.get("use") != "official"]
    _set(body, "name", names)
    body["gender"] = resident.sex
    body["birthDate"] = resident.birth_date.isoformat()
    body.pop("deceasedBoolean", None)
    body.pop("deceasedDateTime", None)
    if resident.status == "deceased":
        if resident.deceased_date is not None:
            body["deceasedDateTime"] = resident.deceased_date.isoformat()
        else:
            body["deceasedBoolean"] = True
    phone = resident.phone
    telecom = [{"system": "phone", "value": phone, "extension": [_FROM_REGISTRY]}] if phone else []
    telecom += [
        t
        for t in body.get("telecom") or ()
        if not _from_registry(t) and not (t.get("system") == "phone" and t.get("value") == phone)
    ]
    _set(body, "telecom", telecom)
    line = resident.address
    address = [{"use": "home", "text": line, "extension": [_FROM_REGISTRY]}] if line else []
    address += [
        a for a in body.get("address") or () if not _from_registry(a) and a.get("text") != line
    ]
    _set(body, "address", address)
    body["extension"] = _extensions(body, resident.version, resident.community)
    return body


def _names(resident: ResidentSnapshot) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    zh, latin = resident.name.zh, resident.name.latin
    if zh:
        name: dict[str, Any] = {"use": "official", "text": zh}
        split = _split_chinese(zh)
        if split is not None:
            name["family"], name["given"] = split[0], [split[1]]
        out.append(name)
    if latin:
        # Word order differs (pinyin family-first, foreign names given-first): the registry
        # does not say which, so the Latin name is text only. `name=` searches still find it.
        out.append({"use": "official", "text": latin})
    return out


def _split_chinese(name: str) -> tuple[str, str] | None:
    """(family, given) of a Han name; None for names that do not split that way (ethnic
    names with the middle dot, names of foreigners written in characters)."""
    if "·" in name or "•" in name or " " in name or not 2 <= len(name) <= 5:
        return None
    cut = 2 if name[:2] in _COMPOUND_FAMILY and len(name) > 2 else 1
    return name[:cut], name[cut:]


def _extensions(
    body: Mapping[str, Any], version: int, community: str | None
) -> list[dict[str, Any]]:
    kept = [e for e in body.get("extension") or () if e.get("url") not in _OURS]
    ours: list[dict[str, Any]] = [{"url": REGISTRY_VERSION_URL, "valueInteger": version}]
    if community is None:  # a merge keeps the community the Patient had
        ours += [e for e in body.get("extension") or () if e.get("url") == COMMUNITY_URL]
    else:
        ours.append({"url": COMMUNITY_URL, "valueString": community})
    return [*kept, *ours]


def _from_registry(element: Mapping[str, Any]) -> bool:
    return any(e.get("url") == SOURCE_URL for e in element.get("extension") or ())


def _links(body: Mapping[str, Any], kind: str) -> list[str]:
    return [
        str(link.get("other", {}).get("reference"))
        for link in body.get("link") or ()
        if link.get("type") == kind
    ]


def _with_link(body: Mapping[str, Any], other_id: str, kind: str) -> dict[str, Any]:
    """`body` with a link of `kind` to Patient/`other_id` (added once)."""
    out = dict(body)
    ref = f"Patient/{other_id}"
    if ref not in _links(out, kind):
        out["link"] = [*(out.get("link") or ()), {"other": {"reference": ref}, "type": kind}]
    return out


def _set(body: dict[str, Any], key: str, values: Sequence[Any]) -> None:
    # FHIR JSON has no empty arrays: an element with nothing left is left out.
    if values:
        body[key] = list(values)
    else:
        body.pop(key, None)


def _content(body: Mapping[str, Any]) -> dict[str, Any]:
    """A Patient without what every write changes (`meta.versionId`, `meta.lastUpdated`)."""
    out = dict(body)
    meta = {k: v for k, v in (out.pop("meta", None) or {}).items() if k not in _STAMPED}
    if meta:
        out["meta"] = meta
    return out


_STAMPED = frozenset({"versionId", "lastUpdated"})
