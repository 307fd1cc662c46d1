"""Go programs built from source into the cache outside the repository (FerretDB,
compose-check, Helm): once per key (a source hash or a version), under a file lock, the
finished binary moved into place in one step so that readers never see half of one."""

from __future__ import annotations

import hashlib
import os
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from tools._server import file_lock, log


def source_hash(source_dir: Path, files: Sequence[str]) -> str:
    """Hash of the Go sources (e.g. go.mod, go.sum, main.go) that determine a binary."""
    digest = hashlib.sha256()
    for name in files:
        digest.update(name.encode() + b"\0" + (source_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def cached_build(
    target: Path, prefix: str, build: Callable[[Path], None], *, force: bool = False
) -> Path:
    """`target` as it is, else made by `build(target)` (logged as `prefix`); with `force`,
    built again."""
    if target.is_file() and not force:
        return target
    with file_lock(target.parent / "build.lock", "another build to finish", prefix):
        if target.is_file() and not force:  # a concurrent build finished while we waited
            return target
        started = time.monotonic()
        build(target)
        log(prefix, f"built {target} in {time.monotonic() - started:.0f}s")
        return target


def build_output(result: subprocess.CompletedProcess[str]) -> str:
    """The end of a failed build's output, for its error message."""
    return result.stdout.strip()[-4000:] or "(no output)"


def build_module(go: str, source_dir: Path, target: Path, error: type[RuntimeError]) -> None:
    """`go build` the main module in `source_dir` into `target` (`error` if it fails)."""
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    # -mod=readonly: the committed go.sum must be complete, so the build is reproducible.
    command = [go, "build", "-trimpath", "-buildvcs=false", "-mod=readonly", "-o", str(tmp)]
    # The module cache is shared with every other Go build on this machine (Go's default,
    # or the caller's GOMODCACHE); only the finished binary lives in Huimin's cache. No cgo:
    # the programs built here are pure Go (FerretDB's SQLite driver is modernc.org/sqlite).
    result = subprocess.run(
        [*command, "."],
        cwd=source_dir,
        env=dict(os.environ, CGO_ENABLED="0"),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        tmp.unlink(missing_ok=True)
        raise error(f"`go build` failed (exit {result.returncode}):\n{build_output(result)}")
    tmp.replace(target)  # atomic: readers never see a half-written binary
