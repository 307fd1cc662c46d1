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

import argparse
import contextlib
import ctypes
import fcntl
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
from types import FrameType, TracebackType
from typing import IO, Any, Self

import httpx

from tools.ferretdb import cache_root, free_port

KEYCLOAK_VERSION = "26.7.3"
MAVEN_ARTIFACT = f"org.keycloak:keycloak-quarkus-dist:{KEYCLOAK_VERSION}:zip"
REALM = "huimin"
REALM_DIR = Path(__file__).resolve().parent.parent / "docker" / "keycloak"
REALM_FILE = REALM_DIR / "realm-huimin.json"
DEV_USERS_FILE = REALM_DIR / "dev-users.json"
DEV_CLIENTS_FILE = REALM_DIR / "dev-clients.json"
DEV_PASSWORD = "huimin-dev"  # noqa: S105 - the documented password of the dev users
TEST_CLIENT_ID = "huimin-test"
HOST = "127.0.0.1"
MIN_JAVA = 21
DEFAULT_HEAP = "-Xms64m -Xmx512m"
# C1 only: starts about 25% faster on two cores; peak throughput does not matter here.
DEFAULT_JAVA_OPTS = "-XX:TieredStopAtLevel=1"
LOG_NAME = "keycloak.log"
_PORT_ATTEMPTS = 5
_ADDRESS_IN_USE = "already in use"
_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>
# Inherited, these would change Keycloak's build options (and re-augment the shared
# distribution) or its JVM flags; each instance sets what it needs explicitly.
_DROPPED_ENV_PREFIXES = ("KC_", "KEYCLOAK_", "QUARKUS_", "JAVA_OPTS", "JAVA_ADD_OPENS")
_PLACEHOLDER = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*):(.*)\}$")


class KeycloakError(RuntimeError):
    """Keycloak could not be fetched, started or stopped."""


def _log(message: str) -> None:
    print(f"[keycloak] {message}", file=sys.stderr, flush=True)


# -- distribution ------------------------------------------------------------------------------


def version_dir() -> Path:
    """Cache directory of this Keycloak version (zip download, unpacked dist, markers)."""
    return cache_root() / "keycloak" / KEYCLOAK_VERSION


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


@contextlib.contextmanager
def _file_lock(path: Path, waiting: str) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            _log(f"waiting for {waiting} (lock {path})")
            fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


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


def _tail(path: Path, lines: int = 60) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError as exc:
        return f"(no log: {exc})"
    return "\n".join(text.splitlines()[-lines:]) or "(log is empty)"


def _die_with_parent() -> None:
    # Runs in the child between fork and exec: if the launcher is killed outright, the kernel
    # sends kc.sh SIGTERM, which it forwards to the JVM (and the flag survives kc.sh's exec).
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


class Keycloak:
    """One Keycloak (``start-dev``) on a loopback port with the huimin realm imported.

    ``dev=True`` also imports the dev users (password ``huimin-dev``) and the dev-only
    ``huimin-test`` client (password grant); ``dev=False`` imports the production realm only.
    """

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
        self._owns_home = home_dir is None
        self._home = Path(
            tempfile.mkdtemp(prefix="huimin-keycloak-") if home_dir is None else home_dir
        )
        self._port = port
        self._dev = dev
        self._heap = heap
        self._java_opts = java_opts
        self._java_home = Path(java_home) if java_home is not None else None
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._admin_password = secrets.token_urlsafe(18)
        self._environ: dict[str, str] = {}
        self._process: subprocess.Popen[bytes] | None = None
        self._log_file: IO[bytes] | None = None
        self._log_offset = 0

    # -- properties ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The HTTP port (fixed by the first start; restart() reuses it)."""
        if self._port is None:
            raise KeycloakError("Keycloak has not been started yet")
        return self._port

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
        return self._home

    @property
    def log_path(self) -> Path:
        """The server's log file (appended to across restarts)."""
        return self._home / LOG_NAME

    @property
    def pid(self) -> int:
        """Process id of the running server (kc.sh, which execs or forwards to the JVM)."""
        if self._process is None:
            raise KeycloakError("Keycloak is not running")
        return self._process.pid

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._process is not None and self._process.poll() is None

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
            self._start_on_free_port(dist, java_home)
            _augmented_marker().touch()
        return self

    def stop(self) -> None:
        """Stop the server: SIGTERM, then SIGKILL if it has not exited within stop_timeout."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)  # kc.sh forwards it to the JVM
            try:
                process.wait(self._stop_timeout)
            except subprocess.TimeoutExpired:
                _log(f"Keycloak pid {process.pid} ignored SIGTERM; sending SIGKILL")
                self._kill_group(process)
        self._reap()

    def kill(self) -> None:
        """Kill the server (kc.sh and the JVM) with SIGKILL at once."""
        process = self._process
        if process is None:
            return
        if process.poll() is None:
            self._kill_group(process)
        self._reap()

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the server process to exit and return its exit code."""
        process = self._process
        if process is None:
            raise KeycloakError("Keycloak is not running")
        code = process.wait(timeout)
        self._reap()
        return code

    def restart(self) -> Self:
        """Stop the server if it runs, then start it again on the same port and home."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Stop the server and delete the home dir if it was a temporary one we created."""
        self.stop()
        if self._owns_home:
            shutil.rmtree(self._home, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid={self._process.pid}" if self.running and self._process else "stopped"
        return f"Keycloak(port={self._port}, home_dir={str(self._home)!r}, {state})"

    # -- internals -----------------------------------------------------------------------------

    def _prepare_home(self, dist: Path) -> None:
        # Keycloak finds providers, themes, conf and its data dir through kc.home.dir; the
        # shared dist stays read-only and this home owns data/ (H2, import files, tmp).
        self._home.mkdir(parents=True, exist_ok=True)
        for entry in dist.iterdir():
            if entry.name == "data":
                continue
            link = self._home / entry.name
            if link.is_symlink() and link.readlink() == entry:
                continue
            if link.is_symlink() or link.is_file():
                link.unlink()
            link.symlink_to(entry)
        write_import_dir(self._home / "data" / "import", dev=self._dev)

    def _start_on_free_port(self, dist: Path, java_home: Path) -> None:
        # A fixed port (requested, or kept for restart) must be used as is; a picked one may
        # be taken by someone else between picking and binding, so then we pick again.
        attempts = 1 if self._port is not None else _PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            port = self._port if self._port is not None else free_port()
            self._spawn(dist, java_home, port)
            try:
                self._wait_ready(port)
            except _AddressInUse:
                if attempt == attempts:
                    raise KeycloakError(
                        f"port {port} is already in use; Keycloak log {self.log_path}:\n"
                        f"{_tail(self.log_path)}"
                    ) from None
                continue
            self._port = port
            return

    def _spawn(self, dist: Path, java_home: Path, port: int) -> None:
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
            f"-Dkc.home.dir={self._home}",  # later -D wins over kc.sh's own
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
        self._log_file = self.log_path.open("ab")
        self._log_file.write(f"--- launcher: starting on {HOST}:{port} ---\n".encode())
        self._log_file.flush()
        self._log_offset = self._log_file.tell()
        self._process = subprocess.Popen(
            command,
            cwd=self._home,
            env=environ,
            stdin=subprocess.DEVNULL,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own group: SIGKILL reaches kc.sh and the JVM
            preexec_fn=_die_with_parent,
        )

    def _new_log(self) -> str:
        try:
            with self.log_path.open("rb") as handle:
                handle.seek(self._log_offset)
                return handle.read().decode(errors="replace")
        except OSError:
            return ""

    def _wait_ready(self, port: int) -> None:
        process = self._process
        assert process is not None
        url = f"http://{HOST}:{port}/realms/{REALM}/.well-known/openid-configuration"
        deadline = time.monotonic() + self._start_timeout
        with httpx.Client(timeout=5.0) as client:
            while True:
                code = process.poll()
                if code is not None:
                    self._reap()
                    if _ADDRESS_IN_USE in self._new_log():
                        raise _AddressInUse
                    raise KeycloakError(
                        f"Keycloak exited with code {code} during start; log {self.log_path}:\n"
                        f"{_tail(self.log_path)}"
                    )
                with contextlib.suppress(httpx.HTTPError):
                    if client.get(url).status_code == httpx.codes.OK:
                        return
                if time.monotonic() > deadline:
                    self.kill()
                    raise KeycloakError(
                        f"Keycloak did not serve {url} within {self._start_timeout:.0f}s; "
                        f"log {self.log_path}:\n{_tail(self.log_path)}"
                    )
                time.sleep(0.5)

    def _kill_group(self, process: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()

    def _reap(self) -> None:
        self._process = None
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None


class _AddressInUse(Exception):
    """The server could not bind its port (someone took it after we picked it)."""


# -- command line ------------------------------------------------------------------------------


def _serve(port: int | None, dev: bool) -> int:
    server = Keycloak(port=port, dev=dev)

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_sigterm)
    # Background jobs of a non-interactive shell inherit an ignored SIGINT; Ctrl-C must work.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        started = time.monotonic()
        server.start()
        print(server.issuer, flush=True)
        _log(
            f"ready in {time.monotonic() - started:.0f}s, pid {server.pid}; admin console "
            f"{server.base_url}/admin/ as {server.admin_username} / {server.admin_password}; "
            f"log {server.log_path}; Ctrl-C stops"
        )
        code = server.wait()
        _log(f"Keycloak exited on its own with code {code}:\n{_tail(server.log_path)}")
        return 1
    except KeyboardInterrupt:
        _log("stopping")
        return 0
    finally:
        server.close()


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m tools.keycloak``."""
    parser = argparse.ArgumentParser(
        prog="python -m tools.keycloak", description=f"Keycloak {KEYCLOAK_VERSION} for Huimin"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    fetch_cmd = commands.add_parser("fetch", help="download and unpack (cached); print the path")
    fetch_cmd.add_argument("--force", action="store_true", help="fetch and unpack again")
    serve_cmd = commands.add_parser("serve", help="run the huimin realm until Ctrl-C")
    serve_cmd.add_argument("--port", type=int, help="HTTP port on 127.0.0.1 (default: a free one)")
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
