"""Several projector processes in one Kafka consumer group: every event counted once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from application.wiring import open_log, open_store
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import StoreUrlFactory, applied_events, wait_until

ROOT = Path(__file__).parents[2]


def assert_views_of_one_process(settings: Settings, clean: Settings) -> None:
    """The views of ``settings`` equal those one projector process builds into ``clean``
    from the same log."""
    with open_log(clean) as log:
        store = open_store(clean)
        Projector(log, store, workers=1).catch_up()
        expected = store.dump()
        store.close()
    grouped = open_store(settings)
    try:
        assert grouped.dump() == expected
    finally:
        grouped.close()


def member(settings: Settings, group: str, reader: str = "kafka-python") -> subprocess.Popen[str]:
    """A ``project run --follow`` process in ``group``, reading with the client ``reader``
    (members of both clients share groups: ledger/confluent_reader.py)."""
    env = {
        **os.environ,
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LEDGER_KAFKA_READER": reader,
    }
    command = [
        sys.executable,
        "-m",
        "cli",
        "project",
        "run",
        "--follow",
        "--group",
        group,
        "--batch-size",
        "50",
        "--json",
    ]
    return subprocess.Popen(
        command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def test_two_members_one_killed_midway_count_every_event_exactly_once(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    """One member reads with kafka-python, the other with confluent-kafka; the first is
    killed with events of its partitions unapplied, and the second takes them over."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": store_url("group")})
    clean = base.model_copy(update={"store": store_url("clean")})
    events = [parse_event(d) for d in generated(400, 200, seed=12)]
    half = len(events) // 2
    with open_log(settings) as log:
        log.append(events[:half])
    group = f"views-{uuid.uuid4().hex[:8]}"
    first, second = member(settings, group), member(settings, group, "confluent-kafka")
    try:
        assert wait_until(lambda: applied_events(settings) == half, 60, 0.2), (
            "the group never caught up"
        )
        with open_log(settings) as log:
            log.append(events[half:])
        time.sleep(0.05)  # its partitions now hold events it has not applied
        first.send_signal(signal.SIGKILL)  # no goodbye: its partitions must move
        first.communicate(timeout=10)
        assert wait_until(lambda: applied_events(settings) == len(events), 90, 0.2), (
            f"{applied_events(settings)} of {len(events)} applied after a member died"
        )
        second.send_signal(signal.SIGTERM)  # finishes the batch in hand, leaves the group
        out, err = second.communicate(timeout=30)
        assert second.returncode == 0, err
    finally:
        for process in (first, second):
            if process.poll() is None:
                process.kill()
                process.communicate()
    report = json.loads(out.strip().splitlines()[-1])
    assert 0 < report["applied"] < len(events), "both members must have done part of the work"
    assert_views_of_one_process(settings, clean)


def test_a_member_catches_its_backlog_up_with_worker_processes(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    """A group member with a SQLite store folds the backlog of its partitions with worker
    processes, then goes on as a member: the views of a one-process run. Member and
    workers read with confluent-kafka (tests/integration/test_scale.py has kafka-python's
    workers)."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": f"sqlite:///{tmp_path / 'group'}.db"})
    clean = base.model_copy(update={"store": f"sqlite:///{tmp_path / 'clean'}.db"})
    events = [parse_event(d) for d in generated(300, 200, seed=21)]
    with open_log(settings) as log:
        log.append(events)
        log.append(events[:500])  # re-published: counted once
    env = {
        **os.environ,
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LEDGER_KAFKA_READER": "confluent-kafka",
    }
    command = [sys.executable, "-m", "cli", "project", "run", "--group", "g1"]
    done = subprocess.run(
        [*command, "--workers", "2", "--batch-size", "2000", "--json"],
        check=False,
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["workers"] == 2
    assert (report["applied"], report["duplicates"]) == (len(events), 500)
    assert_views_of_one_process(settings, clean)
