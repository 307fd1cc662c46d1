"""Static checks of docker/Dockerfile, parsed by BuildKit's own parser (the `dockerfile`
package wraps it), since no Dockerfile linter (hadolint is Haskell) installs from the
registries this project uses.

`dockerfile_problems` returns what is wrong with a Dockerfile's text, one line each.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import dockerfile

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
DOCKERIGNORE = REPO / "docker" / "Dockerfile.dockerignore"
# A pinned image names its exact release: name:X.Y.Z[-variant] or a digest.
PINNED = re.compile(r"^[\w./-]+(:\d+\.\d+\.\d+[\w.-]*)?(@sha256:[0-9a-f]{64})?$")


@dataclass
class Stage:
    """One FROM ... and its instructions."""

    image: str
    name: str
    commands: list[dockerfile.Command] = field(default_factory=list)

    def all(self, cmd: str) -> list[dockerfile.Command]:
        """This stage's instructions of one kind (upper-case name, e.g. "RUN")."""
        return [c for c in self.commands if c.cmd.upper() == cmd]


def stages(text: str) -> list[Stage]:
    """The build stages, with ARG defaults substituted into their FROM images."""
    args: dict[str, str] = {}
    found: list[Stage] = []
    for command in dockerfile.parse_string(text):
        name = command.cmd.upper()
        if name == "ARG" and not found:  # global ARGs feed the FROM lines
            key, _, default = command.value[0].partition("=")
            args[key] = default
        elif name == "FROM":
            image = re.sub(
                r"\$\{(\w+)\}|\$(\w+)", lambda m: args.get(m[1] or m[2], ""), command.value[0]
            )
            alias = command.value[2] if len(command.value) > 2 else ""
            found.append(Stage(image=image, name=alias))
        elif found:
            found[-1].commands.append(command)
    return found


def dockerfile_problems(text: str) -> list[str]:
    """Every rule of the image this project keeps, as a list of violations."""
    problems: list[str] = []
    found = stages(text)
    if len(found) < 2:
        problems.append("not multi-stage: build tools would ship in the runtime image")
    for stage in found:
        if not PINNED.match(stage.image) or not re.search(r":\d|@sha256:", stage.image):
            problems.append(f"base image {stage.image!r} is not pinned to a release")
    for stage in found:
        for add in stage.all("ADD"):
            if re.search(r"https?://", " ".join(add.value)):
                problems.append("ADD from a URL (unverified download)")
    if not found:
        return problems
    syncs = [" ".join(c.value) for s in found[:-1] for c in s.all("RUN") if "uv sync" in c.value[0]]
    if not syncs or any("--locked" not in sync for sync in syncs):
        problems.append("dependencies are not installed from the lock (uv sync --locked)")
    runtime = found[-1]
    users = runtime.all("USER")
    user = users[-1].value[0] if users else "root"
    if user.split(":")[0] in {"root", "0"}:
        problems.append(f"the runtime stage runs as {user}")
    elif not user.split(":")[0].isdigit():
        problems.append("USER is a name: Kubernetes' runAsNonRoot needs a numeric uid")
    if users and any(
        runtime.commands.index(r) > runtime.commands.index(users[-1]) for r in runtime.all("RUN")
    ):
        problems.append("RUN after USER: later steps should not need the runtime user")
    checks = runtime.all("HEALTHCHECK")
    if not checks or checks[-1].value[0].upper() == "NONE":
        problems.append("no HEALTHCHECK in the runtime stage")
    entry = runtime.all("ENTRYPOINT")
    if not entry or not entry[-1].json:
        problems.append("no exec-form ENTRYPOINT (signals must reach Python, not a shell)")
    return problems


def copied_sources(text: str) -> list[str]:
    """The build-context paths that COPY instructions read (not those from other stages)."""
    sources = []
    for command in dockerfile.parse_string(text):
        if command.cmd.upper() == "COPY" and not any(f.startswith("--from") for f in command.flags):
            sources += list(command.value[:-1])
    return sources


def ignore_patterns() -> list[str]:
    """The patterns of docker/Dockerfile.dockerignore, in order."""
    lines = DOCKERIGNORE.read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]
