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


EXTENDED = {
    "id": "x1",
    "source": "svc",
    "type": "touchpoint.sms",
    "subject": "C1",
    "time": "2025-01-01T10:00:00Z",
    "data": {"direction": "outbound"},
    "traceparent": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    "partitionkey": "C1",
    "retries": 3,
    "replayed": True,
}


def test_extensions_travel_as_ce_headers_in_their_canonical_string_form() -> None:
    event = parse_event(EXTENDED)
    key, value, headers = to_binary(event)
    assert dict(headers)["ce_traceparent"] == EXTENDED["traceparent"].encode()  # type: ignore[union-attr]
    assert dict(headers)["ce_retries"] == b"3"
    assert dict(headers)["ce_replayed"] == b"true"
    back = from_record(key, value, headers)
    assert back.model_extra == {
        "traceparent": EXTENDED["traceparent"],
        "partitionkey": "C1",
        "retries": "3",
        "replayed": "true",
    }


def test_header_names_in_any_case_and_content_type_parameters_are_read() -> None:
    event = parse_event(EXTENDED)
    key, value, headers = to_binary(event)
    shouting = [(name.upper(), raw) for name, raw in headers if name != "content-type"]
    shouting.append(("Content-Type", b"Application/JSON; charset=utf-8"))
    back = from_record(key, value, shouting)
    assert back.id == "x1"
    assert back.datacontenttype == "Application/JSON; charset=utf-8"
    structured = [("CONTENT-TYPE", b"application/cloudevents+json; charset=UTF-8")]
    assert from_record(b"C1", event_to_json(event), structured) == event


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ([("ce_id", b"a"), ("CE_ID", b"b")], "headers: ce_id given twice"),
        (
            [("content-type", b"application/json"), ("Content-Type", b"text/plain")],
            "headers: content-type given twice",
        ),
        ([("content-type", b"application/json; charset=latin-1")], "datacontenttype: "),
    ],
)
def test_ambiguous_or_wrong_headers_are_refused(
    headers: list[tuple[str, bytes]], reason: str
) -> None:
    base = [
        (name, raw)
        for name, raw in to_binary(parse_event(EXTENDED))[2]
        if name not in ("ce_id", "content-type")
    ]
    with pytest.raises(InvalidEvent) as caught:
        from_record(b"C1", b'{"direction":"outbound"}', base + headers)
    assert any(r.startswith(reason) for r in caught.value.reasons), caught.value.reasons
