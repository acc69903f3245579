"""The CloudEvents Kafka binding: binary mode out, binary and structured mode in."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings

from ledger.codec import event_to_json, parse_event
from ledger.errors import InvalidEvent
from ledger.kafka_binding import from_record, to_binary
from ledger.kafka_log import partition_for
from tests.strategies import event_documents


@settings(max_examples=300)
@given(event_documents())
def test_binary_mode_round_trips(document: dict[str, Any]) -> None:
    event = parse_event(document)
    key, value, headers = to_binary(event)
    names = [name for name, _ in headers]
    assert key == event.subject.encode()
    assert {
        "ce_id",
        "ce_source",
        "ce_type",
        "ce_subject",
        "ce_time",
        "ce_specversion",
        "content-type",
    } <= set(names)
    assert ("ce_dataschema" in names) == (event.schema_version > 1)
    assert orjson.loads(value) == orjson.loads(event_to_json(event))["data"]
    assert from_record(key, value, headers) == event


def test_structured_mode_is_accepted() -> None:
    event = parse_event(
        next(
            iter(
                [
                    {
                        "id": "s1",
                        "source": "x",
                        "type": "touchpoint.sms",
                        "subject": "C1",
                        "time": "2025-01-01T00:00:00Z",
                        "data": {"direction": "outbound"},
                    }
                ]
            )
        )
    )
    headers = [("content-type", b"application/cloudevents+json; charset=utf-8")]
    assert from_record(b"C1", event_to_json(event), headers) == event


@pytest.mark.parametrize(
    ("key", "value", "headers", "reason"),
    [
        (
            b"C1",
            b"not json",
            [("ce_type", b"touchpoint.sms")],
            "data: the record value is not JSON",
        ),
        (b"C1", None, [], "value: empty record"),
        (
            b"C2",
            b'{"direction":"outbound"}',
            [
                ("ce_id", b"i"),
                ("ce_source", b"s"),
                ("ce_type", b"touchpoint.sms"),
                ("ce_subject", b"C1"),
                ("ce_time", b"2025-01-01T00:00:00Z"),
                ("ce_specversion", b"1.0"),
            ],
            "key: the record key must be the customer id",
        ),
        (b"C1", b"{}", [("ce_id", b"\xff")], "headers: a ce_ header is not UTF-8"),
        (b"C1", b'{"direction":"outbound"}', [("ce_type", b"touchpoint.sms")], "id: required"),
    ],
)
def test_broken_records_are_refused_with_a_reason(
    key: bytes, value: bytes | None, headers: list[tuple[str, bytes]], reason: str
) -> None:
    with pytest.raises(InvalidEvent) as caught:
        from_record(key, value, headers)
    assert any(r.startswith(reason) for r in caught.value.reasons), caught.value.reasons


def test_partitioning_matches_kafkas_default_partitioner() -> None:
    # Values from the Java client's Utils.murmur2 (same constants as kafka-python's).
    from kafka.partitioner.default import DefaultPartitioner  # noqa: F401  (documented twin)

    spread = {partition_for(f"C{i:07d}", 12) for i in range(500)}
    assert spread == set(range(12))
    assert partition_for("C0000001", 12) == partition_for("C0000001", 12)
