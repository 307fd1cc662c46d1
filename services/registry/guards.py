"""Rules the core resident routes consult for the change-request and merge work:

- a merged (retired) resident is read as a redirect to the survivor and is never changed
  again, since its id now stands for the survivor (docs/registry.md, "Merge");
- identity facts (name, sex, birth date, national ID) of a registered resident change only
  through a change request decided by the officer above, unless the caller is a district
  officer or an administrator, who have nobody above them in the registry.

Kept apart from `service.py` and `changes.py` so that both can import it without a cycle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from services.registry.access import Access
from services.registry.places import split
from shared.errors import Conflict, Forbidden, HuiminError, problem_type

MERGED = "merged"
# Facts that identify the person: a wrong value links them to someone else's records in
# every service, so a second pair of eyes decides. Phone and address line are contact
# details the person changes at will and stay direct edits.
IDENTITY_FIELDS = ("name", "sex", "birth_date", "national_id")


class ResidentMergedAway(HuiminError):
    """A read of a retired id: 301 to the survivor, with `merged_into` in the body."""

    status = 301
    type = problem_type("resident-merged")
    title = "Moved Permanently"


def redirect_merged(body: Mapping[str, Any]) -> None:
    """301 with `Location: /residents/<survivor>` when `body` is a merged resident."""
    if body.get("status") == MERGED:
        into = body["merged_into"]
        raise ResidentMergedAway(
            f"Resident {body['id']} was merged into {into}.",
            headers={"Location": f"/residents/{into}"},
            resident_id=body["id"],
            merged_into=into,
        )


def refuse_merged(body: Mapping[str, Any]) -> None:
    """409 for a change to a merged resident (change the survivor instead)."""
    if body.get("status") == MERGED:
        raise Conflict(
            f"Resident {body['id']} was merged into {body['merged_into']}; change that record.",
            merged_into=body["merged_into"],
        )


def edits_identity_directly(access: Access) -> bool:
    """District officers and administrators correct identity facts directly."""
    if access.is_admin:
        return True
    parts = split(access.scope) if access.scope else None
    return parts is not None and len(parts) == 1


def require_direct_edit(access: Access, current: Mapping[str, Any], new: Mapping[str, Any]) -> None:
    """403 when a worker or street officer changes an identity fact by PATCH."""
    changed = [f for f in IDENTITY_FIELDS if current.get(f) != new.get(f)]
    if changed and not edits_identity_directly(access):
        raise Forbidden(
            f"{', '.join(changed)} of a registered resident change through a change request"
            " (POST /change-requests, kind correction), decided by the officer above you.",
            errors=[{"pointer": f"#/{f}", "message": "needs a change request"} for f in changed],
        )
