"""The at-scale path (issue 17): projector groups on one PostgreSQL store while members
join and leave, groups larger than the topic, and options a store cannot honour."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
import pytest
from click.testing import CliRunner

from application.wiring import open_log, open_store
from cli import main
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import applied_events, wait_until
from tests.integration.test_kafka_group import assert_views_of_one_process

ROOT = Path(__file__).parents[2]


@pytest.fixture
def pg_store(postgres_url: str) -> Iterator[Callable[[], str]]:
    """Makes URLs of fresh PostgreSQL view stores (a schema each, dropped afterwards)."""
    schemas: list[str] = []

    def make() -> str:
        schemas.append(f"t_{uuid.uuid4().hex[:16]}")
        return f"{postgres_url}?schema={schemas[-1]}"

    yield make
    with psycopg.connect(postgres_url, autocommit=True) as connection:
        for schema in schemas:
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


def member(
    settings: Settings,
    group: str,
    name: str,
    batch_size: int = 300,
    reader: str = "kafka-python",
) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LEDGER_KAFKA_CLIENT_ID": name,
        "LEDGER_KAFKA_READER": reader,
    }
    command = [sys.executable, "-m", "cli", "project", "run", "--follow", "--group", group]
    return subprocess.Popen(
        [*command, "--batch-size", str(batch_size), "--workers", "1", "--json"],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def stop(process: subprocess.Popen[str], how: signal.Signals) -> tuple[str, str]:
    process.send_signal(how)
    return process.communicate(timeout=60)


def test_three_members_joining_and_leaving_count_every_event_once_on_postgres(
    kafka_settings: Callable[[], Settings], pg_store: Callable[[], str]
) -> None:
    """Three projector processes of one group on one PostgreSQL store; while events keep
    arriving, members join, one is killed (SIGKILL: no goodbye), one leaves politely and
    joins again. Every event counts once: the views equal one process's. The killed
    member and one other read with confluent-kafka, the others with kafka-python: a
    group mixes both clients."""
    base = kafka_settings().model_copy(update={"kafka_partitions": 6})
    settings = base.model_copy(update={"store": pg_store()})
    clean = base.model_copy(update={"store": pg_store()})
    events = [parse_event(d) for d in generated(600, 200, seed=17)]
    parts = [events[i::4] for i in range(4)]
    group = f"views-{uuid.uuid4().hex[:8]}"
    with open_log(settings) as log:
        log.append(parts[0])
    a = member(settings, group, "a", reader="confluent-kafka")
    processes = [a]
    try:
        b = member(settings, group, "b")
        processes.append(b)
        with open_log(settings) as log:
            log.append(parts[1])
            log.append(parts[0][:200])  # re-published: counted once
        c = member(settings, group, "c", reader="confluent-kafka")
        processes.append(c)
        assert wait_until(lambda: applied_events(settings) == 2 * len(parts[0]), 90, 0.2)
        with open_log(settings) as log:
            log.append(parts[2])
        time.sleep(0.2)
        a.send_signal(signal.SIGKILL)  # dies holding partitions with unapplied events
        a.communicate(timeout=10)
        out_b, _ = stop(b, signal.SIGTERM)  # leaves politely
        assert b.returncode == 0
        b2 = member(settings, group, "b2")
        processes.append(b2)
        with open_log(settings) as log:
            log.append(parts[3])
        total = len(events)
        assert wait_until(lambda: applied_events(settings) == total, 120, 0.2), (
            f"{applied_events(settings)} of {total} applied"
        )
        reports = [json.loads(out_b.strip().splitlines()[-1])]
        for process in (c, b2):
            out, err = stop(process, signal.SIGTERM)
            assert process.returncode == 0, err
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert sum(r["applied"] for r in reports) <= len(events)
    assert_views_of_one_process(settings, clean)


def test_a_member_joining_while_another_holds_a_big_batch_counts_every_event_once(
    kafka_settings: Callable[[], Settings], pg_store: Callable[[], str]
) -> None:
    """A member catching up fills one big transaction from many polls; a second member
    joining meanwhile makes the first commit the batch in hand before its partitions move
    (inside the rebalance). Every event counts once."""
    base = kafka_settings().model_copy(update={"kafka_partitions": 6})
    settings = base.model_copy(update={"store": pg_store()})
    clean = base.model_copy(update={"store": pg_store()})
    events = [parse_event(d) for d in generated(2000, 365, seed=23)]
    with open_log(settings) as log:
        log.append(events)
    group = f"views-{uuid.uuid4().hex[:8]}"
    first = member(settings, group, "first", batch_size=1_000_000)
    processes = [first]
    try:
        time.sleep(5)  # joined (half the session timeout) and folding its big batch
        second = member(settings, group, "second", batch_size=1_000_000)
        processes.append(second)
        assert wait_until(lambda: applied_events(settings) == len(events), 120, 0.5), (
            f"{applied_events(settings)} of {len(events)} applied"
        )
        for process in processes:
            _out, err = stop(process, signal.SIGTERM)
            assert process.returncode == 0, err
            assert "error" not in err.lower(), err
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.communicate()
    assert_views_of_one_process(settings, clean)


def test_a_group_larger_than_the_topic_is_named_by_status_and_by_the_idle_member(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    base = kafka_settings().model_copy(update={"kafka_partitions": 1})
    settings = base.model_copy(update={"store": f"sqlite:///{tmp_path / 'views.db'}"})
    with open_log(settings) as log:
        log.append([parse_event(d) for d in generated(20, 30, seed=3)])
    group = f"views-{uuid.uuid4().hex[:8]}"
    env = {"LEDGER_LOG": settings.log_url, "LEDGER_STORE": settings.store_url}
    first, second = member(settings, group, "one"), member(settings, group, "two")
    try:

        def described() -> dict[str, object]:
            done = CliRunner().invoke(
                main, ["project", "status", "--json"], env={**env, "LEDGER_GROUP_ID": group}
            )
            found: dict[str, object] = json.loads(done.stdout)["group"]
            return found

        def settled() -> bool:  # both members in, the assignment handed out
            found = described()
            return len(found["members"]) == 2 and found["state"] == "Stable"  # type: ignore[arg-type]

        assert wait_until(settled, 60, 0.5)
        time.sleep(1)  # the idle member's (empty) assignment reaches it
        warnings = described()["warnings"]
        assert warnings
        assert "2 members but the topic has 1 partition" in str(warnings[0])
        text = CliRunner().invoke(
            main, ["project", "status"], env={**env, "LEDGER_GROUP_ID": group}
        )
        assert "hold no partition and stay idle" in text.stderr
    finally:
        errors = []
        for process in (first, second):
            process.send_signal(signal.SIGTERM)
            errors.append(process.communicate(timeout=60)[1])
    assert any("holds no partition" in err for err in errors), errors


def test_worker_processes_on_a_postgres_store_give_the_views_of_one_process(
    kafka_settings: Callable[[], Settings], pg_store: Callable[[], str]
) -> None:
    """``--workers 2`` with a PostgreSQL store: the workers read the views in PostgreSQL,
    stage their rows in SQLite files, and the projector copies them in with the positions."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": pg_store()})
    clean = base.model_copy(update={"store": pg_store()})
    events = [parse_event(d) for d in generated(200, 200, seed=9)]
    with open_log(settings) as log:
        log.append(events)
        log.append(events[:300])  # re-published: counted once
    env = {"LEDGER_LOG": settings.log_url, "LEDGER_STORE": settings.store_url}
    done = CliRunner().invoke(
        main, ["project", "run", "--workers", "2", "--batch-size", "1500", "--json"], env=env
    )
    assert done.exit_code == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["workers"] == 2
    assert (report["applied"], report["duplicates"]) == (len(events), 300)
    assert_views_of_one_process(settings, clean)


def test_copy_moves_the_log_to_a_topic_with_more_partitions_and_the_views_match(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    """The procedure of docs/kafka.md, "More partitions": copy into a new topic with more
    partitions (every customer's events in one partition, in order), copy again from
    the positions the first copy gave (nothing twice), build its views: the same views."""
    old = kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path / 'old.db'}"})
    new = kafka_settings().model_copy(
        update={"store": f"sqlite:///{tmp_path / 'new.db'}", "kafka_partitions": 8}
    )
    events = [parse_event(d) for d in generated(50, 100, seed=8)]
    with open_log(old) as log:
        log.append(events[:300])
    env = {"LEDGER_LOG": old.log_url, "LEDGER_STORE": old.store_url}
    first = CliRunner().invoke(main, ["copy", new.log_url, "--partitions", "8", "--json"], env=env)
    assert first.exit_code == 0, first.stderr
    done = json.loads(first.stdout)
    assert (done["read"], done["appended"], done["duplicates"]) == (300, 300, 0)
    with open_log(old) as log:
        log.append(events[300:])  # publishers still write to the old topic
    again = CliRunner().invoke(
        main,
        ["copy", new.log_url, "--from-position", done["next_positions"], "--json"],
        env=env,
    )
    assert again.exit_code == 0, again.stderr
    assert json.loads(again.stdout)["appended"] == len(events) - 300
    with open_log(new) as log:
        assert len(log.partitions()) == 8
        by_customer: dict[str, set[int]] = {}
        for record in log.read():
            assert record.event is not None
            by_customer.setdefault(record.event.subject, set()).add(record.position.partition)
    assert all(len(found) == 1 for found in by_customer.values())
    for settings in (old, new):
        run = CliRunner().invoke(
            main,
            ["project", "run", "--workers", "1"],
            env={"LEDGER_LOG": settings.log_url, "LEDGER_STORE": settings.store_url},
        )
        assert run.exit_code == 0, run.stderr
    old_store, new_store = open_store(old), open_store(new)
    try:
        assert old_store.dump() == new_store.dump()
    finally:
        old_store.close()
        new_store.close()
