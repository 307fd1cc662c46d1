"""`huimin registry import FILE`: send a CSV file to the registry, follow the job with a
progress bar, print the summary and the first failed rows.

Exit status: 0 when every row was imported (created, existing or updated), 1 when rows
failed or the job failed, 2 when the file was refused as a whole or the call could not be
made (no token, unreachable server, 401/403/413/415/422).
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

DEFAULT_URL = "http://127.0.0.1:8002"
DEV_CLIENT = "huimin-test"  # the dev issuer's password-grant client (dev stack and tests)
POLL_SECONDS = 0.5


def add_parser(groups: Any) -> None:
    """Add `registry import` to the `huimin` command's subcommand groups."""
    registry = groups.add_parser("registry", help="community registry")
    actions = registry.add_subparsers(dest="action", required=True)
    imp = actions.add_parser(
        "import",
        help="import residents and households from a CSV file (docs/registry.md)",
        description="Post a CSV file to the registry and follow the import job.",
    )
    imp.add_argument("file", type=Path, help="the CSV file")
    imp.add_argument(
        "--url",
        default=os.environ.get("HUIMIN_REGISTRY_URL", DEFAULT_URL),
        help=f"registry base URL (default: HUIMIN_REGISTRY_URL or {DEFAULT_URL})",
    )
    who = imp.add_mutually_exclusive_group()
    who.add_argument("--token", help="bearer access token (default: HUIMIN_TOKEN)")
    who.add_argument("--user", help="log in as this user (password grant, dev issuer)")
    imp.add_argument(
        "--password-env",
        default="HUIMIN_PASSWORD",
        help="environment variable holding the --user password (else it is asked for)",
    )
    imp.add_argument("--issuer", default=None, help="issuer URL (default: HUIMIN_OIDC_ISSUER)")
    imp.add_argument("--client-id", default=DEV_CLIENT, help="client of the password grant")
    imp.add_argument("--charset", help="the file's encoding when it is not UTF-8 (gb18030)")
    imp.add_argument("--show-errors", type=int, default=20, help="failed rows to print (≤ 100)")
    imp.set_defaults(run=run_import)


def _token(args: argparse.Namespace) -> str | None:
    if args.token:
        return str(args.token)
    if not args.user:
        return os.environ.get("HUIMIN_TOKEN") or None
    password = os.environ.get(args.password_env) or getpass.getpass(f"password of {args.user}: ")
    response = httpx.post(
        f"{str(args.issuer).rstrip('/')}/protocol/openid-connect/token",
        data={
            "grant_type": "password",
            "client_id": args.client_id,
            "username": args.user,
            "password": password,
        },
        timeout=30.0,
    )
    if response.status_code != 200:
        raise SystemExit(f"login as {args.user} failed: {response.status_code} {response.text}")
    return str(response.json()["access_token"])


def _problem(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return f"{response.status_code} {response.text[:500]}"
    lines = [f"{response.status_code} {body.get('title', '')}: {body.get('detail') or ''}"]
    for e in body.get("errors") or []:
        where = e.get("pointer") or e.get("field") or ""
        lines.append(f"  {where}: {e.get('message')}")
    return "\n".join(lines)


def _follow(client: httpx.Client, job: dict[str, Any], console: Console) -> dict[str, Any]:
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[failed]} failed"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        task = progress.add_task(job["filename"], total=job["rows"]["total"], failed=0)
        while True:
            rows = job["rows"]
            progress.update(task, completed=rows["done"], failed=rows["failed"])
            if job["state"] in ("done", "failed"):
                return job
            time.sleep(POLL_SECONDS)
            response = client.get(f"/imports/{job['id']}")
            response.raise_for_status()
            job = response.json()


def run_import(args: argparse.Namespace) -> int:
    """Post the file, follow the job, report; the exit status says whether rows failed."""
    err = Console(stderr=True)
    try:
        token = _token(args)
    except httpx.HTTPError as exc:
        err.print(f"cannot reach the issuer: {exc}")
        return 2
    if not token:
        err.print("give --token (or set HUIMIN_TOKEN) or --user to log in")
        return 2
    try:
        raw = args.file.read_bytes()
    except OSError as exc:
        err.print(f"cannot read {args.file}: {exc.strerror}")
        return 2
    ctype = "text/csv" + (f"; charset={args.charset}" if args.charset else "")
    headers = {"Authorization": f"Bearer {token}"}
    try:
        with httpx.Client(base_url=args.url, headers=headers, timeout=60.0) as client:
            response = client.post(
                "/imports",
                content=raw,
                headers={"Content-Type": ctype},
                params={"filename": args.file.name},
            )
            if response.status_code != 202:
                err.print(f"the registry refused the file: {_problem(response)}", markup=False)
                return 2
            job = _follow(client, response.json(), err)
            failed = _errors(client, job, min(max(args.show_errors, 0), 100))
    except httpx.HTTPError as exc:
        err.print(f"the registry at {args.url} did not answer: {exc}")
        return 2
    _summary(job, failed)
    return 0 if job["state"] == "done" and job["rows"]["failed"] == 0 else 1


def _errors(client: httpx.Client, job: dict[str, Any], limit: int) -> list[dict[str, Any]]:
    if not job["rows"]["failed"] or limit == 0:
        return []
    response = client.get(f"/imports/{job['id']}/errors", params={"limit": limit})
    response.raise_for_status()
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def _summary(job: dict[str, Any], failed: list[dict[str, Any]]) -> None:
    r = job["rows"]
    print(
        f"import {job['id']} {job['state']}: {r['total']} rows, {r['created']} created,"
        f" {r['existing']} existing, {r['updated']} updated, {r['failed']} failed"
        f" ({job['encoding']})"
    )
    if job.get("error"):
        print(f"error: {job['error']}")
    for item in failed:
        for e in item["errors"]:
            print(f"row {item['row']}: {e.get('field') or 'line'}: {e['message']}")
    if r["failed"] > len(failed):
        print(f"... and more: GET /imports/{job['id']}/errors")
    sys.stdout.flush()
