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
    CONTACTS_CONFLICT,
    INSERT_APPLIED,
    INSERT_DEAD_LETTER,
    INSERT_IDENTITY,
    PROFILE_CONFLICT,
    STAGED_APPLIED,
    STAGED_CONTACTS,
    STAGED_DEAD_LETTERS,
    STAGED_IDENTITY,
    STAGED_PROFILES,
    TABLES,
    UPSERT_CONTACTS,
    UPSERT_PROFILE,
    view_ddl,
)
from projections.profile import Profile

LOCK = "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))"
LOCK_SHARED = "SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))"
COPY_FROM = 200
"""Rows of one table in a batch from which PostgreSQL gets them by COPY."""
COPIED: dict[str, tuple[str, str | None]] = {
    UPSERT_PROFILE: ("profiles", PROFILE_CONFLICT),
    UPSERT_CONTACTS: ("contact_slots", CONTACTS_CONFLICT),
    INSERT_APPLIED: ("applied_events", None),
    service.INSERT: (service.TABLE, "ON CONFLICT DO NOTHING"),
}
"""The statements whose rows PostgreSQL may COPY: ``(table, ON CONFLICT clause or None)``."""


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
        self.lock_wait_seconds = 0.0
        """Time this recorder's commits waited for their advisory locks (a measure of
        how much projectors sharing the store hold each other up)."""
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
        guards = batch.guards
        with self.datastore.transaction(commit=True) as cursor:
            for name, expected, new in guards:  # sorted by name: no lock cycles
                # A transaction-scoped lock per guard serialises projectors committing the
                # same partition, even before its tracking row exists. The generation is
                # every batch's guard: checked under a shared lock (batches of different
                # partitions commit in parallel), bumped (a retry) under an exclusive one.
                shared = new is None and name.endswith(":generation")
                began = time.perf_counter()
                cursor.execute(LOCK_SHARED if shared else LOCK, (name,))
                self.lock_wait_seconds += time.perf_counter() - began
                cursor.execute(
                    SQL("SELECT notification_id FROM {0}.{1} WHERE application_name = %s").format(
                        Identifier(self.schema), Identifier(self.tracking_table_name)
                    ),
                    (name,),
                )
                row = cursor.fetchone()
                check_guard(name, expected, row["notification_id"] if row else None)
            if batch.staged:
                self._merge_staged(cursor, batch.staged)
            for statement, rows in batch.rows:
                if len(rows) >= COPY_FROM and statement in COPIED:
                    self._copy(cursor, statement, rows)
                elif rows:
                    cursor.executemany(self.sql(statement), rows)
            for name, _, new in guards:
                if new is not None:
                    self._insert_tracking(cursor, Tracking(name, new))

    def _temporary(self, cursor: Any, table: str) -> str:
        """An empty temporary table shaped like ``table`` (this connection's own, emptied
        at every commit and here)."""
        staged = f"staged_{table}{self.suffix}"
        cursor.execute(
            f"CREATE TEMPORARY TABLE IF NOT EXISTS {staged} (LIKE {self.tables[table]}) "
            "ON COMMIT DELETE ROWS"
        )
        cursor.execute(f"TRUNCATE {staged}")
        return staged

    def _merge_staged(self, cursor: Any, paths: Sequence[str]) -> None:
        """Copy the rows of worker processes' staging files (SQLite, see
        :func:`write_staged`) into the views, in the transaction that moves the positions:
        by COPY, as a batch of one process. Ids applied by two workers of one batch raise
        :class:`SharedEventId` (the projector then goes on in one process); an id another
        projector committed first fails the transaction, as any batch's."""
        found: dict[str, list[tuple[Any, ...]]] = {
            "profiles": [],
            "contact_slots": [],
            "applied_events": [],
            "dead_letters": [],
            service.TABLE: [],
            "identity_events": [],
        }
        for path in paths:
            staged = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
            try:
                for table, rows in found.items():
                    rows += staged.execute(f"SELECT * FROM {table}").fetchall()
            finally:
                staged.close()
        for statement, table in ((UPSERT_PROFILE, "profiles"), (UPSERT_CONTACTS, "contact_slots")):
            if found[table]:
                self._copy(cursor, statement, found[table])
        if found["dead_letters"]:
            cursor.executemany(self.sql(INSERT_DEAD_LETTER), found["dead_letters"])
        if len(found[service.TABLE]) >= COPY_FROM:
            self._copy(cursor, service.INSERT, found[service.TABLE])
        elif found[service.TABLE]:
            cursor.executemany(self.sql(service.INSERT), found[service.TABLE])
        if found["identity_events"]:
            cursor.executemany(self.sql(INSERT_IDENTITY), sorted(found["identity_events"]))
        if found["applied_events"]:
            ids = self._temporary(cursor, "applied_events")
            with cursor.copy(f"COPY {ids} FROM STDIN") as copy:
                for row in found["applied_events"]:
                    copy.write_row(row)
            cursor.execute(
                f"SELECT event_id FROM {ids} GROUP BY event_id HAVING COUNT(*) > 1 LIMIT 1"
            )
            if cursor.fetchone() is not None:
                raise SharedEventId("two shards of this batch applied events with the same id")
            cursor.execute(f"INSERT INTO {self.tables['applied_events']} SELECT * FROM {ids}")

    def _copy(self, cursor: Any, statement: str, rows: list[tuple[Any, ...]]) -> None:
        """Write many rows with COPY (one stream, not a statement per row): straight into
        the table for applied ids (a key already there fails the transaction, as the
        INSERT would), through a temporary table and one INSERT ... ON CONFLICT for the
        upserted views."""
        table, conflict = COPIED[statement]
        target = self.tables[table]
        if conflict is None:
            with cursor.copy(f"COPY {target} FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        staged = self._temporary(cursor, table)
        with cursor.copy(f"COPY {staged} FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        # "WHERE true": the shared statements' form; rows come out in the order they went
        # in (sorted by key), so concurrent writers lock rows in the same order.
        cursor.execute(
            f"INSERT INTO {target} SELECT * FROM {staged} WHERE true "
            + conflict.format(**self.tables)
        )

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


RACED = ("locked", "already exists")
"""What a table creation that lost a race says: SQLite's busy upgrade, or PostgreSQL's
``CREATE TABLE IF NOT EXISTS`` beaten by a concurrent creator (a duplicate table, or the
duplicate row type PostgreSQL makes for it)."""


def create_tables(recorder: ViewRecorder, attempts: int = 20) -> None:
    """Create the view tables (if absent), despite projectors committing meanwhile.

    eventsourcing's tracking recorder reads its migration state and then creates tables in
    one deferred transaction. In SQLite's WAL mode that upgrade from reader to writer fails
    at once ("database is locked", no busy wait) if another connection committed in
    between, which a projector running on the same store does every batch: the documented
    remedy is to run the transaction again. Another projector creating the tables at the
    same moment shows as an ``IntegrityError`` on eventsourcing's migration row, or on
    PostgreSQL as a table or type that "already exists" (``IF NOT EXISTS`` checks before
    it creates: two creators may both find none; seen with four group members started
    together); the tables then exist, and the next attempt finds them.
    """
    for attempt in range(attempts):
        try:
            recorder.create_table()
        except IntegrityError:
            if attempt + 1 == attempts:
                raise
        except (PersistenceError, sqlite3.OperationalError) as exc:
            if not any(sign in str(exc) for sign in RACED) or attempt + 1 == attempts:
                raise
            time.sleep(0.01 * (attempt + 1))
        else:
            return


ADDED_COLUMNS = {
    "applied_events": ["digest", "partition", "offset", "micros"],
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


def select_seen(
    select: Select, event_ids: Sequence[str], *, arrays: bool = False
) -> dict[str, Seen]:
    """The applied ones of ``event_ids``. With ``arrays`` (PostgreSQL), 5,000 ids a query
    as one array (``= ANY``, :func:`_any_of`): 4x faster than lists of 500 placeholders,
    which PostgreSQL plans anew every time."""
    seen: dict[str, Seen] = {}
    size = 5000 if arrays else 500
    for start in range(0, len(event_ids), size):
        chunk = event_ids[start : start + size]
        where, params = _any_of(chunk) if arrays else _in(chunk)
        rows = select(
            "SELECT event_id, digest, partition, offset, micros FROM {applied_events} "
            f"WHERE event_id {where}",
            params,
        )
        for event_id, digest, partition, offset, micros in rows:
            seen[event_id] = Seen(digest, partition, offset, micros)
    return seen


def _in(keys: Sequence[str]) -> tuple[str, Sequence[Any]]:
    return f"IN ({','.join('?' * len(keys))})", keys


def _any_of(keys: Sequence[str]) -> tuple[str, Sequence[Any]]:
    """PostgreSQL: ``keys`` as one array. Sent as one string split by the server where no
    key holds a line break (the contract's ids and customers never do): psycopg builds
    an array parameter in Python, about 2 µs a key, a third of a catch-up's lookups."""
    joined = "\n".join(keys)
    if joined and joined.count("\n") == len(keys) - 1:
        return "= ANY(string_to_array(?, chr(10)))", (joined,)
    return "= ANY(?)", (list(keys),)


def select_profiles(
    select: Select, customers: Sequence[str], *, arrays: bool = False
) -> dict[str, Profile]:
    """The stored profiles of ``customers`` (``arrays``: as :func:`select_seen`)."""
    profiles: dict[str, Profile] = {}
    size = 5000 if arrays else 500
    for start in range(0, len(customers), size):
        chunk = customers[start : start + size]
        where, params = _any_of(chunk) if arrays else _in(chunk)
        rows = select(f"SELECT state FROM {{profiles}} WHERE customer {where}", params)
        for (state,) in rows:
            profile = Profile.from_json(state)
            profiles[profile.customer] = profile
    return profiles
