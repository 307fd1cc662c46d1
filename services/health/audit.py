"""Audit: an AuditEvent for every interaction that touches patient data.

Records follow the spirit of IHE Basic Audit Log Patterns (BALP): type `rest`, the FHIR
interaction as subtype, the caller as requesting agent (their Practitioner or Patient when
known, else their account), this server as source, and one entity per resource touched plus
a `patient` entity for each patient concerned, so that a citizen can search
`AuditEvent?patient=<self>` to see who looked at their record.

Writes carry their AuditEvent in the same atomic batch as the change. Reads and searches
put theirs in a queue flushed in batches (at most `audit_flush_seconds` late, and on
shutdown), so that auditing a read does not cost a database commit of its own.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from services.health.repository import FhirRepository
from shared.auth.principal import Principal
from shared.batch_queue import BatchQueue
from shared.ids import new_id as make_id

logger = logging.getLogger(__name__)

_ACTION = {
    "create": "C",
    "read": "R",
    "vread": "R",
    "history-instance": "R",
    "history-type": "R",
    "search-type": "E",
    "search-system": "E",
    "update": "U",
    "patch": "U",
    "delete": "D",
    "operation": "E",
    "transaction": "E",
    "batch": "E",
}
_OUTCOME = {"success": "0", "minor": "4", "serious": "8"}
MAX_ENTITIES = 100  # a search page of 500 resources is summed up by its patients and query


def now_instant() -> str:
    """The current time as a FHIR instant with milliseconds."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def audit_event(
    *,
    principal: Principal | None,
    interaction: str,
    resources: Iterable[str] = (),
    patients: Iterable[str] = (),
    query: str | None = None,
    outcome: str = "success",
    detail: str | None = None,
    client_address: str | None = None,
    self_patient: str | None = None,
) -> dict[str, Any]:
    """An AuditEvent for one interaction (`resources` and `patients` are "Type/id")."""
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                    "display": "information recipient",
                }
            ]
        },
        "requestor": True,
    }
    if principal is not None:
        who: dict[str, Any] = {
            "identifier": {"system": "https://huimin.example/sid/user", "value": principal.subject},
        }
        if principal.username:
            who["display"] = principal.username
        if principal.practitioner_id:
            who["reference"] = f"Practitioner/{principal.practitioner_id}"
        elif self_patient:
            who["reference"] = self_patient
        agent["who"] = who
        if principal.username:
            agent["name"] = principal.username
        if principal.client_id:
            agent["altId"] = principal.client_id
    if client_address:
        agent["network"] = {"address": client_address, "type": "2"}
    entities: list[dict[str, Any]] = []
    patient_refs = list(dict.fromkeys(patients))
    for ref in patient_refs[:MAX_ENTITIES]:
        entities.append(
            {
                "what": {"reference": ref},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                    "display": "Patient",
                },
            }
        )
    for ref in list(dict.fromkeys(r for r in resources if r not in patient_refs))[:MAX_ENTITIES]:
        entities.append(
            {
                "what": {"reference": ref},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "4",
                    "display": "Domain Resource",
                },
            }
        )
    if query is not None:
        entities.append(
            {
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "24",
                    "display": "Query",
                },
                "query": base64.b64encode(query.encode()).decode(),
                "description": query[:1000],
            }
        )
    event: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": make_id(),
        "meta": {"versionId": "1", "lastUpdated": now_instant()},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
            "code": "rest",
            "display": "RESTful Operation",
        },
        "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": interaction}],
        "action": _ACTION.get(interaction, "E"),
        "recorded": now_instant(),
        "outcome": _OUTCOME[outcome],
        "agent": [agent],
        "source": {
            "site": "huimin",
            "observer": {"display": "huimin-health"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                    "display": "Application Server",
                }
            ],
        },
    }
    if detail:
        event["outcomeDesc"] = detail[:1000]
    if entities:
        event["entity"] = entities
    return event


class AuditLog(BatchQueue[Mapping[str, Any]]):
    """Queues read/search AuditEvents and stores them in batches (shared/batch_queue.py)."""

    def __init__(
        self,
        repo: FhirRepository,
        *,
        flush_seconds: float,
        batch_size: int,
        max_backlog: int = 2000,
        backlog_wait: float = 10.0,
    ) -> None:
        super().__init__(
            repo.append_audit,
            flush_seconds=flush_seconds,
            batch_size=batch_size,
            max_backlog=max_backlog,
            backlog_wait=backlog_wait,
            name="audit",
        )
