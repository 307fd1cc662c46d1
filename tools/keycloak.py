"""Fetch and run Keycloak 26.7.3 (dev mode, loopback only) with the Huimin realm imported.

The distribution comes from Maven Central (``org.keycloak:keycloak-quarkus-dist``), is
unpacked once into a cache outside the repository and shared by every instance. Each
instance gets its own home directory: symlinks to the shared distribution plus its own
``data/`` (H2 database, realm import files, log), so instances never share state.

    python -m tools.keycloak fetch                 # download + unpack (cached), print the path
    python -m tools.keycloak serve [--port N]      # realm huimin with the dev users, until Ctrl-C
    python -m tools.keycloak import-dir DIR        # write the import files Keycloak expects

The first start after unpacking also runs Keycloak's one-off build step ("augmentation",
about 25 s) which writes into the shared distribution, so it holds a lock that later starts
wait on; a marker file records that it is done.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import IO, Any, Self

import httpx

from tools import _server
from tools._server import HOST, ManagedServer, Probe

KEYCLOAK_VERSION = "26.7.3"
MAVEN_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
REALM = "huimin"
REALM_DIR = Path(__file__).resolve().parent.parent / "docker" / "keycloak"
REALM_FILE = REALM_DIR / "realm-huimin.json"
DEV_USERS_FILE = REALM_DIR / "dev-users.json"
DEV_CLIENTS_FILE = REALM_DIR / "dev-clients.json"
DEV_PASSWORD = "huimin-dev"  # noqa: S105 - the documented password of the dev users
TEST_CLIENT_ID = "huimin-test"
MIN_JAVA = 21
DEFAULT_HEAP = "-Xms64m -Xmx512m"
# C1 only: starts about 25% faster on two cores; peak throughput does not matter here.
DEFAULT_JAVA_OPTS = "-XX:TieredStopAtLevel=1"
LOG_NAME = "keycloak.log"
_ADDRESS_IN_USE = "already in use"
# Inherited, these would change Keycloak's build options (and re-augment the shared
# distribution) or its JVM flags; each instance sets what it needs explicitly.
_DROPPED_ENV_PREFIXES = ("KC_", "KEYCLOAK_", "QUARKUS_", "JAVA_OPTS", "JAVA_ADD_OPENS")
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):(.*)\}$")


class KeycloakError(RuntimeError):
    """Keycloak could not be fetched, started or stopped."""


def _log(message: str) -> None:
    _server.log("keycloak", message)


# -- distribution ------------------------------------------------------------------------------


def version_dir() -> Path:
    """Cache directory of this Keycloak version (zip download, unpacked dist, markers)."""
    return _server.cache_root() / "keycloak" / KEYCLOAK_VERSION


def dist_path() -> Path:
    """The unpacked distribution (it may not be fetched yet)."""
    return version_dir() / f"keycloak-{KEYCLOAK_VERSION}"


def _unpacked_marker() -> Path:
    return version_dir() / ".unpacked"


def _augmented_marker() -> Path:
    return version_dir() / ".augmented"


def find_mvn() -> str:
    """Maven: $HUIMIN_MVN, else `mvn` on PATH."""
    for candidate in (os.environ.get("HUIMIN_MVN"), shutil.which("mvn")):
        if candidate and os.access(candidate, os.X_OK):
            return candidate
    raise KeycloakError(
        f"Maven not found (set HUIMIN_MVN or put `mvn` on PATH); it fetches {MAVEN_ARTIFACT}"
    )


def _file_lock(path: Path, waiting: str) -> contextlib.AbstractContextManager[None]:
    return _server.file_lock(path, waiting, "keycloak")


def _unzip(archive_path: Path, target: Path) -> None:
    with zipfile.ZipFile(archive_path) as archive:
        for info in archive.infolist():
            extracted = archive.extract(info, target)  # refuses absolute and ../ paths
            mode = (info.external_attr >> 16) & 0o777
            if mode:  # zipfile drops the Unix mode; kc.sh must stay executable
                os.chmod(extracted, mode)


def fetch(*, force: bool = False) -> Path:
    """Download the distribution with Maven and unpack it into the cache (once); its path."""
    dist = dist_path()
    if _unpacked_marker().is_file() and (dist / "bin" / "kc.sh").is_file() and not force:
        return dist
    with _file_lock(version_dir() / "fetch.lock", "another fetch to finish"):
        if _unpacked_marker().is_file() and (dist / "bin" / "kc.sh").is_file() and not force:
            return dist  # a concurrent fetch finished while we waited
        mvn = find_mvn()
        started = time.monotonic()
        _log(f"fetching {MAVEN_ARTIFACT} with {mvn} into {version_dir()} ...")
        download = Path(tempfile.mkdtemp(prefix=".download-", dir=version_dir()))
        staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=version_dir()))
        try:
            # dependency:copy resolves through the local Maven repository (~/.m2), so a later
            # re-fetch after a cache wipe needs no network.
            result = subprocess.run(
                [mvn, "-B", "-q", "dependency:copy", f"-Dartifact={MAVEN_ARTIFACT}",
                 f"-DoutputDirectory={download}"],
                cwd=download,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                check=False,
            )  # fmt: skip
            archives = list(download.glob("*.zip"))
            if result.returncode != 0 or len(archives) != 1:
                output = result.stdout.strip()[-4000:] or "(no output)"
                raise KeycloakError(
                    f"`mvn dependency:copy` failed (exit {result.returncode}):\n{output}"
                )
            _unzip(archives[0], staging)
            unpacked = staging / f"keycloak-{KEYCLOAK_VERSION}"
            if not (unpacked / "bin" / "kc.sh").is_file():
                raise KeycloakError(f"{archives[0].name} holds no keycloak-{KEYCLOAK_VERSION}/")
            _unpacked_marker().unlink(missing_ok=True)
            _augmented_marker().unlink(missing_ok=True)
            shutil.rmtree(dist, ignore_errors=True)
            unpacked.rename(dist)
            _unpacked_marker().write_text(f"{MAVEN_ARTIFACT}\n")
        finally:
            shutil.rmtree(download, ignore_errors=True)
            shutil.rmtree(staging, ignore_errors=True)
        _log(f"unpacked {dist} in {time.monotonic() - started:.0f}s")
        return dist


def _java_major(home: Path) -> int | None:
    try:
        release = (home / "release").read_text()
    except OSError:
        return None
    match = re.search(r'^JAVA_VERSION="(?:1\.)?(\d+)', release, re.MULTILINE)
    return int(match.group(1)) if match else None


def find_java_home() -> Path:
    """A JDK for Keycloak: $HUIMIN_JAVA_HOME, else the first of $JAVA_HOME, `java` on PATH
    and /usr/lib/jvm/* (newest first) that is Java 21+, else the newest found."""
    explicit = os.environ.get("HUIMIN_JAVA_HOME")
    if explicit:
        return Path(explicit)
    candidates: list[Path] = []
    if os.environ.get("JAVA_HOME"):
        candidates.append(Path(os.environ["JAVA_HOME"]))
    java = shutil.which("java")
    if java:
        candidates.append(Path(java).resolve().parent.parent)
    jvm_root = Path("/usr/lib/jvm")
    if jvm_root.is_dir():
        installed = [p for p in jvm_root.iterdir() if p.is_dir() and not p.is_symlink()]
        candidates.extend(sorted(installed, key=lambda p: _java_major(p) or 0, reverse=True))
    found = [(home, major) for home in candidates if (major := _java_major(home)) is not None]
    for home, major in found:
        if major >= MIN_JAVA:
            return home
    if found:
        home, major = max(found, key=lambda item: item[1])
        _log(f"no Java {MIN_JAVA}+ found; trying Java {major} at {home}")
        return home
    raise KeycloakError(f"no JDK found (set HUIMIN_JAVA_HOME); Keycloak needs Java {MIN_JAVA}+")


# -- realm files -------------------------------------------------------------------------------


def realm_representation(*, dev: bool = True) -> dict[str, Any]:
    """The realm to import; with ``dev`` it also holds the dev-only clients (huimin-test)."""
    realm: dict[str, Any] = json.loads(REALM_FILE.read_text())
    if dev:
        realm["clients"] = [*realm["clients"], *json.loads(DEV_CLIENTS_FILE.read_text())]
    return realm


def write_import_dir(target: Path, *, dev: bool = True) -> list[Path]:
    """Write the files ``kc.sh start --import-realm`` reads from ``data/import``.

    Keycloak's directory import wants ``<realm>-realm.json`` and ``<realm>-users-<n>.json``:
    the realm (plus dev clients) and, with ``dev``, the dev users.
    """
    target.mkdir(parents=True, exist_ok=True)
    realm_path = target / f"{REALM}-realm.json"
    realm_path.write_text(json.dumps(realm_representation(dev=dev), indent=1))
    written = [realm_path]
    users_path = target / f"{REALM}-users-0.json"
    if dev:
        shutil.copyfile(DEV_USERS_FILE, users_path)
        written.append(users_path)
    else:
        users_path.unlink(missing_ok=True)
    return written


def client_secret(client_id: str, environ: Mapping[str, str] | None = None) -> str:
    """The secret a confidential client gets on import: its ``${VAR:default}`` placeholder in
    the realm file resolved against ``environ`` (default: this process's environment)."""
    environ = os.environ if environ is None else environ
    for client in realm_representation(dev=True)["clients"]:
        if client["clientId"] == client_id:
            secret = str(client.get("secret", ""))
            match = _PLACEHOLDER.match(secret)
            if match:
                return environ.get(match.group(1), match.group(2))
            return secret
    raise KeycloakError(f"no client {client_id!r} in {REALM_FILE}")


# -- server ------------------------------------------------------------------------------------


class Keycloak(ManagedServer):
    """One Keycloak (``start-dev``) on a loopback port with the huimin realm imported.

    ``dev=True`` also imports the dev users (password ``huimin-dev``) and the dev-only
    ``huimin-test`` client (password grant); ``dev=False`` imports the production realm only.
    """

    name = "Keycloak"
    error = KeycloakError
    log_prefix = "keycloak"
    log_name = LOG_NAME
    dir_label = "home_dir"
    address_in_use = _ADDRESS_IN_USE
    tail_lines = 60
    poll_interval = 0.5

    def __init__(
        self,
        home_dir: str | os.PathLike[str] | None = None,
        *,
        port: int | None = None,
        dev: bool = True,
        heap: str = DEFAULT_HEAP,
        java_opts: str = DEFAULT_JAVA_OPTS,
        java_home: str | os.PathLike[str] | None = None,
        start_timeout: float = 180.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(
            Path(tempfile.mkdtemp(prefix="huimin-keycloak-") if home_dir is None else home_dir),
            owns_directory=home_dir is None,
            port=port,
            start_timeout=start_timeout,
            stop_timeout=stop_timeout,
        )
        self._dev = dev
        self._heap = heap
        self._java_opts = java_opts
        self._java_home = Path(java_home) if java_home is not None else None
        self._admin_password = secrets.token_urlsafe(18)
        self._environ: dict[str, str] = {}

    # -- properties ----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Root URL, e.g. ``http://127.0.0.1:PORT``."""
        return f"http://{HOST}:{self.port}"

    @property
    def issuer(self) -> str:
        """Issuer of the huimin realm (``iss`` of its tokens)."""
        return f"{self.base_url}/realms/{REALM}"

    @property
    def token_url(self) -> str:
        """The realm's OAuth 2.0 token endpoint."""
        return f"{self.issuer}/protocol/openid-connect/token"

    @property
    def admin_username(self) -> str:
        """Bootstrap admin of the master realm (Keycloak's admin, not a Huimin user)."""
        return "admin"

    @property
    def admin_password(self) -> str:
        """The bootstrap admin's password (random per instance)."""
        return self._admin_password

    @property
    def dev(self) -> bool:
        """Whether the dev users and dev-only clients are imported."""
        return self._dev

    @property
    def home_dir(self) -> Path:
        """This instance's Keycloak home: symlinks to the shared dist plus its own data/."""
        return self._dir

    def client_secret(self, client_id: str) -> str:
        """The secret the confidential client ``client_id`` got when this instance imported."""
        return client_secret(client_id, self._environ or None)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> Self:
        """Start the server and wait until the realm's discovery document answers; self."""
        if self.running:
            return self
        dist = fetch()
        java_home = self._java_home or find_java_home()
        self._prepare_home(dist)
        # The first start after unpacking augments the shared dist: hold the lock throughout.
        lock = (
            contextlib.nullcontext()
            if _augmented_marker().is_file()
            else _file_lock(version_dir() / "augment.lock", "the first start (augmentation)")
        )
        with lock:
            self._start_on_free_port(
                lambda port, log_file: self._spawn(dist, java_home, port, log_file)
            )
            _augmented_marker().touch()
        return self

    # -- internals -----------------------------------------------------------------------------

    def _prepare_home(self, dist: Path) -> None:
        # Keycloak finds providers, themes, conf and its data dir through kc.home.dir; the
        # shared dist stays read-only and this home owns data/ (H2, import files, tmp).
        self._dir.mkdir(parents=True, exist_ok=True)
        for entry in dist.iterdir():
            if entry.name == "data":
                continue
            link = self._dir / entry.name
            if link.is_symlink() and link.readlink() == entry:
                continue
            if link.is_symlink() or link.is_file():
                link.unlink()
            link.symlink_to(entry)
        write_import_dir(self._dir / "data" / "import", dev=self._dev)

    def _spawn(
        self, dist: Path, java_home: Path, port: int, log_file: IO[bytes]
    ) -> subprocess.Popen[bytes]:
        environ = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(_DROPPED_ENV_PREFIXES)
        }
        environ.update(
            JAVA_HOME=str(java_home),
            JAVA_OPTS_KC_HEAP=self._heap,
            JAVA_OPTS_APPEND=self._java_opts,
            KC_BOOTSTRAP_ADMIN_USERNAME=self.admin_username,
            KC_BOOTSTRAP_ADMIN_PASSWORD=self._admin_password,
        )
        self._environ = environ
        command = [
            str(dist / "bin" / "kc.sh"),
            f"-Dkc.home.dir={self._dir}",  # later -D wins over kc.sh's own
            "start-dev",
            "--import-realm",
            f"--http-host={HOST}",
            f"--http-port={port}",
            "--hostname-strict=false",
            # Health and metrics stay off (they are build options; the discovery document is
            # the readiness probe), so no management interface is started.
            "--health-enabled=false",
            "--metrics-enabled=false",
        ]
        return subprocess.Popen(
            command,
            cwd=self._dir,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: SIGKILL reaches kc.sh and the JVM
            # If the launcher is killed outright, the kernel sends kc.sh SIGTERM, which it
            # forwards to the JVM (and the flag survives kc.sh's exec).
            preexec_fn=_server.die_with_parent,
        )

    @contextlib.contextmanager
    def _probe(self, port: int) -> Iterator[Probe]:
        url = self._discovery_url(port)
        with httpx.Client(timeout=5.0) as client:

            def ready(seconds_left: float) -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return client.get(url).status_code == httpx.codes.OK
                return False

            yield ready

    def _readiness_goal(self, port: int) -> str:
        return f"serve {self._discovery_url(port)}"

    @staticmethod
    def _discovery_url(port: int) -> str:
        return f"http://{HOST}:{port}/realms/{REALM}/.well-known/openid-configuration"

    def _kill_process(self, process: subprocess.Popen[bytes]) -> None:
        # SIGTERM reaches kc.sh, which forwards it to the JVM; SIGKILL must hit the group.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


# -- command line ------------------------------------------------------------------------------


def _serve(port: int | None, dev: bool) -> int:
    server = Keycloak(port=port, dev=dev)

    def announce(seconds: float) -> None:
        print(server.issuer, flush=True)
        _log(
            f"ready in {seconds:.0f}s, pid {server.pid}; admin console "
            f"{server.base_url}/admin/ as {server.admin_username} / {server.admin_password}; "
            f"log {server.log_path}; Ctrl-C stops"
        )

    return _server.serve_in_foreground(server, announce)


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tools.keycloak``."""
    parser, commands = _server.command_line(
        "tools.keycloak", f"Keycloak {KEYCLOAK_VERSION} for Huimin"
    )
    fetch_cmd = commands.add_parser("fetch", help="download and unpack (cached); print the path")
    fetch_cmd.add_argument("--force", action="store_true", help="fetch and unpack again")
    serve_cmd = _server.add_serve_command(commands, "run the huimin realm until Ctrl-C")
    serve_cmd.add_argument(
        "--no-dev", action="store_true", help="production realm only: no dev users, no test client"
    )
    import_cmd = commands.add_parser(
        "import-dir", help="write huimin-realm.json (+ huimin-users-0.json) for --import-realm"
    )
    import_cmd.add_argument("directory", type=Path)
    import_cmd.add_argument("--no-dev", action="store_true", help="realm only (production)")
    args = parser.parse_args(argv)
    try:
        if args.command == "fetch":
            print(fetch(force=args.force))
            return 0
        if args.command == "import-dir":
            for path in write_import_dir(args.directory, dev=not args.no_dev):
                print(path)
            return 0
        return _serve(args.port, dev=not args.no_dev)
    except KeycloakError as exc:
        _log(str(exc))
        return 1


if __name__ == "__main__":
    sys.exit(main())
