"""Putting a SQLite file in WAL mode when others may be opening it at the same moment."""

from __future__ import annotations

import sqlite3
import time

RETRY_PAUSE_LIMIT = 0.05
"""The longest pause between two tries of the switch, in seconds (the first is 1 ms)."""


def use_wal(connection: sqlite3.Connection, timeout: float) -> None:
    """Put the file behind ``connection`` (in autocommit mode) in WAL journal mode.

    Leaving a new file's rollback journal needs the file's exclusive lock. A connection
    that asks for it while another one holds a shared lock and waits too is refused at
    once with "database is locked", without SQLite's busy timeout (waiting could
    deadlock). So two processes or threads opening one new ledger, key store or view
    store together could fail. A refused try holds no lock afterwards, and the journal
    mode is kept in the file, so trying again until ``timeout`` seconds have passed ends
    either with WAL set by this connection or found set by the other one.
    """
    deadline = time.monotonic() + timeout
    pause = 0.001
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL").fetchall()
            return
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, RETRY_PAUSE_LIMIT)


def _locked(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
