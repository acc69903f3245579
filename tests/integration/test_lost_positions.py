"""Fault tests: views whose stored positions no longer fit their log (a replaced embedded log
file, a Kafka topic deleted and recreated, records deleted under a position) stop every
projector with an error naming the partition, both positions and the remedy; nothing is
skipped, `project status` shows it, and `project reset` / `project rebuild` recover."""

from __future__ import annotations

import shutil
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic

from application.wiring import open_log, open_store
from cli import main
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.errors import LogReplaced, PositionBeyondEnd, RecordsDeleted, TopicForgets
from ledger.generate import generated
from ledger.settings import KafkaLogTarget, Settings, parse_log_url
from tests.conftest import wait_until


def ledger(settings: Settings, *args: str) -> Result:
    """Run the CLI against ``settings``' log and store."""
    env = {"LEDGER_STORE": settings.store_url, "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000"}
    return CliRunner().invoke(
        main, ["--log", settings.log_url, *args], env=env, catch_exceptions=False
    )


def views(settings: Settings) -> dict[str, list[tuple[Any, ...]]]:
    store = open_store(settings)
    try:
        return store.dump()
    finally:
        store.close()


def fresh_projection(settings: Settings, tmp_path: Path) -> dict[str, list[tuple[Any, ...]]]:
    """The views one projector builds from the log of ``settings`` into an empty store."""
    clean = settings.model_copy(update={"store": f"sqlite:///{tmp_path / 'clean'}.db"})
    with open_log(clean) as log:
        store = open_store(clean)
        try:
            Projector(log, store, workers=1).catch_up()
            return store.dump()
        finally:
            store.close()


def project(settings: Settings) -> None:
    """Catch the views up in this process (no consumer-group join: faster)."""
    with open_log(settings) as log:
        store = open_store(settings)
        try:
            Projector(log, store, workers=1).catch_up()
        finally:
            store.close()


def append(settings: Settings, customers: int, days: int, seed: int) -> int:
    events = [parse_event(d) for d in generated(customers, days, seed=seed)]
    with open_log(settings) as log:
        log.append(events)
    return len(events)


def assert_one_line_naming(result: Result, *words: str) -> None:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    for word in words:
        assert word in line, line


def test_a_replaced_embedded_log_stops_the_projector_until_reset(tmp_path: Path) -> None:
    settings = Settings(
        log=f"sqlite:///{tmp_path / 'ledger.db'}", store=f"sqlite:///{tmp_path / 'views.db'}"
    )
    first = append(settings, 20, 60, seed=1)
    assert ledger(settings, "project", "run").exit_code == 0
    before = views(settings)
    other = Settings(log=f"sqlite:///{tmp_path / 'other.db'}")
    second = append(other, 5, 10, seed=2)
    assert second < first
    shutil.copy(tmp_path / "other.db", tmp_path / "ledger.db")  # the file is swapped

    stopped = ledger(settings, "project", "run", "--workers", "1")
    assert_one_line_naming(
        stopped,
        "partition 0",
        f"stored position {first + 1}",
        f"({second + 1})",
        "ledger project rebuild",
        "ledger project reset --yes",
    )
    assert_one_line_naming(ledger(settings, "project", "run", "--workers", "2"), "beyond the end")
    with open_log(settings) as log:
        store = open_store(settings)
        with pytest.raises(PositionBeyondEnd):  # a follower stops too, it does not wait
            Projector(log, store).follow(threading.Event(), poll_seconds=0.01)
        store.close()
    assert views(settings) == before, "nothing may be applied from the replaced log"

    status = ledger(settings, "project", "status", "--json")
    assert status.exit_code == 1
    [partition] = orjson.loads(status.stdout)["partitions"]
    assert "beyond the end" in partition["error"]
    text = ledger(settings, "project", "status")
    assert text.exit_code == 1
    assert "ERROR" in text.stdout
    assert "beyond the end" in text.stderr

    assert_one_line_naming(ledger(settings, "project", "reset"), "--yes")
    assert views(settings) == before
    assert ledger(settings, "project", "reset", "--yes").exit_code == 0
    assert ledger(settings, "project", "run").exit_code == 0
    assert views(settings) == fresh_projection(settings, tmp_path)
    assert ledger(settings, "project", "status").exit_code == 0


def test_records_deleted_under_a_stored_position_stop_the_projector(tmp_path: Path) -> None:
    settings = Settings(
        log=f"sqlite:///{tmp_path / 'ledger.db'}", store=f"sqlite:///{tmp_path / 'views.db'}"
    )
    first = append(settings, 10, 30, seed=3)
    assert ledger(settings, "project", "run").exit_code == 0
    append(settings, 10, 30, seed=4)
    with sqlite3.connect(tmp_path / "ledger.db") as db:  # the oldest unread records go
        db.execute("DELETE FROM touchpoints WHERE position <= ?", (first + 5,))
    with open_log(settings) as log:
        store = open_store(settings)
        with pytest.raises(RecordsDeleted, match=rf"records {first + 1}\.\.{first + 5} "):
            Projector(log, store, workers=1).catch_up()
        store.close()
    status = orjson.loads(ledger(settings, "project", "status", "--json").stdout)
    assert any("were deleted" in error for error in status["errors"])


def delete_topic(settings: Settings) -> None:
    target = parse_log_url(settings.log_url)
    assert isinstance(target, KafkaLogTarget)
    admin = KafkaAdminClient(bootstrap_servers=list(target.bootstrap_servers))
    try:
        admin.delete_topics([target.topic])
        assert wait_until(lambda: target.topic not in admin.list_topics(), 10)
    finally:
        admin.close()


def test_a_recreated_topic_stops_every_kafka_projector_until_rebuilt(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    settings = kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path / 'views'}.db"})
    append(settings, 40, 60, seed=5)
    project(settings)
    before = views(settings)
    delete_topic(settings)
    append(settings, 6, 10, seed=6)  # the ledger creates the topic again: fewer events

    stopped = ledger(settings, "project", "run")  # a consumer-group member
    assert_one_line_naming(stopped, "Kafka topic", "partition", "beyond the end", "rebuild")
    for workers in (1, 2):  # one process, and worker processes
        with open_log(settings) as log:
            store = open_store(settings)
            with pytest.raises(PositionBeyondEnd):
                Projector(log, store, workers=workers).catch_up()
            store.close()
    assert views(settings) == before, "nothing may be applied from the recreated topic"
    status = ledger(settings, "project", "status", "--json")
    assert status.exit_code == 1
    assert orjson.loads(status.stdout)["errors"]

    assert ledger(settings, "project", "rebuild").exit_code == 0
    assert views(settings) == fresh_projection(settings, tmp_path)
    assert ledger(settings, "project", "status").exit_code == 0


def test_a_recreated_topic_holding_more_events_than_the_views_counted_is_told_apart(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    """Every partition of the new topic is longer than the views' positions: offsets alone
    would pass it, the topic id does not."""
    settings = kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path / 'views'}.db"})
    append(settings, 8, 10, seed=9)
    project(settings)
    before = views(settings)
    delete_topic(settings)
    append(settings, 60, 90, seed=10)
    with open_log(settings) as log:
        store = open_store(settings)
        positions = store.positions(log.partitions())
        ends = log.end_positions()
        assert all(ends[p] > position for p, position in positions.items())
        with pytest.raises(LogReplaced, match="built from another log"):
            Projector(log, store, workers=1).catch_up()
        store.close()
    assert_one_line_naming(ledger(settings, "project", "run"), "another log", "rebuild")
    assert views(settings) == before
    status = ledger(settings, "project", "status", "--json")
    assert status.exit_code == 1
    assert "another log" in orjson.loads(status.stdout)["errors"][0]
    assert ledger(settings, "project", "reset", "--yes").exit_code == 0
    project(settings)
    assert views(settings) == fresh_projection(settings, tmp_path)


def test_a_replaced_embedded_log_holding_more_events_is_told_apart(tmp_path: Path) -> None:
    settings = Settings(
        log=f"sqlite:///{tmp_path / 'ledger.db'}", store=f"sqlite:///{tmp_path / 'views.db'}"
    )
    append(settings, 5, 10, seed=11)
    assert ledger(settings, "project", "run").exit_code == 0
    other = Settings(log=f"sqlite:///{tmp_path / 'other.db'}")
    append(other, 20, 60, seed=12)
    shutil.copy(tmp_path / "other.db", tmp_path / "ledger.db")
    assert_one_line_naming(ledger(settings, "project", "run"), "another log", "first event")
    assert ledger(settings, "project", "rebuild").exit_code == 0
    assert views(settings) == fresh_projection(settings, tmp_path)
    assert ledger(settings, "project", "run").exit_code == 0


def topic_config(settings: Settings) -> dict[str, str]:
    target = parse_log_url(settings.log_url)
    assert isinstance(target, KafkaLogTarget)
    admin = KafkaAdminClient(bootstrap_servers=list(target.bootstrap_servers))
    try:
        resource = ConfigResource(ConfigResourceType.TOPIC, target.topic)
        found = admin.describe_configs([resource], config_filter="all")["topic"][target.topic]
        return {name: entry["value"] for name, entry in found.items()}
    finally:
        admin.close()


def test_the_ledger_creates_its_topic_to_keep_every_event(
    kafka_settings: Callable[[], Settings],
) -> None:
    settings = kafka_settings()
    append(settings, 2, 2, seed=7)
    config = topic_config(settings)
    assert {name: config.get(name) for name in ("retention.ms", "retention.bytes")} == {
        "retention.ms": "-1",
        "retention.bytes": "-1",
    }
    assert config.get("cleanup.policy") == "delete"
    assert config.get("min.insync.replicas") == "1"  # replication factor 1 on the test broker


def test_a_topic_that_forgets_refuses_writes_unless_allowed(
    kafka_settings: Callable[[], Settings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = kafka_settings()
    target = parse_log_url(settings.log_url)
    assert isinstance(target, KafkaLogTarget)
    admin = KafkaAdminClient(bootstrap_servers=list(target.bootstrap_servers))
    week = {"retention.ms": "604800000", "cleanup.policy": "delete"}
    admin.create_topics([NewTopic(target.topic, 2, 1, topic_configs=week)])
    admin.close()

    refused = ledger(settings, "generate", "--customers", "3", "--days", "3")
    assert_one_line_naming(
        refused, "retention.ms=604800000 (7 days)", "LEDGER_KAFKA_ALLOW_FINITE_RETENTION"
    )
    with open_log(settings) as log:
        log.partitions()  # read first (a warning), then write: still refused
        with pytest.raises(TopicForgets):
            log.append([parse_event(d) for d in generated(2, 2, seed=8)])
        assert log.end_positions() == {0: 0, 1: 0}, "nothing may be written"

    allowed = settings.model_copy(update={"kafka_allow_finite_retention": True})
    with caplog.at_level("WARNING", logger="ledger"):
        written = append(allowed, 2, 2, seed=8)
    assert "does not keep every event: retention.ms=604800000" in caplog.text
    read = ledger(settings, "replay", "--json")  # reading warns, and reads
    assert read.exit_code == 0
    assert len(read.stdout.splitlines()) == written
    assert "warning: Kafka topic" in read.stderr
    assert "retention.ms=604800000" in read.stderr
