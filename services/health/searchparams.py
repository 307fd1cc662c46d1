"""The FHIR R4 search parameters this server supports, and the collections they index.

Every supported resource type is one storage collection (`collection_name`). Its index keys
are declared from its search parameters (`spec_for`) and extracted from each resource at
write time (`extract`); searches are then answered from those keys alone. How each
parameter type is indexed, and the key names the query side relies on, are described in
`services.health.indexing`.

Names, paths and reference targets follow the R4 (4.0.1) search parameter registry; paths
are the parameters' FHIRPath expressions without the leading resource type, and targets are
those of the referencing element (R4's per-resource tables: `patient` points at Patient,
`Observation.encounter` at Encounter). Where R4 says a reference may point at any type,
`targets` lists every type this server stores.

Beside the parameters, every collection carries `_compartment`: the patients
(`Patient/<id>`) whose compartment (R4 CompartmentDefinition "patient") holds the resource,
which is how a citizen's reach is restricted to their own records.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from types import MappingProxyType
from typing import Any

from services.health import indexing
from services.health.indexing import references
from shared.storage.keys import token
from shared.storage.schema import CollectionSpec, KeyType

__all__ = [
    "PATIENT_COMPARTMENT",
    "RESOURCE_TYPES",
    "SEARCH_PARAMS",
    "ParamType",
    "SearchParam",
    "collection_name",
    "collection_specs",
    "extract",
    "index_keys",
    "patient_compartments",
    "references",
    "spec_for",
]

COMPARTMENT_KEY = "_compartment"


class ParamType(enum.StrEnum):
    """The FHIR search parameter types we support (composite and special are not)."""

    STRING = "string"
    TOKEN = "token"  # noqa: S105 (a FHIR type name, not a secret)
    DATE = "date"
    REFERENCE = "reference"
    QUANTITY = "quantity"
    URI = "uri"
    NUMBER = "number"


@dataclass(frozen=True, slots=True)
class SearchParam:
    """One search parameter of one resource type."""

    name: str  # the FHIR code, e.g. "birthdate", "general-practitioner", "_id"
    type: ParamType
    paths: tuple[str, ...]  # element paths, e.g. ("name",), ("effective[x]",)
    targets: tuple[str, ...] = ()  # resource types a reference parameter points at
    description: str = ""

    def key(self, suffix: str = "") -> str:
        """The index key holding this parameter's values: `name` plus a suffix such as
        ":exact", ":g", ":s" (string), ":text" (token) or ":u" (quantity units)."""
        return f"{self.name}{suffix}"


RESOURCE_TYPES: tuple[str, ...] = (
    "Patient",
    "Practitioner",
    "PractitionerRole",
    "Organization",
    "Location",
    "Encounter",
    "Observation",
    "Condition",
    "AllergyIntolerance",
    "MedicationRequest",
    "Immunization",
    "Procedure",
    "DiagnosticReport",
    "DocumentReference",
    "CarePlan",
    "Consent",
    "AuditEvent",
    "Provenance",
)

_S, _T, _D, _R, _Q, _U = (
    ParamType.STRING,
    ParamType.TOKEN,
    ParamType.DATE,
    ParamType.REFERENCE,
    ParamType.QUANTITY,
    ParamType.URI,
)
_ANY = RESOURCE_TYPES  # R4 "Any": every type this server stores
_PATIENT = ("Patient",)
_SUBJECT = ("Group", "Patient")
_ENCOUNTER = ("Encounter",)
_WHO = ("Practitioner", "PractitionerRole", "Patient", "RelatedPerson")  # asserter, recorder
_ACTOR = ("Practitioner", "PractitionerRole", "Organization", "Device", "Patient", "RelatedPerson")
_IS_PATIENT = "subject.where(resolve() is Patient)"


def _p(
    name: str, type_: ParamType, *paths: str, targets: tuple[str, ...] = (), doc: str = ""
) -> SearchParam:
    return SearchParam(name, type_, paths, targets, doc)


_COMMON = (
    _p("_id", _T, "id", doc="Logical id of this artifact"),
    _p("_lastUpdated", _D, "meta.lastUpdated", doc="When the resource version last changed"),
    _p("_tag", _T, "meta.tag", doc="Tags applied to this resource"),
    _p("_profile", _U, "meta.profile", doc="Profiles this resource claims to conform to"),
    _p("_security", _T, "meta.security", doc="Security Labels applied to this resource"),
)
_IDENTIFIER = _p("identifier", _T, "identifier", doc="A business identifier")

_PARAMS: dict[str, tuple[SearchParam, ...]] = {
    "Patient": (
        _IDENTIFIER,
        _p("name", _S, "name", doc="Any part of a name: family, given, prefix, suffix, text"),
        _p("family", _S, "name.family", doc="A portion of the family name"),
        _p("given", _S, "name.given", doc="A portion of the given name"),
        _p("birthdate", _D, "birthDate", doc="The patient's date of birth"),
        _p("gender", _T, "gender", doc="Gender of the patient"),
        _p("address", _S, "address", doc="Any part of an address"),
        _p("address-city", _S, "address.city", doc="A city specified in an address"),
        _p("telecom", _T, "telecom", doc="The value in any kind of telecom details"),
        _p("phone", _T, "telecom.where(system='phone')", doc="A value in a phone contact"),
        _p("email", _T, "telecom.where(system='email')", doc="A value in an email contact"),
        _p(
            "general-practitioner",
            _R,
            "generalPractitioner",
            targets=("Organization", "Practitioner", "PractitionerRole"),
            doc="Patient's nominated general practitioner",
        ),
        _p(
            "organization",
            _R,
            "managingOrganization",
            targets=("Organization",),
            doc="The organization that is the custodian of the patient record",
        ),
        _p("active", _T, "active", doc="Whether the patient record is active"),
        _p("deceased", _T, "deceased[x]", doc="Marked as deceased, or a death date entered"),
        _p(
            "link",
            _R,
            "link.other",
            targets=("Patient", "RelatedPerson"),
            doc="All patients linked to the given patient",
        ),
    ),
    "Practitioner": (
        _IDENTIFIER,
        _p("name", _S, "name", doc="Any part of a name: family, given, prefix, suffix, text"),
        _p("family", _S, "name.family", doc="A portion of the family name"),
        _p("given", _S, "name.given", doc="A portion of the given name"),
        _p("telecom", _T, "telecom", doc="The value in any kind of contact"),
        _p("active", _T, "active", doc="Whether the practitioner record is active"),
        _p("gender", _T, "gender", doc="Gender of the practitioner"),
    ),
    "PractitionerRole": (
        _p("practitioner", _R, "practitioner", targets=("Practitioner",), doc="The practitioner"),
        _p("organization", _R, "organization", targets=("Organization",), doc="The organization"),
        _p("location", _R, "location", targets=("Location",), doc="Where care is provided"),
        _p("role", _T, "code", doc="The role the practitioner performs"),
        _p("specialty", _T, "specialty", doc="The practitioner's specialty"),
        _IDENTIFIER,
        _p("active", _T, "active", doc="Whether this role record is in active use"),
    ),
    "Organization": (
        _IDENTIFIER,
        _p("name", _S, "name", "alias", doc="A portion of the organization's name or alias"),
        _p("type", _T, "type", doc="A code for the type of organization"),
        _p("address", _S, "address", doc="Any part of an address"),
        _p("partof", _R, "partOf", targets=("Organization",), doc="The parent organization"),
        _p("active", _T, "active", doc="Is the Organization record active"),
    ),
    "Location": (
        _IDENTIFIER,
        _p("name", _S, "name", "alias", doc="A portion of the location's name or alias"),
        _p("address", _S, "address", doc="Any part of the address"),
        _p("type", _T, "type", doc="A code for the type of location"),
        _p(
            "organization",
            _R,
            "managingOrganization",
            targets=("Organization",),
            doc="The organization responsible for the location",
        ),
        _p("status", _T, "status", doc="active | suspended | inactive"),
        _p("partof", _R, "partOf", targets=("Location",), doc="The location it is part of"),
    ),
    "Encounter": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="The patient present"),
        _p("subject", _R, "subject", targets=_SUBJECT, doc="The patient or group present"),
        _p("status", _T, "status", doc="planned | arrived | in-progress | finished | ..."),
        _p("class", _T, "class", doc="Classification of patient encounter"),
        _p("type", _T, "type", doc="Specific type of encounter"),
        _p("date", _D, "period", doc="A date within the period the Encounter lasted"),
        _p(
            "participant",
            _R,
            "participant.individual",
            targets=("Practitioner", "PractitionerRole", "RelatedPerson"),
            doc="Persons involved in the encounter other than the patient",
        ),
        _p(
            "practitioner",
            _R,
            "participant.individual.where(resolve() is Practitioner)",
            targets=("Practitioner",),
            doc="Practitioners involved in the encounter",
        ),
        _p("service-provider", _R, "serviceProvider", targets=("Organization",), doc="Provider"),
        _p("location", _R, "location.location", targets=("Location",), doc="Where it took place"),
        _IDENTIFIER,
        _p("reason-code", _T, "reasonCode", doc="Coded reason the encounter takes place"),
    ),
    "Observation": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="The subject, if a patient"),
        _p(
            "subject",
            _R,
            "subject",
            targets=("Group", "Device", "Patient", "Location"),
            doc="The subject that the observation is about",
        ),
        _p("code", _T, "code", doc="The code of the observation type"),
        _p("category", _T, "category", doc="The classification of the type of observation"),
        _p("date", _D, "effective[x]", doc="Obtained date/time, or a date in the period"),
        _p("status", _T, "status", doc="The status of the observation"),
        _p("value-quantity", _Q, "valueQuantity", doc="The value, if a Quantity"),
        _p("value-concept", _T, "valueCodeableConcept", doc="The value, if a CodeableConcept"),
        _p(
            "value-string",
            _S,
            "valueString",
            "valueCodeableConcept.text",
            doc="The value, if a string, and the text of a CodeableConcept value",
        ),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="Related encounter"),
        _p(
            "performer",
            _R,
            "performer",
            targets=(
                "Practitioner",
                "PractitionerRole",
                "Organization",
                "CareTeam",
                "Patient",
                "RelatedPerson",
            ),
            doc="Who performed the observation",
        ),
        _IDENTIFIER,
        _p(
            "based-on",
            _R,
            "basedOn",
            targets=(
                "CarePlan",
                "DeviceRequest",
                "ImmunizationRecommendation",
                "MedicationRequest",
                "NutritionOrder",
                "ServiceRequest",
            ),
            doc="Reference to the service request",
        ),
        _p(
            "has-member",
            _R,
            "hasMember",
            targets=("Observation", "QuestionnaireResponse", "MolecularSequence"),
            doc="Related resource that belongs to the Observation group",
        ),
        _p(
            "derived-from",
            _R,
            "derivedFrom",
            targets=(
                "DocumentReference",
                "ImagingStudy",
                "Media",
                "QuestionnaireResponse",
                "Observation",
                "MolecularSequence",
            ),
            doc="Related measurements the observation is made from",
        ),
    ),
    "Condition": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="Who has the condition"),
        _p("subject", _R, "subject", targets=_SUBJECT, doc="Who has the condition"),
        _p("code", _T, "code", doc="Code for the condition"),
        _p("category", _T, "category", doc="The category of the condition"),
        _p("clinical-status", _T, "clinicalStatus", doc="The clinical status of the condition"),
        _p("verification-status", _T, "verificationStatus", doc="unconfirmed | confirmed | ..."),
        _p("onset-date", _D, "onsetDateTime", "onsetPeriod", doc="Date related onsets"),
        _p("recorded-date", _D, "recordedDate", doc="Date record was first recorded"),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="Encounter created as part of"),
        _p("asserter", _R, "asserter", targets=_WHO, doc="Person who asserts this condition"),
        _p("severity", _T, "severity", doc="The severity of the condition"),
        _IDENTIFIER,
    ),
    "AllergyIntolerance": (
        _p("patient", _R, "patient", targets=_PATIENT, doc="Who the sensitivity is for"),
        _p("code", _T, "code", "reaction.substance", doc="Code of the allergy or intolerance"),
        _p("clinical-status", _T, "clinicalStatus", doc="active | inactive | resolved"),
        _p("verification-status", _T, "verificationStatus", doc="unconfirmed | confirmed | ..."),
        _p("criticality", _T, "criticality", doc="low | high | unable-to-assess"),
        _p("type", _T, "type", doc="allergy | intolerance"),
        _p("category", _T, "category", doc="food | medication | environment | biologic"),
        _p("date", _D, "recordedDate", doc="Date first version of the record was recorded"),
        _p("recorder", _R, "recorder", targets=_WHO, doc="Who recorded the sensitivity"),
        _p("asserter", _R, "asserter", targets=_WHO, doc="Source of the information"),
        _IDENTIFIER,
    ),
    "MedicationRequest": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="Patient the prescription is for"),
        _p("subject", _R, "subject", targets=_SUBJECT, doc="Who the prescription is for"),
        _p("code", _T, "medicationCodeableConcept", doc="Code of the medication"),
        _p("status", _T, "status", doc="Status of the prescription"),
        _p("intent", _T, "intent", doc="proposal | plan | order | ..."),
        _p("authoredon", _D, "authoredOn", doc="Return prescriptions written on this date"),
        _p(
            "requester",
            _R,
            "requester",
            targets=_ACTOR,
            doc="Who or what requested the medication",
        ),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="Encounter it was written in"),
        _p(
            "medication",
            _R,
            "medicationReference",
            targets=("Medication",),
            doc="The medication, if a Medication resource",
        ),
        _IDENTIFIER,
    ),
    "Immunization": (
        _p("patient", _R, "patient", targets=_PATIENT, doc="The patient for the vaccination"),
        _p("vaccine-code", _T, "vaccineCode", doc="Vaccine product administered"),
        _p("date", _D, "occurrence[x]", doc="Vaccination (non)-administration date"),
        _p("status", _T, "status", doc="Immunization event status"),
        _p(
            "performer",
            _R,
            "performer.actor",
            targets=("Practitioner", "PractitionerRole", "Organization"),
            doc="Who played a role in the vaccination",
        ),
        _p("location", _R, "location", targets=("Location",), doc="Where it was administered"),
        _IDENTIFIER,
        _p("lot-number", _S, "lotNumber", doc="Vaccine lot number"),
    ),
    "Procedure": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="The patient, if a patient"),
        _p("subject", _R, "subject", targets=_SUBJECT, doc="Search by subject"),
        _p("code", _T, "code", doc="A code to identify a procedure"),
        _p("date", _D, "performed[x]", doc="When the procedure was performed"),
        _p("status", _T, "status", doc="preparation | in-progress | completed | ..."),
        _p("performer", _R, "performer.actor", targets=_ACTOR, doc="Who performed it"),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="Encounter"),
        _IDENTIFIER,
    ),
    "DiagnosticReport": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="The subject, if a patient"),
        _p(
            "subject",
            _R,
            "subject",
            targets=("Group", "Device", "Patient", "Location"),
            doc="The subject of the report",
        ),
        _p("code", _T, "code", doc="The code for the report"),
        _p("category", _T, "category", doc="Which diagnostic discipline created the report"),
        _p("date", _D, "effective[x]", doc="The clinically relevant time of the report"),
        _p("status", _T, "status", doc="The status of the report"),
        _p("result", _R, "result", targets=("Observation",), doc="Link to an atomic result"),
        _p(
            "performer",
            _R,
            "performer",
            targets=("Practitioner", "PractitionerRole", "Organization", "CareTeam"),
            doc="Who is responsible for the report",
        ),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="The encounter"),
        _p("issued", _D, "issued", doc="When the report was issued"),
        _IDENTIFIER,
    ),
    "DocumentReference": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="The subject, if a patient"),
        _p(
            "subject",
            _R,
            "subject",
            targets=("Practitioner", "Group", "Device", "Patient"),
            doc="Who or what the document is about",
        ),
        _p("type", _T, "type", doc="Kind of document (LOINC if possible)"),
        _p("category", _T, "category", doc="Categorization of document"),
        _p("date", _D, "date", doc="When this document reference was created"),
        _p("status", _T, "status", doc="current | superseded | entered-in-error"),
        _p("author", _R, "author", targets=_ACTOR, doc="Who and/or what authored the document"),
        _p(
            "identifier",
            _T,
            "masterIdentifier",
            "identifier",
            doc="Master version specific identifier, or any identifier",
        ),
        _p(
            "encounter",
            _R,
            "context.encounter",
            targets=("Encounter", "EpisodeOfCare"),
            doc="Context of the document content",
        ),
    ),
    "CarePlan": (
        _p("patient", _R, _IS_PATIENT, targets=_PATIENT, doc="Who the care plan is for"),
        _p("subject", _R, "subject", targets=_SUBJECT, doc="Who the care plan is for"),
        _p("status", _T, "status", doc="draft | active | completed | ..."),
        _p("intent", _T, "intent", doc="proposal | plan | order | option"),
        _p("category", _T, "category", doc="Type of plan"),
        _p("date", _D, "period", doc="Time period plan covers"),
        _p("encounter", _R, "encounter", targets=_ENCOUNTER, doc="Encounter created as part of"),
        _IDENTIFIER,
        # Not in the brief's list, but R4 puts a CarePlan in the compartment of a patient
        # who performs one of its activities.
        _p(
            "performer",
            _R,
            "activity.detail.performer",
            targets=(
                "Practitioner",
                "PractitionerRole",
                "Organization",
                "CareTeam",
                "Device",
                "Patient",
                "HealthcareService",
                "RelatedPerson",
            ),
            doc="Who performs an activity of the plan",
        ),
    ),
    "Consent": (
        _p("patient", _R, "patient", targets=_PATIENT, doc="Who the consent applies to"),
        _p("status", _T, "status", doc="draft | proposed | active | rejected | inactive | ..."),
        _p("category", _T, "category", doc="Classification of the consent statement"),
        _p("date", _D, "dateTime", doc="When this Consent was created or indexed"),
        _p("scope", _T, "scope", doc="Which of the four areas this resource covers"),
        _p("action", _T, "provision.action", doc="Actions controlled by this rule"),
        _IDENTIFIER,
    ),
    "AuditEvent": (
        _p("date", _D, "recorded", doc="Time when the event was recorded"),
        _p("type", _T, "type", doc="Type/identifier of event"),
        _p("subtype", _T, "subtype", doc="More specific type/id for the event"),
        _p("action", _T, "action", doc="Type of action performed during the event"),
        _p("outcome", _T, "outcome", doc="Whether the event succeeded or failed"),
        _p("agent", _R, "agent.who", targets=_ACTOR, doc="Identifier of who"),
        _p("agent-name", _S, "agent.name", doc="Human friendly name for the agent"),
        _p("entity", _R, "entity.what", targets=_ANY, doc="Specific instance of resource"),
        _p(
            "patient",
            _R,
            "agent.who.where(resolve() is Patient)",
            "entity.what.where(resolve() is Patient)",
            targets=_PATIENT,
            doc="A patient who acted, or whose record was the subject",
        ),
        _p("source", _R, "source.observer", targets=_ACTOR, doc="The source detecting the event"),
    ),
    "Provenance": (
        _p("target", _R, "target", targets=_ANY, doc="Target Reference(s)"),
        _p(
            "patient",
            _R,
            "target.where(resolve() is Patient)",
            targets=_PATIENT,
            doc="Target Reference(s) that are patients",
        ),
        _p("agent", _R, "agent.who", targets=_ACTOR, doc="Who participated"),
        _p("recorded", _D, "recorded", doc="When the activity was recorded / updated"),
        _p("entity", _R, "entity.what", targets=_ANY, doc="Identity of entity"),
    ),
}

SEARCH_PARAMS: Mapping[str, Mapping[str, SearchParam]] = MappingProxyType(
    {
        rtype: MappingProxyType({p.name: p for p in (*_COMMON, *_PARAMS[rtype])})
        for rtype in RESOURCE_TYPES
    }
)

# R4 CompartmentDefinition "patient", for the types above: the parameters whose Patient
# references put a resource in that patient's compartment. Types not listed (Practitioner,
# PractitionerRole, Organization, Location) are never in a patient's compartment. A Patient
# is in its own compartment too (`patient_compartments`).
PATIENT_COMPARTMENT: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "Patient": ("link",),
        "Encounter": ("patient",),
        "Observation": ("subject", "performer"),
        "Condition": ("patient", "asserter"),
        "AllergyIntolerance": ("patient", "recorder", "asserter"),
        "MedicationRequest": ("subject",),
        "Immunization": ("patient",),
        "Procedure": ("patient", "performer"),
        "DiagnosticReport": ("subject",),
        "DocumentReference": ("subject", "author"),
        "CarePlan": ("patient", "performer"),
        "Consent": ("patient",),
        "AuditEvent": ("patient",),
        "Provenance": ("patient",),
    }
)


def collection_name(resource_type: str) -> str:
    """The storage collection of a resource type: "MedicationRequest" -> "medicationrequest"."""
    return resource_type.lower()


def _params(resource_type: str) -> Mapping[str, SearchParam]:
    params = SEARCH_PARAMS.get(resource_type)
    if params is None:
        raise ValueError(f"unsupported resource type {resource_type!r}")
    return params


def index_keys(param: SearchParam) -> dict[str, KeyType]:
    """The index keys a parameter is stored under, with their types."""
    if param.name == "_id":
        return {"_id": KeyType.TEXT}  # the bare id: `_id=x` never takes a system
    if param.name == "_lastUpdated":
        return {"_lastUpdated": KeyType.INSTANT}  # one exact instant, not a span
    t, k = param.type, param.key
    if t is ParamType.STRING:
        return {
            k(): KeyType.TEXT,
            k(":exact"): KeyType.TEXT,
            k(":g"): KeyType.TEXT,
            k(":s"): KeyType.TEXT,
        }
    if t is ParamType.TOKEN:
        return {k(): KeyType.TEXT, k(":text"): KeyType.TEXT}
    if t is ParamType.DATE:
        return {k(): KeyType.SPAN}
    if t is ParamType.QUANTITY:
        return {k(): KeyType.NUMBER, k(":u"): KeyType.TEXT}
    if t is ParamType.NUMBER:
        return {k(): KeyType.NUMBER}
    return {k(): KeyType.TEXT}  # REFERENCE, URI


@cache
def spec_for(resource_type: str) -> CollectionSpec:
    """The collection of a resource type: every key of its parameters, plus `_compartment`."""
    keys: dict[str, KeyType] = {}
    for param in _params(resource_type).values():
        keys.update(index_keys(param))
    keys[COMPARTMENT_KEY] = KeyType.TEXT

    def extractor(body: Mapping[str, Any]) -> dict[str, list[Any]]:
        return extract(resource_type, body)

    return CollectionSpec(
        collection_name(resource_type), keys=MappingProxyType(keys), extract=extractor
    )


def collection_specs() -> list[CollectionSpec]:
    """One collection per supported resource type, in `RESOURCE_TYPES` order."""
    return [spec_for(rtype) for rtype in RESOURCE_TYPES]


def _deceased(resource: Mapping[str, Any]) -> list[str]:
    # R4: `deceased.exists() and deceased != false`, so a patient with no deceased[x] is
    # "false" (`deceased=false` finds the living), and a death date counts as "true".
    dead = any(v is not False for _, v in indexing.select(resource, "deceased[x]"))
    return token(None, "true" if dead else "false")


def param_keys(param: SearchParam, resource: Mapping[str, Any]) -> dict[str, list[Any]]:
    """The index values of one parameter in one resource (only non-empty keys)."""
    if param.name == "_id":
        rid = resource.get("id")
        return {"_id": [rid]} if isinstance(rid, str) and rid else {}
    if param.name == "deceased" and param.type is ParamType.TOKEN:
        return {param.key(): _deceased(resource)}
    items = indexing.values(resource, param.paths)
    t, key = param.type, param.key()
    out: dict[str, list[Any]]
    if param.name == "_lastUpdated":
        out = {key: [low for low, _ in indexing.date_spans(items)]}
    elif t is ParamType.STRING:
        out = indexing.string_keys(key, items)
    elif t is ParamType.TOKEN:
        out = indexing.token_keys(key, items)
    elif t is ParamType.DATE:
        out = {key: indexing.date_spans(items)}
    elif t is ParamType.REFERENCE:
        out = {key: indexing.reference_keys(items)}
    elif t is ParamType.QUANTITY:
        out = indexing.quantity_keys(key, items)
    elif t is ParamType.NUMBER:
        out = {key: indexing.number_values(items)}
    else:
        out = {key: indexing.uri_values(items)}
    return {k: v for k, v in out.items() if v}


def patient_compartments(resource_type: str, resource: Mapping[str, Any]) -> list[str]:
    """The patients ("Patient/<id>") whose compartment holds this resource.

    Only relative references count: an absolute URL may name a patient on another server
    whose id exists here too, and compartments grant access (see `indexing.local_references`).
    """
    names = PATIENT_COMPARTMENT.get(resource_type, ())
    params = _params(resource_type)
    out: list[str] = []
    if resource_type == "Patient" and isinstance(resource.get("id"), str) and resource["id"]:
        out.append(f"Patient/{resource['id']}")
    for name in names:
        refs = indexing.local_references(indexing.values(resource, params[name].paths))
        out.extend(r for r in refs if r.startswith("Patient/"))
    return list(dict.fromkeys(out))


def extract(resource_type: str, resource: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Every index key of a resource (the extractor of `spec_for(resource_type)`).

    Raises ValueError for a resource of another type and for values a parameter cannot
    index (an unparseable date, a Period that ends before it starts); the storage engine
    turns that into 422 Unprocessable Entity.
    """
    params = _params(resource_type)
    declared = resource.get("resourceType")
    if declared is not None and declared != resource_type:
        raise ValueError(f"a {declared} cannot be stored as {resource_type}")
    out: dict[str, list[Any]] = {}
    for param in params.values():
        out.update(param_keys(param, resource))
    compartments = patient_compartments(resource_type, resource)
    if compartments:
        out[COMPARTMENT_KEY] = compartments
    return out
