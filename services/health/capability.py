"""`GET /metadata`: the CapabilityStatement, generated from what the server implements.

Resources and their search parameters come from the same registry the indexes are built
from (`services.health.searchparams`), interactions from `INTERACTIONS`, so the statement
cannot drift from the code.
"""

from __future__ import annotations

import functools
from typing import Any

from services.health.resources import FHIR_VERSION
from services.health.searchparams import RESOURCE_TYPES, SEARCH_PARAMS, ParamType
from services.health.service import IMMUTABLE
from services.health.settings import HealthSettings

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
INCLUDE_MODIFIERS = {
    ParamType.STRING: ":exact :contains",
    ParamType.TOKEN: ":not :text",
    ParamType.REFERENCE: ":[type] and one level of chaining",
    ParamType.URI: ":below",
}


def _interactions(resource_type: str) -> list[dict[str, str]]:
    out = []
    for code in TYPE_INTERACTIONS:
        if resource_type in IMMUTABLE and code in ("update", "patch", "delete"):
            continue
        out.append({"code": code})
    return out


@functools.cache
def _resources() -> list[dict[str, Any]]:
    out = []
    for rtype in RESOURCE_TYPES:
        params = SEARCH_PARAMS[rtype]
        refs = [p for p in params.values() if p.type is ParamType.REFERENCE]
        resource: dict[str, Any] = {
            "type": rtype,
            "profile": f"http://hl7.org/fhir/StructureDefinition/{rtype}",
            "interaction": _interactions(rtype),
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": rtype not in IMMUTABLE,
            "conditionalCreate": True,
            "conditionalUpdate": rtype not in IMMUTABLE,
            "conditionalDelete": "single" if rtype not in IMMUTABLE else "not-supported",
            "searchInclude": [f"{rtype}:{p.name}" for p in refs],
            "searchRevInclude": sorted(
                f"{src}:{p.name}"
                for src, ps in SEARCH_PARAMS.items()
                for p in ps.values()
                if p.type is ParamType.REFERENCE and rtype in p.targets
            ),
            "searchParam": [
                {
                    "name": p.name,
                    "definition": f"http://hl7.org/fhir/SearchParameter/{rtype}-{p.name.lstrip('_')}"
                    if not p.name.startswith("_")
                    else f"http://hl7.org/fhir/SearchParameter/Resource-{p.name.lstrip('_')}",
                    "type": p.type.value,
                    "documentation": (p.description + " " if p.description else "")
                    + (
                        f"Modifiers: {INCLUDE_MODIFIERS[p.type]}."
                        if p.type in INCLUDE_MODIFIERS
                        else ""
                    ),
                }
                for p in params.values()
            ],
        }
        if rtype == "Patient":
            resource["operation"] = [
                {
                    "name": "everything",
                    "definition": "http://hl7.org/fhir/OperationDefinition/Patient-everything",
                }
            ]
        out.append(resource)
    return out


def capability_statement(settings: HealthSettings, base_url: str) -> dict[str, Any]:
    """The server's CapabilityStatement."""
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": "2026-11-27",
        "publisher": "Huimin",
        "kind": "instance",
        "software": {"name": "Huimin health records", "version": "0.1.0"},
        "implementation": {
            "description": "Huimin shared health records (FHIR R4 API)",
            "url": base_url,
        },
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json"],
        "rest": [
            {
                "mode": "server",
                "documentation": (
                    f"Searches return {settings.default_count} entries per page by default and at"
                    f" most {settings.max_count} (_count). Totals are given with _total=accurate"
                    " or _summary=count. Unknown parameters are ignored unless"
                    " Prefer: handling=strict. Transactions hold at most"
                    f" {settings.max_bundle_entries} entries."
                ),
                "security": {
                    "cors": False,
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/restful-security-service",
                                    "code": "SMART-on-FHIR",
                                }
                            ]
                        }
                    ],
                    "description": "OAuth2 bearer tokens from the Huimin realm with SMART v2 scopes"
                    " (patient/, user/, system/; c r u d s).",
                },
                "resource": _resources(),
                "interaction": [{"code": "transaction"}, {"code": "batch"}],
                "operation": [
                    {
                        "name": "validate",
                        "definition": "http://hl7.org/fhir/OperationDefinition/Resource-validate",
                    }
                ],
            }
        ],
    }
