"""The embedded log on a real SQLite file: tampering, concurrency, stable positions."""

from __future__ import annotations

import multiprocessing
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger.codec import event_to_json, parse_event
from ledger.errors import LogUnavailable
from ledger.generate import generated
from ledger.log import Appended, Position
from ledger.sqlite_log import SQLiteLog
from tests.fakes import InMemoryLog


def events(customers: int = 20, seed: int = 1) -> list:  # type: ignore[type-arg]
    return [parse_event(d) for d in generated(customers, 30, seed)]


def test_reading_a_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LogUnavailable, match="no ledger at"):
        SQLiteLog(tmp_path / "nothing.db", create=False)
    assert not (tmp_path / "nothing.db").exists()


def test_the_database_itself_refuses_a_second_event_with_the_same_id(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    with SQLiteLog(path) as log:
        log.append(events()[:1])
    connection = sqlite3.connect(path)
    row = connection.execute(
        "SELECT originator_id, topic, state, subject FROM touchpoints"
    ).fetchone()
    with pytest.raises(sqlite3.IntegrityError):
        connection.execute(
            "INSERT INTO touchpoints (originator_id, originator_version, topic, state, subject, "
            "event_time, recorded_at) VALUES (?, 1, ?, ?, ?, 0, 0)",
            row,
        )


def test_a_tampered_row_is_reported_with_its_position_and_reading_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    batch = events()
    with SQLiteLog(path) as log:
        log.append(batch)
    with sqlite3.connect(path) as connection:
        connection.execute("UPDATE touchpoints SET state = ? WHERE position = 5", (b'{"id": 1}',))
    with SQLiteLog(path, create=False) as log:
        records = list(log.read())
    assert len(records) == len(batch)
    broken = [r for r in records if r.event is None]
    assert [r.position for r in broken] == [Position(0, 5)]
    assert broken[0].error
    assert broken[0].error.startswith("type: required")
    assert broken[0].raw == b'{"id": 1}'


def test_positions_survive_vacuum_and_are_never_reused(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    batch = events()
    with SQLiteLog(path) as log:
        log.append(batch[:50])
    with sqlite3.connect(path) as connection:
        connection.execute("DELETE FROM touchpoints WHERE position IN (10, 50)")
    sqlite3.connect(path, isolation_level=None).execute("VACUUM")
    with SQLiteLog(path) as log:
        before = {r.event.id: r.position for r in log.read() if r.event}
        outcome = log.append(batch[50:51])[0]
    assert before[batch[48].id] == Position(0, 49)
    assert isinstance(outcome, Appended)
    assert outcome.position == Position(0, 51)


def _append_worker(path: str, seed: int) -> None:
    with SQLiteLog(Path(path)) as log:
        batch = [parse_event(d) for d in generated(30, 30, seed)]
        for start in range(0, len(batch), 40):
            log.append(batch[start : start + 40])


def test_two_processes_appending_at_once_lose_nothing(tmp_path: Path) -> None:
    path = tmp_path / "shared.db"
    SQLiteLog(path).close()
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_append_worker, args=(str(path), seed)) for seed in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
        assert worker.exitcode == 0
    expected = {e.id for seed in (1, 2) for e in (parse_event(d) for d in generated(30, 30, seed))}
    with SQLiteLog(path, create=False) as log:
        records = list(log.read())
    assert {r.event.id for r in records if r.event} == expected
    assert len(records) == len(expected)
    assert len({r.position for r in records}) == len(records)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.lists(st.integers(0, 30), max_size=25), min_size=1, max_size=6))
def test_batch_outcomes_match_the_reference_log(batches: list[list[int]]) -> None:
    """Positions and duplicate reports equal those of a plain list-based log."""
    pool = events(customers=3, seed=4)
    reference = InMemoryLog()
    with tempfile.TemporaryDirectory() as folder, SQLiteLog(Path(folder) / "l.db") as log:
        for batch in batches:
            chosen = [pool[i % len(pool)] for i in batch]
            assert log.append(chosen) == reference.append(chosen)
        stored = [(r.position, r.raw) for r in log.read()]
    assert stored == [(r.position, event_to_json(r.event)) for r in reference.records]


def test_an_append_that_finds_the_log_locked_longer_than_one_wait_still_lands(
    tmp_path: Path,
) -> None:
    """Another writer (an erasure, a large import batch) holds the log's write lock longer
    than SQLite's busy wait: the append is tried again rather than failing the import."""
    import threading
    import time

    path = tmp_path / "l.db"
    batch = events()
    with SQLiteLog(path) as log:
        log.append(batch[:1])
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")  # the write lock, held by another connection
    holder.execute("UPDATE touchpoints SET recorded_at = recorded_at")
    released = threading.Timer(1.6, holder.execute, ("COMMIT",))
    released.start()
    started = time.monotonic()
    try:
        with SQLiteLog(path, lock_timeout=1) as log:  # one wait: 1 s, shorter than the hold
            outcomes = log.append(batch[1:50])
    finally:
        released.join()
        holder.close()
    assert time.monotonic() - started >= 1.5  # it did wait for the other writer
    assert all(isinstance(o, Appended) for o in outcomes)
    with SQLiteLog(path) as log:
        assert [r.event.id for r in log.read() if r.event] == [e.id for e in batch[:50]]


def test_an_append_that_stays_locked_is_refused_with_the_reason(tmp_path: Path) -> None:
    path = tmp_path / "l.db"
    batch = events()
    with SQLiteLog(path) as log:
        log.append(batch[:1])
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    holder.execute("UPDATE touchpoints SET recorded_at = recorded_at")
    try:
        with (
            SQLiteLog(path, lock_timeout=0) as log,
            pytest.raises(LogUnavailable, match="database is locked"),
        ):
            log.append(batch[1:5])
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with SQLiteLog(path) as log:
        assert len([r for r in log.read() if r.event]) == 1  # nothing half-written


def test_the_identity_graph_is_read_through_its_partial_index(tmp_path: Path) -> None:
    """Every answer about a person reads the identity events; the log finds them through a
    partial index rather than a scan (the query must state the index's condition as the
    index does, or SQLite does not use it)."""
    from ledger.events import IDENTITY_TYPES
    from ledger.log import ReadFilter

    path = tmp_path / "l.db"
    with SQLiteLog(path) as log:
        log.append(events())
    with SQLiteLog(path) as log:
        assert list(log.read(None, ReadFilter(types=IDENTITY_TYPES))) == []
        query, params = log.recorder.touchpoints_query(0, 100, ReadFilter(types=IDENTITY_TYPES))
    plan = sqlite3.connect(path).execute(f"EXPLAIN QUERY PLAN {query}", params).fetchall()
    assert any("touchpoints_identity" in row[3] for row in plan), plan
