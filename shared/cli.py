"""The `huimin` command line (`huimin --help`).

huimin identity sync [--realm-file F]   roles, clients and scopes into a running Keycloak
huimin registry import FILE [--url U]   residents and households from CSV, with progress
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from pathlib import Path

from shared.settings import get_settings

REALM_FILE = Path(__file__).resolve().parent.parent / "docker" / "keycloak" / "realm-huimin.json"


def _identity_sync(args: argparse.Namespace) -> int:
    from shared.auth.admin import admin_from_issuer, load_realm, sync_realm

    password = os.environ.get(args.admin_password_env)
    if not password:
        print(f"set {args.admin_password_env} to the Keycloak admin password", file=sys.stderr)
        return 2
    admin = admin_from_issuer(args.issuer, args.admin_user, password)
    report = asyncio.run(sync_realm(admin, load_realm(args.realm_file)))
    for change in report.changes:
        print(change)
    print(f"{len(report.changes)} change(s)" if report else "nothing to change")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `huimin` command."""
    parser = argparse.ArgumentParser(prog="huimin", description="Huimin administration")
    groups = parser.add_subparsers(dest="group", required=True)
    identity = groups.add_parser("identity", help="identity provider (Keycloak)")
    actions = identity.add_subparsers(dest="action", required=True)
    sync = actions.add_parser(
        "sync",
        help="bring roles, client scopes and clients of the "
        "realm file into a running Keycloak (safe to run twice)",
    )
    sync.add_argument("--realm-file", type=Path, default=REALM_FILE)
    sync.add_argument(
        "--issuer", default=None, help="realm issuer URL (default: HUIMIN_OIDC_ISSUER)"
    )
    sync.add_argument("--admin-user", default=os.environ.get("HUIMIN_KEYCLOAK_ADMIN", "admin"))
    sync.add_argument(
        "--admin-password-env",
        default="HUIMIN_KEYCLOAK_ADMIN_PASSWORD",
        help="environment variable holding the admin password",
    )
    sync.set_defaults(run=_identity_sync)
    # Imported when the command runs: shared/ stays importable without the services.
    from services.registry.cli import add_parser as add_registry

    add_registry(groups)
    args = parser.parse_args(argv)
    if getattr(args, "issuer", "x") is None:
        args.issuer = get_settings().oidc_issuer
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
