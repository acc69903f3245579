"""The embedded log: touchpoints in a SQLite file, through eventsourcing's recorder.

Each event is stored as an eventsourcing row with the event id as originator id and
version 1, so the database itself refuses a second event with the same id. The
row's position (an ``INTEGER PRIMARY KEY AUTOINCREMENT``, eventsourcing's
notification id) is stable across VACUUM and never reused, which the audit seals
rely on. eventsourcing 9.5 does not implement ``subscribe()`` for SQLite, so
:meth:`SQLiteLog.follow` polls.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eventsourcing.persistence import PersistenceError, StoredEvent
from eventsourcing.sqlite import SQLiteApplicationRecorder, SQLiteCursor, SQLiteDatastore

from ledger.codec import event_from_json, event_to_json
from ledger.errors import InvalidEvent, LogUnavailable
from ledger.events import Touchpoint
from ledger.log import (
    EVERYTHING,
    Appended,
    AppendOutcome,
    Duplicate,
    EventLog,
    LogRecord,
    Position,
    Positions,
    ReadFilter,
)
from ledger.timeutil import from_micros, to_micros, utc_now

TABLE = "touchpoints"
PARTITION = 0
READ_PAGE = 2000


@dataclass(frozen=True)
class StoredTouchpoint(StoredEvent):
    """An eventsourcing stored event plus the columns a ledger filters on."""

    subject: str
    event_time: int
    """Event time, microseconds since the epoch (UTC)."""
    recorded_at: int
    """Append time, microseconds since the epoch (UTC)."""


class TouchpointRecorder(SQLiteApplicationRecorder):
    """eventsourcing's SQLite application recorder with customer and time columns."""

    def __init__(self, datastore: SQLiteDatastore, events_table_name: str = TABLE) -> None:
        super().__init__(datastore, events_table_name)
        self.insert_statement = (
            f"INSERT INTO {events_table_name} (originator_id, originator_version, topic, "
            "state, subject, event_time, recorded_at) VALUES (?,?,?,?,?,?,?) "
            "ON CONFLICT (originator_id, originator_version) DO NOTHING RETURNING rowid"
        )
        self.existing_statement = (
            f"SELECT rowid FROM {events_table_name} "
            "WHERE originator_id = ? AND originator_version = ?"
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
            "UNIQUE (originator_id, originator_version))",
            f"CREATE INDEX IF NOT EXISTS {table}_subject ON {table} (subject, position)",
        ]

    def insert_touchpoints(self, rows: Sequence[StoredTouchpoint]) -> list[tuple[int, bool]]:
        """Insert in one transaction; ``(position, True)`` if new, ``(existing, False)`` if not."""
        with self.datastore.transaction(commit=True) as cursor:
            return [self._insert_one(cursor, row) for row in rows]

    def _insert_one(self, cursor: SQLiteCursor, row: StoredTouchpoint) -> tuple[int, bool]:
        cursor.execute(
            self.insert_statement,
            (
                row.originator_id,
                row.originator_version,
                row.topic,
                row.state,
                row.subject,
                row.event_time,
                row.recorded_at,
            ),
        )
        inserted = cursor.fetchone()
        if inserted is not None:
            return inserted[0], True
        cursor.execute(self.existing_statement, (row.originator_id, row.originator_version))
        return cursor.fetchone()[0], False

    def select_touchpoints(
        self, start: int, limit: int, where: ReadFilter
    ) -> list[tuple[int, bytes, int]]:
        """Rows ``(position, state, recorded_at)`` from ``start`` (inclusive), filtered."""
        clauses = ["rowid >= ?"]
        params: list[Any] = [start]
        if where.customer is not None:
            clauses.append("subject = ?")
            params.append(where.customer)
        if where.types:
            clauses.append(f"topic IN ({','.join('?' * len(where.types))})")
            params.extend(sorted(where.types))
        if where.since is not None:
            clauses.append("event_time >= ?")
            params.append(to_micros(where.since))
        if where.until is not None:
            clauses.append("event_time < ?")
            params.append(to_micros(where.until))
        statement = (
            f"SELECT rowid, state, recorded_at FROM {self.events_table_name} "
            f"WHERE {' AND '.join(clauses)} ORDER BY rowid LIMIT ?"
        )
        params.append(limit)
        with self.datastore.transaction(commit=False) as cursor:
            cursor.execute(statement, params)
            return [(r[0], r[1], r[2]) for r in cursor.fetchall()]


class SQLiteLog(EventLog):
    """The embedded :class:`EventLog`: one SQLite file, one partition."""

    refuses_duplicates_across_batches = True

    def __init__(self, path: Path, *, create: bool = True, lock_timeout: int = 30) -> None:
        self.path = path
        if not path.exists():
            if not create:
                raise LogUnavailable(f"no ledger at {path} yet: append or import events first")
            path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._datastore = SQLiteDatastore(
                str(path), lock_timeout=lock_timeout, originator_id_type="text"
            )
            self.recorder = TouchpointRecorder(self._datastore)
            self.recorder.create_table()
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot open the ledger at {path}: {exc}") from exc

    def append(self, events: Sequence[Touchpoint]) -> list[AppendOutcome]:
        recorded_at = to_micros(utc_now())
        rows = [
            StoredTouchpoint(
                originator_id=event.id,
                originator_version=1,
                topic=event.type,
                state=event_to_json(event),
                subject=event.subject,
                event_time=to_micros(event.time),
                recorded_at=recorded_at,
            )
            for event in events
        ]
        try:
            results = self.recorder.insert_touchpoints(rows)
        except (PersistenceError, sqlite3.Error) as exc:
            raise LogUnavailable(f"cannot append to {self.path}: {exc}") from exc
        return [
            Appended(event.id, Position(PARTITION, position))
            if is_new
            else Duplicate(event.id, Position(PARTITION, position))
            for event, (position, is_new) in zip(events, results, strict=True)
        ]

    def partitions(self) -> list[int]:
        return [PARTITION]

    def read(
        self, start: Positions | None = None, where: ReadFilter = EVERYTHING
    ) -> Iterator[LogRecord]:
        return self._scan(start, where, stop=None, poll_seconds=0.0)

    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: threading.Event | None = None,
        poll_seconds: float = 0.2,
    ) -> Iterator[LogRecord]:
        return self._scan(start, where, stop=stop or threading.Event(), poll_seconds=poll_seconds)

    def _scan(
        self,
        start: Positions | None,
        where: ReadFilter,
        stop: threading.Event | None,
        poll_seconds: float,
    ) -> Iterator[LogRecord]:
        position = max(1, (start or {}).get(PARTITION, 1))
        while True:
            try:
                rows = self.recorder.select_touchpoints(position, READ_PAGE, where)
            except (PersistenceError, sqlite3.Error) as exc:
                raise LogUnavailable(f"cannot read {self.path}: {exc}") from exc
            for row_position, state, recorded_at in rows:
                yield _decode(row_position, state, recorded_at)
            if rows:
                position = rows[-1][0] + 1
                continue
            if stop is None or stop.is_set():
                return
            # Sleep in short steps so that a stop request is honoured promptly.
            stop.wait(poll_seconds)
            if stop.is_set():
                return

    def end_position(self) -> int:
        """The position of the last record (0 for an empty log)."""
        return self.recorder.max_notification_id() or 0

    def close(self) -> None:
        self._datastore.close()


def _decode(position: int, state: bytes, recorded_at: int) -> LogRecord:
    where = Position(PARTITION, position)
    try:
        event = event_from_json(state)
    except InvalidEvent as exc:
        return LogRecord(where, from_micros(recorded_at), None, "; ".join(exc.reasons), state)
    return LogRecord(where, from_micros(recorded_at), event, None, state)
