"""eventsourcing's tracking recorders, extended to write a batch of view rows with the
positions in one transaction (SQLite and PostgreSQL), and the table setup both share."""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError, Tracking
from eventsourcing.postgres import PostgresDatastore, PostgresTrackingRecorder
from eventsourcing.sqlite import SQLiteDatastore, SQLiteTrackingRecorder
from psycopg.sql import SQL, Identifier

from consumers.store import service_levels as service
from consumers.store.batch import PreparedBatch, Seen, SharedEventId
from consumers.store.schema import (
    STAGED_APPLIED,
    STAGED_CONTACTS,
    STAGED_DEAD_LETTERS,
    STAGED_IDENTITY,
    STAGED_PROFILES,
    TABLES,
    view_ddl,
)
from projections.profile import Profile


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
            check_guard(name, expected, cursor.fetchone()[0])
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
                        for statement in (
                            STAGED_PROFILES,
                            STAGED_CONTACTS,
                            STAGED_DEAD_LETTERS,
                            service.STAGED,
                        ):
                            cursor.execute(statement.format(**self.tables, staged=name))
                        try:
                            cursor.execute(STAGED_APPLIED.format(**self.tables, staged=name))
                            cursor.execute(STAGED_IDENTITY.format(**self.tables, staged=name))
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
                check_guard(name, expected, row["notification_id"] if row else None)
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


def check_guard(name: str, expected: int | None, stored: int | None) -> None:
    if stored != expected:
        raise IntegrityError(
            f"{name} is at {stored}, not {expected}: another projector committed in between"
        )


def create_tables(recorder: ViewRecorder, attempts: int = 20) -> None:
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


def add_columns(recorder: ViewRecorder) -> None:
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


def select_applied(select: Select, event_ids: Sequence[str]) -> set[str]:
    return set(select_seen(select, event_ids))


def select_seen(select: Select, event_ids: Sequence[str]) -> dict[str, Seen]:
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


def select_profiles(select: Select, customers: Sequence[str]) -> dict[str, Profile]:
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
