"""Opening one new SQLite file from many connections at once: every one of them opens it.

Leaving the rollback journal for WAL needs the file's exclusive lock, and SQLite refuses a
connection at once ("database is locked", no busy timeout) when another holds a shared lock
and waits too. Two services appending to a new ledger together, or an import and an erasure
started together, failed so.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pytest

from consumers.store.views import SQLiteViewStore
from ledger.audit.store import AuditStore
from ledger.privacy.keystore import SQLiteKeyStore
from ledger.privacy.master import MasterKey
from ledger.sqlite_log import SQLiteLog
from ledger.sqlite_wal import use_wal
from tests.conftest import at_once, failures

THREADS = 8
ROUNDS = 40


class Holder(threading.Thread):
    """A connection that takes ``path``'s exclusive lock and gives it back after ``seconds``
    (``releasing``: when it began to, by ``time.monotonic``)."""

    def __init__(self, path: Path, seconds: float) -> None:
        super().__init__()
        self.path, self.seconds = path, seconds
        self.taken = threading.Event()
        self.releasing = float("inf")

    def run(self) -> None:
        other = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        other.execute("BEGIN EXCLUSIVE")
        self.taken.set()
        time.sleep(self.seconds)
        self.releasing = time.monotonic()
        other.execute("COMMIT")
        other.close()


def holding_the_lock(path: Path, seconds: float) -> Holder:
    holder = Holder(path, seconds)
    holder.start()
    assert holder.taken.wait(5)
    return holder


def journal_mode(path: Path) -> str:
    with sqlite3.connect(path) as connection:
        return str(connection.execute("PRAGMA journal_mode").fetchone()[0])


def test_the_switch_waits_for_a_lock_sqlite_refuses_at_once(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)  # refused at once
    holder = holding_the_lock(path, 0.3)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        connection.execute("PRAGMA journal_mode = WAL")  # what a single try does
    use_wal(connection, 5)
    assert time.monotonic() >= holder.releasing  # it waited for the holder
    holder.join()
    connection.close()
    assert journal_mode(path) == "wal"


def test_the_switch_gives_up_at_its_timeout(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    sqlite3.connect(path).execute("CREATE TABLE t (x)").connection.close()
    connection = sqlite3.connect(path, isolation_level=None, timeout=0)
    holder = holding_the_lock(path, 3)
    started = time.monotonic()
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        use_wal(connection, 0.3)
    assert time.monotonic() - started >= 0.2  # it tried for about its timeout
    assert holder.releasing == float("inf")  # and gave up while the lock was held
    holder.join()
    connection.close()
    assert journal_mode(path) == "delete"


def test_other_errors_are_not_tried_again(tmp_path: Path) -> None:
    connection = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    connection.close()
    started = time.monotonic()
    with pytest.raises(sqlite3.ProgrammingError):
        use_wal(connection, 5)
    assert time.monotonic() - started < 0.1


def _master(may_create: bool) -> MasterKey:
    return MasterKey(b"k" * 32, "a test")


def _open_keys(path: Path) -> None:
    store = SQLiteKeyStore(path, _master)
    store.holders()  # the first use opens the file
    store.close()


OPENERS: dict[str, Callable[[Path], None]] = {
    "ledger": lambda path: SQLiteLog(path).close(),
    "views": lambda path: SQLiteViewStore(path, "test").close(),
    "keys": _open_keys,
    "audit": lambda path: AuditStore(path).close(),
}


@pytest.mark.parametrize("kind", sorted(OPENERS))
def test_many_opening_one_new_file_together_all_open_it(tmp_path: Path, kind: str) -> None:
    for round_ in range(ROUNDS):
        path = tmp_path / f"{round_}.db"
        outcomes = at_once([partial(OPENERS[kind], path)] * THREADS)
        assert failures(outcomes) == [], round_
        assert journal_mode(path) == "wal"
