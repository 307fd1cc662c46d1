"""Build and run compose-check: Docker Compose's own loader (compose-go), without Docker.

The Go main module in ``tools/compose-check`` loads a compose file exactly as
`docker compose config` would (the Compose Specification schema, interpolation including
``${VAR:?}``, references between services) and prints the resolved project as JSON. It is
built once per source hash into a cache outside the repository, like FerretDB.

    python -m tools.compose_check build                       # build (or reuse), print the path
    python -m tools.compose_check check [--env-file F] FILE   # print the project, or the error
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tools._gobuild import build_module, cached_build
from tools._gobuild import source_hash as go_source_hash
from tools._server import cache_root, command_line, log
from tools.ferretdb import find_go

SOURCE_DIR = Path(__file__).resolve().parent / "compose-check"
SOURCE_FILES = ("go.mod", "go.sum", "main.go")
BINARY_NAME = "compose-check"


class ComposeCheckError(RuntimeError):
    """compose-check could not be built."""


def _log(message: str) -> None:
    log("compose-check", message)


def source_hash() -> str:
    """Hash of the Go sources that determine the binary."""
    return go_source_hash(SOURCE_DIR, SOURCE_FILES)


def binary_path() -> Path:
    """Where the binary for the current sources lives (it may not be built yet)."""
    return cache_root() / "compose-check" / source_hash() / BINARY_NAME


def build(*, force: bool = False) -> Path:
    """Build compose-check into the cache (once per source hash) and return its path."""

    def run(target: Path) -> None:
        try:
            go = find_go()
        except RuntimeError as exc:
            raise ComposeCheckError(str(exc)) from None
        _log(f"building with {go} into {target.parent} (about a minute) ...")
        build_module(go, SOURCE_DIR, target, ComposeCheckError)

    return cached_build(binary_path(), "compose-check", run, force=force)


def check(compose_file: Path, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Load `compose_file` (with `env_file`'s variables only): JSON on stdout, or the error."""
    args = [str(build())]
    if env_file is not None:
        args += ["-env-file", str(env_file)]
    # An empty environment: only the env file may satisfy the file's ${VAR:?} variables.
    return subprocess.run(
        [*args, str(compose_file)],
        capture_output=True,
        text=True,
        env={"PATH": os.defpath},
        check=False,
        timeout=60,
    )


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.compose_check`."""
    parser, commands = command_line("tools.compose_check", "Docker Compose's loader, offline")
    build_cmd = commands.add_parser("build", help="build the binary (cached) and print its path")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    check_cmd = commands.add_parser("check", help="load a compose file and print the project")
    check_cmd.add_argument("--env-file", type=Path, help="variables for interpolation")
    check_cmd.add_argument("file", type=Path, help="the compose file")
    args = parser.parse_args(argv)
    try:
        if args.command == "build":
            print(build(force=args.force))
            return 0
        result = check(args.file, args.env_file)
    except ComposeCheckError as exc:
        _log(str(exc))
        return 1
    sys.stdout.write(result.stdout)
    sys.stderr.write(result.stderr)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
