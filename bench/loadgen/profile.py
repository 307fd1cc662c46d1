"""Top frames of a py-spy profile in its raw (collapsed stacks) format.

Each line is `frame;frame;...;leaf count`, a frame being `function (file:line)`. Frames are
grouped by function and file (lines dropped): `own` counts samples where the function was
the leaf (running), `total` samples where it was anywhere on the stack (once per sample).
Stacks inside an import are the service starting up, not serving: they are left out.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::\d+)?\)$")
_IMPORT = "(<frozen importlib._bootstrap>"
# Our own code, for the "where does our code spend it" view.
OWN = ("services/", "shared/")
ENTRY = frozenset({"serve (shared/app.py)"})


_STDLIB = re.compile(r"/lib/python3\.\d+/(?P<rest>.*)$")


def _short(path: str) -> str:
    if "site-packages/" in path:
        return path.split("site-packages/", 1)[1]
    if path.startswith(f"{ROOT}/"):
        return path.removeprefix(f"{ROOT}/")
    stdlib = _STDLIB.search(path)
    return f"stdlib/{stdlib['rest']}" if stdlib else path


def frame_name(frame: str) -> str:
    """`function (short/file.py)` of a py-spy frame."""
    match = _FRAME.match(frame)
    if match is None:
        return frame
    return f"{match['func']} ({_short(match['file'])})"


@dataclass
class Profile:
    """Sample counts of one profile."""

    samples: int = 0
    own: Counter[str] = field(default_factory=Counter)  # leaf samples per function
    total: Counter[str] = field(default_factory=Counter)  # samples with it on the stack

    def top_self(self, n: int) -> list[tuple[str, int]]:
        """The n functions with the most samples of their own."""
        return self.own.most_common(n)

    def top_own_code(self, n: int) -> list[tuple[str, int]]:
        """The n functions of services/ and shared/ with the most samples on the stack."""
        mine = Counter({k: v for k, v in self.total.items() if _is_own(k)})
        return mine.most_common(n)


def _is_own(name: str) -> bool:
    # The entry point is on every stack: it says nothing about where the time goes.
    if name.startswith("<module> (") or name in ENTRY:
        return False
    inside = name.rsplit("(", 1)[-1]
    return inside.startswith(OWN)


def parse(path: Path) -> Profile:
    """Read a raw py-spy profile."""
    profile = Profile()
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        if _IMPORT in stack:
            continue
        count = int(count_text)
        frames = [frame_name(f) for f in stack.split(";")]
        profile.samples += count
        profile.own[frames[-1]] += count
        for name in set(frames):
            profile.total[name] += count
    return profile
