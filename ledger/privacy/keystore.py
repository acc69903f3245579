"""The key store: one data key per customer, wrapped by the master key, apart from the log.

:class:`KeyStore` is the port (a KMS or Vault adapter would implement its few SQL-shaped
primitives, or the whole port); :class:`SQLiteKeyStore` (default: ``DATA_DIR/keys.db``)
and :class:`PostgresKeyStore` (several machines) are its adapters. Destroying a
customer's keys (``ledger erase``) deletes their rows; the SQLite adapter runs with
``PRAGMA secure_delete=ON`` and truncates its write-ahead log after a deletion, so no copy
of the wrapped key stays in the file. Keys are unwrapped on demand and cached only for the
life of one call's lookup, so a key destroyed by another process is not used again by a
long-lived reader.
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import sqlite3
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from ledger.errors import ConfigurationError, KeyStoreUnavailable, MasterKeyError
from ledger.privacy.crypto import DataKey, b64
from ledger.privacy.master import MasterKey
from ledger.redact import redact_url
from ledger.sqlite_wal import use_wal

_log = logging.getLogger("ledger.privacy")
_CHECK_PLAINTEXT = b"touchpoint-ledger key store v1"
_CHECK_AAD = b"check"
_CHUNK = 500
"""Customers or key ids per ``IN (...)`` query."""
_TABLES_LOCK = "touchpoint-ledger key store tables"
"""The advisory lock PostgreSQL key stores take to make their tables."""


@dataclass(frozen=True, slots=True)
class WrappedKey:
    """A key store row: a data key encrypted under the master key."""

    kid: str
    customer: str
    wrapped: bytes = field(repr=False)
    created: int = 0
    """Microseconds since the epoch."""


MasterSource = Any
"""A callable ``(may_create: bool) -> MasterKey``: the master key, loaded when first needed."""


class KeyStore(ABC):
    """Per-customer data keys, wrapped by the master key."""

    name: str = "key store"

    def __init__(self, master: MasterSource) -> None:
        self._master_source = master
        self._master: MasterKey | None = None
        self._aead: AESGCM | None = None

    # -- the port ------------------------------------------------------------------------

    def keys_for(self, customers: Collection[str], *, create: bool) -> dict[str, DataKey]:
        """The data key of each customer; with ``create``, a new one for each customer
        without one (committed before this returns, so no ciphertext can outlive its key's
        creation)."""
        aead = self._opened()
        rows = {row.customer: row for row in self._select("customer", customers)}
        missing = [c for c in customers if c not in rows]
        if create and missing:
            now = _now_micros()
            fresh = []
            for customer in dict.fromkeys(missing):
                kid, secret = secrets.token_urlsafe(12), secrets.token_bytes(32)
                fresh.append(
                    WrappedKey(kid, customer, self._wrap(aead, kid, customer, secret), now)
                )
            self._insert(fresh)  # keeps a key another process made meanwhile
            rows.update({row.customer: row for row in self._select("customer", missing)})
        return {customer: self._unwrap(aead, row) for customer, row in rows.items()}

    def keys_by_id(self, kids: Collection[str]) -> dict[str, DataKey]:
        """The data keys with these ids that still exist."""
        aead = self._opened()
        return {row.kid: self._unwrap(aead, row) for row in self._select("kid", kids)}

    def holders(self, customers: Collection[str] | None = None) -> set[str]:
        """The customers (of ``customers``, or all) who have a key."""
        if customers is None:
            return {row.customer for row in self._rows()}
        return {row.customer for row in self._select("customer", customers)}

    def destroy(self, customers: Collection[str], *, made_by: int | None = None) -> dict[str, int]:
        """Delete every key of ``customers`` (all copies this store keeps), or with
        ``made_by`` (UTC microseconds) only the keys made by then; returns how many keys
        each customer had (of those)."""
        self._opened()  # a wrong master key refuses before anything is deleted
        counts: dict[str, int] = {}
        for row in self._select("customer", customers):
            if made_by is None or row.created <= made_by:
                counts[row.customer] = counts.get(row.customer, 0) + 1
        if made_by is None:
            self._delete(customers, None)
        elif counts:
            self._delete(list(counts), made_by)
        return {c: counts.get(c, 0) for c in customers}

    def remember_subjects(self, sealed: dict[str, bytes]) -> None:
        """Keep, per hashed customer id, the original id sealed under that customer's key
        (deleted with the key)."""
        self._opened()
        self._save_subjects(sealed)

    def sealed_subjects(self, hashed: Collection[str]) -> dict[str, bytes]:
        """The sealed original ids of these hashed customer ids (as far as still kept)."""
        self._opened()
        return self._load_subjects(hashed)

    def export(self) -> Iterator[WrappedKey]:
        """Every row, still wrapped (for ``ledger keys backup``)."""
        self._opened()
        return iter(self._rows())

    def check_value(self) -> str:
        """The store's master key check value (base64url), for backups."""
        self._opened()
        value = self._load_check()
        assert value is not None
        return b64(value)

    def restore(self, rows: Iterable[WrappedKey]) -> int:
        """Put back wrapped keys (a backup); keeps the ones present. Returns rows read."""
        aead = self._opened()
        restored = list(rows)
        for row in restored:
            self._unwrap(aead, row)  # each one must open under this master key
        self._insert(restored)
        return len(restored)

    @abstractmethod
    def close(self) -> None: ...

    # -- the adapters' primitives ----------------------------------------------------------

    @abstractmethod
    def _load_check(self) -> bytes | None: ...

    @abstractmethod
    def _save_check(self, value: bytes) -> bytes:
        """Store the check value unless one exists; return the one stored."""

    @abstractmethod
    def _select(self, column: str, values: Collection[str]) -> list[WrappedKey]: ...

    @abstractmethod
    def _rows(self) -> list[WrappedKey]: ...

    @abstractmethod
    def _insert(self, rows: list[WrappedKey]) -> None: ...

    @abstractmethod
    def _delete(self, customers: Collection[str], made_by: int | None) -> None:
        """Delete the keys of ``customers`` (made by ``made_by``, if given) and their
        sealed subjects."""

    @abstractmethod
    def _empty(self) -> bool: ...

    @abstractmethod
    def _save_subjects(self, sealed: dict[str, bytes]) -> None: ...

    @abstractmethod
    def _load_subjects(self, hashed: Collection[str]) -> dict[str, bytes]: ...

    # -- the master key ------------------------------------------------------------------

    def master(self) -> MasterKey:
        self._opened()
        assert self._master is not None
        return self._master

    def _opened(self) -> AESGCM:
        if self._aead is not None:
            return self._aead
        check = self._load_check()
        master: MasterKey = self._master_source(check is None and self._empty())
        aead = AESGCM(master.secret)
        if check is None:
            nonce = secrets.token_bytes(12)
            check = self._save_check(nonce + aead.encrypt(nonce, _CHECK_PLAINTEXT, _CHECK_AAD))
        try:
            aead.decrypt(check[:12], check[12:], _CHECK_AAD)
        except InvalidTag:
            raise MasterKeyError(
                f"the master key from {master.origin} does not open the {self.name}: it was "
                "made with another master key (nothing was written)"
            ) from None
        self._master, self._aead = master, aead
        return aead

    @staticmethod
    def _wrap(aead: AESGCM, kid: str, customer: str, secret: bytes) -> bytes:
        nonce = secrets.token_bytes(12)
        return nonce + aead.encrypt(nonce, secret, f"{kid}\x00{customer}".encode())

    def _unwrap(self, aead: AESGCM, row: WrappedKey) -> DataKey:
        aad = f"{row.kid}\x00{row.customer}".encode()
        try:
            secret = aead.decrypt(row.wrapped[:12], row.wrapped[12:], aad)
        except InvalidTag:
            raise MasterKeyError(
                f"key {row.kid} in the {self.name} does not open under the master key: the "
                "row was altered or wrapped by another master key"
            ) from None
        return DataKey(row.kid, row.customer, secret)


def _now_micros() -> int:
    return time.time_ns() // 1000


def _chunks(values: Collection[str]) -> Iterator[list[str]]:
    listed = list(dict.fromkeys(values))
    for start in range(0, len(listed), _CHUNK):
        yield listed[start : start + _CHUNK]


class SQLiteKeyStore(KeyStore):
    """Keys in a SQLite file (mode 0600), ``secure_delete`` on."""

    def __init__(self, path: Path, master: MasterSource) -> None:
        super().__init__(master)
        self.path = path
        self.name = f"key store {str(path)!r}"
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None

    @contextmanager
    def _db(self, write: bool = False) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                connection = self._connect()
                if write:
                    connection.execute("BEGIN IMMEDIATE")
                    try:
                        yield connection
                    except BaseException:
                        connection.execute("ROLLBACK")
                        raise
                    connection.execute("COMMIT")
                else:
                    yield connection
            except sqlite3.Error as exc:
                raise KeyStoreUnavailable(f"the {self.name} cannot be used: {exc}") from exc

    def _connect(self) -> sqlite3.Connection:
        if self._connection is not None:
            return self._connection
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            os.close(os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600))
        except OSError as exc:
            raise KeyStoreUnavailable(f"the {self.name} cannot be opened: {exc.strerror}") from exc
        connection = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        connection.execute("PRAGMA secure_delete = ON")
        use_wal(connection, 30)
        connection.execute("PRAGMA synchronous = FULL")
        connection.executescript(
            """
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
            CREATE TABLE IF NOT EXISTS keys (
                kid TEXT PRIMARY KEY,
                customer TEXT NOT NULL UNIQUE,
                wrapped BLOB NOT NULL,
                created INTEGER NOT NULL
            );
            CREATE TABLE IF NOT EXISTS subjects (hashed TEXT PRIMARY KEY, sealed BLOB NOT NULL);
            """
        )
        self._connection = connection
        return connection

    def _load_check(self) -> bytes | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
        return None if row is None else bytes(row[0])

    def _save_check(self, value: bytes) -> bytes:
        with self._db(write=True) as db:
            db.execute("INSERT OR IGNORE INTO meta VALUES ('check', ?)", (value,))
            row = db.execute("SELECT value FROM meta WHERE name = 'check'").fetchone()
        return bytes(row[0])

    def _empty(self) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM keys LIMIT 1").fetchone() is None

    def _select(self, column: str, values: Collection[str]) -> list[WrappedKey]:
        assert column in ("kid", "customer")
        found: list[WrappedKey] = []
        with self._db() as db:
            for chunk in _chunks(values):
                marks = ",".join("?" * len(chunk))
                found += [
                    WrappedKey(*row)
                    for row in db.execute(
                        f"SELECT kid, customer, wrapped, created FROM keys "
                        f"WHERE {column} IN ({marks})",
                        chunk,
                    )
                ]
        return found

    def _rows(self) -> list[WrappedKey]:
        with self._db() as db:
            rows = db.execute("SELECT kid, customer, wrapped, created FROM keys ORDER BY kid")
            return [WrappedKey(*row) for row in rows]

    def _insert(self, rows: list[WrappedKey]) -> None:
        with self._db(write=True) as db:
            db.executemany(
                "INSERT OR IGNORE INTO keys VALUES (?, ?, ?, ?)",
                [(r.kid, r.customer, r.wrapped, r.created) for r in rows],
            )

    def _save_subjects(self, sealed: dict[str, bytes]) -> None:
        with self._db(write=True) as db:
            db.executemany("INSERT OR IGNORE INTO subjects VALUES (?, ?)", sealed.items())

    def _load_subjects(self, hashed: Collection[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._db() as db:
            for chunk in _chunks(hashed):
                marks = ",".join("?" * len(chunk))
                rows = db.execute(
                    f"SELECT hashed, sealed FROM subjects WHERE hashed IN ({marks})", chunk
                )
                found.update((h, bytes(v)) for h, v in rows)
        return found

    def _delete(self, customers: Collection[str], made_by: int | None) -> None:
        made, limit = ("", []) if made_by is None else (" AND created <= ?", [made_by])
        with self._db(write=True) as db:
            for chunk in _chunks(customers):
                marks = ",".join("?" * len(chunk))
                db.execute(f"DELETE FROM keys WHERE customer IN ({marks}){made}", [*chunk, *limit])
                db.execute(f"DELETE FROM subjects WHERE hashed IN ({marks})", chunk)
        # The WAL still holds the pages as they were: copy the zeroed pages into the file
        # and cut the WAL to nothing, so no copy of a destroyed key remains. A reader of
        # another process can hold the checkpoint back for a moment: wait for it.
        for _ in range(100):
            with self._db() as db:
                busy, frames, _copied = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy and frames <= 0:
                return
            time.sleep(0.05)
        _log.warning(
            "%s: the write-ahead log could not be truncated after destroying keys (a reader "
            "holds it); it is truncated at the next erasure or when the last connection closes",
            self.name,
        )

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class PostgresKeyStore(KeyStore):
    """Keys in a PostgreSQL table (``ledger_keys``), for ledgers on several machines.

    A deleted row's bytes stay in the table's pages until VACUUM reclaims them and the
    server's WAL and backups keep them until they expire: see ``docs/privacy.md``."""

    def __init__(self, url: str, master: MasterSource) -> None:
        super().__init__(master)
        parts = urlsplit(url)
        query = parse_qsl(parts.query)
        schemas = [v for k, v in query if k == "schema"]
        self.schema = schemas[-1] if schemas else None
        self.url = urlunsplit(
            parts._replace(query=urlencode([(k, v) for k, v in query if k != "schema"]))
        )
        self.name = f"key store {redact_url(url)!r}"
        self._lock = threading.Lock()
        self._connection: Any = None

    @contextmanager
    def _db(self) -> Iterator[Any]:
        import psycopg

        with self._lock:
            try:
                if self._connection is None:
                    self._connection = psycopg.connect(self.url, autocommit=True)
                    self._create_tables(self._connection)
                yield self._connection
            except psycopg.Error as exc:
                # A broken connection is not reused: psycopg does not reconnect by itself, and
                # a store kept open (``ledger serve``) would fail until restarted.
                connection, self._connection = self._connection, None
                if connection is not None:
                    with contextlib.suppress(psycopg.Error):
                        connection.close()
                raise KeyStoreUnavailable(f"the {self.name} cannot be used: {exc}") from exc

    def _create_tables(self, connection: Any) -> None:
        import psycopg.sql

        # CREATE ... IF NOT EXISTS is not safe against a concurrent creator in PostgreSQL
        # (the loser fails on a catalog's unique index): stores starting together on a new
        # location take turns, under a lock held to the end of the transaction.
        with connection.transaction():
            lock = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
            connection.execute(lock, (_TABLES_LOCK,))
            if self.schema is not None:
                name = psycopg.sql.Identifier(self.schema)
                connection.execute(psycopg.sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(name))
                connection.execute(psycopg.sql.SQL("SET search_path TO {}").format(name))
            connection.execute(
                "CREATE TABLE IF NOT EXISTS ledger_keys_meta "
                "(name TEXT PRIMARY KEY, value BYTEA NOT NULL)"
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS ledger_keys (kid TEXT PRIMARY KEY, "
                "customer TEXT NOT NULL UNIQUE, wrapped BYTEA NOT NULL, "
                "created BIGINT NOT NULL)"
            )
            connection.execute(
                "CREATE TABLE IF NOT EXISTS ledger_key_subjects "
                "(hashed TEXT PRIMARY KEY, sealed BYTEA NOT NULL)"
            )

    def _load_check(self) -> bytes | None:
        with self._db() as db:
            row = db.execute("SELECT value FROM ledger_keys_meta WHERE name = 'check'").fetchone()
        return None if row is None else bytes(row[0])

    def _save_check(self, value: bytes) -> bytes:
        with self._db() as db:
            db.execute(
                "INSERT INTO ledger_keys_meta VALUES ('check', %s) ON CONFLICT DO NOTHING",
                (value,),
            )
            row = db.execute("SELECT value FROM ledger_keys_meta WHERE name = 'check'").fetchone()
        return bytes(row[0])

    def _empty(self) -> bool:
        with self._db() as db:
            return db.execute("SELECT 1 FROM ledger_keys LIMIT 1").fetchone() is None

    def _select(self, column: str, values: Collection[str]) -> list[WrappedKey]:
        assert column in ("kid", "customer")
        found: list[WrappedKey] = []
        with self._db() as db:
            for chunk in _chunks(values):
                rows = db.execute(
                    f"SELECT kid, customer, wrapped, created FROM ledger_keys "
                    f"WHERE {column} = ANY(%s)",
                    (chunk,),
                ).fetchall()
                found += [WrappedKey(r[0], r[1], bytes(r[2]), r[3]) for r in rows]
        return found

    def _rows(self) -> list[WrappedKey]:
        with self._db() as db:
            rows = db.execute(
                "SELECT kid, customer, wrapped, created FROM ledger_keys ORDER BY kid"
            ).fetchall()
        return [WrappedKey(r[0], r[1], bytes(r[2]), r[3]) for r in rows]

    def _insert(self, rows: list[WrappedKey]) -> None:
        with self._db() as db, db.transaction(), db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_keys VALUES (%s, %s, %s, %s) ON CONFLICT DO NOTHING",
                [(r.kid, r.customer, r.wrapped, r.created) for r in rows],
            )

    def _delete(self, customers: Collection[str], made_by: int | None) -> None:
        made = "" if made_by is None else " AND created <= %(made_by)s"
        with self._db() as db:
            with db.transaction():
                for chunk in _chunks(customers):
                    db.execute(
                        "DELETE FROM ledger_keys WHERE customer = ANY(%(chunk)s)" + made,
                        {"chunk": chunk, "made_by": made_by},
                    )
                    db.execute("DELETE FROM ledger_key_subjects WHERE hashed = ANY(%s)", (chunk,))
            db.execute("VACUUM ledger_keys")  # the dead rows' space is reused soonest

    def _save_subjects(self, sealed: dict[str, bytes]) -> None:
        with self._db() as db, db.transaction(), db.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO ledger_key_subjects VALUES (%s, %s) ON CONFLICT DO NOTHING",
                list(sealed.items()),
            )

    def _load_subjects(self, hashed: Collection[str]) -> dict[str, bytes]:
        found: dict[str, bytes] = {}
        with self._db() as db:
            for chunk in _chunks(hashed):
                rows = db.execute(
                    "SELECT hashed, sealed FROM ledger_key_subjects WHERE hashed = ANY(%s)",
                    (chunk,),
                ).fetchall()
                found.update((h, bytes(v)) for h, v in rows)
        return found

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


def open_key_store(url: str, master: MasterSource) -> KeyStore:
    """The key store ``url`` names: ``sqlite:///PATH`` or ``postgresql://...``."""
    scheme, _, rest = url.partition("://")
    if scheme in ("postgresql", "postgres"):
        return PostgresKeyStore(url, master)
    if scheme != "sqlite" or not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(
            f"key store URL {redact_url(url)!r}: expected sqlite:///PATH or "
            "postgresql://USER@HOST/DATABASE"
        )
    return SQLiteKeyStore(Path(unquote(rest[1:])), master)
