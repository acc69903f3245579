"""Seals cover every column of the embedded log with its type, and an edited column
cannot sidestep the dedupe key (issue 15, item 4).

Tampering is done through the SQLite file, as an operator with shell access could.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from ledger.audit import (
    GENESIS,
    AuditStore,
    Checkpoint,
    PartitionReport,
    Signer,
    chain_step,
    embedded_digests,
    export,
    generate_key,
    record_digest,
    seal,
    verify,
)
from ledger.codec import parse_event
from ledger.errors import LogCorrupted
from ledger.events import Touchpoint
from ledger.generate import generated
from ledger.log import Appended, Duplicate
from ledger.sqlite_log import SQLiteLog
from ledger.timeutil import utc_now

FIXTURE = Path(__file__).parent.parent / "fixtures" / "verify_seals.py"


def events(seed: int = 5, customers: int = 15) -> list[Touchpoint]:
    return [parse_event(d) for d in generated(customers, 40, seed=seed)]


def tamper(path: Path, statement: str, *params: object) -> None:
    with sqlite3.connect(path) as connection:
        connection.execute(statement, params)


def check(path: Path, store: AuditStore, workers: int = 1) -> PartitionReport:
    with SQLiteLog(path, create=False) as log:
        (report,) = verify(log, "embedded", store, workers=workers)
    return report


@pytest.fixture
def sealed(tmp_path: Path) -> tuple[Path, AuditStore]:
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events())
        assert log.end_position() > 60
        store = AuditStore(tmp_path / "audit.db")
        seal(log, "embedded", store)
    assert check(tmp_path / "log.db", store).ok
    return tmp_path / "log.db", store


EDITS = {
    "originator_version": "UPDATE touchpoints SET originator_version = 2 WHERE position = 55",
    "state BLOB -> TEXT, same bytes": (
        "UPDATE touchpoints SET state = CAST(state AS TEXT) WHERE position = 55"
    ),
    # (Text or a whole REAL in an INTEGER column turns back into an integer: affinity.)
    "event_time INTEGER -> BLOB, same digits": (
        "UPDATE touchpoints SET event_time = CAST(event_time AS BLOB) WHERE position = 55"
    ),
    "recorded_at": "UPDATE touchpoints SET recorded_at = recorded_at + 1 WHERE position = 55",
    "recorded_at INTEGER -> BLOB, same digits": (
        "UPDATE touchpoints SET recorded_at = CAST(recorded_at AS BLOB) WHERE position = 55"
    ),
    "originator_version INTEGER -> REAL": (
        "UPDATE touchpoints SET originator_version = 1.5 WHERE position = 55"
    ),
    "originator_id TEXT -> BLOB, same bytes": (
        "UPDATE touchpoints SET originator_id = CAST(originator_id AS BLOB) WHERE position = 55"
    ),
    "topic": "UPDATE touchpoints SET topic = 'sms' WHERE position = 55",
    "subject TEXT -> BLOB, same bytes": (
        "UPDATE touchpoints SET subject = CAST(subject AS BLOB) WHERE position = 55"
    ),
}


@pytest.mark.parametrize("workers", [1, 2])
@pytest.mark.parametrize("edit", list(EDITS))
def test_an_edit_of_any_column_or_of_its_type_alone_is_named(
    sealed: tuple[Path, AuditStore], edit: str, workers: int
) -> None:
    path, store = sealed
    tamper(path, EDITS[edit])
    report = check(path, store, workers)
    assert not report.ok
    assert report.divergence is not None
    assert (report.divergence.position, report.divergence.kind) == (55, "modified")


def test_an_edited_version_does_not_let_the_same_event_in_twice(
    sealed: tuple[Path, AuditStore],
) -> None:
    path, _ = sealed
    with sqlite3.connect(path) as connection:
        (event_id,) = connection.execute(
            "SELECT originator_id FROM touchpoints WHERE position = 55"
        ).fetchone()
    tamper(path, EDITS["originator_version"])
    (again,) = [e for e in events() if e.id == event_id]
    with SQLiteLog(path, create=False) as log:
        before = log.end_position()
        (outcome,) = log.append([again])
        assert isinstance(outcome, Duplicate)
        assert outcome.position.offset == 55
        assert log.end_position() == before
    with sqlite3.connect(path) as connection, pytest.raises(sqlite3.IntegrityError):
        # Even past the ledger's own check, the database refuses it.
        connection.execute(
            "INSERT INTO touchpoints (originator_id, originator_version, topic, state, "
            "subject, event_time, recorded_at) SELECT originator_id, 3, topic, state, "
            "subject, event_time, recorded_at FROM touchpoints WHERE position = 55"
        )


OLD_TABLE = (
    "CREATE TABLE touchpoints (position INTEGER PRIMARY KEY AUTOINCREMENT, "
    "originator_id TEXT NOT NULL, originator_version INTEGER NOT NULL, topic TEXT NOT NULL, "
    "state BLOB NOT NULL, subject TEXT NOT NULL, event_time INTEGER NOT NULL, "
    "recorded_at INTEGER NOT NULL, UNIQUE (originator_id, originator_version))"
)


def _old_log(path: Path, twice: bool = False) -> None:
    """A log as the ledger created it before the event id alone was UNIQUE."""
    batch = events(customers=3)
    with SQLiteLog(path.with_suffix(".src")) as source:
        source.append(batch)
    with sqlite3.connect(path) as connection:
        connection.execute(OLD_TABLE)
        connection.execute("ATTACH ? AS src", (str(path.with_suffix(".src")),))
        connection.execute("INSERT INTO touchpoints SELECT * FROM src.touchpoints")
        if twice:
            connection.execute(
                "INSERT INTO touchpoints (originator_id, originator_version, topic, state, "
                "subject, event_time, recorded_at) SELECT originator_id, 2, topic, state, "
                "subject, event_time, recorded_at FROM touchpoints WHERE position = 3"
            )


def test_a_log_from_before_the_unique_id_opens_and_gains_it(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    _old_log(path)
    with SQLiteLog(path, create=False) as log:
        count = log.end_position()
        assert isinstance(log.append(events(customers=3)[:1])[0], Duplicate)
    tamper(path, "UPDATE touchpoints SET originator_version = 7 WHERE position = 1")
    with SQLiteLog(path, create=False) as log:
        assert isinstance(log.append(events(customers=3)[:1])[0], Duplicate)
        assert isinstance(log.append(events(seed=77, customers=1)[:1])[0], Appended)
        assert log.end_position() == count + 1


def test_a_log_already_holding_an_id_twice_opens_for_reading_but_refuses_appends(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    _old_log(path, twice=True)
    with SQLiteLog(path, create=False) as log:
        assert sum(1 for _ in log.read()) == log.end_position()
        with pytest.raises(LogCorrupted, match=r"stored twice, at positions 3,\d+"):
            log.append(events(seed=77, customers=1)[:1])


def _seal_in_layout_1(log: SQLiteLog, store: AuditStore, signer: Signer) -> Checkpoint:
    """What a seal made before layout 2: layout-1 digests, a layout-1 checkpoint."""
    last = log.end_position()
    chain, positions, digests = GENESIS, [], []
    for record in log.read_raw(0, 1, layout_1_until=last):
        digest = record_digest(record)
        chain = chain_step(chain, record.position.offset, digest)
        positions.append(record.position.offset)
        digests.append(digest)
    made = Checkpoint(0, "embedded", 0, last, len(positions), chain.hex(), utc_now(), layout=1)
    made = replace(made, public_key=signer.public_key, signature=signer.sign(made.message()))
    stored = store.add("embedded", 0, iter([(positions, digests)]), lambda: made)
    assert stored is not None
    return stored


def test_seals_made_before_layout_2_still_verify_and_sealing_continues_in_layout_2(
    tmp_path: Path,
) -> None:
    public = generate_key(tmp_path / "seal.pem")
    signer = Signer(tmp_path / "seal.pem")
    path = tmp_path / "log.db"
    with SQLiteLog(path) as log:
        batch = events()
        half = len(batch) // 2
        log.append(batch[:half])
        store = AuditStore(tmp_path / "audit.db")
        old = _seal_in_layout_1(log, store, signer)
        (report,) = verify(log, "embedded", store, public_key=public)
        assert report.ok, report
        assert report.layout_1_until == old.position
        log.append(batch[half:])
        new = seal(log, "embedded", store, signer).checkpoints[0]
        assert new.layout == 2
        (report,) = verify(log, "embedded", store, public_key=public)
        assert report.ok, report
        assert report.sealed == new.count
    bundle = export(store, "embedded", tmp_path / "bundle")

    def script() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(FIXTURE), str(path), str(bundle), public],
            capture_output=True,
            text=True,
            check=False,
        )

    assert script().stdout.strip() == f"ok: 2 checkpoints, {new.count} records"
    # A record sealed in layout 2: its version and its types are covered.
    tamper(path, "UPDATE touchpoints SET originator_version = 2 WHERE position = ?", new.position)
    assert "checkpoint 2" in script().stdout
    assert check(path, store).divergence is not None


@pytest.mark.parametrize("edit", list(EDITS))
def test_the_independent_verifier_catches_every_column_edit_too(tmp_path: Path, edit: str) -> None:
    public = generate_key(tmp_path / "seal.pem")
    path = tmp_path / "log.db"
    with SQLiteLog(path) as log:
        log.append(events())
        store = AuditStore(tmp_path / "audit.db")
        seal(log, "embedded", store, Signer(tmp_path / "seal.pem"))
    bundle = export(store, "embedded", tmp_path / "bundle")
    command = [sys.executable, str(FIXTURE), str(path), str(bundle), public]
    clean = subprocess.run(command, capture_output=True, text=True, check=False)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    tamper(path, EDITS[edit])
    tampered = subprocess.run(command, capture_output=True, text=True, check=False)
    assert (tampered.returncode, "the log does not match" in tampered.stdout) == (1, True)


def test_the_fast_digests_equal_the_record_layout_for_every_row(
    sealed: tuple[Path, AuditStore],
) -> None:
    """Sealing digests usual rows straight from their columns: it must give what
    record_digest gives for the records read_raw yields, edited rows included."""
    path, _ = sealed
    for statement in EDITS.values():
        tamper(path, statement.replace("position = 55", "position IN (55, 56)"))
    tamper(path, "UPDATE touchpoints SET topic = 'ünïcode ✓' WHERE position = 57")
    with SQLiteLog(path, create=False) as log:
        general = [(r.position.offset, record_digest(r)) for r in log.read_raw(0, 1)]
        assert list(embedded_digests(log, 1)) == general
        layout_1 = [
            (r.position.offset, record_digest(r)) for r in log.read_raw(0, 1, layout_1_until=30)
        ]
        assert list(embedded_digests(log, 1, layout_1_until=30)) == layout_1
    assert len(set(general) - set(layout_1)) == 30  # only those differ in layout 1
