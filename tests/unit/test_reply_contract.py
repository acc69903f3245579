"""Version 2 of calls, e-mails, SMS and chats: replies name what they answer, calls their
queue; version 1 events stay valid and mean "not known" (issue 13)."""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from ledger.codec import event_from_stored, event_to_json, parse_event
from ledger.errors import InvalidEvent
from ledger.schema import event_schema

ENVELOPE = {
    "specversion": "1.0",
    "id": "e-1",
    "source": "crm/email-desk",
    "subject": "C1",
    "time": "2025-03-01T10:00:00Z",
}
V2 = {
    "touchpoint.email": ({"direction": "outbound", "in_reply_to": "in-1"}, "in_reply_to"),
    "touchpoint.sms": ({"direction": "outbound", "in_reply_to": "in-1"}, "in_reply_to"),
    "touchpoint.chat": (
        {"channel": "social", "direction": "outbound", "in_reply_to": "thread-9"},
        "in_reply_to",
    ),
    "touchpoint.call": (
        {"direction": "inbound", "outcome": "abandoned", "wait_seconds": 700, "queue": "billing"},
        "queue",
    ),
}


def document(event_type: str, data: dict[str, Any], version: int | None) -> dict[str, Any]:
    found = {**ENVELOPE, "type": event_type, "data": data}
    if version is not None:
        found["dataschema"] = f"urn:touchpoint-ledger:{event_type}:v{version}"
    return found


@pytest.mark.parametrize("event_type", sorted(V2))
def test_version_2_fields_are_kept_and_round_trip(event_type: str) -> None:
    data, field = V2[event_type]
    event = parse_event(document(event_type, data, 2))
    assert getattr(event.data, field) == data[field]
    assert event.dataschema == f"urn:touchpoint-ledger:{event_type}:v2"
    again = event_from_stored(event_to_json(event))
    assert again == event


@pytest.mark.parametrize("event_type", sorted(V2))
@pytest.mark.parametrize("version", [None, 1])
def test_version_1_events_stay_valid_and_mean_not_known(
    event_type: str, version: int | None
) -> None:
    data, field = V2[event_type]
    old = {k: v for k, v in data.items() if k != field}
    event = parse_event(document(event_type, old, version))
    assert getattr(event.data, field) is None
    assert event.dataschema == f"urn:touchpoint-ledger:{event_type}:v2"
    # The v1 schema accepts it too.
    assert Draft202012Validator(event_schema(event_type, 1)).is_valid(
        document(event_type, old, version)
    )


@pytest.mark.parametrize("event_type", sorted(V2))
def test_a_version_1_event_with_a_version_2_field_is_refused_by_ledger_and_schema(
    event_type: str,
) -> None:
    data, field = V2[event_type]
    raw = document(event_type, data, None)
    with pytest.raises(InvalidEvent) as caught:
        parse_event(raw)
    assert caught.value.reasons == [
        f"data.{field}: unknown field in version 1 (send dataschema of version 2 with it)"
    ]
    assert not Draft202012Validator(event_schema(event_type, 1)).is_valid(raw)
    assert Draft202012Validator(event_schema(event_type)).is_valid(document(event_type, data, 2))


def test_a_stored_version_1_document_reads_as_version_2() -> None:
    stored = (
        b'{"specversion":"1.0","id":"e-1","source":"s","type":"touchpoint.call","subject":"C1",'
        b'"time":"2025-03-01T10:00:00Z","datacontenttype":"application/json",'
        b'"dataschema":"urn:touchpoint-ledger:touchpoint.call:v1","data":{"direction":"inbound",'
        b'"outcome":"answered","wait_seconds":3,"duration_seconds":60}}'
    )
    event = event_from_stored(stored)
    assert event.dataschema == "urn:touchpoint-ledger:touchpoint.call:v2"
    assert event.data.queue is None  # type: ignore[union-attr]
