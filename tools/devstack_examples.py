"""What `make run` prints once the stack is up: URLs, dev users and example commands.

The examples live here, in one list, so that the launcher prints exactly the strings the
test (tests/tools/test_devstack_examples.py) runs against a started stack: an example that
stops working fails a test instead of misleading a newcomer. Each example is one shell
snippet, complete in itself (a token it needs is fetched in the same snippet), so it can be
pasted alone.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEV_USERS_FILE = REPO_ROOT / "docker" / "keycloak" / "dev-users.json"
DEV_PASSWORD = "huimin-dev"  # noqa: S105 - the dev users' documented password
REALM = "huimin"
# Roles every user has; not worth printing.
_DEFAULT_ROLES = frozenset({f"default-roles-{REALM}", "offline_access", "uma_authorization"})


@dataclass(frozen=True)
class Example:
    """One printed example: what it shows, the shell snippet, and a text its answer holds."""

    title: str
    command: str
    expect: str


def token_command(issuer_url: str, username: str, scope: str | None = None) -> str:
    """A shell assignment `TOKEN=...` of a dev user's access token (password grant through
    the dev-only `huimin-test` client; docs/dev-issuer.md)."""
    scope_arg = f" -d 'scope={scope}'" if scope else ""
    return (
        f"TOKEN=$(curl -fsS -d grant_type=password -d client_id=huimin-test -d username={username}"
        f" -d password={DEV_PASSWORD}{scope_arg} {token_url(issuer_url)}"
        " | python3 -c 'import json,sys; print(json.load(sys.stdin)[\"access_token\"])')"
    )


def token_url(issuer_url: str) -> str:
    """The realm's token endpoint on the issuer at `issuer_url` (Keycloak's layout)."""
    return f"{issuer_url}/realms/{REALM}/protocol/openid-connect/token"


def examples(urls: Mapping[str, str]) -> list[Example]:
    """The example commands for a stack whose parts answer at `urls` (`gateway_url`, ...)."""
    gateway, issuer = urls["gateway_url"], urls["issuer_url"]
    bearer = '-H "Authorization: Bearer $TOKEN"'
    return [
        Example(
            "Public: places within 2 km of the Forbidden City, nearest first",
            f"curl -fsS '{gateway}/tourism/places?lat=39.9163&lon=116.3972&radius=2000'"
            " -H 'Accept-Language: en'",
            '"distance_m"',
        ),
        Example(
            "Public: search the education catalogue",
            f"curl -fsS '{gateway}/education/resources?q=fractions'",
            "Introducing fractions",
        ),
        Example(
            "A token for the dev user citizen from the dev issuer",
            f"curl -fsS -d grant_type=password -d client_id=huimin-test -d username=citizen"
            f" -d password={DEV_PASSWORD} {token_url(issuer)}",
            '"access_token"',
        ),
        Example(
            "citizen: own record, household, health summary and enrollments in one call",
            f"{token_command(issuer, 'citizen', 'patient/*.rs')}\ncurl -fsS {bearer} {gateway}/me",
            "R-00000001",
        ),
        Example(
            "doctor: the citizen's FHIR Patient, found by resident id",
            f"{token_command(issuer, 'doctor', 'user/*.rs')}\n"
            f"curl -fsS {bearer}"
            f" '{gateway}/fhir/Patient?identifier=https://huimin.example/sid/resident-id%7CR-00000001'",
            "R-00000001",
        ),
        Example(
            "worker: a resident of their community in the registry",
            f"{token_command(issuer, 'worker')}\n"
            f"curl -fsS {bearer} {gateway}/registry/residents/R-00000001",
            "R-00000001",
        ),
    ]


def dev_users(path: Path = DEV_USERS_FILE) -> list[tuple[str, list[str]]]:
    """(username, realm roles) of the dev users, read from the realm file both the dev issuer
    and a dev Keycloak import, so the list cannot drift from who can actually log in."""
    document = json.loads(path.read_text(encoding="utf-8"))
    return [
        (user["username"], [r for r in user.get("realmRoles", []) if r not in _DEFAULT_ROLES])
        for user in document.get("users", [])
    ]


def summary(urls: Mapping[str, str], order: Sequence[str]) -> str:
    """The text printed when the stack is ready: URLs (in `order`), users, examples."""
    width = max(len(name) for name in order)
    lines = ["URLs (the gateway is the public entry; the others answer directly):"]
    lines += [f"  {name:<{width}}  {urls[f'{name}_url']}" for name in order]
    lines += ["", f"Dev users (password {DEV_PASSWORD}):"]
    users = dev_users()
    user_width = max(len(name) for name, _ in users)
    lines += [f"  {name:<{user_width}}  {', '.join(roles)}" for name, roles in users]
    lines += ["", "Try (each block pastes into a shell as it is):"]
    for example in examples(urls):
        lines += ["", f"# {example.title}", example.command]
    return "\n".join(lines)
