"""The dev stack supervisor (`make run`): starts, reports, and leaves no process behind."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from tools._server import free_port
from tools.devstack import (
    LINKS_ENV,
    PROCESSES,
    ProcessSpec,
    child_environment,
    port_for,
    port_is_free,
    var_dir,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
GATEWAY_PORT = 8000


def process_tree(root: int) -> set[int]:
    """Every live descendant of `root`, read from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found: set[int] = set()
    todo = [root]
    while todo:
        for child in children.get(todo.pop(), []):
            if child not in found:
                found.add(child)
                todo.append(child)
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


class Stack:
    """A `python -m tools.devstack` run, as `make run` starts it."""

    def __init__(
        self, tmp_path: Path, port: int, extra_env: Mapping[str, str] | None = None
    ) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HUIMIN_")}
        if port != GATEWAY_PORT:
            env["HUIMIN_GATEWAY_PORT"] = str(port)
        env.update(extra_env or {})
        self.port = port
        # Every descendant seen, so cleanup reaches them even after they are reparented.
        self.seen: set[int] = set()
        self.log_path = tmp_path / "devstack.log"
        self.log = self.log_path.open("w")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tools.devstack"],
            cwd=REPO_ROOT,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            # Its own group, like a terminal job, so cleanup can reach it whatever happens.
            start_new_session=True,
        )

    def output(self) -> str:
        self.log.flush()
        return self.log_path.read_text()

    def wait_healthy(self, timeout: float = 45) -> None:
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=1) as client:
            while True:
                assert self.process.poll() is None, f"devstack exited:\n{self.output()}"
                try:
                    if client.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, f"not healthy:\n{self.output()}"
                time.sleep(0.1)
        # The table comes right after the health checks pass.
        deadline = time.monotonic() + 10
        while "Ctrl-C stops it" not in self.output():
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.05)
        self.seen |= process_tree(self.process.pid)

    def gateway_pid(self) -> int:
        [pid] = [p for p in process_tree(self.process.pid) if "-m gateway" in cmdline(p)]
        return pid

    def close(self) -> None:
        for pid in self.seen | process_tree(self.process.pid):
            # Alive and still one of ours (`python -m ...`), not a recycled pid.
            if not alive(pid) or " -m " not in cmdline(pid):
                continue
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        self.log.close()


@pytest.fixture
def start_stack(tmp_path: Path) -> Iterator[Callable[[int], Stack]]:
    started: list[Stack] = []

    def start(port: int) -> Stack:
        stack = Stack(tmp_path, port)
        started.append(stack)
        return stack

    yield start
    for stack in started:
        stack.close()


def assert_tree_gone(pids: set[int], port: int) -> None:
    deadline = time.monotonic() + 5
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, [(p, cmdline(p)) for p in pids if alive(p)]
        time.sleep(0.05)
    assert port_is_free(port)


def test_gateway_is_in_the_process_list():
    assert ProcessSpec("gateway", "gateway", 8000) in PROCESSES


def test_ports_can_be_moved_per_process():
    spec = ProcessSpec("health", "services.health", 8001)
    assert port_for(spec, {}) == 8001
    assert port_for(spec, {"HUIMIN_HEALTH_PORT": "9001"}) == 9001


def test_children_get_their_own_port_and_no_other_process_settings():
    base = {
        "PATH": "/bin",
        "HUIMIN_ENV": "dev",
        "HUIMIN_PORT": "1",
        "HUIMIN_SERVICE_NAME": "x",
        "HUIMIN_STORE_URL": "sqlite:///var/shared.db",
    }
    env = child_environment(8002, base, {"EXTRA": "1"})
    assert env["HUIMIN_PORT"] == "8002"
    assert env["HUIMIN_HOST"] == "127.0.0.1"
    assert env["HUIMIN_ENV"] == "dev"
    assert env["EXTRA"] == "1"
    assert "HUIMIN_SERVICE_NAME" not in env
    assert "HUIMIN_STORE_URL" not in env


def test_ctrl_c_stops_the_whole_tree(start_stack):
    # The real port when it is free, as `make run` uses it; otherwise a free one.
    port = GATEWAY_PORT if port_is_free(GATEWAY_PORT) else free_port()
    stack = start_stack(port)
    stack.wait_healthy()
    tree = process_tree(stack.process.pid)
    assert tree, "the gateway should run as a child"
    gateway = stack.gateway_pid()
    assert os.getpgid(gateway) == gateway, "children lead their own process group"
    assert (REPO_ROOT / "var").is_dir()

    stack.process.send_signal(signal.SIGINT)
    assert stack.process.wait(timeout=30) == 0
    assert_tree_gone(tree, port)
    with pytest.raises(ProcessLookupError):
        os.killpg(gateway, 0)
    output = stack.output()
    assert f"http://127.0.0.1:{port}" in output
    assert "gateway | " in output  # the child's own log lines, prefixed
    assert "stopped" in output


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP])
def test_sigterm_or_a_closed_terminal_stops_the_whole_tree(start_stack, signum):
    port = free_port()
    stack = start_stack(port)
    stack.wait_healthy()
    tree = process_tree(stack.process.pid)
    stack.process.send_signal(signum)
    assert stack.process.wait(timeout=30) == 0
    assert_tree_gone(tree, port)


def test_a_dead_child_stops_the_stack_with_an_error(start_stack):
    port = free_port()
    stack = start_stack(port)
    stack.wait_healthy()
    tree = process_tree(stack.process.pid)
    os.kill(stack.gateway_pid(), signal.SIGKILL)
    assert stack.process.wait(timeout=30) == 1
    assert_tree_gone(tree, port)
    assert "gateway exited with -9" in stack.output()


def test_children_stop_even_if_the_supervisor_is_killed(start_stack):
    port = free_port()
    stack = start_stack(port)
    stack.wait_healthy()
    tree = process_tree(stack.process.pid)
    stack.process.kill()
    stack.process.wait(timeout=10)
    assert_tree_gone(tree, port)


def test_a_busy_port_is_reported_before_starting_anything(start_stack):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        stack = start_stack(port)
        assert stack.process.wait(timeout=30) == 2
    assert "port already in use: gateway" in stack.output()
    assert process_tree(stack.process.pid) == set()


def test_links_between_parts_follow_their_ports():
    env = child_environment(
        8001, {}, {"HUIMIN_REGISTRY_EVENTS_URL": "{registry_url}/events"}, {"registry_url": "u"}
    )
    assert env["HUIMIN_REGISTRY_EVENTS_URL"] == "u/events"
    health = next(p for p in PROCESSES if p.name == "health")
    registry = next(p for p in PROCESSES if p.name == "registry")
    assert health.env["HUIMIN_REGISTRY_EVENTS_URL"] == "{registry_url}/events"
    assert registry.env["HUIMIN_DEMO_DATA"] == "true"


def test_moved_ports_move_the_issuer_and_the_gateways_upstreams():
    urls = {f"{spec.name}_url": f"http://127.0.0.1:{9000 + i}" for i, spec in enumerate(PROCESSES)}
    env = child_environment(9001, {"HUIMIN_OIDC_ISSUER": "elsewhere"}, LINKS_ENV, urls)
    assert env["HUIMIN_OIDC_ISSUER"] == urls["issuer_url"] + "/realms/huimin"
    upstreams = json.loads(env["HUIMIN_UPSTREAM_URLS"])
    assert upstreams == {
        n: urls[f"{n}_url"] for n in ("health", "registry", "education", "tourism")
    }


def test_the_data_directory_can_be_moved(tmp_path):
    assert var_dir({}) == REPO_ROOT / "var"
    assert var_dir({"HUIMIN_VAR_DIR": str(tmp_path)}) == tmp_path.resolve()
    registry = next(p for p in PROCESSES if p.name == "registry")
    env = child_environment(8002, {}, registry.env, {"var_dir": str(tmp_path)})
    assert env["HUIMIN_STORE_URL"] == f"sqlite:///{tmp_path}/registry.db"
