"""``LEDGER_KAFKA_READER=confluent-kafka`` (ledger/confluent_reader.py) reads what
kafka-python reads, record for record, against the real broker: the same items from any
start, through a worker's partition reader, and the same stops (a position beyond the
end). Groups mixing both clients: tests/integration/test_kafka_group.py and test_scale.py."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable

import pytest
from kafka import KafkaProducer, TopicPartition

from application.wiring import open_log
from consumers.folding import Item, read_items
from ledger import confluent_reader
from ledger.codec import parse_event
from ledger.confluent_reader import ConfluentConsumer
from ledger.errors import ConfigurationError, PositionBeyondEnd
from ledger.generate import generated
from ledger.kafka_log import KafkaLog, PartitionReader
from ledger.log import LogRecord, Position
from ledger.settings import Settings
from tests.conftest import wait_until

READERS = ("kafka-python", "confluent-kafka")


def items(settings: Settings, start: dict[int, int]) -> list[Item]:
    """The items read from ``start``, by position (each partition's are in order; how
    partitions interleave is the client's business)."""
    with open_log(settings) as log:
        found = list(read_items(log, start))
    for partition in {i.position.partition for i in found}:
        offsets = [i.position.offset for i in found if i.position.partition == partition]
        assert offsets == sorted(offsets)
    return sorted(found, key=lambda i: i.position)


def by_position(record: LogRecord) -> Position:
    return record.position


def both(settings: Settings) -> dict[str, Settings]:
    return {r: settings.model_copy(update={"kafka_reader": r}) for r in READERS}


@pytest.fixture
def published(kafka_settings: Callable[[], Settings], kafka_bootstrap: str) -> Settings:
    """A 4-partition topic: 2 customers' 80 events (so at least two partitions stay empty)
    and one record that is no touchpoint."""
    settings = kafka_settings()
    events = [parse_event(d) for d in generated(2, 1000, seed=31)]
    with open_log(settings) as log:
        log.append(events[:40])
        producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
        assert isinstance(log, KafkaLog)
        producer.send(log.topic, b"\x00not json", b"C0000001", [("ce_type", b"touchpoint.sms")])
        producer.flush()
        producer.close()
        log.append(events[40:])
    return settings


def test_both_readers_give_the_same_items_from_any_start(published: Settings) -> None:
    readers = both(published)
    whole = {r: items(s, {}) for r, s in readers.items()}
    assert whole["confluent-kafka"] == whole["kafka-python"]
    found = whole["kafka-python"]
    assert sum(1 for i in found if i.fact is not None) == 80
    [bad] = [i for i in found if i.fact is None]
    assert bad.error is not None
    assert "not JSON" in bad.error
    used = {i.position.partition for i in found}
    assert len(used) < 4, "an empty partition must not keep a read from finishing"
    start = {p: max(i.position.offset for i in found if i.position.partition == p) for p in used}
    tails = {r: items(s, start) for r, s in readers.items()}
    assert tails["confluent-kafka"] == tails["kafka-python"]
    assert len(tails["kafka-python"]) == len(used)  # the last record of each, from there


def test_a_workers_partition_reader_takes_the_same_records(published: Settings) -> None:
    """Batch after batch of at most 15 from where the last one ended: every record once,
    in order per partition, and the reader knows when it has reached the end."""
    taken: dict[str, list[LogRecord]] = {}
    for reader, settings in both(published).items():
        with open_log(settings) as log:
            assert isinstance(log, KafkaLog)
            partitions = PartitionReader(log, log.partitions())
            records: list[LogRecord] = []
            start: dict[int, int] = {}
            try:
                while not partitions.caught_up and len(records) <= 81:
                    batch = list(partitions.take(start, 15))
                    assert len(batch) <= 15
                    assert all(
                        start.get(r.position.partition, 0) <= r.position.offset for r in batch
                    )
                    records += batch
                    start = {**start, **partitions.moved}
            finally:
                partitions.close()
        ends = {
            r.position.partition: r.position.offset + 1 for r in sorted(records, key=by_position)
        }
        assert start == ends
        taken[reader] = sorted(records, key=by_position)
    assert len(taken["kafka-python"]) == 81
    assert taken["confluent-kafka"] == taken["kafka-python"]


@pytest.mark.parametrize("reader", READERS)
def test_a_position_beyond_the_end_stops_the_read(published: Settings, reader: str) -> None:
    settings = published.model_copy(update={"kafka_reader": reader})
    found = items(settings, {})
    partition = found[0].position.partition
    end = 1 + max(i.position.offset for i in found if i.position.partition == partition)
    with pytest.raises(PositionBeyondEnd):
        items(settings, {partition: end + 5})


def test_without_confluent_kafka_installed_the_reader_says_how_to_get_it(
    published: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A setting that cannot be honoured stops with what to install; it is not taken for
    an unreachable broker (a follower would wait for that forever)."""
    monkeypatch.setattr(confluent_reader, "_ck", None)
    settings = published.model_copy(update={"kafka_reader": "confluent-kafka"})
    with pytest.raises(ConfigurationError, match=r"pip install 'touchpoint-ledger\[confluent\]'"):
        items(settings, {})


class _SeekToStart:
    """A rebalance listener that seeks every partition it gets to offset 0."""

    def __init__(self, consumer: ConfluentConsumer) -> None:
        self.consumer = consumer
        self.rebalances = 0

    def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        self.rebalances += 1

    def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        self.rebalances += 1
        for tp in assigned:
            self.consumer.seek(tp, 0)


def test_a_partition_paused_before_a_rebalance_is_read_when_given_back(
    kafka_settings: Callable[[], Settings],
) -> None:
    """A member pauses its partitions (to fold its backlog with worker processes) and a
    second member joins meanwhile: the partitions it gets back are read, unpaused, as
    kafka-python starts every assignment (librdkafka would keep them paused)."""
    settings = kafka_settings()
    with open_log(settings) as log:
        log.append([parse_event(d) for d in generated(40, 100, seed=32)])
        assert isinstance(log, KafkaLog)
        topic, options = log.topic, log.client_options()
    counts = Counter(i.position.partition for i in items(settings, {}))
    assert len(counts) == 4
    group = f"paused-{uuid.uuid4().hex[:8]}"
    members = []
    for _ in range(2):
        consumer = ConfluentConsumer(
            options, group_id=group, session_timeout_ms=6000, heartbeat_interval_ms=1000
        )
        members.append((consumer, _SeekToStart(consumer)))
    (first, first_listener), (second, second_listener) = members
    read: Counter[int] = Counter()

    def first_reads() -> bool:
        for tp, records in first.poll(timeout_ms=100).items():
            read[tp.partition] += len(records)
        mine = {tp.partition for tp in first.assignment()}
        return bool(mine) and all(read[p] == counts[p] for p in mine)

    try:
        first.subscribe([topic], first_listener)
        assert wait_until(lambda: first.poll(timeout_ms=100) == {} and bool(first.assignment()), 30)
        first.pause(*first.assignment())
        seen = first_listener.rebalances
        second.subscribe([topic], second_listener)
        assert wait_until(
            lambda: (
                first.poll(timeout_ms=0) == {}
                and second.poll(timeout_ms=100) is not None
                and first_listener.rebalances > seen + 1
                and bool(first.assignment())
            ),
            60,
        )
        read.clear()
        assert wait_until(first_reads, 15), (
            f"read {dict(read)} of {sorted(tp.partition for tp in first.assignment())}"
        )
    finally:
        second.close()
        first.close()
