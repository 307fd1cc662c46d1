"""nginx from Debian's packages (no root), for the gateway benchmark's comparison.

`NginxServer` runs one nginx (master plus `workers` workers) on a free loopback port with a
configuration made from a `server { ... }` body; its prefix, log and pid file live in the
server's directory.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

from tools._server import HOST
from tools.debian import DebianServer, install_main

_PREFIX = "nginx"
PACKAGES = ("nginx", "nginx-common")


class NginxError(RuntimeError):
    """nginx could not be installed or started."""


def install() -> Path:
    """Return a runnable nginx, unpacking it from Debian's packages if needed."""
    return NginxServer.install()


class NginxServer(DebianServer):
    """One nginx on a loopback port; `server_body` is the inside of its `server` block."""

    name = "nginx"
    error = NginxError
    log_prefix = _PREFIX
    log_name = "nginx.log"
    packages = PACKAGES
    relative = "usr/sbin/nginx"
    command = "nginx"

    def __init__(self, directory: Path, server_body: str, *, workers: int = 1) -> None:
        super().__init__(directory)
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

    def _argv(self, binary: Path, port: int) -> list[str]:
        config = self._dir / "nginx.conf"
        config.write_text(self._config(port))
        return [str(binary), "-p", str(self._dir), "-c", str(config), "-e", "stderr"]

    def _ready(self, port: int) -> bool:
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return True
        except OSError:
            return False

    def _readiness_goal(self, port: int) -> str:
        return f"accept connections on {HOST}:{port}"


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.nginx install`."""
    return install_main(NginxServer, "tools.nginx", __doc__, argv)


if __name__ == "__main__":
    sys.exit(main())
