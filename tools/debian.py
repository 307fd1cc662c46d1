"""Programs from Debian's packages without root: `apt-get download` and `dpkg -x` into the
cache outside the repo (tools/redis.py and tools/nginx.py use it).

A program already on PATH is used as it is; otherwise the packages are unpacked once (under
a file lock, renamed into place when complete) and run with their libraries found through
`LD_LIBRARY_PATH`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from tools._server import cache_root, file_lock, log


class DebianError(RuntimeError):
    """The packages could not be fetched or held no such program."""


def root(name: str) -> Path:
    """Where the packages of `name` are unpacked."""
    return cache_root() / name / "root"


def program(name: str, packages: Sequence[str], relative: str, *, command: str) -> Path:
    """`command` from PATH, or `relative` (e.g. `usr/sbin/nginx`) unpacked from `packages`."""
    on_path = shutil.which(command)
    if on_path:
        return Path(on_path)
    target = root(name) / relative
    if target.exists():
        return target
    with file_lock(cache_root() / name / ".lock", f"another {name} install", name):
        if target.exists():
            return target
        if shutil.which("apt-get") is None or shutil.which("dpkg") is None:
            raise DebianError(f"no {command} on PATH and no apt-get/dpkg to fetch one")
        with tempfile.TemporaryDirectory(prefix=f"huimin-{name}-") as tmp:
            log(name, f"fetching {' '.join(packages)} from Debian's packages")
            result = subprocess.run(
                ["apt-get", "download", *packages],
                cwd=tmp,
                capture_output=True,
                text=True,
                check=False,
            )
            if result.returncode != 0:
                raise DebianError(f"apt-get download failed: {result.stderr.strip()[-500:]}")
            staging = root(name).with_name("root.partial")
            shutil.rmtree(staging, ignore_errors=True)
            for deb in sorted(Path(tmp).glob("*.deb")):
                subprocess.run(["dpkg", "-x", str(deb), str(staging)], check=True)
            # Renamed into place last: a half-unpacked tree is never taken for an install.
            shutil.rmtree(root(name), ignore_errors=True)
            staging.rename(root(name))
    if not target.exists():
        raise DebianError(f"the Debian packages {', '.join(packages)} held no {relative}")
    log(name, f"installed {target}")
    return target


def environment(name: str, binary: Path) -> dict[str, str]:
    """The environment to run `binary` in: unpacked libraries on `LD_LIBRARY_PATH`."""
    env = dict(os.environ)
    base = root(name)
    if base in binary.parents:
        dirs = [
            base / "usr" / "lib" / "x86_64-linux-gnu",
            base / "usr" / "lib" / "aarch64-linux-gnu",
        ]
        found = [str(d) for d in dirs if d.is_dir()]
        env["LD_LIBRARY_PATH"] = ":".join([*found, *filter(None, [env.get("LD_LIBRARY_PATH")])])
    return env
