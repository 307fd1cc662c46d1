"""`python -m tools.devissuer`: run the dev issuer with uvicorn on HUIMIN_HOST:HUIMIN_PORT."""

from __future__ import annotations

import sys

from fastapi import FastAPI

from shared.app import serve
from tools.devissuer.app import create_issuer_app
from tools.devissuer.keys import KeyFileError
from tools.devissuer.realm import RealmError
from tools.devissuer.settings import IssuerSettings

EXIT_CANNOT_START = 2


def _create(settings: IssuerSettings) -> FastAPI:
    try:
        return create_issuer_app(settings)
    except (RealmError, KeyFileError) as exc:
        # A configuration problem, not a crash: one clear line, no traceback.
        print(f"devissuer: cannot start: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CANNOT_START) from None


def main() -> None:
    """Entry point: settings (refused in production, exit 2), realm, keys, then serve."""
    serve(_create, IssuerSettings)


if __name__ == "__main__":
    main()
