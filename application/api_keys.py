"""API keys for the HTTP face: created, listed, revoked and checked, stored hashed.

A key is ``tpl_<id>_<secret>``: 32 random bytes of secret, of which only the SHA-256 is kept
(in ``api-keys.json`` under the data dir, written atomically with mode 0600), so the file
never holds a usable key. Checking compares digests in constant time. Each key has scopes:

* ``publish``: append touchpoints (ingest);
* ``read``: profiles, contacts, customers, history, project status, the dashboard;
* ``contact-check``: may-contact (``record=true`` also needs ``publish``);
* ``audit``: violations and pressure;
* ``personal``: see personal data (names, e-mail, phone, consent recipients) in answers;
* ``admin``: everything above, and the metrics.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import os
import secrets
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from application.file_lock import held
from ledger.errors import ConfigurationError, LedgerError
from ledger.settings import Settings

SCOPES = ("publish", "read", "contact-check", "audit", "personal", "admin")
PREFIX = "tpl_"


@dataclass(frozen=True)
class ApiKey:
    """A stored key: its public id, name, scopes and the SHA-256 of its secret."""

    key_id: str
    name: str
    scopes: tuple[str, ...]
    created_at: str
    digest: str
    revoked_at: str | None = None

    def allows(self, scope: str) -> bool:
        return self.revoked_at is None and (scope in self.scopes or "admin" in self.scopes)

    def public(self) -> dict[str, Any]:
        """What ``api-keys list`` shows (never the digest)."""
        return {
            "id": self.key_id,
            "name": self.name,
            "scopes": list(self.scopes),
            "created_at": self.created_at,
            "revoked_at": self.revoked_at,
        }


def keys_path(settings: Settings) -> Path:
    return settings.data_dir / "api-keys.json"


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _load(path: Path) -> list[ApiKey]:
    if not path.exists():
        return []
    try:
        rows = json.loads(path.read_text())
        return [ApiKey(**{**row, "scopes": tuple(row["scopes"])}) for row in rows]
    except (ValueError, TypeError, KeyError) as exc:
        raise ConfigurationError(f"{path}: not an API key file: {exc}") from None


def _save(path: Path, keys: list[ApiKey]) -> None:
    """Write the file whole (a new file, synced, then renamed over the old one)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as out:  # mkstemp makes it 0600
            json.dump([asdict(k) for k in keys], out, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise


@contextmanager
def _changing(path: Path) -> Iterator[list[ApiKey]]:
    """The keys, to change in place and save, one changer at a time: two ``api-keys``
    commands run together would otherwise each save what they read, and the later one
    would drop the other's new key, or bring back a key it had just revoked."""
    with held(path.with_name(path.name + ".lock")):
        keys = _load(path)
        yield keys
        _save(path, keys)


def create(settings: Settings, name: str, scopes: list[str]) -> tuple[ApiKey, str]:
    """A new key with ``scopes``; returns it and the token (shown once, never stored)."""
    unknown = sorted(set(scopes) - set(SCOPES))
    if unknown or not scopes:
        raise LedgerError(
            f"unknown scope {', '.join(unknown)}" if unknown else "give at least one scope"
        )
    key_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    key = ApiKey(
        key_id,
        name,
        tuple(s for s in SCOPES if s in scopes),
        datetime.now(UTC).isoformat(),
        _digest(secret),
    )
    with _changing(keys_path(settings)) as keys:
        keys.append(key)
    return key, f"{PREFIX}{key_id}_{secret}"


def list_keys(settings: Settings) -> list[ApiKey]:
    return _load(keys_path(settings))


def revoke(settings: Settings, key_id: str) -> ApiKey:
    """Revoke the key ``key_id`` (kept in the file, marked revoked)."""
    with _changing(keys_path(settings)) as keys:
        for number, key in enumerate(keys):
            if key.key_id == key_id:
                if key.revoked_at is None:
                    key = ApiKey(**{**asdict(key), "revoked_at": datetime.now(UTC).isoformat()})
                    keys[number] = key
                return key
        raise LedgerError(f"no API key {key_id!r}")  # nothing saved


class KeyRing:
    """The keys of a running server, read again when the file changes (a key revoked
    with ``ledger api-keys revoke`` stops working on the next request)."""

    def __init__(self, settings: Settings) -> None:
        self.path = keys_path(settings)
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._keys: dict[str, ApiKey] = {}

    def _refresh(self) -> None:
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            with self._lock:
                self._keys = {k.key_id: k for k in _load(self.path)}
                self._stamp = stamp

    def check(self, token: str) -> ApiKey | None:
        """The live key ``token`` is, or None (unknown, malformed, revoked)."""
        self._refresh()
        if not token.startswith(PREFIX):
            return None
        key_id, _, secret = token.removeprefix(PREFIX).partition("_")
        key = self._keys.get(key_id)
        if key is None or key.revoked_at is not None:
            hmac.compare_digest(_digest(secret), "0" * 64)  # same work either way
            return None
        return key if hmac.compare_digest(_digest(secret), key.digest) else None
