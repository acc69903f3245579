"""The Kafka log against a real broker: partitioning, structured mode, poison records."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from kafka import KafkaProducer

from application.wiring import open_log
from ledger.codec import event_to_json, parse_event
from ledger.devbroker import free_port
from ledger.errors import LogUnavailable
from ledger.generate import generated
from ledger.kafka_log import KafkaLog, partition_for
from ledger.log import ReadFilter
from ledger.settings import KafkaLogTarget, Settings

SMS = {
    "source": "s",
    "type": "touchpoint.sms",
    "time": "2025-01-01T10:00:00Z",
    "data": {"direction": "outbound", "purpose": "marketing"},
}


@pytest.fixture
def kafka_log(kafka_settings: Callable[[], Settings]) -> Iterator[KafkaLog]:
    log = open_log(kafka_settings())
    assert isinstance(log, KafkaLog)
    yield log
    log.close()


def test_a_customers_events_land_in_the_partition_the_key_hashes_to(kafka_log: KafkaLog) -> None:
    events = [parse_event(d) for d in generated(40, 30, 2)]
    outcomes = kafka_log.append(events)
    for event, outcome in zip(events, outcomes, strict=True):
        assert outcome.position is not None
        assert outcome.position.partition == partition_for(event.subject, 4)
    customer = events[0].subject
    mine = [r.event for r in kafka_log.read(where=ReadFilter(customer=customer))]
    stored = kafka_log.protected(events)  # personal values encrypted, as appended
    assert mine == [e for e in stored if e.subject == customer]


def test_poison_records_are_reported_and_do_not_stop_other_records(
    kafka_log: KafkaLog, kafka_bootstrap: str
) -> None:
    good = [parse_event({**SMS, "id": f"g{i}", "subject": f"C{i}"}) for i in range(8)]
    kafka_log.append(good[:4])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    structured = parse_event({**SMS, "id": "structured", "subject": "C1"})
    producer.send(
        kafka_log.topic,
        event_to_json(structured),
        b"C1",
        [("content-type", b"application/cloudevents+json")],
    )
    producer.send(kafka_log.topic, b"\x00garbage", b"C1", [("ce_type", b"touchpoint.sms")])
    producer.send(kafka_log.topic, b'{"direction":"outbound"}', b"C2", [("ce_id", b"no-rest")])
    producer.send(kafka_log.topic, None, b"C3", [])
    producer.flush()
    producer.close()
    kafka_log.append(good[4:])
    records = list(kafka_log.read())
    decoded = sorted(r.event.id for r in records if r.event)
    assert decoded == sorted([e.id for e in good] + ["structured"])
    errors = sorted(r.error.split(":")[0] for r in records if r.error)
    assert errors == ["data", "type", "value"]
    assert all(r.position.partition in kafka_log.partitions() for r in records)


def test_type_filter_uses_headers_and_still_reports_poison(
    kafka_log: KafkaLog, kafka_bootstrap: str
) -> None:
    kafka_log.append([parse_event({**SMS, "id": "s1", "subject": "C1"})])
    producer = KafkaProducer(bootstrap_servers=kafka_bootstrap)
    producer.send(kafka_log.topic, b"not json", b"C1", [])
    producer.flush()
    producer.close()
    records = list(kafka_log.read(where=ReadFilter(types=frozenset({"touchpoint.call"}))))
    assert [r.event for r in records] == [None]


def test_reading_a_topic_that_does_not_exist_is_refused(
    kafka_settings: Callable[[], Settings],
) -> None:
    with pytest.raises(LogUnavailable, match="no topic"), open_log(kafka_settings()) as log:
        list(log.read())


def test_a_broker_that_is_down_is_reported_not_a_traceback() -> None:
    target = KafkaLogTarget((f"127.0.0.1:{free_port()}",), "t")
    log = KafkaLog(target, Settings(kafka_timeout_seconds=2))
    started = time.monotonic()
    with pytest.raises(LogUnavailable, match="cannot connect"):
        log.append([parse_event({**SMS, "id": "x", "subject": "C1"})])
    assert time.monotonic() - started < 10
    log.close()
