"""`python -m tools.devstack` (`make run`): the whole suite on 127.0.0.1, Ctrl-C stops it.

Each part of the suite is one `ProcessSpec` in `PROCESSES`; adding a service is one line.
Every child runs in its own process group (so Ctrl-C in the terminal reaches only this
supervisor, which then stops the children in order, and nothing is orphaned), its output
is streamed here with a name prefix, and it counts as up once its health URL answers 200.
If any child dies, the rest are stopped and this exits non-zero.

A port can be moved with `HUIMIN_<NAME>_PORT`, e.g. `HUIMIN_GATEWAY_PORT=9000`; the links
between parts (the gateway's upstreams, the issuer URL every part trusts, the registry's
event feed) follow it. `HUIMIN_VAR_DIR` moves the data (default `var/` in the repository).
Once everything is up it prints the URLs, the dev users and example commands
(tools/devstack_examples.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import os
import signal
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.table import Table
from rich.text import Text

from tools.devstack_examples import summary

REPO_ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
# Variables that describe one process; inherited as-is they would make every child the same
# service, on the same port, sharing one store.
_PER_PROCESS_VARS = ("HUIMIN_SERVICE_NAME", "HUIMIN_PORT", "HUIMIN_HOST", "HUIMIN_STORE_URL")
_COLOURS = ("cyan", "magenta", "green", "yellow", "blue", "red")

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>

EXIT_STOPPED = 0
EXIT_CHILD_FAILED = 1
EXIT_CANNOT_START = 2


@dataclass(frozen=True)
class ProcessSpec:
    """One process of the dev stack: a Python module run with `-m`, answering on a port."""

    name: str
    module: str
    port: int
    health_path: str = "/healthz"
    env: Mapping[str, str] = field(default_factory=dict)

    def command(self) -> list[str]:
        """Return the command line that starts this process."""
        return [sys.executable, "-m", self.module]


# Where the parts of this stack are, given to every part (each reads what it needs), so that
# a port moved with HUIMIN_<NAME>_PORT moves the links to it too: every part trusts the
# issuer this stack started, and the gateway's route file names the default ports.
LINKS_ENV: Mapping[str, str] = {
    "HUIMIN_OIDC_ISSUER": "{issuer_url}/realms/huimin",
    "HUIMIN_UPSTREAM_URLS": '{{"health": "{health_url}", "registry": "{registry_url}", '
    '"education": "{education_url}", "tourism": "{tourism_url}"}}',
}


# Generated demo households (services/registry/demo_town.py); the health and education demos
# give their residents clinical records and enrollments (demo_clinic.py, demo_school.py) by
# resident id number, so these counts must agree.
DEMO_HOUSEHOLDS = 100
DEMO_PATIENTS = 300  # of the 311 residents those households hold
DEMO_LEARNERS = 300  # the same residents, enrolled in evening classes
DEMO_PLACES = 100  # generated tourism places (services/tourism/demo_city.py)


def _service_env(name: str, **extra: str) -> dict[str, str]:
    # Each service's own store under the stack's data directory, and its demo data.
    return {"HUIMIN_STORE_URL": f"sqlite:///{{var_dir}}/{name}.db", "HUIMIN_DEMO_DATA": "true"} | (
        extra
    )


PROCESSES: tuple[ProcessSpec, ...] = (
    # First: the others validate its tokens.
    ProcessSpec(
        "issuer", "tools.devissuer", 8080, env={"HUIMIN_ISSUER_DATA_DIR": "{var_dir}/devissuer"}
    ),
    ProcessSpec("gateway", "gateway", 8000),
    ProcessSpec(
        "health",
        "services.health",
        8001,
        # Residents registered in the registry become linked Patients (docs/events.md);
        # FHIR links name the gateway, where clients reach the service (docs/gateway.md).
        env=_service_env(
            "health",
            HUIMIN_REGISTRY_EVENTS_URL="{registry_url}/events",
            HUIMIN_FHIR_BASE_URL="{gateway_url}/fhir",
            HUIMIN_DEMO_PATIENTS=str(DEMO_PATIENTS),
        ),
    ),
    # The hand-written demo residents plus about 300 generated ones in 100 households.
    ProcessSpec(
        "registry",
        "services.registry",
        8002,
        env=_service_env("registry", HUIMIN_DEMO_HOUSEHOLDS=str(DEMO_HOUSEHOLDS)),
    ),
    ProcessSpec(
        "education",
        "services.education",
        8003,
        # Learners' names and status, and merges, come from the registry (docs/education.md).
        env=_service_env(
            "education",
            HUIMIN_REGISTRY_EVENTS_URL="{registry_url}/events",
            HUIMIN_DEMO_LEARNERS=str(DEMO_LEARNERS),
        ),
    ),
    # Landmarks of Beijing, 100 generated places around real neighbourhoods, and events at
    # them (docs/tourism.md).
    ProcessSpec(
        "tourism",
        "services.tourism",
        8004,
        env=_service_env("tourism", HUIMIN_DEMO_PLACES=str(DEMO_PLACES)),
    ),
)


def var_dir(environ: Mapping[str, str]) -> Path:
    """Return where the stack keeps its data: `HUIMIN_VAR_DIR`, else the repository's var/."""
    raw = environ.get("HUIMIN_VAR_DIR")
    return Path(raw).resolve() if raw else REPO_ROOT / "var"


def port_for(spec: ProcessSpec, environ: Mapping[str, str]) -> int:
    """Return the spec's port, or the `HUIMIN_<NAME>_PORT` override."""
    raw = environ.get(f"HUIMIN_{spec.name.upper()}_PORT")
    return int(raw) if raw else spec.port


def child_environment(
    port: int,
    base: Mapping[str, str],
    extra: Mapping[str, str],
    urls: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Return the environment of a child answering on `port`; `{<name>_url}` in a value of
    `extra` becomes that part's base URL (so a moved port moves the links to it too)."""
    env = {k: v for k, v in base.items() if k not in _PER_PROCESS_VARS}
    env.update({k: v.format_map(urls or {}) for k, v in extra.items()})
    env.update(HUIMIN_HOST=HOST, HUIMIN_PORT=str(port), PYTHONUNBUFFERED="1")
    return env


def port_is_free(port: int) -> bool:
    """Tell whether nothing listens on HOST:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


@dataclass
class Child:
    """A started process of the stack."""

    spec: ProcessSpec
    port: int
    colour: str
    process: asyncio.subprocess.Process
    pump: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        """Return the base URL the child answers on."""
        return f"http://{HOST}:{self.port}"


class DevStack:
    """Starts, watches and stops the stack's children."""

    def __init__(
        self,
        specs: Sequence[ProcessSpec],
        *,
        console: Console,
        environ: Mapping[str, str],
        startup_timeout: float = STARTUP_TIMEOUT,
        stop_timeout: float = STOP_TIMEOUT,
    ) -> None:
        self.specs = specs
        self.console = console
        self.environ = environ
        self.startup_timeout = startup_timeout
        self.stop_timeout = stop_timeout
        self.children: list[Child] = []
        self.urls: dict[str, str] = {}
        self.stop_requested = asyncio.Event()
        self.kill_now = asyncio.Event()

    def request_stop(self) -> None:
        """Stop gracefully; a second request kills at once."""
        if self.stop_requested.is_set():
            self.kill_now.set()
        self.stop_requested.set()

    async def run(self) -> int:
        """Run the stack until a signal or a child's death; return the exit code."""
        ports = {spec.name: port_for(spec, self.environ) for spec in self.specs}
        self.urls = {f"{name}_url": f"http://{HOST}:{port}" for name, port in ports.items()}
        data = var_dir(self.environ)
        self.urls["var_dir"] = str(data)
        busy = [f"{name} ({port})" for name, port in ports.items() if not port_is_free(port)]
        if busy:
            self.say(
                f"port already in use: {', '.join(busy)}; stop what holds it or move it with "
                "HUIMIN_<NAME>_PORT",
                style="bold red",
            )
            return EXIT_CANNOT_START
        data.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        try:
            for index, spec in enumerate(self.specs):
                await self._start(spec, ports[spec.name], _COLOURS[index % len(_COLOURS)])
            if not await self._wait_until_healthy():
                return EXIT_STOPPED if self.stop_requested.is_set() else EXIT_CHILD_FAILED
            self.console.print(self._table())
            self._print_summary()
            self.say(f"ready in {time.monotonic() - started:.1f} s", style="bold green")
            return await self._watch()
        finally:
            await self._stop_all()

    def say(self, message: str, *, style: str = "bold") -> None:
        """Print a message of the supervisor itself."""
        self.console.print(Text.assemble(("devstack | ", "bold"), (message, style)))

    async def _start(self, spec: ProcessSpec, port: int, colour: str) -> None:
        process = await asyncio.create_subprocess_exec(
            *spec.command(),
            cwd=REPO_ROOT,
            env=child_environment(port, self.environ, {**LINKS_ENV, **spec.env}, self.urls),
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            # Own session and process group: the terminal's Ctrl-C reaches only us, and
            # killpg() later reaches anything the child itself started.
            start_new_session=True,
            preexec_fn=_die_with_parent,
        )
        child = Child(spec, port, colour, process)
        child.pump = asyncio.create_task(self._pump(child), name=f"pump-{spec.name}")
        self.children.append(child)
        self.say(f"started {spec.name} (pid {process.pid}) on {child.url}", style="")

    async def _pump(self, child: Child) -> None:
        assert child.process.stdout is not None
        width = max(len(c.name) for c in self.specs)
        prefix = f"{child.spec.name:>{width}} | "
        async for raw in child.process.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            # Text, not markup: a log line containing [brackets] must print verbatim.
            self.console.print(Text.assemble((prefix, child.colour), line))

    async def _wait_until_healthy(self) -> bool:
        deadline = time.monotonic() + self.startup_timeout
        async with httpx.AsyncClient(timeout=1.0, trust_env=False) as client:
            pending = list(self.children)
            while pending:
                if self.stop_requested.is_set():
                    return False
                for child in list(pending):
                    if child.process.returncode is not None:
                        self.say(
                            f"{child.spec.name} exited with {child.process.returncode} "
                            "during startup",
                            style="bold red",
                        )
                        return False
                    if await _answers(client, child.url + child.spec.health_path):
                        pending.remove(child)
                if time.monotonic() > deadline:
                    names = ", ".join(c.spec.name for c in pending)
                    self.say(
                        f"not healthy after {self.startup_timeout:g} s: {names}", style="bold red"
                    )
                    return False
                if pending:
                    await asyncio.sleep(0.1)
        return True

    def _table(self) -> Table:
        table = Table(title="Huimin dev stack (Ctrl-C stops it)", title_justify="left")
        for column in ("part", "url", "pid", "health"):
            table.add_column(column)
        for child in self.children:
            table.add_row(
                Text(child.spec.name, style=child.colour),
                child.url,
                str(child.process.pid),
                child.url + child.spec.health_path,
            )
        return table

    def _print_summary(self) -> None:
        # The gateway first (the public entry), then the rest in start order.
        names = [c.spec.name for c in self.children]
        order = sorted(names, key=lambda name: name != "gateway")
        # Text, not markup: the commands hold [brackets] and must print verbatim.
        self.console.print(Text(summary(self.urls, order)))

    async def _watch(self) -> int:
        stop = asyncio.create_task(self.stop_requested.wait())
        exits = {asyncio.create_task(c.process.wait()): c for c in self.children}
        done, _ = await asyncio.wait([stop, *exits], return_when=asyncio.FIRST_COMPLETED)
        for task in [stop, *exits]:
            if task not in done:
                task.cancel()
        if stop in done:
            self.say("stopping")
            return EXIT_STOPPED
        dead = [exits[task] for task in done if task in exits]
        for child in dead:
            self.say(
                f"{child.spec.name} exited with {child.process.returncode}; stopping the rest",
                style="bold red",
            )
        return EXIT_CHILD_FAILED

    async def _stop_all(self) -> None:
        # Reverse start order: the gateway goes before the services it routes to.
        for child in reversed(self.children):
            _signal_group(child.process, signal.SIGTERM)
        if self.children:
            # Done when every child exited, or a second Ctrl-C asks to kill at once.
            waiting: list[asyncio.Future[Any]] = [
                asyncio.ensure_future(asyncio.gather(*(c.process.wait() for c in self.children))),
                asyncio.ensure_future(self.kill_now.wait()),
            ]
            await asyncio.wait(
                waiting, timeout=self.stop_timeout, return_when=asyncio.FIRST_COMPLETED
            )
            for future in waiting:
                future.cancel()
        for child in self.children:
            if child.process.returncode is None:
                self.say(f"{child.spec.name} did not stop in time; killing it", style="bold red")
            # Also reaches grandchildren left in the group after the leader exited.
            _signal_group(child.process, signal.SIGKILL)
        for child in self.children:
            await child.process.wait()
            if child.pump is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(child.pump, timeout=2.0)
        self.say("stopped")


def _die_with_parent() -> None:
    # Runs in the child between fork and exec. If this supervisor is killed outright
    # (SIGKILL, OOM) it cannot stop anyone, so the kernel sends the child SIGTERM instead.
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def _signal_group(process: asyncio.subprocess.Process, signum: signal.Signals) -> None:
    # The child leads its own group (start_new_session), so its pgid is its pid.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(process.pid, signum)


async def _answers(client: httpx.AsyncClient, url: str) -> bool:
    try:
        response = await client.get(url)
    except httpx.HTTPError:
        return False
    return response.status_code == 200


async def main_async(specs: Sequence[ProcessSpec] = PROCESSES) -> int:
    """Run the dev stack with signal handling; return the exit code."""
    stack = DevStack(
        specs, console=Console(highlight=False, soft_wrap=True), environ=dict(os.environ)
    )
    loop = asyncio.get_running_loop()
    # SIGHUP too: closing the terminal must not orphan the children in their own sessions.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        loop.add_signal_handler(signum, stack.request_stop)
    return await stack.run()


def main() -> None:
    """Entry point of `python -m tools.devstack`."""
    raise SystemExit(asyncio.run(main_async()))


if __name__ == "__main__":
    main()
