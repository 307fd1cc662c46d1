"""Helpers of the health acceptance tests: FHIR clients, the two citizens, unique test data.

The servers of `tests.fixtures.health` live for the whole session, so every test makes its
own data (a random name or identifier) and can then assert exact result sets.
"""

from __future__ import annotations

import random
import string
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import httpx
from fhirpy import SyncFHIRClient
from fhirpy.base.searchset import Raw

from tests.fixtures.health import RESIDENT_SYSTEM, Fhir

TEST_SYSTEM = "https://huimin.example/sid/acceptance-test"
CITIZEN_A_RESIDENT = "R-00000001"  # the dev user `citizen` (docker/keycloak/dev-users.json)
LOINC = "http://loinc.org"
UCUM = "http://unitsofmeasure.org"

_citizen_a: dict[str, str] = {}  # server base URL -> id of citizen A's Patient
_citizen_b: dict[str, tuple[str, str]] = {}  # server base URL -> (Patient id, resident id)


def word(n: int = 10) -> str:
    """A random capitalized word of letters (a family name nobody else uses)."""
    return "Q" + "".join(random.choices(string.ascii_lowercase, k=n - 1))


def tag() -> str:
    """A fresh value for the test identifier: `identifier=TEST_SYSTEM|<tag>` scopes a search
    to the resources one test made."""
    return uuid.uuid4().hex


def mark(value: str) -> dict[str, str]:
    """The identifier that marks a resource as made by one test."""
    return {"system": TEST_SYSTEM, "value": value}


def fhirpy(fhir: Fhir, user: str | None = None, *, token: str | None = None) -> SyncFHIRClient:
    """A fhirpy client of the server, as a dev user (or with the given token)."""
    bearer = token if token is not None else fhir.token(user or "doctor")
    return SyncFHIRClient(fhir.base, authorization=f"Bearer {bearer}")


def bearer(fhir: Fhir, token: str) -> httpx.Client:
    """An httpx client of the server with an arbitrary access token."""
    return httpx.Client(
        base_url=fhir.base, headers={"Authorization": f"Bearer {token}"}, timeout=60.0
    )


def crafted(fhir: Fhir, *, roles: list[str], scope: str, **claims: Any) -> str:
    """A token signed with the dev issuer's trusted key, with the roles and scope given."""
    subject = claims.pop("sub", f"crafted-{uuid.uuid4().hex[:8]}")
    return fhir.idp.sign(
        fhir.idp.claims(sub=subject, realm_access={"roles": roles}, scope=scope, **claims)
    )


def system_token(fhir: Fhir, client_id: str = "huimin-registry") -> str:
    """A service account's token with the SMART scope `system/*.rs` (client credentials)."""
    response = httpx.post(
        fhir.idp.token_url,
        timeout=30.0,
        data={
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": fhir.idp.secrets[client_id],
            "scope": "system/*.rs",
        },
    )
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def create(client: httpx.Client, resource: Mapping[str, Any]) -> dict[str, Any]:
    """POST a resource; its stored body (201 required)."""
    response = client.post(f"/{resource['resourceType']}", json=dict(resource))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def search(client: httpx.Client, path: str, **params: Any) -> dict[str, Any]:
    """GET a search Bundle (200 required)."""
    response = client.get(path, params=params)
    assert response.status_code == 200, response.text
    bundle: dict[str, Any] = response.json()
    assert bundle["resourceType"] == "Bundle"
    return bundle


def ids(bundle: Mapping[str, Any], mode: str | None = "match") -> set[str]:
    """`Type/id` of the entries of a Bundle (those of one search mode, or all with None)."""
    return {
        f"{e['resource']['resourceType']}/{e['resource']['id']}"
        for e in bundle.get("entry") or []
        if "resource" in e and (mode is None or e.get("search", {}).get("mode") == mode)
    }


def refs(resources: Iterable[Mapping[str, Any]]) -> set[str]:
    """`Type/id` of resources."""
    return {f"{r['resourceType']}/{r['id']}" for r in resources}


def ref(resource: Mapping[str, Any]) -> str:
    """`Type/id` of one resource."""
    return f"{resource['resourceType']}/{resource['id']}"


def patient(marker: str, **fields: Any) -> dict[str, Any]:
    """A Patient carrying the test identifier `marker` (and a unique resident id)."""
    body: dict[str, Any] = {
        "resourceType": "Patient",
        "identifier": [
            mark(marker),
            {"system": RESIDENT_SYSTEM, "value": "R-" + str(uuid.uuid4().int)[:8]},
        ],
    }
    body.update(fields)
    return body


def observation(subject: str, marker: str, **fields: Any) -> dict[str, Any]:
    """A final Observation about `subject` carrying the test identifier `marker`."""
    body: dict[str, Any] = {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": "8867-4", "display": "Heart rate"}]},
        "subject": {"reference": subject},
        "identifier": [mark(marker)],
    }
    body.update(fields)
    return body


def citizen_a(fhir: Fhir) -> str:
    """The id of the dev user `citizen`'s Patient (resident id R-00000001), made once per
    server with a conditional create so that there is never a second one."""
    if fhir.base not in _citizen_a:
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT_SYSTEM, "value": CITIZEN_A_RESIDENT}],
            "name": [{"family": "Citizen", "given": ["Ada"]}],
            "gender": "female",
            "birthDate": "1985-04-12",
        }
        with fhir.client("doctor") as c:
            response = c.post(
                "/Patient",
                json=body,
                headers={"If-None-Exist": f"identifier={RESIDENT_SYSTEM}|{CITIZEN_A_RESIDENT}"},
            )
        assert response.status_code in (200, 201), response.text
        _citizen_a[fhir.base] = str(response.json()["id"])
    return _citizen_a[fhir.base]


def citizen_b(fhir: Fhir) -> tuple[str, str]:
    """(Patient id, resident id) of a second citizen, whose tokens the tests sign themselves."""
    if fhir.base not in _citizen_b:
        resident = "R-9" + str(uuid.uuid4().int)[:7]
        body = {
            "resourceType": "Patient",
            "identifier": [{"system": RESIDENT_SYSTEM, "value": resident}],
            "name": [{"family": word(), "given": ["Bea"]}],
            "gender": "female",
        }
        with fhir.client("doctor") as c:
            pid = create(c, body)["id"]
        _citizen_b[fhir.base] = (str(pid), resident)
    return _citizen_b[fhir.base]


def citizen_b_token(fhir: Fhir, scope: str = "patient/*.rs") -> str:
    """An access token of citizen B (a crafted token: B has no dev account)."""
    _, resident = citizen_b(fhir)
    return crafted(
        fhir,
        roles=["citizen"],
        scope=scope,
        sub=f"citizen-b-{resident}",
        preferred_username="citizen-b",
        resident_id=resident,
    )


def eventually(probe: Callable[[], Any], *, seconds: float = 5.0) -> Any:
    """The first truthy result of `probe`, polled for up to `seconds` (audits are batched)."""
    deadline = time.monotonic() + seconds
    while True:
        result = probe()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(0.1)


def raw(**params: str | list[str]) -> Raw:
    """fhirpy's `Raw`: parameter names passed as they are (`value-quantity`, `_profile:below`)."""
    made: Raw = Raw(**params)  # type: ignore[no-untyped-call]  # fhirpy leaves it untyped
    return made


def found(client: SyncFHIRClient, resource_type: str, *raw: Raw, **params: Any) -> set[str]:
    """Ids of every match of a search made with fhirpy (which follows the next links).

    `params` use fhirpy's spelling (`family__exact=`, `birthdate__ge=`); `raw(**{...})`
    (see `raw`) passes names as they are.
    """
    matches = client.resources(resource_type).search(*raw, **params).fetch_all()
    return {str(r["id"]) for r in matches}
