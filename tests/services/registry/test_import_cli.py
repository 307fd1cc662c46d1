"""`huimin registry import FILE` against a real registry process, with dev-issuer tokens."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from shared.cli import main
from tests.fixtures.registry import Registry
from tests.services.registry.test_import import csv_bytes, person

ROOT = Path(__file__).resolve().parents[3]


def test_import_with_a_token(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "people.csv"
    path.write_bytes(csv_bytes([person(), person()]))
    code = main(
        [
            "registry",
            "import",
            str(path),
            "--url",
            registry.base,
            "--token",
            registry.token("worker"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0, out
    assert "done: 2 rows, 2 created, 0 existing, 0 updated, 0 failed (utf-8)" in out


def test_failed_rows_are_listed_and_the_status_says_so(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = person(birth_date="1980-02-30", national_id="")
    outside = person("110101/001/003")
    path = tmp_path / "mixed.csv"
    path.write_bytes(csv_bytes([person(), bad, outside]))
    argv = ["registry", "import", str(path), "--url", registry.base, "--show-errors", "5"]
    code = main([*argv, "--token", registry.token("worker")])
    out = capsys.readouterr().out
    assert code == 1, out
    assert "1 created" in out
    assert "2 failed" in out
    assert "row 3: birth_date:" in out
    assert "row 4: community: 110101/001/003 is outside your jurisdiction" in out


def test_login_with_a_password_and_rerun(
    registry: Registry,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    path = tmp_path / "again.csv"
    path.write_bytes(csv_bytes([person(name_zh="周杰")], "gb18030"))
    monkeypatch.setenv("HUIMIN_PASSWORD", "huimin-dev")
    argv = ["registry", "import", str(path), "--url", registry.base, "--user", "officer"]
    argv += ["--issuer", registry.idp.issuer]
    assert main(argv) == 0
    assert "1 created" in capsys.readouterr().out
    assert main(argv) == 0
    assert "0 created, 1 existing" in capsys.readouterr().out


def test_a_refused_file_exits_2(
    registry: Registry, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "wrong.csv"
    path.write_text("name,sex\nx,male\n")
    argv = ["registry", "import", str(path), "--url", registry.base]
    assert main([*argv, "--token", registry.token("worker")]) == 2
    err = capsys.readouterr().err
    assert "422" in err
    assert "missing column birth_date" in err
    assert main(argv) == 2  # no token at all
    assert main([*argv, "--token", registry.token("citizen")]) == 2
    assert "403" in capsys.readouterr().err


def test_the_huimin_command(registry: Registry, tmp_path: Path) -> None:
    path = tmp_path / "cmd.csv"
    path.write_bytes(csv_bytes([person(), person(national_id="x")]))
    env = {
        **os.environ,
        "HUIMIN_TOKEN": registry.token("worker"),
        "HUIMIN_REGISTRY_URL": registry.base,
    }
    huimin = Path(sys.executable).parent / "huimin"
    done = subprocess.run(
        [str(huimin), "registry", "import", str(path)],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert "2/2" in done.stderr  # the progress bar's last state
    assert "row 3: national_id:" in done.stdout
