"""What `make run` prints once it is up, and that every printed example works as printed."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.tools.test_devstack import Stack, assert_tree_gone, process_tree
from tools._server import free_port
from tools.devstack import PROCESSES
from tools.devstack_examples import DEV_USERS_FILE, REPO_ROOT, dev_users, examples, summary

MOVED = {"gateway_url": "http://127.0.0.1:18000", "issuer_url": "http://127.0.0.1:18080"}
# A loaded 2-core machine (other sessions' tests) can slow the first start well past the
# 30 s the stack itself allows on a quiet one; this only bounds a hung test.
READY_TIMEOUT = 120


def test_examples_name_the_urls_they_are_given():
    for example in examples(MOVED):
        assert "127.0.0.1:8000" not in example.command
        assert "127.0.0.1:8080" not in example.command
        assert "18000" in example.command or "18080" in example.command, example.command


def test_the_summary_lists_gateway_first_then_users_then_every_example_verbatim():
    urls = MOVED | {"health_url": "http://127.0.0.1:18001"}
    text = summary(urls, ["gateway", "issuer", "health"])
    lines = text.splitlines()
    url_lines = [line for line in lines if "http://127.0.0.1:180" in line and "curl" not in line]
    assert url_lines[0].split() == ["gateway", "http://127.0.0.1:18000"]
    for example in examples(urls):
        assert f"# {example.title}\n{example.command}\n" in text + "\n"
    assert "password huimin-dev" in text


def test_dev_users_come_from_the_realm_file_with_their_roles():
    users = dict(dev_users())
    realm_users = json.loads(DEV_USERS_FILE.read_text())["users"]
    assert set(users) == {user["username"] for user in realm_users}
    assert users["doctor"] == ["clinician"]
    assert users["citizen"] == ["citizen"]
    assert not any(role.startswith("default-roles") for roles in users.values() for role in roles)


@pytest.mark.slow
def test_every_printed_example_works_as_printed_against_a_started_stack(tmp_path: Path):
    # Every part on a free port and the data in a fresh directory: the run cannot collide
    # with a stack someone else has running, and it starts from nothing like a clean clone.
    ports = {spec.name: free_port() for spec in PROCESSES}
    assert len(set(ports.values())) == len(ports)
    env = {f"HUIMIN_{name.upper()}_PORT": str(port) for name, port in ports.items()}
    env["HUIMIN_VAR_DIR"] = str(tmp_path / "var")
    stack = Stack(tmp_path, ports["gateway"], env)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while "devstack | ready in " not in stack.output():
            assert stack.process.poll() is None, f"devstack exited:\n{stack.output()}"
            assert time.monotonic() < deadline, f"not ready:\n{stack.output()}"
            time.sleep(0.2)
        tree = process_tree(stack.process.pid)
        output = stack.output()
        urls = {f"{name}_url": f"http://127.0.0.1:{port}" for name, port in ports.items()}
        for name, url in urls.items():
            assert url in output, name
        assert (tmp_path / "var" / "registry.db").is_file()

        for example in examples(urls):
            # Printed exactly so (the launcher's own strings, nothing substituted) ...
            assert f"# {example.title}\n{example.command}\n" in output
            # ... and working so: curl -f makes any non-2xx a non-zero exit.
            done = subprocess.run(
                ["bash", "-c", example.command],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            assert done.returncode == 0, (example.title, done.stdout, done.stderr)
            assert example.expect in done.stdout, (example.title, done.stdout[:2000])

        stack.process.send_signal(signal.SIGINT)
        assert stack.process.wait(timeout=30) == 0
        assert_tree_gone(tree, ports["gateway"])
    finally:
        stack.close()


def test_the_readme_quotes_the_examples_as_the_default_stack_prints_them():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    urls = {"gateway_url": "http://127.0.0.1:8000", "issuer_url": "http://127.0.0.1:8080"}
    quoted = [e for e in examples(urls) if e.command in readme]
    assert len(quoted) >= 4, "README's make run section should show the printed examples"
    for example in quoted:
        assert f"# {example.title}\n{example.command}" in readme
