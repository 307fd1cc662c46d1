"""FHIR search parameters: the R4 registry subset, the collections, and index extraction."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from typing import Any

import pytest

from services.health.indexing import parse_reference, select, trigrams
from services.health.searchparams import (
    PATIENT_COMPARTMENT,
    RESOURCE_TYPES,
    SEARCH_PARAMS,
    ParamType,
    SearchParam,
    collection_name,
    collection_specs,
    extract,
    index_keys,
    patient_compartments,
    references,
    spec_for,
)
from shared.storage.errors import InvalidDocument
from shared.storage.keys import fold
from shared.storage.schema import KeyType, extract_keys

LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"
SNOMED = "http://snomed.info/sct"
RESIDENT = "https://huimin.example/sid/resident-id"
META = {"lastUpdated": "2024-05-03T10:00:00.250+08:00", "versionId": "1"}


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


# --- realistic resources, one per supported type -------------------------------------------

PATIENT: dict[str, Any] = {
    "resourceType": "Patient",
    "id": "zhang-wei",
    "meta": {
        **META,
        "tag": [{"system": "https://huimin.example/tags", "code": "demo", "display": "Demo data"}],
        "profile": ["http://hl7.org/fhir/StructureDefinition/Patient"],
        "security": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/v3-Confidentiality",
                "code": "N",
                "display": "normal",
            }
        ],
    },
    "identifier": [
        {"system": RESIDENT, "value": "110101199001011234", "type": {"text": "Resident ID card"}}
    ],
    "active": True,
    "name": [
        {"use": "official", "family": "张", "given": ["伟"], "text": "张伟"},
        {"use": "usual", "family": "Zhang", "given": ["Wei"]},
    ],
    "telecom": [
        {"system": "phone", "value": "+86 138 0013 8000", "use": "mobile"},
        {"system": "email", "value": "zhang.wei@example.cn"},
    ],
    "gender": "male",
    "birthDate": "1990-01-01",
    "address": [
        {
            "use": "home",
            "line": ["朝阳区建国路88号"],
            "city": "北京",
            "district": "朝阳区",
            "postalCode": "100022",
            "country": "CN",
        }
    ],
    "generalPractitioner": [{"reference": "https://fhir.huimin.example/r4/Practitioner/dr-li"}],
    "managingOrganization": {"reference": "Organization/chaoyang-hospital"},
    "link": [{"other": {"reference": "Patient/zhang-wei-old"}, "type": "replaces"}],
}

PRACTITIONER: dict[str, Any] = {
    "resourceType": "Practitioner",
    "id": "dr-muller",
    "identifier": [{"system": "http://hl7.org/fhir/sid/us-npi", "value": "1234567893"}],
    "active": True,
    "name": [{"family": "Müller", "given": ["José", "María"], "prefix": ["Dr."]}],
    "telecom": [{"system": "phone", "value": "+34 600 000 000", "use": "work"}],
    "gender": "male",
}

PRACTITIONER_ROLE: dict[str, Any] = {
    "resourceType": "PractitionerRole",
    "id": "dr-muller-gp",
    "active": True,
    "practitioner": {"reference": "Practitioner/dr-muller"},
    "organization": {"reference": "Organization/chaoyang-hospital"},
    "location": [{"reference": "Location/ward-3"}],
    "code": [{"coding": [{"system": SNOMED, "code": "62247001", "display": "GP"}]}],
    "specialty": [{"coding": [{"system": SNOMED, "code": "394814009", "display": "General"}]}],
    "identifier": [{"system": "https://huimin.example/sid/role", "value": "r-1"}],
}

ORGANIZATION: dict[str, Any] = {
    "resourceType": "Organization",
    "id": "chaoyang-hospital",
    "active": True,
    "identifier": [{"system": "https://huimin.example/sid/org", "value": "CY-001"}],
    "type": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/organization-type",
                    "code": "prov",
                }
            ]
        }
    ],
    "name": "北京朝阳医院",
    "alias": ["Beijing Chaoyang Hospital"],
    "address": [{"city": "北京", "line": ["工人体育场南路8号"]}],
    "partOf": {"reference": "Organization/beijing-health"},
}

LOCATION: dict[str, Any] = {
    "resourceType": "Location",
    "id": "ward-3",
    "status": "active",
    "name": "Ward 3",
    "alias": ["三病区"],
    "identifier": [{"value": "W3"}],
    "type": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v3-RoleCode", "code": "HU"}]}
    ],
    "address": {"line": ["Building B"], "city": "Beijing"},
    "managingOrganization": {"reference": "Organization/chaoyang-hospital"},
    "partOf": {"reference": "Location/building-b"},
}

ENCOUNTER: dict[str, Any] = {
    "resourceType": "Encounter",
    "id": "enc-1",
    "identifier": [{"system": "https://huimin.example/sid/visit", "value": "V-2024-001"}],
    "status": "finished",
    "class": {
        "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
        "code": "AMB",
        "display": "ambulatory",
    },
    "type": [{"coding": [{"system": SNOMED, "code": "185349003"}], "text": "Check-up"}],
    "subject": {"reference": "Patient/zhang-wei"},
    "participant": [
        {"individual": {"reference": "Practitioner/dr-muller"}},
        {"individual": {"reference": "PractitionerRole/dr-muller-gp"}},
    ],
    "period": {"start": "2024-05-03T09:00:00+08:00", "end": "2024-05-03T09:30:00+08:00"},
    "reasonCode": [{"coding": [{"system": SNOMED, "code": "38341003"}], "text": "高血压"}],
    "location": [{"location": {"reference": "Location/ward-3"}}],
    "serviceProvider": {"reference": "Organization/chaoyang-hospital"},
}

OBSERVATION: dict[str, Any] = {
    "resourceType": "Observation",
    "id": "glucose-1",
    "meta": META,
    "identifier": [{"system": "https://huimin.example/sid/lab", "value": "LAB-778"}],
    "basedOn": [{"reference": "ServiceRequest/sr-1"}],
    "status": "final",
    "category": [
        {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                    "code": "laboratory",
                    "display": "Laboratory",
                }
            ]
        }
    ],
    "code": {
        "coding": [
            {"system": LOINC, "code": "15074-8", "display": "Glucose [Moles/volume] in Blood"}
        ],
        "text": "血糖",
    },
    "subject": {"reference": "Patient/zhang-wei/_history/2"},
    "encounter": {"reference": "Encounter/enc-1"},
    "effectiveDateTime": "2024-05-03T09:10:00+08:00",
    "issued": "2024-05-03T11:00:00+08:00",
    "performer": [{"reference": "https://fhir.huimin.example/r4/Practitioner/dr-muller"}],
    "valueQuantity": {"value": 6.3, "unit": "mmol/L", "system": UCUM, "code": "mmol/L"},
    "hasMember": [{"reference": "Observation/glucose-0"}],
    "derivedFrom": [{"reference": "#contained-1"}],
}

CONDITION: dict[str, Any] = {
    "resourceType": "Condition",
    "id": "htn",
    "identifier": [{"value": "C-1"}],
    "clinicalStatus": {
        "coding": [
            {"system": "http://terminology.hl7.org/CodeSystem/condition-clinical", "code": "active"}
        ]
    },
    "verificationStatus": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/condition-ver-status",
                "code": "confirmed",
            }
        ]
    },
    "category": [{"coding": [{"code": "problem-list-item"}]}],
    "severity": {"coding": [{"system": SNOMED, "code": "6736007", "display": "Moderate"}]},
    "code": {"coding": [{"system": SNOMED, "code": "38341003", "display": "Hypertension"}]},
    "subject": {"reference": "Patient/zhang-wei"},
    "encounter": {"reference": "Encounter/enc-1"},
    "onsetPeriod": {"start": "2019-03"},
    "recordedDate": "2024-05-03",
    "asserter": {"reference": "Patient/zhang-wei"},
}

ALLERGY: dict[str, Any] = {
    "resourceType": "AllergyIntolerance",
    "id": "peanut",
    "identifier": [{"value": "A-1"}],
    "clinicalStatus": {"coding": [{"code": "active"}]},
    "verificationStatus": {"coding": [{"code": "confirmed"}]},
    "type": "allergy",
    "category": ["food"],
    "criticality": "high",
    "code": {"coding": [{"system": SNOMED, "code": "91935009", "display": "Peanut allergy"}]},
    "patient": {"reference": "Patient/zhang-wei"},
    "recordedDate": "2024-01-15T08:00:00Z",
    "recorder": {"reference": "Practitioner/dr-muller"},
    "asserter": {"reference": "Patient/mother-1"},
    "reaction": [{"substance": {"coding": [{"system": SNOMED, "code": "256349002"}]}}],
}

MEDICATION_REQUEST: dict[str, Any] = {
    "resourceType": "MedicationRequest",
    "id": "amlodipine",
    "identifier": [{"value": "RX-1"}],
    "status": "active",
    "intent": "order",
    "medicationCodeableConcept": {
        "coding": [
            {
                "system": "http://www.nlm.nih.gov/research/umls/rxnorm",
                "code": "197361",
                "display": "Amlodipine 5 MG",
            }
        ]
    },
    "subject": {"reference": "Patient/zhang-wei"},
    "encounter": {"reference": "Encounter/enc-1"},
    "authoredOn": "2024-05-03",
    "requester": {"reference": "Practitioner/dr-muller"},
}

IMMUNIZATION: dict[str, Any] = {
    "resourceType": "Immunization",
    "id": "flu-2023",
    "identifier": [{"value": "IMM-1"}],
    "status": "completed",
    "vaccineCode": {"coding": [{"system": "http://hl7.org/fhir/sid/cvx", "code": "141"}]},
    "patient": {"reference": "Patient/zhang-wei"},
    "occurrenceDateTime": "2023-10-20",
    "location": {"reference": "Location/ward-3"},
    "lotNumber": "AAJN11K",
    "performer": [{"actor": {"reference": "Practitioner/dr-muller"}}],
}

PROCEDURE: dict[str, Any] = {
    "resourceType": "Procedure",
    "id": "appendectomy",
    "identifier": [{"value": "P-1"}],
    "status": "completed",
    "code": {"coding": [{"system": SNOMED, "code": "80146002", "display": "Appendectomy"}]},
    "subject": {"reference": "Patient/zhang-wei"},
    "encounter": {"reference": "Encounter/enc-1"},
    "performedPeriod": {"start": "2013-04-05", "end": "2013-04-05"},
    "performer": [{"actor": {"reference": "Practitioner/dr-muller"}}],
}

DIAGNOSTIC_REPORT: dict[str, Any] = {
    "resourceType": "DiagnosticReport",
    "id": "cbc",
    "identifier": [{"value": "DR-1"}],
    "status": "final",
    "category": [
        {"coding": [{"system": "http://terminology.hl7.org/CodeSystem/v2-0074", "code": "LAB"}]}
    ],
    "code": {"coding": [{"system": LOINC, "code": "58410-2", "display": "CBC panel"}]},
    "subject": {"reference": "Patient/zhang-wei"},
    "encounter": {"reference": "Encounter/enc-1"},
    "effectivePeriod": {"start": "2024-05-03T09:00:00+08:00"},
    "issued": "2024-05-03T12:00:00+08:00",
    "performer": [{"reference": "Organization/chaoyang-hospital"}],
    "result": [{"reference": "Observation/glucose-1"}],
}

DOCUMENT_REFERENCE: dict[str, Any] = {
    "resourceType": "DocumentReference",
    "id": "discharge",
    "masterIdentifier": {
        "system": "urn:ietf:rfc:3986",
        "value": "urn:oid:1.3.6.1.4.1.21367.2005.3.7",
    },
    "status": "current",
    "type": {"coding": [{"system": LOINC, "code": "18842-5", "display": "Discharge summary"}]},
    "category": [{"coding": [{"code": "clinical-note"}]}],
    "subject": {"reference": "Patient/zhang-wei"},
    "date": "2024-05-04T08:00:00Z",
    "author": [{"reference": "Practitioner/dr-muller"}, {"reference": "Patient/zhang-wei"}],
    "context": {"encounter": [{"reference": "Encounter/enc-1"}]},
    "content": [{"attachment": {"contentType": "application/pdf", "url": "Binary/b1"}}],
}

CARE_PLAN: dict[str, Any] = {
    "resourceType": "CarePlan",
    "id": "bp-plan",
    "identifier": [{"value": "CP-1"}],
    "status": "active",
    "intent": "plan",
    "category": [{"coding": [{"system": SNOMED, "code": "736285004"}]}],
    "subject": {"reference": "Patient/zhang-wei"},
    "encounter": {"reference": "Encounter/enc-1"},
    "period": {"start": "2024-05-03"},
    "activity": [
        {"detail": {"status": "in-progress", "performer": [{"reference": "Patient/zhang-wei"}]}}
    ],
}

CONSENT: dict[str, Any] = {
    "resourceType": "Consent",
    "id": "share-records",
    "identifier": [{"value": "CON-1"}],
    "status": "active",
    "scope": {
        "coding": [
            {
                "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                "code": "patient-privacy",
            }
        ]
    },
    "category": [{"coding": [{"system": LOINC, "code": "59284-0"}]}],
    "patient": {"reference": "Patient/zhang-wei"},
    "dateTime": "2024-05-01",
    "provision": {
        "type": "permit",
        "action": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/consentaction",
                        "code": "access",
                    }
                ]
            }
        ],
    },
}

AUDIT_EVENT: dict[str, Any] = {
    "resourceType": "AuditEvent",
    "id": "read-1",
    "type": {
        "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
        "code": "rest",
        "display": "RESTful Operation",
    },
    "subtype": [{"system": "http://hl7.org/fhir/restful-interaction", "code": "read"}],
    "action": "R",
    "recorded": "2024-05-03T10:00:00.123Z",
    "outcome": "0",
    "agent": [
        {"who": {"reference": "Practitioner/dr-muller"}, "name": "José Müller", "requestor": True}
    ],
    "source": {"observer": {"reference": "Organization/chaoyang-hospital"}},
    "entity": [
        {"what": {"reference": "Patient/zhang-wei"}},
        {"what": {"reference": "Observation/glucose-1"}},
    ],
}

PROVENANCE: dict[str, Any] = {
    "resourceType": "Provenance",
    "id": "prov-1",
    "target": [
        {"reference": "Observation/glucose-1/_history/1"},
        {"reference": "Patient/zhang-wei"},
    ],
    "recorded": "2024-05-03T11:00:00+08:00",
    "agent": [{"who": {"reference": "Device/analyzer-7"}}],
    "entity": [{"role": "source", "what": {"reference": "DocumentReference/discharge"}}],
}

EXAMPLES: dict[str, dict[str, Any]] = {
    r["resourceType"]: r
    for r in (
        PATIENT,
        PRACTITIONER,
        PRACTITIONER_ROLE,
        ORGANIZATION,
        LOCATION,
        ENCOUNTER,
        OBSERVATION,
        CONDITION,
        ALLERGY,
        MEDICATION_REQUEST,
        IMMUNIZATION,
        PROCEDURE,
        DIAGNOSTIC_REPORT,
        DOCUMENT_REFERENCE,
        CARE_PLAN,
        CONSENT,
        AUDIT_EVENT,
        PROVENANCE,
    )
}


def keys_of(resource: dict[str, Any]) -> dict[str, list[Any]]:
    return extract(resource["resourceType"], resource)


def with_(resource: dict[str, Any], **changes: Any) -> dict[str, Any]:
    out = copy.deepcopy(resource)
    out.update(changes)
    return out


# --- registry --------------------------------------------------------------------------------

# The parameter names the brief lists per type (R4 codes); CarePlan adds R4's `performer`,
# which its patient compartment needs, and AuditEvent has no `identifier` in R4.
EXPECTED = {
    "Patient": "identifier name family given birthdate gender address address-city telecom phone"
    " email general-practitioner organization active deceased link",
    "Practitioner": "identifier name family given telecom active gender",
    "PractitionerRole": "practitioner organization location role specialty identifier active",
    "Organization": "identifier name type address partof active",
    "Location": "identifier name address type organization status partof",
    "Encounter": "patient subject status class type date participant practitioner"
    " service-provider location identifier reason-code",
    "Observation": "patient subject code category date status value-quantity value-concept"
    " value-string encounter performer identifier based-on has-member derived-from",
    "Condition": "patient subject code category clinical-status verification-status onset-date"
    " recorded-date encounter asserter severity identifier",
    "AllergyIntolerance": "patient code clinical-status verification-status criticality type"
    " category date recorder asserter identifier",
    "MedicationRequest": "patient subject code status intent authoredon requester encounter"
    " medication identifier",
    "Immunization": "patient vaccine-code date status performer location identifier lot-number",
    "Procedure": "patient subject code date status performer encounter identifier",
    "DiagnosticReport": "patient subject code category date status result performer encounter"
    " issued identifier",
    "DocumentReference": "patient subject type category date status author identifier encounter",
    "CarePlan": "patient subject status intent category date encounter identifier performer",
    "Consent": "patient status category date scope action identifier",
    "AuditEvent": "date type subtype action outcome agent agent-name entity patient source",
    "Provenance": "target patient agent recorded entity",
}
COMMON = {"_id", "_lastUpdated", "_tag", "_profile", "_security"}


def test_resource_types_and_their_parameters() -> None:
    assert len(RESOURCE_TYPES) == 18
    assert set(RESOURCE_TYPES) == set(SEARCH_PARAMS) == set(EXPECTED) == set(EXAMPLES)
    for rtype, names in EXPECTED.items():
        assert set(SEARCH_PARAMS[rtype]) == set(names.split()) | COMMON, rtype
        for name, param in SEARCH_PARAMS[rtype].items():
            assert isinstance(param, SearchParam)
            assert param.name == name
            assert param.paths, (rtype, name)
            assert param.description, (rtype, name)


def test_reference_parameters_name_their_targets() -> None:
    for rtype, params in SEARCH_PARAMS.items():
        for param in params.values():
            if param.type is ParamType.REFERENCE:
                assert param.targets, (rtype, param.name)
                if param.name == "patient":
                    assert param.targets == ("Patient",), rtype
            else:
                assert param.targets == (), (rtype, param.name)
    assert SEARCH_PARAMS["Observation"]["subject"].targets == (
        "Group",
        "Device",
        "Patient",
        "Location",
    )
    assert "Observation" in SEARCH_PARAMS["Provenance"]["target"].targets  # R4 "Any"
    assert SEARCH_PARAMS["Encounter"]["practitioner"].targets == ("Practitioner",)


def test_every_path_parses() -> None:
    for params in SEARCH_PARAMS.values():
        for param in params.values():
            for path in param.paths:
                assert select({}, path) == []


def test_param_types_follow_r4() -> None:
    types = {
        ("Patient", "birthdate"): ParamType.DATE,
        ("Patient", "name"): ParamType.STRING,
        ("Patient", "phone"): ParamType.TOKEN,
        ("Patient", "general-practitioner"): ParamType.REFERENCE,
        ("Observation", "value-quantity"): ParamType.QUANTITY,
        ("Observation", "value-string"): ParamType.STRING,
        ("Immunization", "lot-number"): ParamType.STRING,
        ("AuditEvent", "agent-name"): ParamType.STRING,
        ("Patient", "_profile"): ParamType.URI,
        ("Patient", "_lastUpdated"): ParamType.DATE,
        ("Patient", "_id"): ParamType.TOKEN,
    }
    for (rtype, name), ptype in types.items():
        assert SEARCH_PARAMS[rtype][name].type is ptype


def test_search_param_key() -> None:
    param = SEARCH_PARAMS["Patient"]["name"]
    assert param.key() == "name"
    assert param.key(":exact") == "name:exact"


def test_collection_names() -> None:
    assert collection_name("Patient") == "patient"
    assert collection_name("MedicationRequest") == "medicationrequest"
    assert [s.name for s in collection_specs()] == [collection_name(t) for t in RESOURCE_TYPES]


def test_index_keys_per_type() -> None:
    p = SEARCH_PARAMS["Patient"]
    assert index_keys(p["name"]) == {
        "name": KeyType.TEXT,
        "name:exact": KeyType.TEXT,
        "name:g": KeyType.TEXT,
        "name:s": KeyType.TEXT,
    }
    assert index_keys(p["identifier"]) == {
        "identifier": KeyType.TEXT,
        "identifier:text": KeyType.TEXT,
    }
    assert index_keys(p["birthdate"]) == {"birthdate": KeyType.SPAN}
    assert index_keys(p["link"]) == {"link": KeyType.TEXT}
    assert index_keys(p["_id"]) == {"_id": KeyType.TEXT}
    assert index_keys(p["_lastUpdated"]) == {"_lastUpdated": KeyType.INSTANT}
    assert index_keys(p["_profile"]) == {"_profile": KeyType.TEXT}
    vq = SEARCH_PARAMS["Observation"]["value-quantity"]
    assert index_keys(vq) == {"value-quantity": KeyType.NUMBER, "value-quantity:u": KeyType.TEXT}
    spec = spec_for("Patient")
    assert spec.keys["_compartment"] is KeyType.TEXT
    assert spec.unique == ()


@pytest.mark.parametrize("rtype", RESOURCE_TYPES)
def test_every_spec_builds_and_accepts_its_extraction(rtype: str) -> None:
    spec = spec_for(rtype)  # CollectionSpec checks collection and key names
    assert spec.name == collection_name(rtype)
    resource = EXAMPLES[rtype]
    keys = extract(rtype, resource)
    assert keys, rtype
    assert set(keys) <= set(spec.keys)
    checked = extract_keys(spec, resource)
    assert checked == keys
    # every parameter with a value in the example is indexed
    assert "_id" in keys


def test_common_parameters() -> None:
    keys = keys_of(PATIENT)
    assert keys["_id"] == ["zhang-wei"]
    assert keys["_lastUpdated"] == [datetime(2024, 5, 3, 2, 0, 0, 250000, tzinfo=UTC)]
    assert "https://huimin.example/tags|demo" in keys["_tag"]
    assert "demo" in keys["_tag"]
    assert keys["_tag:text"] == ["demo", "data"]
    assert keys["_profile"] == ["http://hl7.org/fhir/StructureDefinition/Patient"]
    assert "http://terminology.hl7.org/CodeSystem/v3-Confidentiality|N" in keys["_security"]


# --- strings ---------------------------------------------------------------------------------


def test_chinese_name() -> None:
    keys = keys_of(PATIENT)
    for query in ("张", "伟", "张伟", "zhang", "wei", "zhang wei", "wei zhang"):
        assert fold(query) in keys["name"], query  # a Prefix on the folded query matches
    assert "张伟" in keys["name:exact"]
    assert "Zhang" in keys["name:exact"]
    assert keys["family"] == ["张", "zhang"]
    assert keys["given"] == ["伟", "wei"]
    assert keys["name:s"] == ["张伟"]  # the first name, family first, as written in Chinese
    assert keys["family:s"] == ["张"]


def test_accented_name_is_folded_but_exact_keeps_it() -> None:
    keys = keys_of(PRACTITIONER)
    for value in ("josé", "JOSE", "müller", "Muller", "maría", "dr."):
        assert any(p.startswith(fold(value)) for p in keys["name"]), value
    assert "jose maria muller" in keys["name"]
    assert "muller jose maria" in keys["name"]
    assert {"Müller", "José", "María", "José María Müller", "Müller José María"} <= set(
        keys["name:exact"]
    )
    assert "muller" not in keys["name:exact"]
    assert keys["name:s"] == ["muller jose maria"]
    assert keys["family"] == ["muller"]
    assert keys["given"] == ["jose", "maria"]


def test_contains_trigrams_cover_every_substring() -> None:
    keys = keys_of(PRACTITIONER)
    grams = set(keys["name:g"])
    part = fold("José María Müller")
    for i in range(len(part)):
        for j in range(i + 1, len(part) + 1):
            sub = part[i:j]
            if len(sub) >= 3:
                assert all(sub[k : k + 3] in grams for k in range(len(sub) - 2)), sub
            elif sub.strip():
                assert any(g.startswith(sub) for g in grams), sub
    assert trigrams("ab") == ["ab", "b"]
    assert trigrams("Über") == ["ube", "ber", "er", "r"]


def test_address_parts() -> None:
    keys = keys_of(PATIENT)
    assert set(keys["address:exact"]) == {"朝阳区建国路88号", "北京", "朝阳区", "100022", "CN"}
    assert "cn" in keys["address"]
    assert "100022" in keys["address"]
    assert keys["address-city"] == ["北京"]
    assert "home" not in keys["address"]  # `use` is a token, not part of the text
    # a single Address (Location.address is 0..1)
    assert keys_of(LOCATION)["address:exact"] == ["Building B", "Beijing"]


def test_name_and_alias() -> None:
    keys = keys_of(ORGANIZATION)
    assert "北京朝阳医院" in keys["name"]
    assert "beijing chaoyang hospital" in keys["name"]
    assert "hospital" in keys["name"]  # every word starts a prefix
    assert keys["name:s"] == ["北京朝阳医院"]
    assert keys_of(LOCATION)["name:exact"] == ["Ward 3", "三病区"]


def test_value_string_and_concept_text() -> None:
    obs = with_(OBSERVATION, valueString="Trace amounts  ")
    del obs["valueQuantity"]
    assert keys_of(obs)["value-string:exact"] == ["Trace amounts"]
    obs = with_(
        obs,
        valueCodeableConcept={
            "coding": [{"system": SNOMED, "code": "260385009"}],
            "text": "Negative",
        },
    )
    del obs["valueString"]
    keys = keys_of(obs)
    assert keys["value-string:exact"] == ["Negative"]
    assert f"{SNOMED}|260385009" in keys["value-concept"]
    assert keys["value-concept:text"] == ["negative"]


def test_long_strings_are_bounded() -> None:
    text = " ".join(f"word{i}" for i in range(3000))
    obs = with_(OBSERVATION, valueString=text)
    del obs["valueQuantity"]
    keys = extract_keys(spec_for("Observation"), obs)  # stays under the engine's value limit
    assert keys["value-string:exact"] == [text]
    assert len(keys["value-string"]) < 300
    assert len(keys["value-string:g"]) <= 256


def test_agent_name_and_lot_number() -> None:
    assert keys_of(AUDIT_EVENT)["agent-name:exact"] == ["José Müller"]
    assert keys_of(IMMUNIZATION)["lot-number"] == ["aajn11k"]


# --- tokens ----------------------------------------------------------------------------------


def test_identifier_tokens() -> None:
    keys = keys_of(PATIENT)
    assert keys["identifier"] == [
        f"{RESIDENT}|110101199001011234",
        "110101199001011234",
        f"{RESIDENT}|",
    ]
    assert keys["identifier:text"] == ["resident", "id", "card"]
    assert keys_of(CONDITION)["identifier"] == ["|C-1", "C-1"]
    doc = keys_of(DOCUMENT_REFERENCE)
    assert "urn:ietf:rfc:3986|urn:oid:1.3.6.1.4.1.21367.2005.3.7" in doc["identifier"]


def test_codeable_concept_with_loinc() -> None:
    keys = keys_of(OBSERVATION)
    assert keys["code"] == [f"{LOINC}|15074-8", "15074-8", f"{LOINC}|"]
    assert set(keys["code:text"]) == {"glucose", "moles", "volume", "in", "blood", "血糖"}
    assert "laboratory" in keys["category"]
    assert keys["status"] == ["|final", "final"]


def test_coding_code_and_boolean_tokens() -> None:
    enc = keys_of(ENCOUNTER)
    assert enc["class"] == [
        "http://terminology.hl7.org/CodeSystem/v3-ActCode|AMB",
        "AMB",
        "http://terminology.hl7.org/CodeSystem/v3-ActCode|",
    ]
    assert enc["class:text"] == ["ambulatory"]
    assert enc["reason-code:text"] == ["高血", "血压"]
    patient = keys_of(PATIENT)
    assert patient["gender"] == ["|male", "male"]
    assert patient["active"] == ["|true", "true"]
    assert keys_of(with_(PATIENT, active=False))["active"] == ["|false", "false"]
    assert "active" not in keys_of({k: v for k, v in PATIENT.items() if k != "active"})
    assert keys_of(ALLERGY)["category"] == ["|food", "food"]
    assert keys_of(AUDIT_EVENT)["action"] == ["|R", "R"]
    assert keys_of(CONDITION)["category"] == ["|problem-list-item", "problem-list-item"]


def test_telecom_phone_and_email() -> None:
    keys = keys_of(PATIENT)
    assert keys["phone"] == ["phone|+86 138 0013 8000", "+86 138 0013 8000", "phone|"]
    assert keys["email"] == ["email|zhang.wei@example.cn", "zhang.wei@example.cn", "email|"]
    assert set(keys["telecom"]) == set(keys["phone"]) | set(keys["email"])
    assert "email" not in keys_of(PRACTITIONER)


def test_deceased() -> None:
    assert keys_of(PATIENT)["deceased"] == ["|false", "false"]  # absent: not deceased
    assert keys_of(with_(PATIENT, deceasedBoolean=True))["deceased"] == ["|true", "true"]
    assert keys_of(with_(PATIENT, deceasedBoolean=False))["deceased"] == ["|false", "false"]
    assert keys_of(with_(PATIENT, deceasedDateTime="2024-01-01"))["deceased"] == ["|true", "true"]


def test_medication_code_or_reference() -> None:
    keys = keys_of(MEDICATION_REQUEST)
    assert "197361" in keys["code"]
    assert "medication" not in keys
    ref = with_(MEDICATION_REQUEST, medicationReference={"reference": "Medication/amlo-5"})
    del ref["medicationCodeableConcept"]
    keys = keys_of(ref)
    assert keys["medication"] == ["Medication/amlo-5"]
    assert "code" not in keys


def test_allergy_code_includes_reaction_substance() -> None:
    assert {"91935009", "256349002"} <= set(keys_of(ALLERGY)["code"])


# --- dates -----------------------------------------------------------------------------------


def test_date_precision_and_zones() -> None:
    assert keys_of(PATIENT)["birthdate"] == [(utc(1990, 1, 1), utc(1990, 1, 2))]
    assert keys_of(OBSERVATION)["date"] == [(utc(2024, 5, 3, 1, 10), utc(2024, 5, 3, 1, 10, 1))]
    assert keys_of(CONDITION)["recorded-date"] == [(utc(2024, 5, 3), utc(2024, 5, 4))]
    assert keys_of(DIAGNOSTIC_REPORT)["issued"] == [(utc(2024, 5, 3, 4), utc(2024, 5, 3, 4, 0, 1))]
    assert keys_of(with_(PATIENT, birthDate="1990"))["birthdate"] == [
        (utc(1990, 1, 1), utc(1991, 1, 1))
    ]


def test_period() -> None:
    assert keys_of(ENCOUNTER)["date"] == [(utc(2024, 5, 3, 1), utc(2024, 5, 3, 1, 30, 1))]
    # open end, open start
    assert keys_of(DIAGNOSTIC_REPORT)["date"] == [
        (utc(2024, 5, 3, 1), datetime(9999, 12, 31, tzinfo=UTC))
    ]
    plan = with_(CARE_PLAN, period={"end": "2024-12"})
    assert keys_of(plan)["date"] == [(datetime(1, 1, 1, tzinfo=UTC), utc(2025, 1, 1))]
    # a day-precision period covers the whole of both days
    assert keys_of(PROCEDURE)["date"] == [(utc(2013, 4, 5), utc(2013, 4, 6))]
    assert keys_of(CONDITION)["onset-date"] == [
        (utc(2019, 3, 1), datetime(9999, 12, 31, tzinfo=UTC))
    ]


def test_choice_types() -> None:
    obs = {k: v for k, v in OBSERVATION.items() if k != "effectiveDateTime"}
    assert "date" not in keys_of(obs)
    inst = keys_of(with_(obs, effectiveInstant="2024-05-03T01:02:03.5Z"))["date"]
    assert inst == [
        (
            datetime(2024, 5, 3, 1, 2, 3, 500000, tzinfo=UTC),
            datetime(2024, 5, 3, 1, 2, 3, 600000, tzinfo=UTC),
        )
    ]
    period = keys_of(with_(obs, effectivePeriod={"start": "2024-05-01", "end": "2024-05-02"}))[
        "date"
    ]
    assert period == [(utc(2024, 5, 1), utc(2024, 5, 3))]
    timing = {
        "event": ["2024-05-01", "2024-05-02T08:00:00Z"],
        "repeat": {"boundsPeriod": {"start": "2024-06"}},
    }
    assert keys_of(with_(obs, effectiveTiming=timing))["date"] == [
        (utc(2024, 5, 1), utc(2024, 5, 2)),
        (utc(2024, 5, 2, 8), utc(2024, 5, 2, 8, 0, 1)),
        (utc(2024, 6, 1), datetime(9999, 12, 31, tzinfo=UTC)),
    ]
    # choices of other types are not dates, whatever their text
    cond = {k: v for k, v in CONDITION.items() if k != "onsetPeriod"}
    assert "onset-date" not in keys_of(with_(cond, onsetString="childhood"))
    assert "onset-date" not in keys_of(with_(cond, onsetAge={"value": 12, "unit": "a"}))
    assert keys_of(with_(cond, onsetDateTime="2019"))["onset-date"] == [
        (utc(2019, 1, 1), utc(2020, 1, 1))
    ]
    proc = {k: v for k, v in PROCEDURE.items() if k != "performedPeriod"}
    assert "date" not in keys_of(with_(proc, performedString="as a child"))
    imm = {k: v for k, v in IMMUNIZATION.items() if k != "occurrenceDateTime"}
    assert "date" not in keys_of(with_(imm, occurrenceString="last autumn"))
    assert keys_of(IMMUNIZATION)["date"] == [(utc(2023, 10, 20), utc(2023, 10, 21))]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("birthDate", "01/02/1990"),
        ("birthDate", "1990-02-30"),
        ("birthDate", 19900101),
        ("birthDate", "1990-01-01T10:00:00"),  # a time needs a zone
        ("birthDate", "9999-12-31"),  # its end is past the last representable instant
        ("birthDate", "2024-05-03T10:00:00+15:00"),
    ],
)
def test_bad_dates_raise(field: str, value: Any) -> None:
    bad = with_(PATIENT, **{field: value})
    with pytest.raises(ValueError, match=r"date|offset|range"):
        extract("Patient", bad)
    with pytest.raises(InvalidDocument):  # the storage engine answers 422
        extract_keys(spec_for("Patient"), bad)


def test_period_ending_before_it_starts_raises() -> None:
    bad = with_(ENCOUNTER, period={"start": "2024-05-03", "end": "2024-05-01"})
    with pytest.raises(ValueError, match="Period"):
        extract("Encounter", bad)


def test_bad_last_updated_raises() -> None:
    with pytest.raises(ValueError, match="date"):
        extract("Observation", with_(OBSERVATION, meta={"lastUpdated": "yesterday"}))


# --- quantities ------------------------------------------------------------------------------


def test_quantity() -> None:
    keys = keys_of(OBSERVATION)
    assert keys["value-quantity"] == [6.3]
    assert keys["value-quantity:u"] == [f"{UCUM}|mmol/L", "mmol/L", f"{UCUM}|"]
    obs = with_(OBSERVATION, valueQuantity={"value": 120, "unit": "mmHg"})
    keys = keys_of(obs)
    assert keys["value-quantity"] == [120]
    assert keys["value-quantity:u"] == ["mmHg"]
    no_number = with_(OBSERVATION, valueQuantity={"value": True, "unit": "x"})
    assert "value-quantity" not in keys_of(no_number)


# --- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ref", "parsed"),
    [
        ("Patient/123", ("Patient", "123", False)),
        ("Patient/123/_history/4", ("Patient", "123", False)),
        ("https://fhir.example.org/r4/Patient/a.b-9", ("Patient", "a.b-9", True)),
        ("http://x/fhir/Observation/o1/_history/2", ("Observation", "o1", True)),
        ("#contained-1", None),
        ("urn:uuid:8a5e1e5a-8d6f-4c2b-9e3b-1d0b8f7e6a51", None),
        ("urn:oid:1.2.3", None),
        ("Patient?identifier=123", None),
        ("Patient", None),
        ("patient/123", None),
        ("a/Patient/123", None),
        ("Patient/bad id", None),
        ("", None),
    ],
)
def test_parse_reference(ref: str, parsed: tuple[str, str, bool] | None) -> None:
    assert parse_reference(ref) == parsed


def test_reference_keys() -> None:
    obs = keys_of(OBSERVATION)
    assert obs["subject"] == ["Patient/zhang-wei"]  # version dropped
    assert obs["patient"] == ["Patient/zhang-wei"]
    assert obs["performer"] == ["Practitioner/dr-muller"]  # absolute URL: last two segments
    assert obs["encounter"] == ["Encounter/enc-1"]
    assert obs["based-on"] == ["ServiceRequest/sr-1"]
    assert obs["has-member"] == ["Observation/glucose-0"]
    assert "derived-from" not in obs  # a contained reference is not a resource of ours
    patient = keys_of(PATIENT)
    assert patient["general-practitioner"] == ["Practitioner/dr-li"]
    assert patient["organization"] == ["Organization/chaoyang-hospital"]
    assert keys_of(PRACTITIONER_ROLE)["location"] == ["Location/ward-3"]
    assert keys_of(DOCUMENT_REFERENCE)["encounter"] == ["Encounter/enc-1"]
    assert keys_of(IMMUNIZATION)["performer"] == ["Practitioner/dr-muller"]
    assert keys_of(CARE_PLAN)["performer"] == ["Patient/zhang-wei"]


def test_patient_parameters_only_index_patients() -> None:
    group = with_(OBSERVATION, subject={"reference": "Group/g1"})
    keys = keys_of(group)
    assert keys["subject"] == ["Group/g1"]
    assert "patient" not in keys
    enc = keys_of(ENCOUNTER)
    assert enc["participant"] == ["Practitioner/dr-muller", "PractitionerRole/dr-muller-gp"]
    assert enc["practitioner"] == ["Practitioner/dr-muller"]
    audit = keys_of(AUDIT_EVENT)
    assert audit["patient"] == ["Patient/zhang-wei"]
    assert audit["entity"] == ["Patient/zhang-wei", "Observation/glucose-1"]
    assert audit["agent"] == ["Practitioner/dr-muller"]
    assert audit["source"] == ["Organization/chaoyang-hospital"]
    prov = keys_of(PROVENANCE)
    assert prov["target"] == ["Observation/glucose-1", "Patient/zhang-wei"]
    assert prov["patient"] == ["Patient/zhang-wei"]
    assert prov["agent"] == ["Device/analyzer-7"]
    assert prov["entity"] == ["DocumentReference/discharge"]


def test_references_lists_relative_references() -> None:
    obs = with_(
        OBSERVATION,
        contained=[
            {
                "resourceType": "Observation",
                "id": "contained-1",
                "subject": {"reference": "Patient/other"},
            }
        ],
        extension=[{"url": "http://x", "valueReference": {"reference": "Location/ward-3"}}],
        focus=[{"reference": "urn:uuid:8a5e1e5a-8d6f-4c2b-9e3b-1d0b8f7e6a51"}],
        note=[{"text": "see Patient/zhang-wei"}],
    )
    assert references(obs) == [
        "ServiceRequest/sr-1",
        "Patient/zhang-wei",
        "Encounter/enc-1",
        "Observation/glucose-0",
        "Patient/other",
        "Location/ward-3",
    ]
    assert references(CONSENT) == ["Patient/zhang-wei"]
    nested = {"provision": {"actor": [{"reference": {"reference": "Practitioner/p1"}}]}}
    assert references(nested) == ["Practitioner/p1"]
    assert references(PRACTITIONER) == []


# --- compartments ----------------------------------------------------------------------------


def test_patient_compartment_definition() -> None:
    assert PATIENT_COMPARTMENT["Patient"] == ("link",)
    assert PATIENT_COMPARTMENT["Observation"] == ("subject", "performer")
    assert PATIENT_COMPARTMENT["AllergyIntolerance"] == ("patient", "recorder", "asserter")
    for rtype in ("Practitioner", "PractitionerRole", "Organization", "Location"):
        assert rtype not in PATIENT_COMPARTMENT
    for rtype, names in PATIENT_COMPARTMENT.items():
        for name in names:
            assert SEARCH_PARAMS[rtype][name].type is ParamType.REFERENCE
            assert "Patient" in SEARCH_PARAMS[rtype][name].targets


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (PATIENT, ["Patient/zhang-wei", "Patient/zhang-wei-old"]),
        (OBSERVATION, ["Patient/zhang-wei"]),
        (ENCOUNTER, ["Patient/zhang-wei"]),
        (CONDITION, ["Patient/zhang-wei"]),
        (ALLERGY, ["Patient/zhang-wei", "Patient/mother-1"]),
        (MEDICATION_REQUEST, ["Patient/zhang-wei"]),
        (IMMUNIZATION, ["Patient/zhang-wei"]),
        (PROCEDURE, ["Patient/zhang-wei"]),
        (DIAGNOSTIC_REPORT, ["Patient/zhang-wei"]),
        (DOCUMENT_REFERENCE, ["Patient/zhang-wei"]),
        (CARE_PLAN, ["Patient/zhang-wei"]),
        (CONSENT, ["Patient/zhang-wei"]),
        (AUDIT_EVENT, ["Patient/zhang-wei"]),
        (PROVENANCE, ["Patient/zhang-wei"]),
        (PRACTITIONER, []),
        (PRACTITIONER_ROLE, []),
        (ORGANIZATION, []),
        (LOCATION, []),
    ],
)
def test_compartment(resource: dict[str, Any], expected: list[str]) -> None:
    rtype = resource["resourceType"]
    assert patient_compartments(rtype, resource) == expected
    assert keys_of(resource).get("_compartment", []) == expected


def test_compartment_through_performer_and_author() -> None:
    obs = with_(
        OBSERVATION,
        subject={"reference": "Group/g1"},
        performer=[{"reference": "Patient/self-reporter"}, {"reference": "Practitioner/dr-muller"}],
    )
    assert keys_of(obs)["_compartment"] == ["Patient/self-reporter"]
    doc = with_(DOCUMENT_REFERENCE, subject={"reference": "Device/d1"})
    assert keys_of(doc)["_compartment"] == ["Patient/zhang-wei"]  # the author
    audit = with_(
        AUDIT_EVENT, agent=[{"who": {"reference": "Patient/p9"}, "requestor": True}], entity=[]
    )
    assert keys_of(audit)["_compartment"] == ["Patient/p9"]


def test_compartment_ignores_absolute_and_bundle_local_references() -> None:
    # An absolute URL is searchable as subject, but grants no compartment: it may name a
    # patient on another server whose id exists here too.
    obs = with_(OBSERVATION, subject={"reference": "https://other.example/fhir/Patient/zhang-wei"})
    keys = keys_of(obs)
    assert keys["subject"] == ["Patient/zhang-wei"]
    assert "_compartment" not in keys
    unresolved = with_(
        OBSERVATION, subject={"reference": "urn:uuid:8a5e1e5a-8d6f-4c2b-9e3b-1d0b8f7e6a51"}
    )
    assert "_compartment" not in keys_of(unresolved)
    assert "subject" not in keys_of(unresolved)


def test_patient_without_id_has_no_own_compartment() -> None:
    new = {k: v for k, v in PATIENT.items() if k != "id"}
    assert patient_compartments("Patient", new) == ["Patient/zhang-wei-old"]
    assert "_id" not in keys_of(new)


# --- refusals --------------------------------------------------------------------------------


def test_resource_of_another_type_is_refused() -> None:
    with pytest.raises(ValueError, match="Observation cannot be stored as Patient"):
        extract("Patient", OBSERVATION)
    with pytest.raises(InvalidDocument):
        extract_keys(spec_for("Patient"), OBSERVATION)


def test_unsupported_type_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported resource type"):
        spec_for("Medication")
    with pytest.raises(ValueError, match="unsupported resource type"):
        extract("Basic", {"resourceType": "Basic"})


def test_minimal_resources_extract_nothing_but_defaults() -> None:
    for rtype in RESOURCE_TYPES:
        keys = extract(rtype, {"resourceType": rtype})
        assert keys == ({"deceased": ["|false", "false"]} if rtype == "Patient" else {}), rtype
