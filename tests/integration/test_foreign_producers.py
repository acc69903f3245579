"""Records published by standard tooling (confluent-kafka, librdkafka) by the documented
contract, with the ``traceparent`` and ``partitionkey`` extensions that tracing middleware
and the CloudEvents SDK add: whatever partitioner the producer uses, the views,
``replay --customer`` (extensions included),
``history``, ``--as-of`` answers and fresh decisions are right, and ``project status``
names the records that sit outside their key's murmur2 partition (issue 11, item 1)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import orjson
import pytest
from click.testing import CliRunner
from confluent_kafka import Producer

from application import service
from application.fresh import customer_fresh
from application.wiring import open_log, open_store
from cli import main
from consumers.projector import Projector, rebuild
from consumers.store import SQLiteViewStore
from ledger.codec import event_to_dict, parse_event
from ledger.events import TouchpointEvent
from ledger.generate import generated
from ledger.kafka_binding import STRUCTURED, to_binary
from ledger.kafka_log import KafkaLog, partition_for
from ledger.settings import Settings
from ledger.sqlite_log import SQLiteLog
from projections import profile
from projections.frequency import Window
from tests.conftest import StoreUrlFactory

PARTITIONS = 4


def publish(bootstrap: str, topic: str, events: list[TouchpointEvent], **config: str) -> None:
    """Publish ``events`` with confluent-kafka as a service of another team would:
    ``mode`` binary (ce_ headers) or structured (the whole event as the value)."""
    mode = config.pop("mode")
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, **config})
    failures: list[str] = []

    def delivered(error: object, _message: object) -> None:
        if error is not None:
            failures.append(str(error))

    for event in events:
        # What tracing middleware and the CloudEvents SDK's key mapping add to every record.
        extensions = {"traceparent": traceparent(event.id), "partitionkey": event.subject}
        if mode == "binary":
            key, value, headers = to_binary(event)
            headers += [(f"ce_{name}", text.encode()) for name, text in extensions.items()]
        else:
            key = event.subject.encode()
            value = orjson.dumps({**event_to_dict(event), **extensions})
            headers = [("content-type", STRUCTURED.encode())]
        producer.produce(topic, value, key, headers=headers, on_delivery=delivered)
        producer.poll(0)
    assert producer.flush(30) == 0
    assert not failures


def traceparent(event_id: str) -> str:
    """A W3C trace context for the event (version 00, sampled), as tracing middleware adds."""
    digest = hashlib.sha256(event_id.encode()).hexdigest()
    return f"00-{digest[:32]}-{digest[32:48]}-01"


def misplaced_in(log: KafkaLog) -> Counter[int]:
    """Per partition, the records outside their key's murmur2 partition (from the raw log)."""
    found: Counter[int] = Counter()
    for partition in log.partitions():
        for raw in log.read_raw(partition):
            assert raw.key is not None
            if partition_for(raw.key.decode(), PARTITIONS) != partition:
                found[partition] += 1
    return found


@pytest.mark.parametrize(
    ("partitioner", "mode"),
    [
        ("consistent_random", "binary"),  # librdkafka's default: CRC32, not murmur2
        ("consistent_random", "structured"),
        ("murmur2_random", "binary"),  # the documented setting: Java's placement
    ],
)
def test_any_partitioner_gives_the_same_answers(
    partitioner: str,
    mode: str,
    kafka_settings: Callable[[], Settings],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    events = [parse_event(d) for d in generated(24, 60, seed=11)]
    settings = Settings(
        data_dir=tmp_path,
        log=kafka_settings().log,
        store=f"sqlite:///{tmp_path / 'views.db'}",
        kafka_partitions=PARTITIONS,
    )
    log = open_log(settings)
    assert isinstance(log, KafkaLog)
    log.ensure_topic()
    publish(
        ",".join(log.target.bootstrap_servers),
        log.topic,
        events,
        partitioner=partitioner,
        mode=mode,
    )

    # The same events on the embedded log, projected: what every answer must equal.
    truth_log = SQLiteLog(tmp_path / "truth.db")
    truth_log.append(events)
    truth = SQLiteViewStore(tmp_path / "truth-views.db", "embedded")
    Projector(truth_log, truth, workers=1).catch_up()
    customers = sorted({e.subject for e in events})
    window = Window.rolling(max(e.time for e in events), timedelta(days=30))

    expected_misplaced = misplaced_in(log)
    if partitioner == "murmur2_random":
        assert not expected_misplaced
    else:  # 24 customers, 4 partitions: CRC32 and murmur2 disagree for most of them
        assert sum(expected_misplaced.values()) > len(events) // 3

    store = open_store(settings)
    try:
        # A decision before any projection: the whole customer is in the tail.
        for customer in customers[:6]:
            now = customer_fresh(log, store, customer, window)
            assert now.profile == truth.profile(customer), customer
        report = Projector(log, store, workers=1).catch_up()
        assert report.applied == len(events)
        assert store.dump() == truth.dump()
        found = store.misplaced()
        assert {p: m.count for p, m in found.items()} == dict(expected_misplaced)
        for m in found.values():
            assert partition_for(m.customer, PARTITIONS) == m.home != m.partition
    finally:
        store.close()

    moment = sorted(e.time for e in events)[len(events) // 2]
    for customer in customers:
        as_of = service.history(log, customer, until=moment).profile()
        cut = [e for e in events if e.subject == customer and e.time <= moment]
        assert (as_of is None) == (not cut), customer
        if cut:
            assert as_of is not None
            assert as_of == profile.replay(customer, cut), customer
    log.close()

    monkeypatch.setenv("LEDGER_LOG", settings.log_url)
    monkeypatch.setenv("LEDGER_STORE", settings.store_url)
    monkeypatch.setenv("LEDGER_DATA_DIR", str(tmp_path))
    runner = CliRunner()
    for customer in customers[:8]:
        ids = {e.id for e in events if e.subject == customer}
        replayed = runner.invoke(main, ["replay", "--customer", customer, "--json"])
        assert replayed.exit_code == 0, replayed.output
        replayed_events = [orjson.loads(line) for line in replayed.output.splitlines()]
        assert {e["id"] for e in replayed_events} == ids
        for event in replayed_events:  # the extensions came back with every event
            assert event["traceparent"] == traceparent(event["id"])
            assert event["partitionkey"] == customer
        history = runner.invoke(main, ["history", customer, "--json"])
        assert history.exit_code == 0, history.output
        lines = history.output.splitlines()
        assert {orjson.loads(line)["event"]["id"] for line in lines} == ids
        profiled = runner.invoke(
            main, ["profile", customer, "--as-of", events[-1].time.isoformat(), "--json"]
        )
        assert profiled.exit_code == 0, profiled.output
        expected = orjson.loads(orjson.dumps(truth.profile(customer).to_dict()))  # type: ignore[union-attr]
        shown = orjson.loads(profiled.output)
        assert {key: shown[key] for key in expected} == expected

    status = runner.invoke(main, ["project", "status", "--json"])
    assert status.exit_code == 0, status.output
    misplaced = orjson.loads(status.output)["misplaced"]
    assert misplaced["records"] == sum(expected_misplaced.values())
    assert {p["partition"]: p["records"] for p in misplaced["partitions"]} == dict(
        expected_misplaced
    )
    text = runner.invoke(main, ["project", "status"])
    if expected_misplaced:
        assert "partitioner=murmur2_random" in text.output
        assert f"misplaced: {sum(expected_misplaced.values())} records" in text.output
        assert "murmur2_random" in misplaced["fix"]
    else:
        assert "misplaced:" not in text.output
        assert misplaced["explanation"] is None
    truth.close()
    truth_log.close()


def test_misplaced_counts_are_kept_with_the_views(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    """Counted once per record on every path (worker processes on SQLite, one process on
    PostgreSQL, a rebuild), and dropped with the views by a reset."""
    events = [parse_event(d) for d in generated(16, 30, seed=5)]
    settings = kafka_settings().model_copy(update={"store": store_url("m")})
    with open_log(settings) as log:
        assert isinstance(log, KafkaLog)
        log.ensure_topic()
        bootstrap = ",".join(log.target.bootstrap_servers)
        publish(bootstrap, log.topic, events, mode="binary")  # librdkafka's default partitioner
        expected = dict(misplaced_in(log))
        assert expected
        store = open_store(settings)
        try:
            Projector(log, store, workers=2).catch_up()
            assert {p: m.count for p, m in store.misplaced().items()} == expected
            Projector(log, store, workers=2).catch_up()  # nothing new: nothing counted again
            assert {p: m.count for p, m in store.misplaced().items()} == expected
            rebuild(log, store, workers=2)
            assert {p: m.count for p, m in store.misplaced().items()} == expected
            store.reset()
            assert store.misplaced() == {}
        finally:
            store.close()
