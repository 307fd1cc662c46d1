"""Build Helm from the Go module proxy into Huimin's cache, for the chart checks.

`go install helm.sh/helm/v3/cmd/helm@<version>` builds the exact release from its module
(checked against the Go checksum database), so no prebuilt download is needed. The binary is
built once per version into a cache outside the repository and reused afterwards.

    python -m tools.helm build            # build (or reuse) and print the path
    python -m tools.helm run -- lint charts/huimin   # run the cached helm with these arguments
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from tools._gobuild import build_output, cached_build
from tools._server import cache_root, command_line, log
from tools.ferretdb import find_go

HELM_VERSION = "v3.19.0"
HELM_MODULE = "helm.sh/helm/v3/cmd/helm"
BINARY_NAME = "helm"
# Kubernetes release of the client-go that helm v3.19.0 is built with (go.mod: v0.34.0).
K8S_VERSION = (1, 34)
# What helm's own Makefile stamps in at link time. Without it `helm version` is blank and
# `helm template` assumes Kubernetes v1.20, below the chart's kubeVersion.
LDFLAGS = " ".join(
    [
        f"-X helm.sh/helm/v3/internal/version.version={HELM_VERSION}",
        "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor={K8S_VERSION[0]}",
        f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={K8S_VERSION[1]}",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor={K8S_VERSION[0]}",
        f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={K8S_VERSION[1]}",
    ]
)


class HelmError(RuntimeError):
    """Helm could not be built."""


def _log(message: str) -> None:
    log("helm", message)


def binary_path() -> Path:
    """Where the helm binary of HELM_VERSION lives (it may not be built yet)."""
    # The link flags are part of the key: changing them builds a new binary.
    flags = hashlib.sha256(LDFLAGS.encode()).hexdigest()[:8]
    return cache_root() / "helm" / f"{HELM_VERSION}-{flags}" / BINARY_NAME


def build(*, force: bool = False) -> Path:
    """Build helm into the cache (once per version) and return its path."""

    def run(target: Path) -> None:
        try:
            go = find_go()
        except RuntimeError as exc:
            raise HelmError(str(exc)) from None
        # GOBIN is a private directory, so a half-installed binary is never at `target`.
        staging = target.parent / f".gobin.{os.getpid()}"
        env = dict(os.environ, GOBIN=str(staging), CGO_ENABLED="0", GOFLAGS="-trimpath")
        _log(f"building helm {HELM_VERSION} with {go} into {target.parent} (2-5 min) ...")
        result = subprocess.run(
            [go, "install", "-ldflags", LDFLAGS, f"{HELM_MODULE}@{HELM_VERSION}"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            check=False,
        )
        built = staging / BINARY_NAME
        if result.returncode != 0 or not built.is_file():
            output = build_output(result)
            raise HelmError(f"`go install` failed (exit {result.returncode}):\n{output}")
        built.replace(target)  # atomic: readers never see a half-written binary
        staging.rmdir()

    return cached_build(binary_path(), "helm", run, force=force)


def main(argv: list[str] | None = None) -> int:
    """Entry point of `python -m tools.helm`."""
    parser, commands = command_line("tools.helm", f"Helm {HELM_VERSION} for the chart checks")
    build_cmd = commands.add_parser("build", help="build the binary (cached) and print its path")
    build_cmd.add_argument("--force", action="store_true", help="rebuild even if cached")
    run_cmd = commands.add_parser("run", help="run the cached helm with the given arguments")
    run_cmd.add_argument("args", nargs="*", help="helm's arguments (put them after --)")
    args = parser.parse_args(argv)
    try:
        binary = build(force=getattr(args, "force", False))
    except HelmError as exc:
        _log(str(exc))
        return 1
    if args.command == "build":
        print(binary)
        return 0
    return subprocess.run([str(binary), *args.args], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
