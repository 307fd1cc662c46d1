"""nginx from Debian's packages (no root), for the gateway benchmark's comparison.

`NginxServer` runs one nginx (master plus `workers` workers) on a free loopback port with a
configuration made from a `server { ... }` body; its prefix, log and pid file live in the
server's directory.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import subprocess
import sys
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO

from tools._server import HOST, ManagedServer, Probe, die_with_parent, log
from tools.debian import DebianError, environment, program

_PREFIX = "nginx"
PACKAGES = ("nginx", "nginx-common")


class NginxError(RuntimeError):
    """nginx could not be installed or started."""


def install() -> Path:
    """Return a runnable nginx, unpacking it from Debian's packages if needed."""
    try:
        return program(_PREFIX, PACKAGES, "usr/sbin/nginx", command="nginx")
    except DebianError as exc:
        raise NginxError(str(exc)) from None


class NginxServer(ManagedServer):
    """One nginx on a loopback port; `server_body` is the inside of its `server` block."""

    name = "nginx"
    error = NginxError
    log_prefix = _PREFIX
    log_name = "nginx.log"
    dir_label = "directory"
    address_in_use = "Address already in use"

    def __init__(self, directory: Path, server_body: str, *, workers: int = 1) -> None:
        super().__init__(
            directory, owns_directory=False, port=None, start_timeout=20.0, stop_timeout=10.0
        )
        self.server_body = server_body
        self.workers = workers

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{HOST}:{self.port}"

    def _config(self, port: int) -> str:
        return f"""
daemon off;
master_process on;
worker_processes {self.workers};
pid {self._dir}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {self._dir}/body;
    proxy_temp_path {self._dir}/proxy;
    fastcgi_temp_path {self._dir}/fastcgi;
    uwsgi_temp_path {self._dir}/uwsgi;
    scgi_temp_path {self._dir}/scgi;
    server {{
        listen {HOST}:{port} reuseport backlog=4096;
        {self.server_body}
    }}
}}
"""

    def start(self) -> NginxServer:
        """Start nginx on a free port and wait until it accepts connections."""
        if self.running:
            return self
        binary = install()
        self._dir.mkdir(parents=True, exist_ok=True)

        def spawn(port: int, log_file: IO[bytes]) -> subprocess.Popen[bytes]:
            config = self._dir / "nginx.conf"
            config.write_text(self._config(port))
            return subprocess.Popen(
                [str(binary), "-p", str(self._dir), "-c", str(config), "-e", "stderr"],
                env=environment(_PREFIX, binary),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )

        self._start_on_free_port(spawn)
        return self

    def _probe(self, port: int) -> AbstractContextManager[Probe]:
        def ready(_seconds_left: float) -> bool:
            try:
                with socket.create_connection((HOST, port), timeout=0.5):
                    return True
            except OSError:
                return False

        return contextlib.nullcontext(ready)

    def _readiness_goal(self, port: int) -> str:
        return f"accept connections on {HOST}:{port}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.nginx install`."""
    parser = argparse.ArgumentParser(prog="python -m tools.nginx", description=__doc__)
    parser.add_argument("command", choices=["install"], help="install and print the binary")
    parser.parse_args(argv)
    try:
        print(install())
    except NginxError as exc:
        log(_PREFIX, str(exc))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
