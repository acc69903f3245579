"""Seals against real logs: a clean log verifies; every kind of tampering is caught and named.

The embedded log is tampered with through its SQLite file, as an operator with shell
access could; the Kafka log by recreating its records with one missing (a forged record
cannot be appended under a sealed offset).
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import orjson
import pytest
from kafka import KafkaProducer

from application.wiring import open_log
from ledger import audit
from ledger.audit import (
    AuditStore,
    PartitionReport,
    Signer,
    export,
    generate_key,
    load_public_key,
    seal,
    verify,
)
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.kafka_log import KafkaLog
from ledger.settings import Settings
from ledger.sqlite_log import SQLiteLog
from tests.conftest import at_once

FIXTURE = Path(__file__).parent.parent / "fixtures" / "verify_seals.py"


def events(customers: int = 30, days: int = 60) -> list:  # type: ignore[type-arg]
    return [parse_event(d) for d in generated(customers, days, seed=5)]


@pytest.fixture
def sealed_log(tmp_path: Path) -> tuple[Path, AuditStore, int]:
    """An embedded log of a few hundred events, sealed once."""
    batch = events()
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(batch)
        store = AuditStore(tmp_path / "audit.db")
        report = seal(log, "embedded", store)
    assert report.records == len(batch)
    return tmp_path / "log.db", store, len(batch)


def check(path: Path, store: AuditStore) -> PartitionReport:
    with SQLiteLog(path, create=False) as log:
        (report,) = verify(log, "embedded", store)
    return report


def tamper(path: Path, *statements: tuple[str, tuple[object, ...]]) -> None:
    with sqlite3.connect(path) as connection:
        for statement, params in statements:
            connection.execute(statement, params)


def test_a_clean_log_verifies_and_sealing_is_incremental(
    sealed_log: tuple[Path, AuditStore, int],
) -> None:
    path, store, count = sealed_log
    report = check(path, store)
    assert report.ok, report
    assert (report.records, report.sealed, report.unsealed) == (count, count, 0)
    more = [parse_event(d) for d in generated(5, 10, seed=99)]
    with SQLiteLog(path, create=False) as log:
        log.append(more)
        assert check(path, store).unsealed == len(more)  # new records: counted, not judged
        again = seal(log, "embedded", store)
        assert seal(log, "embedded", store).records == 0  # nothing new: no checkpoint
    assert again.records == len(more)
    assert [c.count for c in store.checkpoints("embedded")] == [count, count + len(more)]
    report = check(path, store)
    assert report.ok
    assert (report.sealed, report.checkpoints) == (count + len(more), 2)


def test_a_changed_byte_in_one_payload_is_named(
    sealed_log: tuple[Path, AuditStore, int],
) -> None:
    path, store, _ = sealed_log
    with sqlite3.connect(path) as connection:
        (state,) = connection.execute(
            "SELECT state FROM touchpoints WHERE position = 17"
        ).fetchone()
    changed = state.replace(b'"id":"', b'"id":"x', 1)[: len(state)]
    tamper(path, ("UPDATE touchpoints SET state = ? WHERE position = 17", (changed,)))
    report = check(path, store)
    assert not report.ok
    assert report.divergence is not None
    assert (report.divergence.position, report.divergence.kind) == (17, "modified")
    assert any("checkpoint 1" in p for p in report.problems)


def test_a_changed_column_the_ledger_reads_is_caught(
    sealed_log: tuple[Path, AuditStore, int],
) -> None:
    path, store, _ = sealed_log
    tamper(path, ("UPDATE touchpoints SET event_time = event_time + 1 WHERE position = 9", ()))
    divergence = check(path, store).divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (9, "modified")


def test_a_deleted_row_is_named(sealed_log: tuple[Path, AuditStore, int]) -> None:
    path, store, _ = sealed_log
    tamper(path, ("DELETE FROM touchpoints WHERE position IN (40, 41)", ()))
    divergence = check(path, store).divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (40, "deleted")
    assert "40..41" in divergence.detail


def test_swapped_rows_are_named(sealed_log: tuple[Path, AuditStore, int]) -> None:
    path, store, _ = sealed_log
    columns = "originator_id, topic, state, subject, event_time, recorded_at"
    with sqlite3.connect(path) as connection:
        a = connection.execute(f"SELECT {columns} FROM touchpoints WHERE position = 30").fetchone()
        b = connection.execute(f"SELECT {columns} FROM touchpoints WHERE position = 55").fetchone()
        connection.execute("DELETE FROM touchpoints WHERE position IN (30, 55)")
        insert = f"INSERT INTO touchpoints (position, originator_version, {columns}) "
        connection.execute(insert + "VALUES (30, 1, ?, ?, ?, ?, ?, ?)", b)
        connection.execute(insert + "VALUES (55, 1, ?, ?, ?, ?, ?, ?)", a)
    divergence = check(path, store).divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (30, "reordered")
    assert "55" in divergence.detail


def test_a_truncated_log_is_named(sealed_log: tuple[Path, AuditStore, int]) -> None:
    path, store, count = sealed_log
    tamper(path, ("DELETE FROM touchpoints WHERE position > ?", (count - 10,)))
    divergence = check(path, store).divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (count - 9, "truncated")


def test_a_row_inserted_before_sealed_positions_is_named(
    sealed_log: tuple[Path, AuditStore, int],
) -> None:
    path, store, _ = sealed_log
    tamper(
        path,
        (
            "INSERT INTO touchpoints (position, originator_id, originator_version, topic, "
            "state, subject, event_time, recorded_at) SELECT 0, 'forged', 1, topic, state, "
            "subject, event_time, recorded_at FROM touchpoints WHERE position = 1",
            (),
        ),
    )
    divergence = check(path, store).divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (0, "inserted")


def test_an_altered_audit_store_is_caught_too(sealed_log: tuple[Path, AuditStore, int]) -> None:
    path, store, _ = sealed_log
    # The twelfth sealed record's digest (records 1.. are in the first chunk), zeroed.
    with sqlite3.connect(store.path) as connection:
        (digests,) = connection.execute("SELECT digests FROM sealed").fetchone()
        digests = digests[: 11 * 32] + bytes(32) + digests[12 * 32 :]
        connection.execute("UPDATE sealed SET digests = ?", (digests,))
    report = check(path, store)
    assert not report.ok
    assert any("audit store was altered" in p for p in report.problems)


def test_the_audit_store_opens_while_a_seal_writes_it(tmp_path: Path) -> None:
    """A seal holds the store's write transaction while it streams digests: a verify
    opening the store meanwhile must not wait for it (it only reads)."""
    path = tmp_path / "audit.db"
    AuditStore(path).close()
    seal_in_progress = sqlite3.connect(path, isolation_level=None)
    seal_in_progress.execute("BEGIN IMMEDIATE")
    started = time.monotonic()
    store = AuditStore(path)
    assert time.monotonic() - started < 1  # it waited up to 30 s for the write lock before
    assert store.checkpoints("embedded") == []
    store.close()
    seal_in_progress.execute("COMMIT")
    seal_in_progress.close()


def test_keygens_run_together_make_one_key_and_refuse_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "seal.pem"
    outcomes = at_once([partial(generate_key, path)] * 8)
    made = [o for o in outcomes if isinstance(o, str)]
    refused = [str(o) for o in outcomes if isinstance(o, audit.AuditError)]
    assert (len(made), len(refused)) == (1, 7)
    assert all("refusing to overwrite" in reason for reason in refused)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_public_key(tmp_path / "seal.pem.pub") == made[0]
    # The private key on disk is the one whose public key was printed and written.
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    private = load_pem_private_key(path.read_bytes(), None)
    public = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    assert public.hex() == made[0]


def test_signed_checkpoints_verify_only_with_the_right_key(tmp_path: Path) -> None:
    generate_key(tmp_path / "seal.pem")
    generate_key(tmp_path / "other.pem")
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events(customers=10))
        store = AuditStore(tmp_path / "audit.db")
        seal(log, "embedded", store, Signer(tmp_path / "seal.pem"))
        right = load_public_key(tmp_path / "seal.pem.pub")
        wrong = load_public_key(tmp_path / "other.pem.pub")
        (good,) = verify(log, "embedded", store, public_key=right)
        (bad,) = verify(log, "embedded", store, public_key=wrong)
    assert good.ok
    assert good.signatures == 1
    assert not bad.ok
    position = store.checkpoints("embedded")[0].position
    assert bad.problems == [
        f"checkpoint 1 (position {position}): bad signature (by the given public key)"
    ]
    # A checkpoint rewritten to match a tampered log no longer carries a valid signature.
    tamper(store.path, ("UPDATE checkpoints SET chain = ?", ("00" * 32,)))
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        (forged,) = verify(log, "embedded", store, public_key=right)
    assert any("bad signature" in p for p in forged.problems)


def test_verify_can_start_from_a_trusted_checkpoint(
    sealed_log: tuple[Path, AuditStore, int],
) -> None:
    path, store, _ = sealed_log
    with SQLiteLog(path, create=False) as log:
        log.append([parse_event(d) for d in generated(5, 10, seed=98)])
        seal(log, "embedded", store)
    first, second = store.checkpoints("embedded")
    tamper(
        path, ("UPDATE touchpoints SET state = state || ' ' WHERE position = ?", (second.position,))
    )
    with SQLiteLog(path, create=False) as log:
        (report,) = verify(log, "embedded", store, from_checkpoint=first.id)
    assert report.records == second.count - first.count
    assert report.divergence is not None
    assert (report.divergence.position, report.divergence.kind) == (second.position, "modified")


def test_an_independent_script_verifies_the_exported_bundle(tmp_path: Path) -> None:
    """docs/audit.md is enough: tests/fixtures/verify_seals.py shares no code with the
    ledger, and agrees with it on a clean log and on a tampered one."""
    public = generate_key(tmp_path / "seal.pem")
    with SQLiteLog(tmp_path / "log.db") as log:
        batch = events()
        half = len(batch) // 2
        log.append(batch[:half])
        store = AuditStore(tmp_path / "audit.db")
        seal(log, "embedded", store, Signer(tmp_path / "seal.pem"))
        log.append(batch[half:])
        seal(log, "embedded", store, Signer(tmp_path / "seal.pem"))
        count = log.end_position()
    bundle = export(store, "embedded", tmp_path / "bundle")
    assert len(orjson.loads(bundle.read_bytes())["checkpoints"]) == 2

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, str(FIXTURE), str(tmp_path / "log.db"), str(bundle), public],
            capture_output=True,
            text=True,
            check=False,
        )

    clean = run()
    assert (clean.returncode, clean.stdout.strip()) == (
        0,
        f"ok: 2 checkpoints, {count} records",
    )
    tamper(
        tmp_path / "log.db",
        ("UPDATE touchpoints SET subject = 'C9' WHERE position = ?", (count - 1,)),
    )
    tampered = run()
    assert tampered.returncode == 1
    assert "checkpoint 2 (position" in tampered.stdout


@pytest.mark.kafka
def test_a_kafka_topic_recreated_with_one_record_missing_is_named(
    kafka_settings: Callable[[], Settings], kafka_bootstrap: str, tmp_path: Path
) -> None:
    original, copy = kafka_settings(), kafka_settings()
    with open_log(original) as log:
        assert isinstance(log, KafkaLog)
        log.append(events(customers=20, days=30))
        store = AuditStore(tmp_path / "audit.db")
        seal(log, log.topic, store)
        (clean,) = {r.ok for r in verify(log, log.topic, store)}
        assert clean
        # Recreate the topic record by record (same partitions, keys, headers, values and
        # timestamps), leaving out offset 5 of the fullest partition.
        ends = log.end_positions()
        victim = max(ends, key=lambda p: ends[p])
        assert ends[victim] > 10
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        with open_log(copy) as target:
            assert isinstance(target, KafkaLog)
            target.ensure_topic()
            for partition in log.partitions():
                for record in log.read_raw(partition):
                    if (partition, record.position.offset) == (victim, 5):
                        continue
                    producer.send(
                        target.topic,
                        value=record.value,
                        key=record.key,
                        headers=list(record.headers),
                        partition=partition,
                        timestamp_ms=record.timestamp // 1000,
                    )
            producer.flush()
            producer.close()
            # The copy now stands where the sealed topic stood: verify it against its seals.
            reports = {r.partition: r for r in verify(target, log.topic, store)}
    assert all(r.ok for p, r in reports.items() if p != victim)
    divergence = reports[victim].divergence
    assert divergence is not None
    assert (divergence.position, divergence.kind) == (5, "deleted")
    assert "moved down by 1" in divergence.detail


def test_parallel_sealing_gives_the_chain_of_serial_sealing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(audit.reader, "_SPAN", 37)  # many spans, several per worker
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events())
        serial, parallel = AuditStore(tmp_path / "a.db"), AuditStore(tmp_path / "b.db")
        seal(log, "embedded", serial, workers=1)
        seal(log, "embedded", parallel, workers=2)
        (one,) = serial.checkpoints("embedded")
        (two,) = parallel.checkpoints("embedded")
        assert (one.position, one.count, one.chain) == (two.position, two.count, two.chain)
        assert list(serial.sealed("embedded", 0, -1)) == list(parallel.sealed("embedded", 0, -1))
        for workers in (1, 2):
            (report,) = verify(log, "embedded", parallel, workers=workers)
            assert report.ok
