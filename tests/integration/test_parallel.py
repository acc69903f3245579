"""Catch-up with worker processes (consumers.shards) gives exactly what one process gives.

Worker processes fold shares of each batch and stage its rows; the projector commits the
staged rows with the positions in one transaction of a SQLite view store. Every test
compares with a one-process run of the same log, on the embedded log and on Kafka.
"""

from __future__ import annotations

import itertools
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from functools import partial
from pathlib import Path
from typing import Any

import orjson
import pytest

from application.wiring import open_log, open_store
from consumers.folding import PoisonEvent, RunReport
from consumers.projector import Projector, rebuild
from consumers.shards import WorkerPool, WorkerSpec
from consumers.store import SQLiteViewStore, Staging
from ledger.codec import parse_event
from ledger.errors import LogUnavailable
from ledger.events import Touchpoint
from ledger.generate import generated
from ledger.kafka_log import KafkaLog, partition_for
from ledger.settings import Settings
from ledger.sqlite_log import Span, SQLiteLog
from tests.builders import touchpoint
from tests.conftest import wait_until
from tests.integration.test_projector import (
    at_once,
    dump,
    kafka_projector,
    kill_until_it_finishes,
    republished,
)

VISIT = {"channel": "store"}


def history(customers: int = 300, days: int = 200, seed: int = 5) -> list[Touchpoint]:
    return [parse_event(d) for d in generated(customers, days, seed)]


def embedded(tmp_path: Path, name: str, events: list[Touchpoint]) -> Settings:
    settings = Settings(
        log=f"sqlite:///{tmp_path / name}-log.db", store=f"sqlite:///{tmp_path / name}-views.db"
    )
    with open_log(settings) as log:
        for start in range(0, len(events), 5_000):
            log.append(events[start : start + 5_000])
    return settings


def project(settings: Settings, **options: Any) -> tuple[RunReport, dict[str, Any]]:
    """Catch the views of ``settings`` up; the report, and everything the store holds."""
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        try:
            report = Projector(log, store, **options).catch_up()
            return report, state_of(store, log.partitions())
        finally:
            store.close()


def state_of(store: Any, partitions: list[int]) -> dict[str, Any]:
    counts = store.counts()
    return {
        **store.dump(),
        "dead_letters": [(d.partition, d.offset, d.raw, d.reason) for d in store.dead_letters()],
        "applied_events": counts["applied_events"],
        "positions": store.positions(partitions),
        "newest": {p: t for p, (t, _, _) in store.progress().items()},
    }


def parallel(**options: Any) -> dict[str, Any]:
    return {"workers": 2, "parallel_min": 0, **options}


def test_shards_split_the_embedded_log_by_customer(tmp_path: Path) -> None:
    events = history(customers=200, days=60)
    # One-character and punctuation ids land in exactly one shard too (and, below, a
    # subject edited into a number and one into non-ASCII text).
    odd = ["7", "~", "a!", "C0000007"]
    events += [touchpoint("touchpoint.visit", "2025-03-01T10:00:00Z", VISIT, c) for c in odd]
    log = SQLiteLog(tmp_path / "log.db")
    try:
        log.append(events)
        with sqlite3.connect(tmp_path / "log.db") as connection:
            connection.execute("UPDATE touchpoints SET subject = 42 WHERE position = 3")
            connection.execute("UPDATE touchpoints SET subject = 'Zoë' WHERE position = 4")
        everything = {r.position.offset: r.subject for r in log.read_stored()}
        for shards in (1, 2, 3):
            seen: Counter[int] = Counter()
            owner: dict[str, int] = {}
            for shard in range(shards):
                span = Span(None, shard, shards)
                stored = list(log.read_stored({}, span))
                validated = list(log.read_span({}, span))
                assert [r.position for r in stored] == [r.position for r in validated]
                seen.update(r.position.offset for r in stored)
                for record in stored:
                    assert owner.setdefault(record.subject, shard) == shard
            assert seen == Counter(everything.keys()), f"{shards} shards: rows lost or read twice"
            if shards > 1:
                assert len(set(owner.values())) == shards  # each shard gets customers
        half = len(everything) // 2
        ended = [r.position.offset for r in log.read_stored({0: 10}, Span(half, 1, 2))]
        assert ended
        assert min(ended) >= 10
        assert max(ended) < half
    finally:
        log.close()


@pytest.mark.parametrize("batch_size", [97, 100_000], ids=["many-batches", "one-batch"])
def test_parallel_catch_up_gives_the_views_of_one_process(tmp_path: Path, batch_size: int) -> None:
    events = history()
    one = embedded(tmp_path, "one", events)
    two = embedded(tmp_path, "two", events)
    serial, expected = project(one, workers=1, batch_size=batch_size)
    report, found = project(two, **parallel(batch_size=batch_size))
    assert (report.workers, serial.workers) == (2, 1)
    assert found == expected
    assert (
        (report.records, report.applied) == (serial.records, serial.applied) == (len(events),) * 2
    )
    assert report.batches == serial.batches
    assert not list(tmp_path.glob(".*staging*")), "staging files left behind"


def test_parallel_catch_up_goes_on_from_where_the_views_stand(tmp_path: Path) -> None:
    """Some events projected by one process, the rest by workers (loading the stored
    profiles), then more by one process again: the views of one run."""
    events = history()
    one = embedded(tmp_path, "one", events)
    project(one, workers=1)
    expected = project(one, workers=1)[1]
    mixed = embedded(tmp_path, "mixed", events[:3000])
    project(mixed, workers=1, batch_size=700)
    with open_log(mixed) as log:
        log.append(events[3000:6000])
    report = project(mixed, **parallel(batch_size=500))[0]
    assert report.workers == 2
    with open_log(mixed) as log:
        log.append(events[6000:])
    found = project(mixed, workers=1)[1]
    assert found == expected


def test_parallel_rebuild_swaps_in_the_views_of_one_process(tmp_path: Path) -> None:
    events = history()
    settings = embedded(tmp_path, "r", events)
    expected = project(settings, workers=1)[1]
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        report = rebuild(log, store, batch_size=1_000, workers=2, parallel_min=0)
        found = state_of(store, log.partitions())
        store.close()
    assert report.workers == 2
    assert found == expected
    path = tmp_path / "r-views.db"
    with sqlite3.connect(path) as connection:
        names = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    assert {"profiles_last_purchase", "contact_slots_slot"} <= names  # indexes rebuilt
    assert not [n for n in names if "rebuild" in n]


def break_records(path: Path, positions: dict[int, bytes]) -> None:
    with sqlite3.connect(path) as connection:
        for position, state in positions.items():
            connection.execute(
                "UPDATE touchpoints SET state = ? WHERE position = ?", (state, position)
            )


def test_workers_park_poison_records_with_the_reasons_one_process_gives(tmp_path: Path) -> None:
    events = history(customers=100)
    broken = {5: b"\x00not json", len(events) // 2: b'{"id": 1}', len(events) - 1: b"[]"}
    one, two = embedded(tmp_path, "one", events), embedded(tmp_path, "two", events)
    for settings in (one, two):
        break_records(Path(settings.log_url.removeprefix("sqlite:///")), broken)
    serial, expected = project(one, workers=1, batch_size=1000)
    report, found = project(two, **parallel(batch_size=1000))
    assert found == expected
    assert [d[1] for d in found["dead_letters"]] == sorted(broken)
    assert report.parked == serial.parked == len(broken)
    assert report.applied == len(events) - len(broken)


def test_on_error_stop_commits_nothing_of_the_batch_holding_the_poison(tmp_path: Path) -> None:
    events = history(customers=200)
    assert len(events) > 2500
    settings = embedded(tmp_path, "stop", events)
    break_records(Path(settings.log_url.removeprefix("sqlite:///")), {2500: b"\x00not json"})
    with open_log(settings, create=False) as log:
        store = open_store(settings)
        with pytest.raises(PoisonEvent, match=r"record at 0:2500: \(event\): not valid JSON"):
            Projector(log, store, on_error="stop", **parallel(batch_size=1000)).catch_up()
        assert store.positions([0]) == {0: 2001}  # the batches before it, not its own
        assert store.dead_letters() == []
        store.close()


def test_two_parallel_projectors_at_once_count_every_event_once(tmp_path: Path) -> None:
    events = history()
    settings, clean = embedded(tmp_path, "twice", events), embedded(tmp_path, "once", events)
    expected = project(clean, workers=1)[1]
    reports: list[RunReport] = []

    def run() -> None:
        reports.append(project(settings, **parallel(batch_size=300))[0])

    at_once(run, run)
    assert len(reports) == 2
    assert sum(r.applied for r in reports) == len(events)
    assert project(settings, workers=1)[1] == expected


def test_projector_killed_with_its_workers_counts_every_event_once(tmp_path: Path) -> None:
    """The CLI folding with two worker processes, SIGKILLed at random moments (its
    workers then find their projector gone and stop) until a run ends on its own."""
    events = [parse_event(d) for d in itertools.islice(generated(12_000, 365, seed=17), 200_000)]
    clean, killed = embedded(tmp_path, "clean", events), embedded(tmp_path, "killed", events)
    expected = project(clean, workers=1, batch_size=5000)[1]
    env = {
        **os.environ,
        "LEDGER_LOG": killed.log_url,
        "LEDGER_STORE": killed.store_url,
        "LEDGER_WORKERS": "2",
    }
    command = [sys.executable, "-m", "cli", "project", "run", "--batch-size", "20000"]

    def start(store: str = killed.store_url) -> subprocess.Popen[bytes]:
        return subprocess.Popen(
            command,
            env={**env, "LEDGER_STORE": store},
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            cwd=Path(__file__).parents[2],
        )

    scratch = f"sqlite:///{tmp_path / 'scratch'}-views.db"
    kills = kill_until_it_finishes(start, random.Random(5), lambda: start(scratch))
    assert kills >= 3, f"only {kills} kills: too few events to interrupt the run"
    found = project(killed, workers=1)[1]
    assert found == expected
    assert not list(tmp_path.glob(".*staging*")), "killed runs' staging files left behind"


def test_ctrl_c_to_the_process_group_finishes_the_batch_in_hand(tmp_path: Path) -> None:
    """SIGINT to the projector and its workers at once (Ctrl-C in a terminal): the workers
    leave it to the projector, which commits the batch in hand and exits 0; a later run
    completes the views of a one-process run."""
    events = [parse_event(d) for d in itertools.islice(generated(6000, 365, seed=3), 120_000)]
    settings, clean = embedded(tmp_path, "int", events), embedded(tmp_path, "clean", events)
    expected = project(clean, workers=1)[1]
    env = {**os.environ, "LEDGER_LOG": settings.log_url, "LEDGER_STORE": settings.store_url}
    command = [sys.executable, "-m", "cli", "project", "run", "--follow", "--workers", "2"]
    process = subprocess.Popen(
        [*command, "--batch-size", "10000", "--json"],
        env=env,
        cwd=Path(__file__).parents[2],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,  # its own process group, as a terminal's job
    )
    store = open_store(settings)
    try:
        assert wait_until(lambda: bool(store.positions([0])), 60, 0.02)  # a batch is in
    finally:
        store.close()
    os.killpg(process.pid, signal.SIGINT)
    out, err = process.communicate(timeout=60)
    assert process.returncode == 0, err
    report = json.loads(out.strip().splitlines()[-1])
    assert report["workers"] == 2
    assert 0 < report["applied"] <= len(events)
    assert project(settings, workers=1)[1] == expected


def test_a_worker_that_cannot_start_says_why(tmp_path: Path) -> None:
    store = SQLiteViewStore(tmp_path / "views.db", "embedded")
    assert store.staging is not None
    spec = WorkerSpec(
        partial(SQLiteLog, tmp_path / "missing.db", create=False),
        store.staging,
        shard=0,
        shards=1,
        partitions=(0,),
        dedupe=False,
        validate=False,
    )
    pool = WorkerPool([spec], store.staging.new_directory())
    try:
        # An unreachable log is LogUnavailable, as in the projector: a follower waits on it.
        with pytest.raises(LogUnavailable, match="projector worker 0: no ledger at"):
            pool.receive()
    finally:
        pool.close()
        store.close()


def test_staging_left_by_a_killed_run_is_removed_when_the_store_opens(tmp_path: Path) -> None:
    finished = subprocess.Popen([sys.executable, "-c", "pass"])
    finished.wait()
    staging = Staging(tmp_path / "views.db", "")
    dead = tmp_path / f".views.db.staging-{finished.pid}-abc"
    mine = staging.new_directory()
    dead.mkdir()
    (dead / "worker0-0.db").write_bytes(b"x")
    SQLiteViewStore(tmp_path / "views.db", "embedded").close()
    assert not dead.exists()
    assert mine.exists()  # a running projector's (this process's) staging stays


# -- Kafka: shares are partitions --------------------------------------------------------


def kafka_pair(
    kafka_settings: Any, tmp_path: Path, events: list[Touchpoint], repeat: int = 0
) -> tuple[Settings, Settings]:
    """One topic holding ``events`` (and the first ``repeat`` of them published again),
    with two fresh SQLite view stores."""
    base = kafka_settings()
    with open_log(base) as log:
        log.append(events)
        if repeat:
            log.append(events[:repeat])
    one, two = (
        base.model_copy(update={"store": f"sqlite:///{tmp_path / name}-views.db"})
        for name in ("one", "two")
    )
    return one, two


def test_kafka_parallel_catch_up_with_republished_events_gives_one_process_views(
    kafka_settings: Any, tmp_path: Path
) -> None:
    events = history(customers=150, days=120)
    one, two = kafka_pair(kafka_settings, tmp_path, events, repeat=800)
    serial, expected = project(one, workers=1, batch_size=600)
    report, found = project(two, **parallel(batch_size=600))
    assert report.workers == 2
    assert found == expected
    assert (report.applied, report.duplicates) == (serial.applied, serial.duplicates)
    assert (report.applied, report.duplicates) == (len(events), 800)


def test_an_id_published_for_two_customers_counts_once(kafka_settings: Any, tmp_path: Path) -> None:
    """The same event id under two customers' keys lands in partitions that different
    workers fold: their batch cannot commit, and the projector goes on in one process,
    which applies the id once and parks the other copy as a conflict (another customer)."""
    events = history(customers=80, days=60)
    customers = sorted({e.subject for e in events})
    first = next(c for c in customers if partition_for(c, 4) in (0, 2))  # worker 0
    second = next(c for c in customers if partition_for(c, 4) in (1, 3))  # worker 1
    at = "2025-02-01T09:00:00Z"
    shared = [
        touchpoint("touchpoint.visit", at, VISIT, first, event_id="shared-1"),
        touchpoint("touchpoint.visit", at, VISIT, second, event_id="shared-1"),
    ]
    one, _ = kafka_pair(kafka_settings, tmp_path, [*events, shared[0]])
    with open_log(one) as log:
        log.append([shared[1]])  # in one batch, the log itself would refuse it
    with open_log(one, create=False) as log:
        assert isinstance(log, KafkaLog)
        store = open_store(one)
        projector = Projector(log, store, **parallel(batch_size=100_000))
        report = projector.catch_up()
        profiles = {c: store.profile(c) for c in (first, second)}
        store.close()
    assert projector.workers == 1  # fell back to one process
    assert (report.applied, report.duplicates, report.parked) == (len(events) + 1, 0, 1)
    visits = [p.by_type.get("touchpoint.visit", 0) for p in profiles.values() if p is not None]
    expected_visits = [
        sum(1 for e in events if e.subject == c and e.type == "touchpoint.visit")
        for c in (first, second)
    ]
    assert sorted(v - e for v, e in zip(visits, expected_visits, strict=True)) == [0, 1]


def test_kafka_projector_killed_with_its_workers_counts_republished_events_once(
    kafka_settings: Any, tmp_path: Path
) -> None:
    """Re-published events, two worker processes (two partitions each), and the projector
    SIGKILLed again and again: the views of the events published once."""
    events = [parse_event(d) for d in itertools.islice(generated(3000, 365, seed=29), 40_000)]
    clean, noisy = (
        kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path / name}-views.db"})
        for name in ("clean", "noisy")
    )
    with open_log(clean) as log:
        log.append(events)
    rng = random.Random(8)
    republished(noisy, events, rng)
    project(clean, workers=1, batch_size=5000)
    scratch = noisy.model_copy(update={"store": f"sqlite:///{tmp_path / 'scratch'}-views.db"})
    kills = kill_until_it_finishes(
        lambda: kafka_projector(noisy, workers=2, batch_size=4000),
        rng,
        lambda: kafka_projector(scratch, workers=2, batch_size=4000),
    )
    assert kills >= 3, f"only {kills} kills: too few records to interrupt the run"
    assert dump(noisy) == dump(clean)


def test_staged_rows_are_what_one_transaction_would_write(tmp_path: Path) -> None:
    """A staging file holds the batch's rows in the views' key order (what lets the commit
    insert them without sorting)."""
    from consumers.store import ViewBatch, write_staged

    batch = ViewBatch()
    batch.contacts.update({("C2", "sms", "outbound", "marketing", 5): 2})
    batch.contacts.update({("C1", "sms", "outbound", "marketing", 9): 1})
    batch.contacts.update({("C1", "email", "outbound", "service", 9): 3})
    batch.contacts.update({("C1", "sms", "outbound", "marketing", 3): 1})
    write_staged(tmp_path / "s.db", batch)
    with sqlite3.connect(tmp_path / "s.db") as connection:
        rows = connection.execute("SELECT customer, slot, channel, n FROM contact_slots").fetchall()
    assert rows == [
        ("C1", 3, "sms", 1),
        ("C1", 9, "email", 3),
        ("C1", 9, "sms", 1),
        ("C2", 5, "sms", 2),
    ]
    assert orjson.dumps(rows)  # plain values, nothing pickled
