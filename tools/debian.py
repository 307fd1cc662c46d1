"""Programs from Debian's packages without root: `apt-get download` and `dpkg -x` into the
cache outside the repo, and `DebianServer`, a server run from one of them (tools/redis.py
and tools/nginx.py are two).

A program already on PATH is used as it is; otherwise the packages are unpacked once (under
a file lock, renamed into place when complete) and run with their libraries found through
`LD_LIBRARY_PATH`.
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, ClassVar, Self

from tools._server import ManagedServer, Probe, cache_root, die_with_parent, file_lock, log


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


class DebianServer(ManagedServer):
    """A server on a loopback port, run from a program of Debian's packages (`program`) in a
    directory the caller owns; ready once `_ready(port)` says so."""

    packages: ClassVar[tuple[str, ...]]  # the packages to unpack, libraries included
    relative: ClassVar[str]  # the program inside them, e.g. "usr/sbin/nginx"
    command: ClassVar[str]  # its name on PATH (used instead when there is one)
    dir_label = "directory"
    address_in_use = "Address already in use"

    def __init__(self, directory: Path, *, port: int | None = None) -> None:
        super().__init__(
            directory, owns_directory=False, port=port, start_timeout=20.0, stop_timeout=10.0
        )

    @classmethod
    def install(cls) -> Path:
        """Return a runnable program, unpacking it from Debian's packages if needed."""
        try:
            return program(cls.log_prefix, cls.packages, cls.relative, command=cls.command)
        except DebianError as exc:
            raise cls.error(str(exc)) from None

    @abc.abstractmethod
    def _argv(self, binary: Path, port: int) -> list[str]:
        """The command line of a server on `port` (writing any configuration it reads)."""

    @abc.abstractmethod
    def _ready(self, port: int) -> bool:
        """Whether the server on `port` serves yet."""

    def start(self) -> Self:
        """Start the server on a free port and wait until it is ready."""
        if self.running:
            return self
        binary = self.install()
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            return subprocess.Popen(
                self._argv(binary, port),
                env=environment(self.log_prefix, binary),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

        self._start_on_free_port(spawn)
        return self

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        return contextlib.nullcontext(lambda _seconds_left: self._ready(port))


def install_main(
    server: type[DebianServer], module: str, description: str | None, argv: list[str] | None
) -> int:
    """`python -m <module> install`: install the server's program and print its path."""
    parser = argparse.ArgumentParser(prog=f"python -m {module}", description=description)
    parser.add_argument("command", choices=["install"], help="install and print the binary")
    parser.parse_args(argv)
    try:
        print(server.install())
    except server.error as exc:
        log(server.log_prefix, str(exc))
        return 1
    return 0
