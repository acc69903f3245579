"""The view store: profile rows, contact slots, dedupe records and positions, one transaction.

Built on eventsourcing's ``SQLiteTrackingRecorder``: each batch writes its view rows, the
id of every event it applied, its dead letters and the tracked position of each log
partition (``Tracking("views|<log>:<partition>", next offset)``) in one transaction, so a
position is never committed for rows the view does not hold, and an event re-published
with the same id never counts twice.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import sqlite3
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlsplit

import orjson
import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from ledger.errors import LedgerError
from ledger.log import as_bytes
from ledger.redact import MASK, redact
from ledger.sqlite_log import LedgerDatastore
from ledger.timeutil import from_micros, to_micros
from projections.frequency import ContactKey, Window
from projections.profile import Profile

VIEWS = "views"
_PREFIXED = "substr(application_name, 1, ?) = ?"  # exact: LIKE would read _ as a wildcard
REBUILD_PREFIX = "views-rebuild"
REBUILD_SUFFIX = "_rebuild"


def _prefix(prefix: str) -> tuple[int, str]:
    return len(prefix), prefix


class StoreUnavailable(LedgerError):
    """The view store cannot be opened, read or written."""


class SharedEventId(LedgerError):
    """Parallel shards of one batch each applied an event with the same id (the same id
    published under two customers' keys). Nothing of the batch was written; the range
    must be projected by one process, which sees every id."""


class BatchConflict(LedgerError):
    """Another projector committed some of this batch's events or positions first
    (a consumer-group rebalance overlap). Nothing of the batch was written."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be decoded or applied, parked with its reason and all of
    the record a person needs to judge it: value, key, headers and timestamp."""

    partition: int
    offset: int
    raw: bytes
    """The record's value (the embedded log: the stored JSON)."""
    reason: str
    parked_at: datetime
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: datetime | None = None
    """When the log recorded it (Kafka: the record timestamp; embedded: append time)."""
    first: tuple[int, int] | None = None
    """A conflicting duplicate: the position of the copy of its id that was applied."""


class Seen(NamedTuple):
    """An applied event id: a digest of its content and where it was read (``None`` for
    ids applied before the ledger kept them: such a copy cannot be compared)."""

    digest: int | None
    partition: int | None
    offset: int | None


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """Headers as JSON, losslessly: ``{"name", "value"}`` (UTF-8) or ``{"name", "base64"}``."""
    if not headers:
        return None
    encoded: list[dict[str, str]] = []
    for name, value in headers:
        if value is None:  # Kafka allows a header without a value
            encoded.append({"name": name, "value": None})
            continue
        try:
            encoded.append({"name": name, "value": value.decode()})
        except UnicodeDecodeError:
            encoded.append({"name": name, "base64": base64.b64encode(value).decode()})
    return orjson.dumps(encoded).decode()


def decode_headers(text: str | None) -> tuple[tuple[str, bytes], ...]:
    if not text:
        return ()
    return tuple(
        (
            h["name"],
            (h["value"] or "").encode() if "value" in h else base64.b64decode(h["base64"]),
        )
        for h in orjson.loads(text)
    )


@dataclass(slots=True)
class Misplaced:
    """Records of one partition that sit outside their key's murmur2 partition: how many,
    and the last one seen (its offset, customer and the partition murmur2 gives it)."""

    partition: int
    count: int
    offset: int
    customer: str
    home: int

    def add(self, other: Misplaced) -> None:
        """Count ``other``'s records too; the later of the two last records stays."""
        self.count += other.count
        if other.offset >= self.offset:
            self.offset, self.customer, self.home = other.offset, other.customer, other.home


@dataclass(slots=True)
class Cleartext:
    """Records of one partition whose personal fields hold a value in clear (a publisher
    that does not encrypt, or a log written before encryption): how many, and the last."""

    partition: int
    count: int
    offset: int
    customer: str

    def add(self, other: Cleartext) -> None:
        self.count += other.count
        if other.offset >= self.offset:
            self.offset, self.customer = other.offset, other.customer


@dataclass
class ViewBatch:
    """Everything one batch changes, written in one transaction."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    contacts: Counter[ContactKey] = field(default_factory=Counter)
    applied_ids: dict[str, Seen] = field(default_factory=dict)
    """The ids this batch applied, with their content digest and position."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    """Per partition, the next offset to read once this batch is committed."""
    newest: dict[int, int] = field(default_factory=dict)
    """Per partition, the latest event time among the events of this batch (microseconds)."""
    rate: float = 0.0
    """Records per second while this batch was processed."""
    expected: dict[int, int | None] = field(default_factory=dict)
    generation: int | None = None
    """The store generation the batch's profiles were loaded in (see ``generation()``)."""
    bump_generation: bool = False
    resolved: list[tuple[int, int]] = field(default_factory=list)
    """Dead letters (partition, offset) that this batch applied at last."""
    misplaced: dict[int, Misplaced] = field(default_factory=dict)
    """Per partition, the records of this batch outside their key's murmur2 partition."""
    cleartext: dict[int, Cleartext] = field(default_factory=dict)
    """Per partition, the records of this batch with personal data in clear."""
    """Per partition, the stored position this batch was read from (``None``: no position
    yet). The commit fails if another projector moved it meanwhile."""


Guard = tuple[str, int | None, int | None]
"""``(tracking name, value this batch expects, new value or None to only check)``."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch turned into statements and rows, plus the guards its commit checks."""

    rows: list[tuple[str, list[tuple[Any, ...]]]]
    guards: list[Guard]
    staged: tuple[str, ...] = ()
    """Staging files (:func:`write_staged`) whose rows the commit adds too (SQLite only)."""


TABLES = (
    "profiles",
    "contact_slots",
    "applied_events",
    "dead_letters",
    "progress",
    "misplaced",
    "cleartext",
)

# Statements are written once, for both dialects: "?" placeholders and {table} names,
# which each recorder turns into its own form.
_PROFILE_CONFLICT = (
    " ON CONFLICT (customer) DO UPDATE "
    "SET state = excluded.state, last_purchase = excluded.last_purchase, "
    "oldest_open_complaint = excluded.oldest_open_complaint, purchases = excluded.purchases"
)
_CONTACTS_CONFLICT = (
    " ON CONFLICT (customer, slot, channel, direction, purpose) DO UPDATE "
    "SET n = {contact_slots}.n + excluded.n"
)
UPSERT_PROFILE = "INSERT INTO {profiles} VALUES (?, ?, ?, ?, ?)" + _PROFILE_CONFLICT
UPSERT_CONTACTS = "INSERT INTO {contact_slots} VALUES (?, ?, ?, ?, ?, ?)" + _CONTACTS_CONFLICT
INSERT_APPLIED = "INSERT INTO {applied_events} VALUES (?, ?, ?, ?)"

INSERT_DEAD_LETTER = (
    "INSERT INTO {dead_letters} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
DEAD_LETTER_COLUMNS = (
    "partition, offset, raw, reason, parked_at, record_key, headers, record_timestamp, "
    "first_partition, first_offset"
)

# The same, from a staging file attached as {staged} ("WHERE true" tells SQLite's parser
# that ON CONFLICT belongs to the INSERT). Staging rows were inserted sorted by the views'
# keys into plain rowid tables, so a scan gives them in key order (B-tree locality in the
# views) with no sort in the committing process and no B-tree upkeep in the workers.
STAGED_PROFILES = (
    "INSERT INTO {profiles} SELECT * FROM {staged}.profiles WHERE true" + _PROFILE_CONFLICT
)
STAGED_CONTACTS = (
    "INSERT INTO {contact_slots} SELECT * FROM {staged}.contact_slots WHERE true"
    + _CONTACTS_CONFLICT
)
STAGED_APPLIED = "INSERT INTO {applied_events} SELECT * FROM {staged}.applied_events"
STAGED_DEAD_LETTERS = (
    "INSERT INTO {dead_letters} SELECT * FROM {staged}.dead_letters WHERE true "
    "ON CONFLICT DO NOTHING"
)
STAGING_DDL = [
    "CREATE TABLE profiles (customer TEXT, state TEXT, last_purchase INTEGER, "
    "oldest_open_complaint INTEGER, purchases INTEGER)",
    "CREATE TABLE contact_slots (customer TEXT, channel TEXT, direction TEXT, purpose TEXT, "
    "slot INTEGER, n INTEGER)",
    "CREATE TABLE applied_events (event_id TEXT, digest INTEGER, partition INTEGER, "
    "offset INTEGER)",
    "CREATE TABLE dead_letters (partition INTEGER, offset INTEGER, raw BLOB, reason TEXT, "
    "parked_at INTEGER, record_key BLOB, headers TEXT, record_timestamp INTEGER, "
    "first_partition INTEGER, first_offset INTEGER)",
]
DELETE_DEAD_LETTER = "DELETE FROM {dead_letters} WHERE partition = ? AND offset = ?"
UPSERT_PROGRESS = (
    "INSERT INTO {progress} VALUES (?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "last_event_time = CASE WHEN excluded.last_event_time > {progress}.last_event_time "
    "THEN excluded.last_event_time ELSE {progress}.last_event_time END, "
    "committed_at = excluded.committed_at, rate = excluded.rate"
)

UPSERT_MISPLACED = (
    "INSERT INTO {misplaced} VALUES (?, ?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "n = {misplaced}.n + excluded.n, last_offset = excluded.last_offset, "
    "last_customer = excluded.last_customer, home = excluded.home"
)


UPSERT_CLEARTEXT = (
    "INSERT INTO {cleartext} VALUES (?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "n = {cleartext}.n + excluded.n, last_offset = excluded.last_offset, "
    "last_customer = excluded.last_customer"
)


def _contact_key_order(row: tuple[str, str, str, str, int, int]) -> tuple[str, int, str, str, str]:
    return row[0], row[4], row[1], row[2], row[3]


def _view_rows(batch: ViewBatch) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
    """The view rows of a batch, ``(table, upsert statement, rows)``: profiles, contact
    slots, applied ids, dead letters. Profiles and contact slots are sorted by the tables'
    keys: concurrent writers lock rows in the same order, and B-trees fill in order."""
    profiles = sorted(batch.profiles)
    contacts = [(c, ch, d, p, s, n) for (c, ch, d, p, s), n in batch.contacts.items()]
    contacts.sort(key=_contact_key_order)  # (customer, slot, channel, direction, purpose)
    return [
        ("profiles", UPSERT_PROFILE, [_profile_row(batch.profiles[c]) for c in profiles]),
        ("contact_slots", UPSERT_CONTACTS, contacts),
        (
            "applied_events",
            INSERT_APPLIED,
            [(i, *seen) for i, seen in batch.applied_ids.items()],
        ),
        (
            "dead_letters",
            INSERT_DEAD_LETTER,
            [
                (
                    d.partition,
                    d.offset,
                    d.raw,
                    d.reason,
                    to_micros(d.parked_at),
                    d.key,
                    encode_headers(d.headers),
                    None if d.timestamp is None else to_micros(d.timestamp),
                    None if d.first is None else d.first[0],
                    None if d.first is None else d.first[1],
                )
                for d in batch.dead_letters
            ],
        ),
    ]


def _batch_rows(batch: ViewBatch) -> list[tuple[str, list[tuple[Any, ...]]]]:
    now = to_micros(datetime.now(UTC))
    return [
        *((statement, rows) for _, statement, rows in _view_rows(batch)),
        (DELETE_DEAD_LETTER, sorted(batch.resolved)),
        (
            UPSERT_PROGRESS,
            [(p, t, now, batch.rate) for p, t in sorted(batch.newest.items())],
        ),
        (
            UPSERT_MISPLACED,
            [
                (p, m.count, m.offset, m.customer, m.home)
                for p, m in sorted(batch.misplaced.items())
            ],
        ),
        (
            UPSERT_CLEARTEXT,
            [(p, c.count, c.offset, c.customer) for p, c in sorted(batch.cleartext.items())],
        ),
    ]


def write_staged(path: Path, batch: ViewBatch) -> None:
    """Write a batch's view rows to a staging file, for a later :meth:`ViewStore.commit`
    that adds them to the views in its own transaction, with the positions.

    A projector's worker processes fold their shares of a batch and serialise its rows in
    parallel; the commit then merges them inside SQLite, without Python touching a row.
    The file is scratch (no journal, no fsync): an interrupted run just leaves it unused.
    """
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for statement in STAGING_DDL:
            connection.execute(statement)
        for table, _, rows in _view_rows(batch):
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.execute("COMMIT")
    finally:
        connection.close()


def view_indexes(tables: dict[str, str], suffix: str) -> list[tuple[str, str]]:
    """The secondary indexes of the views, ``(name, CREATE statement)``: lifecycle
    queries by last purchase, and reports over one time window for every customer."""
    return [
        (
            f"profiles{suffix}_last_purchase",
            f"CREATE INDEX IF NOT EXISTS profiles{suffix}_last_purchase "
            f"ON {tables['profiles']} (last_purchase)",
        ),
        (
            f"contact_slots{suffix}_slot",
            f"CREATE INDEX IF NOT EXISTS contact_slots{suffix}_slot "
            f"ON {tables['contact_slots']} (slot)",
        ),
    ]


def view_ddl(tables: dict[str, str], suffix: str, *, postgres: bool) -> list[str]:
    """The view tables of one dialect; ``suffix`` names a separate set (a rebuild)."""
    integer, blob, real = (
        ("BIGINT", "BYTEA", "DOUBLE PRECISION") if postgres else ("INTEGER", "BLOB", "REAL")
    )
    keyed = "" if postgres else " WITHOUT ROWID"
    offset = '"offset"' if postgres else "offset"
    t = tables
    return [
        f"CREATE TABLE IF NOT EXISTS {t['profiles']} (customer TEXT PRIMARY KEY, "
        f"state TEXT NOT NULL, last_purchase {integer}, oldest_open_complaint {integer}, "
        f"purchases {integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['contact_slots']} (customer TEXT NOT NULL, "
        "channel TEXT NOT NULL, direction TEXT NOT NULL, purpose TEXT NOT NULL, "
        f"slot {integer} NOT NULL, n {integer} NOT NULL, "
        f"PRIMARY KEY (customer, slot, channel, direction, purpose)){keyed}",
        *(create for _, create in view_indexes(tables, suffix)),
        f"CREATE TABLE IF NOT EXISTS {t['applied_events']} (event_id TEXT PRIMARY KEY, "
        f"digest {integer}, partition {integer}, {offset} {integer}){keyed}",
        f"CREATE TABLE IF NOT EXISTS {t['dead_letters']} (partition {integer} NOT NULL, "
        f"{offset} {integer} NOT NULL, raw {blob} NOT NULL, reason TEXT NOT NULL, "
        f"parked_at {integer} NOT NULL, record_key {blob}, headers TEXT, "
        f"record_timestamp {integer}, first_partition {integer}, first_offset {integer}, "
        f"PRIMARY KEY (partition, {offset})){keyed}",
        f"CREATE TABLE IF NOT EXISTS {t['progress']} (partition {integer} PRIMARY KEY, "
        f"last_event_time {integer} NOT NULL, committed_at {integer} NOT NULL, "
        f"rate {real} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['misplaced']} (partition {integer} PRIMARY KEY, "
        f"n {integer} NOT NULL, last_offset {integer} NOT NULL, last_customer TEXT NOT NULL, "
        f"home {integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['cleartext']} (partition {integer} PRIMARY KEY, "
        f"n {integer} NOT NULL, last_offset {integer} NOT NULL, last_customer TEXT NOT NULL)",
    ]


class SQLiteViewRecorder(SQLiteTrackingRecorder):
    """eventsourcing's SQLite tracking recorder plus the view tables."""

    def __init__(self, datastore: SQLiteDatastore, suffix: str = "") -> None:
        self.suffix = suffix
        self.tables = {t: f"{t}{suffix}" for t in TABLES}
        self.tracking_table = "tracking"
        self._snapshot = threading.local()
        super().__init__(datastore)

    def construct_create_table_statements(self) -> list[str]:
        return [
            *super().construct_create_table_statements(),
            *view_ddl(self.tables, self.suffix, postgres=False),
        ]

    def sql(self, statement: str) -> str:
        return statement.format(**self.tables)

    def run(self, statements: Sequence[tuple[str, Sequence[Any]]]) -> None:
        """Execute raw statements in one committed transaction, holding SQLite's write
        lock from the start (BEGIN IMMEDIATE): a deferred transaction that reads before it
        writes cannot be upgraded once another connection has committed, and fails."""
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            cursor.execute("BEGIN IMMEDIATE")
            try:
                for statement, params in statements:
                    cursor.execute(statement, params)
            except BaseException:
                connection.rollback()
                raise
            connection.commit()

    def commit(self, batch: PreparedBatch) -> None:
        if batch.staged:
            self._commit_staged(batch)
            return
        with self.datastore.transaction(commit=True) as cursor:
            self._write(cursor, batch)

    def _write(self, cursor: Any, batch: PreparedBatch) -> None:
        for statement, rows in batch.rows:
            if rows:
                cursor.executemany(self.sql(statement), rows)
        # The writes above hold SQLite's write lock, so these reads cannot race.
        for name, expected, new in batch.guards:
            cursor.execute(self.select_max_tracking_id_statement, (name,))
            _check_guard(name, expected, cursor.fetchone()[0])
            if new is not None:
                self._insert_tracking(cursor, Tracking(name, new))

    def _commit_staged(self, batch: PreparedBatch) -> None:
        """Commit a batch whose view rows wait in staging files: attach them, and copy
        their rows into the views inside the transaction that writes the positions."""
        names = [f"staged{index}" for index in range(len(batch.staged))]
        with self.datastore.get_connection(commit=True) as connection:
            cursor = connection.cursor()
            for name, path in zip(names, batch.staged, strict=True):
                cursor.execute(f"ATTACH DATABASE ? AS {name}", (path,))  # not in a transaction
            try:
                cursor.execute("BEGIN IMMEDIATE")
                try:
                    for name in names:
                        for statement in (STAGED_PROFILES, STAGED_CONTACTS, STAGED_DEAD_LETTERS):
                            cursor.execute(statement.format(**self.tables, staged=name))
                        try:
                            cursor.execute(STAGED_APPLIED.format(**self.tables, staged=name))
                        except sqlite3.IntegrityError as exc:
                            raise SharedEventId(
                                "two shards of this batch applied events with the same id"
                            ) from exc
                    self._write(cursor, batch)
                except BaseException:
                    connection.rollback()
                    raise
                connection.commit()
            finally:
                for name in names:
                    cursor.execute(f"DETACH DATABASE {name}")

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        held = getattr(self._snapshot, "cursor", None)
        if held is not None:
            held.execute(self.sql(statement), params)
            return [tuple(row) for row in held.fetchall()]
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.sql(statement), params)
            return [tuple(row) for row in cursor.fetchall()]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Selects inside see one state of the database (one read transaction: in WAL mode
        its first read fixes what it sees)."""
        with self.datastore.transaction(commit=False) as cursor:
            self._snapshot.cursor = cursor
            try:
                yield
            finally:
                self._snapshot.cursor = None


class PostgresViewRecorder(PostgresTrackingRecorder):
    """eventsourcing's PostgreSQL tracking recorder plus the view tables, in its schema."""

    def __init__(self, datastore: PostgresDatastore, suffix: str = "") -> None:
        super().__init__(datastore)
        self._snapshot = threading.local()
        self.schema = datastore.schema or "public"
        self.suffix = suffix
        self.tables = {t: f'"{self.schema}".{t}{suffix}' for t in TABLES}
        self.tracking_table = f'"{self.schema}".{self.tracking_table_name}'
        for statement in view_ddl(self.tables, suffix, postgres=True):
            self.sql_create_statements.append(SQL(statement))  # type: ignore[arg-type]

    def sql(self, statement: str) -> str:
        return statement.format(**self.tables).replace("?", "%s").replace(" offset", ' "offset"')

    def run(self, statements: Sequence[tuple[str, Sequence[Any]]], lock: str = "") -> None:
        """Execute raw statements in one committed transaction, after taking the advisory
        lock ``lock`` (every batch commit takes the generation's)."""
        with self.datastore.transaction(commit=True) as cursor:
            if lock:
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (lock,))
            for statement, params in statements:
                cursor.execute(statement.replace("?", "%s"), params)

    def commit(self, batch: PreparedBatch) -> None:
        if batch.staged:
            raise NotImplementedError("staging files are merged by the SQLite store only")
        guards = batch.guards
        with self.datastore.transaction(commit=True) as cursor:
            for name, expected, _ in guards:  # sorted by name: no lock cycles
                # A transaction-scoped lock per guard serialises projectors committing the
                # same partition (or generation), even before its tracking row exists.
                cursor.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (name,))
                cursor.execute(
                    SQL("SELECT notification_id FROM {0}.{1} WHERE application_name = %s").format(
                        Identifier(self.schema), Identifier(self.tracking_table_name)
                    ),
                    (name,),
                )
                row = cursor.fetchone()
                _check_guard(name, expected, row["notification_id"] if row else None)
            for statement, rows in batch.rows:
                if rows:
                    cursor.executemany(self.sql(statement), rows)
            for name, _, new in guards:
                if new is not None:
                    self._insert_tracking(cursor, Tracking(name, new))

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        held = getattr(self._snapshot, "cursor", None)
        if held is not None:
            held.execute(self.sql(statement), params)
            return [tuple(row.values()) for row in held.fetchall()]
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(self.sql(statement), params)
            return [tuple(row.values()) for row in cursor.fetchall()]

    @contextlib.contextmanager
    def snapshot(self) -> Iterator[None]:
        """Selects inside see one state of the database (one REPEATABLE READ transaction)."""
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
            self._snapshot.cursor = cursor
            try:
                yield
            finally:
                self._snapshot.cursor = None


ViewRecorder = SQLiteViewRecorder | PostgresViewRecorder


def _check_guard(name: str, expected: int | None, stored: int | None) -> None:
    if stored != expected:
        raise IntegrityError(
            f"{name} is at {stored}, not {expected}: another projector committed in between"
        )


def _profile_row(profile: Profile) -> tuple[str, str, int | None, int | None, int]:
    state = profile.state
    return (
        state["customer"],
        # Sorted keys: the same profile gives the same bytes whatever order its events
        # arrived in (a late or retried event changes dict insertion order, not content).
        profile.to_json().decode(),
        state["last_purchase"],
        profile.oldest_open_complaint() if state["complaints"] else None,
        state["purchases"],
    )


def _create_tables(recorder: ViewRecorder, attempts: int = 20) -> None:
    """Create the view tables (if absent), despite projectors committing meanwhile.

    eventsourcing's tracking recorder reads its migration state and then creates tables in
    one deferred transaction. In SQLite's WAL mode that upgrade from reader to writer fails
    at once ("database is locked", no busy wait) if another connection committed in
    between, which a projector running on the same store does every batch: the documented
    remedy is to run the transaction again. Another projector creating the tables at the
    same moment shows as an ``IntegrityError`` on eventsourcing's migration row; the
    tables then exist, and the next attempt finds them.
    """
    for attempt in range(attempts):
        try:
            recorder.create_table()
        except IntegrityError:
            if attempt + 1 == attempts:
                raise
        except (PersistenceError, sqlite3.OperationalError) as exc:
            if "locked" not in str(exc) or attempt + 1 == attempts:
                raise
            time.sleep(0.01 * (attempt + 1))
        else:
            return


ADDED_COLUMNS = {
    "applied_events": ["digest", "partition", "offset"],
    "dead_letters": [
        "record_key",
        "headers",
        "record_timestamp",
        "first_partition",
        "first_offset",
    ],
}
"""Columns added to tables that views made by earlier versions already have."""


def _add_columns(recorder: ViewRecorder) -> None:
    """Add :data:`ADDED_COLUMNS` to a store made before them (nullable: ids applied before
    keep no digest, and a later copy of such an id counts as a plain duplicate)."""
    postgres = isinstance(recorder, PostgresViewRecorder)
    for table, columns in ADDED_COLUMNS.items():
        try:
            recorder.select(f"SELECT {', '.join(columns)} FROM {{{table}}} WHERE 1 = 0")
            continue
        except (PersistenceError, sqlite3.Error, psycopg.Error):
            pass
        types = {"record_key": "BYTEA" if postgres else "BLOB", "headers": "TEXT"}
        for column in columns:
            name = '"offset"' if postgres and column == "offset" else column
            kind = types.get(column, "BIGINT" if postgres else "INTEGER")
            exists = " IF NOT EXISTS" if postgres else ""
            statement = f"ALTER TABLE {recorder.tables[table]} ADD COLUMN{exists} {name} {kind}"
            try:
                recorder.run([(statement, ())])
            except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
                if "duplicate column" not in str(exc):  # SQLite: another opener added it
                    raise


Select = Callable[[str, Sequence[Any]], list[tuple[Any, ...]]]


def _applied(select: Select, event_ids: Sequence[str]) -> set[str]:
    return set(_seen(select, event_ids))


def _seen(select: Select, event_ids: Sequence[str]) -> dict[str, Seen]:
    seen: dict[str, Seen] = {}
    for start in range(0, len(event_ids), 500):
        chunk = event_ids[start : start + 500]
        rows = select(
            "SELECT event_id, digest, partition, offset FROM {applied_events} WHERE event_id IN "
            f"({','.join('?' * len(chunk))})",
            chunk,
        )
        for event_id, digest, partition, offset in rows:
            seen[event_id] = Seen(digest, partition, offset)
    return seen


def _load_profiles(select: Select, customers: Sequence[str]) -> dict[str, Profile]:
    profiles: dict[str, Profile] = {}
    for start in range(0, len(customers), 500):
        chunk = customers[start : start + 500]
        rows = select(
            f"SELECT state FROM {{profiles}} WHERE customer IN ({','.join('?' * len(chunk))})",
            chunk,
        )
        for (state,) in rows:
            profile = Profile.from_json(state)
            profiles[profile.customer] = profile
    return profiles


@dataclass(frozen=True, slots=True)
class Staging:
    """Where a projector's worker processes read a SQLite view store (profiles, applied
    ids) and leave their staging files: the store's file and table suffix."""

    path: Path
    suffix: str

    def new_directory(self) -> Path:
        """A fresh directory for one run's staging files, beside the store (same disk)."""
        prefix = f".{self.path.name}.staging-{os.getpid()}-"
        return Path(tempfile.mkdtemp(prefix=prefix, dir=self.path.parent))

    def remove_stale(self) -> None:
        """Remove the staging directories of runs that were killed before cleaning up."""
        for leftover in self.path.parent.glob(f".{self.path.name}.staging-*"):
            pid = leftover.name.rsplit("-", 2)[-2]
            if pid.isdigit() and not _alive(int(pid)):
                shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class ViewReader:
    """Read-only access to a SQLite view store's profiles and applied ids, from another
    process (a projector's worker: see consumers.shards)."""

    def __init__(self, staging: Staging) -> None:
        self.tables = {t: f"{t}{staging.suffix}" for t in TABLES}
        try:
            self.connection = sqlite3.connect(f"file:{staging.path}?mode=ro", uri=True)
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the view store {staging.path}: {exc}") from exc

    def select(self, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self.connection.execute(statement.format(**self.tables), params).fetchall()
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot read the view store: {exc}") from exc

    def applied(self, event_ids: Sequence[str]) -> set[str]:
        return _applied(self.select, event_ids)

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        return _seen(self.select, event_ids)

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        return _load_profiles(self.select, customers)

    def close(self) -> None:
        self.connection.close()


class ViewStore:
    """The read models of one log, in SQLite or PostgreSQL (same queries, same results)."""

    staging: Staging | None = None
    """Set for a SQLite store: parallel projectors may stage their rows (see
    :func:`write_staged`)."""

    def __init__(
        self, recorder: ViewRecorder, source: str, where: str, prefix: str = VIEWS
    ) -> None:
        self.recorder = recorder
        self.prefix = prefix
        self.source = source
        """Which log the positions belong to (``embedded`` or the Kafka topic)."""
        self.where = where
        try:
            _create_tables(recorder)
            _add_columns(recorder)
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the view store {where}: {exc}") from exc

    def tracking_name(self, partition: int) -> str:
        return f"{self.prefix}|{self.source}:{partition}"

    def positions(self, partitions: Iterable[int]) -> dict[int, int]:
        """Per partition, the next offset to read (absent: from the start)."""
        found = {}
        for partition in partitions:
            position = self.recorder.max_tracking_id(self.tracking_name(partition))
            if position is not None:
                found[partition] = position
        return found

    def snapshot(
        self, partitions: Iterable[int], customers: Sequence[str], window: Window
    ) -> tuple[dict[int, int], dict[str, Profile], dict[str, list[tuple[int, str, str, str, int]]]]:
        """Positions, profiles and contact slots (as :meth:`positions`,
        :meth:`load_profiles`, :meth:`contact_slots`) read in one transaction, so the rows
        are exactly those of the positions (what a fresh decision folds the log onto)."""
        names = {self.tracking_name(p): p for p in partitions}
        with self.recorder.snapshot():
            rows = self.recorder.select(
                "SELECT application_name, MAX(notification_id) FROM "
                f"{self.recorder.tracking_table} WHERE application_name IN "
                f"({','.join('?' * len(names))}) GROUP BY application_name",
                list(names),
            )
            positions = {names[name]: int(n) for name, n in rows if n is not None}
            return positions, self.load_profiles(customers), self.contact_slots(customers, window)

    def applied(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the views already hold."""
        return _applied(self.recorder.select, event_ids)

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        """The applied ones of these events: content digest and position of each."""
        return _seen(self.recorder.select, event_ids)

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        return _load_profiles(self.recorder.select, customers)

    def _identity_prefix(self) -> str:
        return f"{self.prefix}|{self.source}:log="

    def log_identity(self) -> str | None:
        """The identity of the log these views were built from (see
        :meth:`ledger.log.EventLog.identity`), if recorded."""
        prefix = self._identity_prefix()
        rows = self.recorder.select(
            f"SELECT application_name FROM {self.recorder.tracking_table} WHERE {_PREFIXED}",
            _prefix(prefix),
        )
        return str(rows[0][0])[len(prefix) :] if rows else None

    def record_log_identity(self, identity: str) -> None:
        """Record which log the views are built from (kept by rebuilds, dropped by reset)."""
        table, prefix = self.recorder.tracking_table, self._identity_prefix()
        try:
            self.recorder.run(  # two projectors may record it at once: the same name
                [
                    (
                        f"INSERT INTO {table} VALUES (?, 0) ON CONFLICT DO NOTHING",
                        (prefix + identity,),
                    )
                ]
            )
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot write the view store {self.where}: {exc}") from exc

    def generation_name(self) -> str:
        return f"{self.prefix}|{self.source}:generation"

    def generation(self) -> int | None:
        """Bumped by every change made outside the normal flow (retry); projectors holding
        profiles from an older generation must reload them."""
        return self.recorder.max_tracking_id(self.generation_name())

    def prepare(self, batch: ViewBatch, staged: Sequence[Path] = ()) -> PreparedBatch:
        """The rows and guards of a batch: CPU work only (profiles serialised now, so the
        batch's profiles may change afterwards), for :meth:`write`."""
        guards: list[Guard] = [
            (self.tracking_name(p), batch.expected.get(p), offset)
            for p, offset in batch.positions.items()
        ]
        bumped = (batch.generation or 0) + 1 if batch.bump_generation else None
        guards.append((self.generation_name(), batch.generation, bumped))
        return PreparedBatch(_batch_rows(batch), sorted(guards), tuple(map(str, staged)))

    def commit(self, batch: ViewBatch, staged: Sequence[Path] = ()) -> None:
        """Write a batch in one transaction (see :meth:`write`), with the view rows of
        ``staged`` files (:func:`write_staged`) besides its own."""
        self.write(self.prepare(batch, staged))

    def write(self, prepared: PreparedBatch) -> None:
        """Write a prepared batch in one transaction, if its guards hold: raises
        ``BatchConflict`` (and writes nothing) when another projector moved a position or
        the generation first. Mostly I/O and SQL, with the GIL released."""
        try:
            self.recorder.commit(prepared)
        except IntegrityError as exc:
            raise BatchConflict(f"another projector got there first: {exc}") from exc
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot write the view store {self.where}: {exc}") from exc

    # -- queries ----------------------------------------------------------------------

    def profile(self, customer: str) -> Profile | None:
        found = self.load_profiles([customer])
        return found.get(customer)

    def iter_profiles(self) -> Iterator[Profile]:
        """Every profile, in customer order (pages of 1,000)."""
        last = ""
        while rows := self.recorder.select(
            "SELECT customer, state FROM {profiles} WHERE customer > ? "
            "ORDER BY customer LIMIT 1000",
            (last,),
        ):
            for _, state in rows:
                yield Profile.from_json(state)
            last = rows[-1][0]

    def contacts(self, customer: str, window: Window) -> dict[tuple[str, str, str], int]:
        """Contacts of one customer in ``window``, per (channel, direction, purpose)."""
        rows = self.recorder.select(
            "SELECT channel, direction, purpose, SUM(n) FROM {contact_slots} WHERE customer = ? "
            "AND slot >= ? AND slot < ? GROUP BY channel, direction, purpose",
            (customer, window.start, window.end),
        )
        return {(ch, d, p): n for ch, d, p, n in rows}

    def contact_slots(
        self, customers: Sequence[str], window: Window
    ) -> dict[str, list[tuple[int, str, str, str, int]]]:
        """Customers' contact slots in ``window``: per customer, ``(slot, channel,
        direction, purpose, n)`` in slot order (what contact-policy decisions read)."""
        found: dict[str, list[tuple[int, str, str, str, int]]] = {c: [] for c in customers}
        unique = sorted(found)
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self.recorder.select(
                "SELECT customer, slot, channel, direction, purpose, n FROM {contact_slots} "
                f"WHERE customer IN ({','.join('?' * len(chunk))}) AND slot >= ? AND slot < ? "
                "ORDER BY customer, slot",
                (*chunk, window.start, window.end),
            )
            for customer, slot, channel, direction, purpose, n in rows:
                found[customer].append((int(slot), channel, direction, purpose, int(n)))
        return found

    def outbound_per_customer(
        self, window: Window, *, purpose: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Outbound contacts in ``window`` per channel, per customer (of ``purpose``)."""
        clauses, params = (
            ["slot >= ?", "slot < ?", "direction = 'outbound'"],
            [
                window.start,
                window.end,
            ],
        )
        if purpose is not None:
            clauses.append("purpose = ?")
            params.append(purpose)  # type: ignore[arg-type]
        rows = self.recorder.select(
            "SELECT channel, customer, SUM(n) FROM {contact_slots} "
            f"WHERE {' AND '.join(clauses)} GROUP BY channel, customer",
            params,
        )
        found: dict[str, dict[str, int]] = {}
        for channel, customer, n in rows:
            found.setdefault(channel, {})[customer] = int(n)
        return found

    def outbound_slots(
        self, window: Window, purposes: Iterable[str]
    ) -> list[tuple[str, int, str, str, int]]:
        """Outbound contact slots in ``window`` of these purposes: ``(customer, slot,
        channel, purpose, n)``."""
        wanted = sorted(set(purposes))
        if not wanted:
            return []
        rows = self.recorder.select(
            "SELECT customer, slot, channel, purpose, n FROM {contact_slots} "
            "WHERE slot >= ? AND slot < ? AND direction = 'outbound' "
            f"AND purpose IN ({','.join('?' * len(wanted))})",
            (window.start, window.end, *wanted),
        )
        return [(c, int(slot), ch, p, int(n)) for c, slot, ch, p, n in rows]

    def most_contacted(
        self,
        window: Window,
        *,
        channel: str | None = None,
        direction: str | None = None,
        purpose: str | None = None,
        limit: int = 20,
    ) -> list[tuple[str, int]]:
        """The customers contacted most in ``window``: the harassment report."""
        clauses, params = ["slot >= ?", "slot < ?"], [window.start, window.end]
        for column, value in (("channel", channel), ("direction", direction), ("purpose", purpose)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)  # type: ignore[arg-type]
        rows = self.recorder.select(
            "SELECT customer, SUM(n) AS total FROM {contact_slots} "
            f"WHERE {' AND '.join(clauses)} "
            "GROUP BY customer ORDER BY total DESC, customer LIMIT ?",
            (*params, limit),
        )
        return [(customer, total) for customer, total in rows]

    def customers(
        self,
        now: datetime,
        *,
        status: str | None = None,
        at_risk: bool = False,
        active_days: int = 90,
        lapsed_days: int = 365,
        risk_after: timedelta = timedelta(days=7),
        limit: int | None = None,
    ) -> list[str]:
        """Customers by lifecycle status and/or with a complaint open longer than ``risk_after``."""
        active = to_micros(now - timedelta(days=active_days))
        lapsed = to_micros(now - timedelta(days=lapsed_days))
        clauses: list[str] = []
        params: list[int] = []
        if status == "prospect":
            clauses.append("last_purchase IS NULL")
        elif status == "active":
            clauses.append("last_purchase >= ?")
            params.append(active)
        elif status == "passive":
            clauses.append("last_purchase < ? AND last_purchase >= ?")
            params += [active, lapsed]
        elif status == "lapsed":
            clauses.append("last_purchase < ?")
            params.append(lapsed)
        if at_risk:
            clauses.append("oldest_open_complaint < ?")
            params.append(to_micros(now - risk_after))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        suffix = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.recorder.select(
            f"SELECT customer FROM {{profiles}} {where} ORDER BY customer{suffix}", params
        )
        return [row[0] for row in rows]

    def progress(self) -> dict[int, tuple[datetime, datetime, float]]:
        """Per partition: newest applied event time, last commit time, records/s then."""
        rows = self.recorder.select(
            "SELECT partition, last_event_time, committed_at, rate FROM {progress}"
        )
        return {p: (from_micros(t), from_micros(c), float(r)) for p, t, c, r in rows}

    def misplaced(self) -> dict[int, Misplaced]:
        """Per partition, the applied records that sit outside their key's murmur2
        partition (a producer with another partitioner: see docs/kafka.md)."""
        rows = self.recorder.select(
            "SELECT partition, n, last_offset, last_customer, home FROM {misplaced} "
            "ORDER BY partition"
        )
        return {int(p): Misplaced(int(p), int(n), int(o), str(c), int(h)) for p, n, o, c, h in rows}

    def cleartext(self) -> dict[int, Cleartext]:
        """Per partition, the applied records holding personal data in clear (see
        docs/privacy.md: publishers that do not encrypt)."""
        rows = self.recorder.select(
            "SELECT partition, n, last_offset, last_customer FROM {cleartext} ORDER BY partition"
        )
        return {int(p): Cleartext(int(p), int(n), int(o), str(c)) for p, n, o, c in rows}

    def last_error(self) -> DeadLetter | None:
        """The record parked most recently, if any."""
        letters = self.dead_letters()
        return max(letters, key=lambda d: d.parked_at) if letters else None

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.recorder.select(
            f"SELECT {DEAD_LETTER_COLUMNS} FROM {{dead_letters}} ORDER BY partition, offset"
        )
        return [
            DeadLetter(
                p,
                o,
                as_bytes(raw),
                reason,
                from_micros(at),
                None if key is None else as_bytes(key),
                decode_headers(headers),
                None if stamp is None else from_micros(stamp),
                None if first_p is None else (int(first_p), int(first_o)),
            )
            for p, o, raw, reason, at, key, headers, stamp, first_p, first_o in rows
        ]

    def counts(self) -> dict[str, int]:
        """Rows per table, for status reports and tests."""
        return {
            table: self.recorder.select(f"SELECT COUNT(*) FROM {{{table}}}")[0][0]
            for table in TABLES
        }

    # -- rebuild ----------------------------------------------------------------------

    def rebuild_store(self) -> ViewStore:
        """Fresh, empty view tables beside the live ones, for a rebuild from position 0.
        Leftovers of an interrupted rebuild are dropped first."""
        recorder = type(self.recorder)(self.recorder.datastore, REBUILD_SUFFIX)  # type: ignore[arg-type]
        try:
            recorder.run(
                [(f"DROP TABLE IF EXISTS {name}", ()) for name in recorder.tables.values()]
                + [
                    (
                        f"DELETE FROM {recorder.tracking_table} WHERE {_PREFIXED}",
                        _prefix(f"{REBUILD_PREFIX}|{self.source}:"),
                    )
                ]
            )
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot prepare the rebuild tables: {exc}") from exc
        fresh = ViewStore(recorder, self.source, f"{self.where} (rebuild)", prefix=REBUILD_PREFIX)
        if self.staging is not None:
            fresh.staging = Staging(self.staging.path, REBUILD_SUFFIX)
        return fresh

    def swap_in(self, rebuild: ViewStore) -> None:
        """Make the rebuilt views the live ones, in one transaction: readers see the old
        views or the new, never a mix. Positions become the rebuild's (even if lower: a
        running projector then conflicts, resumes from them and reloads), and the
        generation moves on."""
        live, new = self.recorder.tables, rebuild.recorder.tables
        tracking = self.recorder.tracking_table
        generation = (self.generation() or 0) + 1
        statements: list[tuple[str, Sequence[Any]]] = []
        if isinstance(self.recorder, SQLiteViewRecorder):
            # SQLite's DDL is transactional: rename the rebuilt tables in (no copy), and
            # give their indexes the live names (built in one pass if the load deferred them).
            for table in TABLES:
                statements += [
                    (f"DROP TABLE {live[table]}", ()),
                    (f"ALTER TABLE {new[table]} RENAME TO {live[table]}", ()),
                ]
            statements += [(f"DROP INDEX IF EXISTS {name}", ()) for name, _ in rebuild.indexes()]
            statements += [(create, ()) for _, create in self.indexes()]
        else:
            for table in TABLES:
                statements += [
                    (f"DELETE FROM {live[table]}", ()),
                    (f"INSERT INTO {live[table]} SELECT * FROM {new[table]}", ()),
                    (f"DROP TABLE {new[table]}", ()),
                ]
        live_names, new_names = f"{self.prefix}|{self.source}:", f"{rebuild.prefix}|{self.source}:"
        statements += [
            (f"DELETE FROM {tracking} WHERE {_PREFIXED}", _prefix(live_names)),
            (
                f"INSERT INTO {tracking} SELECT REPLACE(application_name, ?, ?), notification_id "
                f"FROM {tracking} WHERE {_PREFIXED} AND application_name <> ?",
                (new_names, live_names, *_prefix(new_names), rebuild.generation_name()),
            ),
            (f"DELETE FROM {tracking} WHERE {_PREFIXED}", _prefix(new_names)),
            (f"INSERT INTO {tracking} VALUES (?, ?)", (self.generation_name(), generation)),
        ]
        try:
            if isinstance(self.recorder, PostgresViewRecorder):
                self.recorder.run(statements, lock=self.generation_name())
            else:
                self.recorder.run(statements)
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot swap the rebuilt views in: {exc}") from exc

    def reset(self) -> None:
        """Drop every view row, dead letter and position, in one transaction (empty views
        swapped in): the next projector run starts from the beginning of the log. A
        projector running meanwhile conflicts once and starts over from there."""
        self.swap_in(self.rebuild_store())

    def indexes(self) -> list[tuple[str, str]]:
        return view_indexes(self.recorder.tables, self.recorder.suffix)

    def defer_indexes(self) -> bool:
        """Before a bulk load into empty views (a first catch-up, a rebuild): drop the
        secondary indexes, which cost more to keep up row by row than to build in one
        pass afterwards (:meth:`restore_indexes`; a rebuild's are built by the swap).
        Queries stay correct meanwhile, only slower; if the load is interrupted, opening
        the store builds them again. SQLite only; returns whether it dropped any."""
        if not isinstance(self.recorder, SQLiteViewRecorder):
            return False
        if self.recorder.select("SELECT 1 FROM {profiles} LIMIT 1"):
            return False
        names = [name for name, _ in self.indexes()]
        marks = ",".join("?" * len(names))
        query = f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({marks})"
        if not self.recorder.select(query, names):
            return False
        try:
            self.recorder.run([(f"DROP INDEX IF EXISTS {name}", ()) for name in names])
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot prepare {self.where} for a bulk load: {exc}") from exc
        return True

    def restore_indexes(self) -> None:
        """Build the secondary indexes :meth:`defer_indexes` dropped."""
        try:
            self.recorder.run([(create, ()) for _, create in self.indexes()])
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot index {self.where}: {exc}") from exc

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every view row, sorted: for comparing stores and runs in tests and checks."""
        return {
            "profiles": self.recorder.select("SELECT * FROM {profiles} ORDER BY customer"),
            "contact_slots": self.recorder.select(
                "SELECT * FROM {contact_slots} ORDER BY customer, slot, channel, direction, purpose"
            ),
        }

    def close(self) -> None:
        self.recorder.datastore.close()


class SQLiteViewStore(ViewStore):
    """The read models in a SQLite file (default: ``views.db`` beside the log)."""

    def __init__(self, path: Path, source: str, *, cache_mib: int = 64) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            datastore = LedgerDatastore(
                str(path), lock_timeout=30, cache_mib=cache_mib, durable=False
            )
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the view store {path}: {exc}") from exc
        super().__init__(SQLiteViewRecorder(datastore), source, str(path))
        self.staging = Staging(path, "")
        self.staging.remove_stale()


class PostgresViewStore(ViewStore):
    """The read models in PostgreSQL, in one schema (``?schema=`` in the URL)."""

    def __init__(self, url: str, source: str) -> None:
        parts = urlsplit(url)
        schema = dict(parse_qsl(parts.query)).get("schema", "public")
        try:
            datastore = PostgresDatastore(
                dbname=parts.path.lstrip("/") or "postgres",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                schema=schema,
                originator_id_type="text",
                pool_size=2,
                connect_timeout=5,
            )
            if schema != "public":
                # IF NOT EXISTS is not safe against a concurrent creator in PostgreSQL:
                # losing that race means the schema exists, which is all we need.
                with (
                    contextlib.suppress(IntegrityError),
                    datastore.transaction(commit=True) as cursor,
                ):
                    cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except (PersistenceError, psycopg.Error) as exc:
            reason = redact(str(exc))
            if parts.password:  # in case a driver's message quotes it
                reason = reason.replace(parts.password, MASK).replace(unquote(parts.password), MASK)
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {parts.hostname}: {reason}"
            ) from exc
        super().__init__(PostgresViewRecorder(datastore), source, f"postgresql://{parts.hostname}")
