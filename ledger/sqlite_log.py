"""The embedded log: touchpoints in a SQLite file, through eventsourcing's recorder.

Each event is stored as an eventsourcing row with the event id as originator id and
version 1. A UNIQUE index on the event id alone (not eventsourcing's id + version, which an
edited version column would sidestep) makes the database itself refuse a second event
with the same id; logs created before it get the index when they are opened. The
row's position (an ``INTEGER PRIMARY KEY AUTOINCREMENT``, eventsourcing's
notification id) is stable across VACUUM and never reused, which the audit seals
rely on. eventsourcing 9.5 does not implement ``subscribe()`` for SQLite, so
:meth:`SQLiteLog.follow` polls.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from eventsourcing.persistence import InterfaceError, OperationalError, PersistenceError
from eventsourcing.sqlite import (
    SQLiteApplicationRecorder,
    SQLiteConnection,
    SQLiteConnectionPool,
    SQLiteDatastore,
)

from ledger.codec import event_from_stored, event_to_json
from ledger.errors import InvalidEvent, LogCorrupted, LogUnavailable
from ledger.events import IDENTITY_TYPES, Touchpoint
from ledger.log import (
    EARLIEST_MICROS,
    EVERYTHING,
    LATEST_MICROS,
    Appended,
    AppendOutcome,
    CustomerTail,
    Duplicate,
    EventLog,
    LogRecord,
    Position,
    Positions,
    RawRecord,
    ReadFilter,
    StoredEvent,
    as_bytes,
    row_damage,
)
from ledger.sqlite_wal import use_wal
from ledger.stopping import Stop
from ledger.timeutil import EPOCH, from_micros, to_micros, utc_now

TABLE = "touchpoints"
SEALED_COLUMNS = (
    "subject",
    "originator_id",
    "originator_version",
    "topic",
    "event_time",
    "recorded_at",
    "state",
)
"""Every column of the table but ``position`` (which the seal chain covers), in the order
the seal's record layout 2 takes them."""
RECORD_TAG_2 = b"TPL-RECORD-2"
_USUAL = ("text", "text", "integer", "text", "integer", "integer", "blob")
USUAL_TYPES = " ".join(_USUAL).encode()
"""The types of :data:`SEALED_COLUMNS` as the ledger writes them."""
PARTITION = 0
IDENTITY_TOPICS = (
    "topic IN ("
    + ", ".join(f"'{name}'" for name in sorted(IDENTITY_TYPES))  # fixed names, no input
    + ")"
)
"""The identity events' types as SQL, written identically in the partial index and in the
query (SQLite uses a partial index only for a query that states its condition)."""
READ_PAGE = 2000

USUAL_ROW = (
    "(typeof(originator_id) = 'text' AND typeof(topic) = 'text' AND "
    "typeof(subject) = 'text' AND typeof(event_time) = 'integer' AND "
    "typeof(state) = 'blob' AND typeof(recorded_at) = 'integer' AND "
    f"event_time BETWEEN {EARLIEST_MICROS} AND {LATEST_MICROS} AND "
    f"recorded_at BETWEEN {EARLIEST_MICROS} AND {LATEST_MICROS})"
)
"""SQL: whether a row's columns hold what the ledger writes (their types, times a date can
hold); a row where it is false is damaged and parked with the reason
``StoredEvent.damage`` gives."""
WAL_CHECKPOINT_PAGES = 10_000


# A customer's shard, computed by SQLite itself from the last three characters of the
# customer id (so a reader skips other shards' rows without handing them to Python).
# Any value, even an edited column of another type, falls in exactly one shard.
_SHARD_OF_SUBJECT = (
    "(ifnull(unicode(substr(CAST(subject AS TEXT), -1)), 0)"
    " + 31 * ifnull(unicode(substr(CAST(subject AS TEXT), -2, 1)), 0)"
    " + 961 * ifnull(unicode(substr(CAST(subject AS TEXT), -3, 1)), 0)) % ?"
)


@dataclass(frozen=True, slots=True)
class Span:
    """Which rows a reader takes: positions before ``end`` (``None``: to the end of the
    log), of customers in shard ``shard`` of ``shards`` (one shard: every customer).

    Shards split the log by customer, and so each customer's events, between parallel
    readers (see :mod:`consumers.shards`)."""

    end: int | None = None
    shard: int = 0
    shards: int = 1

    def clauses(self) -> tuple[str, tuple[int, ...]]:
        """SQL to append to a ``WHERE`` clause, and its parameters."""
        sql = ""
        params: tuple[int, ...] = ()
        if self.end is not None:
            sql, params = " AND rowid < ?", (self.end,)
        if self.shards > 1:
            sql += f" AND {_SHARD_OF_SUBJECT} = ?"
            params += (self.shards, self.shard)
        return sql, params


EVERY_ROW = Span()


@dataclass(frozen=True, slots=True)
class EncodedBatch:
    """A batch ready for one INSERT: its first occurrences as a JSON array of rows
    ``[id, type, canonical JSON, customer, event time in µs]``, and where repeats point.
    """

    first: list[int]
    """For each event of the batch, the index of the first event with its id."""
    distinct: list[int]
    """Indexes of the first occurrences, in batch order: the rows of ``rows_json``."""
    rows_json: str
    ids: list[str]


def encode_batch(events: Sequence[Touchpoint]) -> EncodedBatch:
    """Encode events as stored rows (canonical bytes), deduplicating the batch itself."""
    first_index: dict[str, int] = {}
    first = [first_index.setdefault(event.id, index) for index, event in enumerate(events)]
    distinct = list(first_index.values())
    # The canonical bytes go in as a JSON fragment, not a string: no decoding and no
    # re-escaping; SQLite hands the object's text back unchanged (a test holds it to that).
    rows = [
        (
            events[i].id,
            events[i].type,
            orjson.Fragment(event_to_json(events[i])),
            events[i].subject,
            to_micros(events[i].time),
        )
        for i in distinct
    ]
    return EncodedBatch(first, distinct, orjson.dumps(rows).decode(), [e.id for e in events])


STATEMENT_CACHE = 128
"""Prepared statements kept per connection (Python's default; eventsourcing sets one)."""


class LedgerConnectionPool(SQLiteConnectionPool):
    """eventsourcing's pool, with a page cache and WAL checkpoints sized for a log.

    Appends insert into two random-order indexes (event id, customer); a larger page
    cache and less frequent checkpoints keep each batch's page writes few and large.
    """

    def __init__(
        self, *, db_name: str, lock_timeout: int, cache_mib: int, durable: bool = True
    ) -> None:
        super().__init__(db_name=db_name, lock_timeout=lock_timeout)
        self.cache_kib = cache_mib * 1024
        self.durable = durable

    def _create_connection(self) -> SQLiteConnection:
        # eventsourcing's own opens connections with a statement cache of one statement
        # (``cached_statements=True``): with its BEGIN and ROLLBACK around every read, each
        # query was prepared again every time (~40 us of a ~50 us indexed read). And its
        # switch to WAL fails at once when another process opens the same new file (see
        # :func:`use_wal`). So connections are opened here, as it would open them otherwise.
        try:
            raw = sqlite3.connect(
                database=self.db_name,
                uri=True,
                check_same_thread=False,
                isolation_level=None,
                cached_statements=STATEMENT_CACHE,
                timeout=self.lock_timeout or 5,
            )
        except sqlite3.Error as exc:
            raise InterfaceError(exc) from exc
        if not self.is_sqlite_memory_mode and not self.is_journal_mode_wal:
            try:
                use_wal(raw, self.lock_timeout or 5)
            except sqlite3.Error:
                raw.close()
                raise
            self.is_journal_mode_wal = True
        raw.row_factory = sqlite3.Row
        connection = SQLiteConnection(sqlite_conn=raw, max_age=self.max_age)
        cursor = connection.cursor()
        for pragma in connection_pragmas(self.cache_kib // 1024, durable=self.durable):
            cursor.execute(pragma)
        return connection


def connection_pragmas(cache_mib: int, *, durable: bool = True) -> list[str]:
    """The per-connection settings of the embedded log (also used by the benchmarks).

    ``durable=False`` (the view store) syncs the WAL at checkpoints only, not at every
    commit: a power cut may take the last commits back, but never half of one, and
    positions go back with their rows, so the projector just applies those events again.
    The log keeps full durability: an append it acknowledged is on disk.
    """
    return [
        f"PRAGMA cache_size = -{cache_mib * 1024}",
        f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}",
        f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}",
        # INSERT ... SELECT reading its own table is materialised first: keep it off disk.
        "PRAGMA temp_store = MEMORY",
    ]


class LedgerDatastore(SQLiteDatastore):
    """eventsourcing's SQLite datastore using :class:`LedgerConnectionPool`."""

    def __init__(
        self, db_name: str, *, lock_timeout: int, cache_mib: int, durable: bool = True
    ) -> None:
        super().__init__(db_name, lock_timeout=lock_timeout, originator_id_type="text")
        self.pool = LedgerConnectionPool(
            db_name=db_name, lock_timeout=lock_timeout, cache_mib=cache_mib, durable=durable
        )


BUSY_ATTEMPTS = 4
"""Tries of an append that finds the log locked (each waits up to the lock timeout)."""


def _busy(exc: BaseException) -> bool:
    """Whether ``exc`` (eventsourcing's wrapper, or sqlite3's own) is SQLite's "busy"."""
    cause = exc if isinstance(exc, sqlite3.Error) else exc.__cause__
    code = getattr(cause, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY


class TouchpointRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite application recorder with customer and time columns."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = TABLE) -> None:
        super().__init__(datastore, events_table_name)
        # One statement per batch: SQLite does the whole insert in its first step, with
        # the GIL released, so the next batch is validated meanwhile. Rows go in batch
        # order (ORDER BY key). Known ids are filtered out rather than left to ON CONFLICT:
        # a conflicting row would still consume an AUTOINCREMENT number.
        self.insert_batch_statement = (
            f"INSERT INTO {events_table_name} (originator_id, originator_version, topic, "
            "state, subject, event_time, recorded_at) "
            "SELECT json_extract(j.value, '$[0]'), 1, json_extract(j.value, '$[1]'), "
            "CAST(json_extract(j.value, '$[2]') AS BLOB), json_extract(j.value, '$[3]'), "
            "json_extract(j.value, '$[4]'), ? FROM json_each(?) AS j "
            f"WHERE NOT EXISTS (SELECT 1 FROM {events_table_name} AS k "
            "WHERE k.originator_id = json_extract(j.value, '$[0]')) ORDER BY j.key"
        )
        self.sequence_statement = "SELECT seq FROM sqlite_sequence WHERE name = ?"
        self.known_statement = (
            f"SELECT json_each.key, t.rowid FROM json_each(?) JOIN {events_table_name} t "
            "ON t.originator_id = json_extract(json_each.value, '$[0]') WHERE t.rowid <= ?"
        )

    def construct_create_table_statements(self) -> list[str]:
        table = self.events_table_name
        return [
            f"CREATE TABLE IF NOT EXISTS {table} ("
            # Aliases rowid, so positions survive VACUUM; AUTOINCREMENT never reuses one.
            "position INTEGER PRIMARY KEY AUTOINCREMENT, "
            "originator_id TEXT NOT NULL, "
            "originator_version INTEGER NOT NULL, "
            "topic TEXT NOT NULL, "
            "state BLOB NOT NULL, "
            "subject TEXT NOT NULL, "
            "event_time INTEGER NOT NULL, "
            "recorded_at INTEGER NOT NULL, "
            # The event id alone: a version column edited by hand cannot let it in twice.
            "UNIQUE (originator_id))",
            # Index entries end with the rowid anyway: (subject) orders by customer, then position.
            f"CREATE INDEX IF NOT EXISTS {table}_subject ON {table} (subject)",
        ]

    def ensure_identity_index(self) -> None:
        """Give the log its index of identity events (a partial index: ~2 % of the rows),
        so that the identity graph, which every answer about a person reads, is found
        without scanning the log. A log that cannot be written (a read-only copy) is read
        without it."""
        table = self.events_table_name
        try:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    f"CREATE INDEX IF NOT EXISTS {table}_identity ON {table} (topic) "
                    f"WHERE {IDENTITY_TOPICS}"
                )
        except (PersistenceError, sqlite3.Error):
            pass

    def ensure_unique_ids(self) -> str | None:
        """Give a log created before the event id alone was UNIQUE that index; ``None``
        when done, else why it cannot be (the log already holds an id twice)."""
        table = self.events_table_name
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"PRAGMA index_list({table})")
            for _, name, unique, *_ in cursor.fetchall():
                if unique:
                    cursor.execute(f"PRAGMA index_info({name})")
                    if [row[2] for row in cursor.fetchall()] == ["originator_id"]:
                        return None
        try:
            with self.datastore.transaction(commit=True) as cursor:
                cursor.execute(
                    f"SELECT originator_id, group_concat(rowid) FROM {table} "
                    "GROUP BY originator_id HAVING count(*) > 1 LIMIT 1"
                )
                twice = cursor.fetchone()
                if twice is not None:
                    return f"event {twice[0]} is stored twice, at positions {twice[1]}"
                cursor.execute(
                    f"CREATE UNIQUE INDEX IF NOT EXISTS {table}_event_id ON {table} (originator_id)"
                )
        except (PersistenceError, sqlite3.Error) as exc:  # a read-only copy, say
            return f"the UNIQUE index on the event id cannot be added ({exc})"
        return None

    def insert_batch(self, batch: EncodedBatch, recorded_at: int) -> list[tuple[int, bool]]:
        """Insert in one transaction; per event ``(position, True)`` if new, else
        ``(position of the event with that id, False)``.

        SQLite waits for another writer up to the lock timeout, but in some cases it answers
        "database is locked" at once (a read snapshot that another writer's commit made
        stale cannot be upgraded to a write), and a writer may hold the log longer than one
        wait (a large import batch, a checkpoint). The transaction was rolled back whole,
        so it is tried again, up to :data:`BUSY_ATTEMPTS` times.
        """
        for attempt in range(1, BUSY_ATTEMPTS + 1):
            try:
                return self._insert_batch(batch, recorded_at)
            except (OperationalError, sqlite3.OperationalError) as exc:
                if attempt == BUSY_ATTEMPTS or not _busy(exc):
                    raise
                time.sleep(0.01 * attempt)
        raise AssertionError("unreachable")

    def _insert_batch(self, batch: EncodedBatch, recorded_at: int) -> list[tuple[int, bool]]:
        with self.datastore.transaction(commit=True) as cursor:
            cursor.execute(self.insert_batch_statement, (recorded_at, batch.rows_json))
            cursor.execute("SELECT changes()")
            inserted = cursor.fetchone()[0]
            cursor.execute(self.sequence_statement, (self.events_table_name,))
            sequence = cursor.fetchone()
            before = (sequence[0] if sequence else 0) - inserted
            known: dict[int, int] = {}  # row of rows_json -> existing position
            if inserted != len(batch.distinct):  # some ids were already in the log
                cursor.execute(self.known_statement, (batch.rows_json, before))
                known = dict(cursor.fetchall())
            if inserted + len(known) != len(batch.distinct):
                raise OperationalError("append: inserted rows do not match the batch")
        # New rows took positions before+1, before+2, ... in batch order (AUTOINCREMENT,
        # one writer inside the transaction); repeats point at their first occurrence.
        position_of: dict[int, tuple[int, bool]] = {}
        next_position = before
        for row, index in enumerate(batch.distinct):
            if row in known:
                position_of[index] = (known[row], False)
            else:
                next_position += 1
                position_of[index] = (next_position, True)
        return [
            position_of[index] if first == index else (position_of[first][0], False)
            for index, first in enumerate(batch.first)
        ]

    def select_touchpoints(
        self, start: int, limit: int, where: ReadFilter
    ) -> list[tuple[int, bytes, int, int]]:
        """Rows ``(position, state, recorded_at, usual)`` from ``start`` (inclusive),
        filtered; ``usual`` as in :data:`USUAL_ROW`."""
        statement, params = self.touchpoints_query(start, limit, where)
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return [(r[0], r[1], r[2], r[3]) for r in cursor.fetchall()]

    def touchpoints_query(self, start: int, limit: int, where: ReadFilter) -> tuple[str, list[Any]]:
        """The statement of :meth:`select_touchpoints`, and its parameters."""
        clauses = ["rowid >= ?"]
        params: list[Any] = [start]
        if where.customer is not None:
            clauses.append("subject = ?")
            params.append(where.customer)
        if where.types == IDENTITY_TYPES and where.customer is None:
            clauses.append(IDENTITY_TOPICS)  # as written in the partial index: it is used
        elif where.types:
            clauses.append(f"topic IN ({','.join('?' * len(where.types))})")
            params.extend(sorted(where.types))
        if where.since is not None:
            clauses.append("event_time >= ?")
            params.append(to_micros(where.since))
        if where.until is not None:
            clauses.append("event_time < ?")
            params.append(to_micros(where.until))
        statement = (
            f"SELECT rowid, state, recorded_at, {USUAL_ROW} FROM {self.events_table_name} "
            f"WHERE {' AND '.join(clauses)} ORDER BY rowid LIMIT ?"
        )
        params.append(limit)
        return statement, params

    def select_raw(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        """Rows ``(position, usual, id, type, subject, event time, state, recorded at)``
        from ``start``, text columns as UTF-8 bytes and the event time as its digits
        (converted by SQLite, not Python); ``usual`` is 0 when a column holds a value of
        another type than the ledger writes (see :meth:`select_row`)."""
        statement = (
            "SELECT rowid, typeof(originator_id) = 'text' AND typeof(topic) = 'text' AND "
            "typeof(subject) = 'text' AND typeof(event_time) = 'integer' AND "
            "typeof(state) = 'blob' AND typeof(recorded_at) = 'integer', "
            "CAST(originator_id AS BLOB), CAST(topic AS BLOB), CAST(subject AS BLOB), "
            "CAST(CAST(event_time AS TEXT) AS BLOB), state, recorded_at "
            f"FROM {self.events_table_name} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, limit))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows

    def select_sealed(self, start: int, limit: int) -> list[tuple[Any, ...]]:
        """Rows as sealed since layout 2 (docs/audit.md): ``(position, usual, subject, id,
        version, type, event time, recorded at, state)``, every column as SQLite's own text
        (or blob) bytes; ``usual`` is 1 when each column holds the type the ledger writes
        (:data:`USUAL_TYPES`), else :meth:`select_types` gives them."""
        usual = " AND ".join(
            f"typeof({c}) = '{t}'" for c, t in zip(SEALED_COLUMNS, _USUAL, strict=True)
        )
        statement = (
            f"SELECT rowid, {usual}, "
            + ", ".join(f"CAST({c} AS BLOB)" for c in SEALED_COLUMNS)
            + f" FROM {self.events_table_name} WHERE rowid >= ? ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, limit))
            rows: list[tuple[Any, ...]] = cursor.fetchall()
            return rows

    def select_types(self, position: int) -> bytes:
        """The ``typeof()`` of a row's :data:`SEALED_COLUMNS`, space-separated."""
        types = " || ' ' || ".join(f"typeof({c})" for c in SEALED_COLUMNS)
        statement = f"SELECT CAST({types} AS BLOB) FROM {self.events_table_name} WHERE rowid = ?"
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (position,))
            found: bytes = cursor.fetchone()[0]
            return found

    def select_row(self, position: int) -> tuple[Any, ...]:
        """One row's columns exactly as stored."""
        statement = (
            "SELECT rowid, originator_id, topic, subject, event_time, state, recorded_at "
            f"FROM {self.events_table_name} WHERE rowid = ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (position,))
            row: tuple[Any, ...] = cursor.fetchone()
            return row

    def select_stored(
        self, start: int, limit: int, span: Span = EVERY_ROW
    ) -> list[tuple[int, str, str, str, int, bytes, int]]:
        """Rows ``(position, id, type, subject, event time, state, recorded at)`` from
        ``start``, in ``span``."""
        clauses, params = span.clauses()
        statement = (
            "SELECT rowid, originator_id, topic, subject, event_time, state, recorded_at "
            f"FROM {self.events_table_name} WHERE rowid >= ?{clauses} ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, *params, limit))
            rows: list[tuple[int, str, str, str, int, bytes, int]] = cursor.fetchall()
            return rows

    def select_by_customer(
        self, after: tuple[str, int], limit: int
    ) -> list[tuple[int, str, str, str, int, bytes, int]]:
        """Rows ``(position, id, type, subject, event time, state, recorded at)`` after
        ``(customer, position)``, in customer order and log order within a customer (the
        customer index holds the position too, so this walks it)."""
        statement = (
            "SELECT rowid, originator_id, topic, subject, event_time, state, recorded_at "
            f"FROM {self.events_table_name} "
            "WHERE (subject, rowid) > (?, ?) ORDER BY subject, rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (*after, limit))
            rows: list[tuple[int, str, str, str, int, bytes, int]] = cursor.fetchall()
            return rows

    def select_customer_tail(
        self, customer: str, start: int, limit: int, kept: tuple[list[str], int] | None
    ) -> tuple[int, list[tuple[int, str, str, str, int, bytes, int]]]:
        """The last position, and up to ``limit`` rows ``(position, id, type, subject, event
        time, state, recorded_at)`` of ``customer`` from ``start`` to it, plus earlier rows
        of the kept ``(types, since micros)``: one read transaction, through the customer
        index."""
        clauses = "rowid >= ?"
        params: list[Any] = [start]
        if kept is not None and kept[0]:
            types, since = kept
            clauses = (
                f"(rowid >= ? OR (topic IN ({','.join('?' * len(types))}) AND event_time >= ?))"
            )
            params = [start, *types, since]
        statement = (
            "SELECT rowid, originator_id, topic, subject, event_time, state, recorded_at "
            f"FROM {self.events_table_name} WHERE subject = ? AND rowid <= ? AND {clauses} "
            "ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(f"SELECT max(rowid) FROM {self.events_table_name}")
            end = cursor.fetchone()[0] or 0
            cursor.execute(statement, (customer, end, *params, limit))
            rows: list[tuple[int, str, str, str, int, bytes, int]] = cursor.fetchall()
            return end, rows

    def select_documents(
        self, start: int, limit: int, span: Span
    ) -> list[tuple[int, bytes, int, int]]:
        """Rows ``(position, state, recorded_at, usual)`` from ``start``, in ``span``."""
        clauses, params = span.clauses()
        statement = (
            f"SELECT rowid, state, recorded_at, {USUAL_ROW} FROM {self.events_table_name} "
            f"WHERE rowid >= ?{clauses} ORDER BY rowid LIMIT ?"
        )
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, (start, *params, limit))
            return [(r[0], r[1], r[2], r[3]) for r in cursor.fetchall()]


class SQLiteLog(EventLog):
    """The embedded :class:`EventLog`: one SQLite file, one partition."""

    refuses_duplicates_across_batches = True
    overlapped_writes = True
    validated_at_append = True

    def __init__(
        self, path: Path, *, create: bool = True, lock_timeout: int = 30, cache_mib: int = 256
    ) -> None:
        self.path = path
        if not path.exists():
            if not create:
                raise LogUnavailable(f"no ledger at {path} yet: append or import events first")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._datastore = LedgerDatastore(
                str(path), lock_timeout=lock_timeout, cache_mib=cache_mib
            )
            self.recorder = TouchpointRecorder(self._datastore)
            self.recorder.create_table()
            self._ids_twice = self.recorder.ensure_unique_ids()
            self.recorder.ensure_identity_index()
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot open the ledger at {path}: {exc}") from exc

    def encode(self, events: Sequence[Touchpoint]) -> EncodedBatch:
        return encode_batch(self.protected(events))

    def write(self, encoded: EncodedBatch) -> list[AppendOutcome]:
        if self._ids_twice is not None:
            raise LogCorrupted(
                f"{self.path}: {self._ids_twice}; appends are refused until it is resolved "
                "(ledger audit verify names what changed)"
            )
        try:
            results = self.recorder.insert_batch(encoded, to_micros(utc_now()))
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot append to {self.path}: {exc}") from exc
        return [
            Appended(event_id, Position(PARTITION, position))
            if is_new
            else Duplicate(event_id, Position(PARTITION, position))
            for event_id, (position, is_new) in zip(encoded.ids, results, strict=True)
        ]

    def partitions(self) -> list[int]:
        return [PARTITION]

    def record_at(self, position: Position) -> LogRecord | None:
        if position.partition != PARTITION:
            return None
        try:
            rows = self.recorder.select_touchpoints(position.offset, 1, EVERYTHING)
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
        if not rows or rows[0][0] != position.offset:
            return None
        return self._record(*rows[0])

    def end_positions(self) -> dict[int, int]:
        try:
            return {PARTITION: self.end_position() + 1}
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc

    first_offset = 1

    @property
    def name(self) -> str:
        return f"embedded log {self.path}"

    def identity(self) -> str | None:
        statement = (
            f"SELECT originator_id FROM {self.recorder.events_table_name} ORDER BY rowid LIMIT 1"
        )
        try:
            with self._datastore.transaction(commit=False) as cursor:
                cursor.execute(statement)
                row = cursor.fetchone()
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
        return None if row is None else f"first event {row[0]}"

    def bounds(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        statement = f"SELECT MIN(rowid), MAX(rowid) FROM {self.recorder.events_table_name}"
        try:
            with self._datastore.transaction(commit=False) as cursor:
                cursor.execute(statement)
                low, high = cursor.fetchone()
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
        end = (high or 0) + 1
        return {p: ((low or end), end) if p == PARTITION else (1, 1) for p in partitions}

    def read(
        self, start: Positions | None = None, where: ReadFilter = EVERYTHING
    ) -> Iterator[LogRecord]:
        return self._scan(start, where, stop=None, poll_seconds=0.0)

    def _pages(
        self,
        select: Callable[[Any, int], list[tuple[Any, ...]]],
        start: Any,
        after: Callable[[tuple[Any, ...]], Any] = lambda row: row[0] + 1,
    ) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of rows from ``start`` (a position, unless ``after`` says otherwise) to
        the current end; ``after`` gives the next page's start from a page's last row."""
        position = start
        while True:
            try:
                rows = select(position, READ_PAGE)
            except (PersistenceError, sqlite3.Error) as exc:
                raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
            if not rows:
                return
            yield rows
            position = after(rows[-1])

    def read_raw(
        self, partition: int, start: int = 0, *, layout_1_until: int = 0
    ) -> Iterator[RawRecord]:
        """Every record's stored parts from ``start``: as record layout 2 of docs/audit.md
        (every column with its type), except records up to position ``layout_1_until``,
        sealed before layout 2, in layout 1 (customer, id, type, event time, state and
        append time, as the ledger reads them back)."""
        if partition != PARTITION:
            return
        if start <= layout_1_until:
            for record in self._read_raw_1(start):
                if record.position.offset > layout_1_until:
                    break
                yield record
            start = layout_1_until + 1
        for rows in self.sealed_rows(start):
            for row in rows:
                yield self.raw_record_2(row)

    def sealed_rows(self, start: int) -> Iterator[list[tuple[Any, ...]]]:
        """Pages of :meth:`TouchpointRecorder.select_sealed` rows from ``start``: for a
        reader that digests record layout 2 without building records (the audit seal)."""
        return self._pages(self.recorder.select_sealed, start)

    def raw_record_2(self, row: tuple[Any, ...]) -> RawRecord:
        """One :meth:`sealed_rows` row as record layout 2 of docs/audit.md."""
        position, usual, subject, event_id, version, kind, time, recorded, state = row
        types = USUAL_TYPES if usual else self.recorder.select_types(position)
        return RawRecord(
            Position(PARTITION, position),
            subject,
            (
                ("id", event_id),
                ("version", version),
                ("type", kind),
                ("time", time),
                ("recorded_at", recorded),
                ("types", types),
            ),
            state,
            0,
            RECORD_TAG_2,
        )

    def _read_raw_1(self, start: int) -> Iterator[RawRecord]:
        for rows in self._pages(self.recorder.select_raw, start):
            for row_position, usual, event_id, event_type, subject, micros, state, recorded in rows:
                if not usual:  # a column of an unexpected type (edited?): encode it as stored
                    yield self._odd_raw(row_position)
                    continue
                yield RawRecord(
                    Position(PARTITION, row_position),
                    subject,
                    (("id", event_id), ("type", event_type), ("time", micros)),
                    state,
                    recorded,
                )

    def _odd_raw(self, position: int) -> RawRecord:
        row = self.recorder.select_row(position)
        _, event_id, event_type, subject, micros, state, recorded_at = row
        return RawRecord(
            Position(PARTITION, position),
            _utf8(subject),
            (("id", _utf8(event_id)), ("type", _utf8(event_type)), ("time", _utf8(micros))),
            None if state is None else _utf8(state),
            recorded_at if isinstance(recorded_at, int) else -1,
        )

    def read_stored(
        self, start: Positions | None = None, span: Span = EVERY_ROW
    ) -> Iterator[StoredEvent]:
        first = max(1, (start or {}).get(PARTITION, 1))
        select = self.recorder.select_stored
        for rows in self._pages(lambda position, limit: select(position, limit, span), first):
            for row_position, *columns in rows:
                yield StoredEvent(Position(PARTITION, row_position), *columns)

    def read_stored_by_customer(self) -> Iterator[StoredEvent]:
        """Every record, undecoded, customer after customer (each customer's in log order):
        for readers that fold one customer's whole history at a time in O(one customer)
        memory, such as ``ledger violations``."""
        pages = self._pages(
            self.recorder.select_by_customer, ("", 0), after=lambda row: (row[3], row[0])
        )
        for rows in pages:
            for row_position, *columns in rows:
                yield StoredEvent(Position(PARTITION, row_position), *columns)

    def customer_tail(
        self,
        customer: str,
        start: Positions,
        *,
        limit: int,
        kept_types: frozenset[str] = frozenset(),
        kept_since: datetime | None = None,
    ) -> CustomerTail:
        first = max(1, start.get(PARTITION, 1))
        kept = None
        if kept_types and kept_since is not None:
            kept = (sorted(kept_types), to_micros(kept_since))
        try:
            end, rows = self.recorder.select_customer_tail(customer, first, limit + 1, kept)
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
        records: list[StoredEvent | LogRecord] = [
            StoredEvent(Position(PARTITION, row[0]), *row[1:]) for row in rows[:limit]
        ]
        return CustomerTail({PARTITION: end + 1}, records, len(rows) <= limit)

    def read_span(self, start: Positions | None, span: Span) -> Iterator[LogRecord]:
        """Validated records of ``span`` from ``start`` (what :meth:`read` gives, for one
        shard of customers and up to an end)."""
        first = max(1, (start or {}).get(PARTITION, 1))
        select = self.recorder.select_documents
        for rows in self._pages(lambda position, limit: select(position, limit, span), first):
            for row in rows:
                yield self._record(*row)

    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: Stop | None = None,
        poll_seconds: float = 0.2,
    ) -> Iterator[LogRecord]:
        return self._scan(start, where, stop=stop or threading.Event(), poll_seconds=poll_seconds)

    def _scan(
        self,
        start: Positions | None,
        where: ReadFilter,
        stop: Stop | None,
        poll_seconds: float,
    ) -> Iterator[LogRecord]:
        position = max(1, (start or {}).get(PARTITION, 1))
        while True:
            try:
                rows = self.recorder.select_touchpoints(position, READ_PAGE, where)
            except (PersistenceError, sqlite3.Error) as exc:
                raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
            for row in rows:
                yield self._record(*row)
            if rows:
                position = rows[-1][0] + 1
                continue
            if stop is None or stop.is_set():
                return
            # Sleep in short steps so that a stop request is honoured promptly.
            stop.wait(poll_seconds)
            if stop.is_set():
                return

    def _record(self, position: int, state: bytes, recorded_at: int, usual: int) -> LogRecord:
        """The record of a row; a damaged row's names each damaged column (the validating
        path parks exactly the rows the fast path parks, see ``StoredEvent.damage``)."""
        if usual:
            return _decode(position, state, recorded_at)
        try:
            _, event_id, event_type, subject, micros, state, recorded = self.recorder.select_row(
                position
            )
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
        stored = StoredEvent(
            Position(PARTITION, position), event_id, event_type, subject, micros, state, recorded
        )
        reason = stored.damage() or "stored row: damaged"
        when = from_micros(recorded) if row_damage(recorded_at=recorded) is None else EPOCH
        return LogRecord(Position(PARTITION, position), when, None, reason, as_bytes(state))

    def end_position(self) -> int:
        """The position of the last record (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        self._datastore.close()


def _utf8(value: object) -> bytes:
    """A column as bytes: text as UTF-8, numbers as digits, anything else (a tampered
    type) by a tagged repr, so that a change of type changes the bytes too."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    if isinstance(value, int):
        return b"%d" % value
    return f"<{type(value).__name__}>{value!r}".encode()


def _decode(position: int, state: bytes, recorded_at: int) -> LogRecord:
    where = Position(PARTITION, position)
    try:
        event = event_from_stored(state)
    except InvalidEvent as exc:
        return LogRecord(where, from_micros(recorded_at), None, "; ".join(exc.reasons), state)
    return LogRecord(where, from_micros(recorded_at), event, None, state)
