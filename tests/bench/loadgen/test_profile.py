"""Top frames of a raw py-spy profile."""

from __future__ import annotations

from bench.loadgen.profile import ROOT, parse


def test_own_and_total_samples_by_function_without_start_up_imports(tmp_path):
    site = f"{ROOT}/.venv/lib/python3.11/site-packages"
    path = tmp_path / "profile.txt"
    path.write_text(
        f"run ({site}/uvicorn/server.py:1);handle ({ROOT}/services/health/app.py:10);"
        f"dumps ({site}/orjson/__init__.py:3) 30\n"
        f"<module> ({ROOT}/services/health/__main__.py:8);serve ({ROOT}/shared/app.py:380);"
        f"run ({site}/uvicorn/server.py:1);handle ({ROOT}/services/health/app.py:12) 10\n"
        f"run ({site}/uvicorn/server.py:1);select (/usr/lib/python3.11/selectors.py:4) 5\n"
        "<module> (x.py:1);_call_with_frames_removed (<frozen importlib._bootstrap>:241) 99\n"
    )
    profile = parse(path)
    assert profile.samples == 45
    assert profile.top_self(2) == [
        ("dumps (orjson/__init__.py)", 30),
        ("handle (services/health/app.py)", 10),
    ]
    assert profile.total["run (uvicorn/server.py)"] == 45
    assert profile.top_own_code(5) == [("handle (services/health/app.py)", 40)]
    assert profile.own["select (stdlib/selectors.py)"] == 5
