"""The master key: wraps every data key in the key store, and derives the subject pepper.

From ``LEDGER_MASTER_KEY`` (32 bytes as 64 hex digits or base64), or else from the
master key file (``LEDGER_MASTER_KEY_FILE``, default ``DATA_DIR/master.key``), which is
created with permissions 0600 on first use -- only while the key store holds no key, so a
lost file is an error, never silently replaced by a new key that opens nothing. The key
is never printed.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import errno
import hashlib
import hmac
import os
import secrets
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import SecretStr

from ledger.errors import MasterKeyError


@dataclass(frozen=True)
class MasterKey:
    """The master key's bytes, and where they came from (for messages; never the key)."""

    secret: bytes = field(repr=False)
    origin: str

    def pepper(self) -> bytes:
        """The ledger-wide key of the keyed hash of personal subjects."""
        return hmac.new(self.secret, b"touchpoint-ledger subject pepper", hashlib.sha256).digest()


def parse_master_key(text: str, origin: str) -> MasterKey:
    """32 bytes written as 64 hex digits or as base64 (standard or url-safe)."""
    text = text.strip()
    secret: bytes | None = None
    if len(text) == 64:
        try:
            secret = bytes.fromhex(text)
        except ValueError:
            secret = None
    if secret is None:
        try:
            secret = base64.urlsafe_b64decode(
                text.replace("+", "-").replace("/", "_") + "=" * (-len(text) % 4)
            )
        except (binascii.Error, ValueError):
            secret = None
    if secret is None or len(secret) != 32:
        raise MasterKeyError(
            f"the master key from {origin} is not 32 bytes as 64 hex digits or base64"
        )
    return MasterKey(secret, origin)


def load_master_key(value: SecretStr | None, path: Path, *, may_create: bool) -> MasterKey:
    """The master key: ``value`` (``LEDGER_MASTER_KEY``) if set, else the file at ``path``,
    created (0600) only if ``may_create`` (the key store holds no key yet)."""
    if value is not None:
        return parse_master_key(value.get_secret_value(), "LEDGER_MASTER_KEY")
    origin = f"the master key file {str(path)!r}"
    try:
        return parse_master_key(path.read_text("ascii"), origin)
    except FileNotFoundError:
        if not may_create:
            raise MasterKeyError(
                f"{origin} is missing and the key store already holds keys: restore the file "
                "or set LEDGER_MASTER_KEY to the key they were made with (a new key would open "
                "none of them)"
            ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise MasterKeyError(f"cannot read {origin}: {exc}") from None
    return _create(path, origin)


def _create(path: Path, origin: str) -> MasterKey:
    """Write a new key beside ``path`` and link it there: the file appears whole or not at
    all, so a process starting at the same moment reads either nothing (and races to link
    its own) or this key, never a file made but not written yet."""
    secret = secrets.token_bytes(32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, written = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as exc:
        raise MasterKeyError(f"cannot create {origin}: {exc.strerror}") from None
    try:
        with os.fdopen(descriptor, "w", encoding="ascii") as file:  # mkstemp makes it 0600
            file.write(secret.hex() + "\n")
            file.flush()
            os.fsync(file.fileno())
        try:
            os.link(written, path)
        except OSError as exc:
            if exc.errno not in NO_LINKS:
                raise
            _write_new(path, secret)  # a file system without hard links (vfat, some shares)
    except FileExistsError:  # another process made it first: use theirs
        return parse_master_key(path.read_text("ascii"), origin)
    except OSError as exc:
        raise MasterKeyError(f"cannot create {origin}: {exc.strerror}") from None
    finally:
        with contextlib.suppress(OSError):
            os.unlink(written)
    _sync_folder(path.parent)
    return MasterKey(secret, origin)


NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV}
"""What ``link`` says on a file system without hard links."""


def _write_new(path: Path, secret: bytes) -> None:
    """Create ``path`` (refused if it exists) and write ``secret`` into it: a process
    starting at the same moment may find it still empty there (and stop, saying so)."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="ascii") as file:
        file.write(secret.hex() + "\n")
        file.flush()
        os.fsync(file.fileno())


def _sync_folder(folder: Path) -> None:
    """Make a new name in ``folder`` durable (where the platform can open a folder)."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)
