"""The issuer's keys, generated once per data directory and kept across restarts.

`keys.json` (mode 0600, in a 0700 directory) holds an RSA key that signs access and ID
tokens (RS256, published in the JWKS) and a symmetric key that signs what only the issuer
reads back: refresh tokens and the browser's login-session cookie (HS256, never published,
so a refresh token can never pass for an access token at a service).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import OctKey, RSAKey

log = logging.getLogger(__name__)

KEY_FILE = "keys.json"
RSA_BITS = 2048
SIGNING_ALG = "RS256"
SECRET_ALG = "HS256"  # noqa: S105 - an algorithm name


class KeyFileError(Exception):
    """The key file exists but cannot be used."""


@dataclass(frozen=True)
class IssuerKeys:
    """The signing key pair and the issuer-internal secret key."""

    signing: RSAKey
    secret: OctKey

    @property
    def kid(self) -> str:
        """Key id of the signing key (its RFC 7638 thumbprint)."""
        return str(self.signing.kid)

    def jwks(self) -> dict[str, Any]:
        """The public key set served at the certs endpoint."""
        public = self.signing.as_dict(private=False)
        return {"keys": [{**public, "kid": self.kid, "use": "sig", "alg": SIGNING_ALG}]}


def load_or_create_keys(data_dir: Path) -> IssuerKeys:
    """Load the keys of `data_dir`, generating them on first use."""
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    path = data_dir / KEY_FILE
    if not path.exists():
        _create(path)
    _tighten(path)
    try:
        data = json.loads(path.read_text())
        signing = RSAKey.import_key(data["signing"])
        secret = OctKey.import_key(data["secret"])
    except (OSError, ValueError, KeyError, TypeError, JoseError) as exc:
        raise KeyFileError(
            f"cannot use {path}: {exc}; delete it to generate new keys "
            "(tokens signed with the old keys stop validating)"
        ) from exc
    if not signing.is_private or signing.kid is None or secret.kid is None:
        raise KeyFileError(f"{path} lacks a private signing key or a key id; delete it")
    return IssuerKeys(signing=signing, secret=secret)


def _create(path: Path) -> None:
    signing = RSAKey.generate_key(RSA_BITS, private=True)
    secret = OctKey.generate_key(256)
    data = {
        "signing": {**signing.as_dict(private=True), "kid": signing.thumbprint()},
        "secret": {**secret.as_dict(), "kid": secret.thumbprint()},
    }
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the private key is never readable by others, not even
    # between creation and a later chmod.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as file:
            json.dump(data, file)
            file.flush()
            os.fsync(file.fileno())
        try:
            # link() fails if another process created the file meanwhile: theirs wins.
            os.link(temporary, path)
            log.info("generated new signing keys in %s", path)
        except FileExistsError:
            pass
    finally:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()


def _tighten(path: Path) -> None:
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        log.warning("%s was readable by others (mode %o); setting 0600", path, mode)
        path.chmod(0o600)
