"""The event contract: what is accepted, what is refused and why, versions, round trips."""

from __future__ import annotations

import copy
from datetime import datetime
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from ledger.codec import event_from_json, event_to_json, parse_event
from ledger.errors import InvalidEvent
from ledger.events import EVENT_CLASSES, FeedbackGiven, Purchase, resolve_type
from tests.strategies import event_documents

PURCHASE: dict[str, Any] = {
    "id": "evt-1",
    "source": "shop/web",
    "type": "touchpoint.purchase",
    "subject": "C42",
    "time": "2025-05-01T09:30:00+03:00",
    "data": {
        "channel": "web",
        "order_id": "ORD-1",
        "amount": "12.50",
        "currency": "GBP",
        "item_count": 2,
    },
}


def with_change(path: str, value: Any) -> dict[str, Any]:
    """PURCHASE with one field set (``...`` deletes it); dots reach into data."""
    document = copy.deepcopy(PURCHASE)
    *parents, leaf = path.split(".")
    node = document
    for part in parents:
        node = node[part]
    if value is ...:
        del node[leaf]
    else:
        node[leaf] = value
    return document


def reasons_for(document: Any) -> list[str]:
    with pytest.raises(InvalidEvent) as caught:
        parse_event(document)
    return caught.value.reasons


def test_a_valid_purchase_keeps_exact_amount_and_gets_defaults() -> None:
    event = parse_event(PURCHASE)
    assert isinstance(event, Purchase)
    assert str(event.data.amount) == "12.50"
    assert event.data.direction == "inbound"
    assert event.data.purpose == "transactional"
    assert event.specversion == "1.0"
    assert event.datacontenttype == "application/json"
    assert event.dataschema == "urn:touchpoint-ledger:touchpoint.purchase:v1"
    assert event.time.utcoffset() is not None


@pytest.mark.parametrize(
    ("path", "value", "expected"),
    [
        ("time", "2025-05-01T09:30:00", "time: '2025-05-01T09:30:00' is not an RFC 3339"),
        ("time", "2025-05-01", "time: '2025-05-01' is not an RFC 3339"),
        ("time", 1714550000, "time: must be an RFC 3339 timestamp string"),
        ("time", ..., "time: required"),
        ("id", "", "id: String should have at least 1 character"),
        ("id", "has space", "id: String should match pattern"),
        ("subject", ..., "subject: required"),
        ("source", ..., "source: required"),
        ("specversion", "0.3", "specversion: Input should be '1.0'"),
        ("datacontenttype", "text/xml", "datacontenttype: 'text/xml' is not application/json"),
        ("type", "touchpoint.fax", "type: 'touchpoint.fax' is not a touchpoint type"),
        ("type", ..., "type: required (one of"),
        ("subjet", "C42", "subjet: unknown attribute; did you mean 'subject'?"),
        ("trace_parent", "00-abc", "trace_parent: unknown attribute, and not a valid extension"),
        ("traceparent", 7, "traceparent: must be a string"),
        ("data.amount", "-1", "data.amount: Input should be greater than or equal to 0"),
        ("data.amount", "ten", "data.amount: 'ten' is not a plain decimal number"),
        ("data.amount", "1E+2", "data.amount: '1E+2' is not a plain decimal number"),
        ("data.amount", "1_000", "data.amount: '1_000' is not a plain decimal number"),
        ("data.amount", "-0", "data.amount: '-0' is a negative zero"),
        ("data.amount", "١٠", "data.amount: '١٠' is not a plain decimal number"),
        ("data.amount", True, "data.amount: true is a boolean, not a number"),
        ("data.item_count", True, "data.item_count: true is a boolean, not a whole number"),
        ("data.item_count", "1_000", "data.item_count: '1_000' is not a whole number"),
        ("data.item_count", "٣", "data.item_count: '٣' is not a whole number"),
        ("data.item_count", 2.0, "data.item_count: 2.0 is not a whole number"),
        ("time", "9999-12-31T23:59:59-12:00", "time: 9999-12-31T23:59:59-12:00 is outside"),
        ("time", "0001-01-01T00:00:00+14:00", "time: 0001-01-01T00:00:00+14:00 is outside"),
        ("time", "1899-12-31T23:59:59Z", "time: 1899-12-31T23:59:59+00:00 is outside"),
        ("time", "٢٠٢٥-01-01T00:00:00Z", "time: '٢٠٢٥-01-01T00:00:00Z' is not an RFC 3339"),
        ("data.amount", "1.23456", "data.amount: Decimal input should have no more than 4"),
        ("data.currency", "XXX", "data.currency: 'XXX' is not an ISO 4217 currency code"),
        ("data.item_count", 0, "data.item_count: Input should be greater than or equal to 1"),
        ("data.channel", "fax", "data.channel: Input should be 'phone', 'email'"),
        ("data.order_id", ..., "data.order_id: required"),
        ("data.colour", "red", "data.colour: unknown field"),
        ("data", "not an object", "data: Input should be a valid dictionary"),
        (
            "dataschema",
            "urn:touchpoint-ledger:touchpoint.purchase:v9",
            "dataschema: version 9 of touchpoint.purchase is newer than this ledger knows",
        ),
        (
            "dataschema",
            "urn:touchpoint-ledger:touchpoint.call:v1",
            "dataschema: expected urn:touchpoint-ledger:touchpoint.purchase:v<N>",
        ),
    ],
)
def test_invalid_purchases_are_refused_with_field_and_problem(
    path: str, value: Any, expected: str
) -> None:
    reasons = reasons_for(with_change(path, value))
    assert any(reason.startswith(expected) for reason in reasons), reasons


def test_every_problem_is_reported_at_once() -> None:
    document = with_change("data.amount", "-1")
    document["data"]["currency"] = "XXX"
    document["time"] = "yesterday"
    reasons = reasons_for(document)
    assert [r.split(":")[0] for r in reasons] == ["time", "data.amount", "data.currency"]


@pytest.mark.parametrize(
    ("event_type", "data", "expected"),
    [
        (
            "touchpoint.call",
            {"direction": "inbound", "outcome": "abandoned", "duration_seconds": 30},
            "data: duration_seconds must be 0 when outcome is 'abandoned'",
        ),
        (
            "touchpoint.call",
            {"direction": "inbound", "outcome": "answered", "channel": "sms"},
            "data.channel: Input should be 'phone'",
        ),
        (
            "touchpoint.email",
            {"direction": "sideways"},
            "data.direction: Input should be 'inbound' or 'outbound'",
        ),
        (
            "touchpoint.email",
            {"direction": "outbound", "purpose": "spam"},
            "data.purpose: Input should be 'service', 'transactional' or 'marketing'",
        ),
        (
            "touchpoint.visit",
            {"channel": "phone"},
            "data.channel: Input should be 'store' or 'web'",
        ),
        (
            "feedback.given",
            {"channel": "web", "scale": "nps", "score": 11},
            "data: score 11 is outside the nps scale 0-10",
        ),
        (
            "feedback.given",
            {"channel": "web", "scale": "stars", "score": 3},
            "data.scale: Input should be 'csat', 'nps' or 'ces'",
        ),
        (
            "consent.given",
            {"channel": "post", "evidence_source": "web"},
            "data.channel: Input should be 'phone', 'sms' or 'email'",
        ),
        (
            "consent.given",
            {"channel": "sms", "evidence_source": "web", "recipient": "0532"},
            "data.recipient: Value error, '0532' is not an E.164 phone number",
        ),
        ("consent.withdrawn", {"channel": "sms"}, "data.evidence_source: required"),
        (
            "customer.details",
            {"time_zone": "Mars/Olympus"},
            "data.time_zone: 'Mars/Olympus' is not an IANA time zone",
        ),
        ("customer.details", {"country": "UK"}, "data.country: 'UK' is not an ISO 3166-1"),
        ("customer.details", {"locale": "english"}, "data.locale: 'english' is not a BCP 47"),
        (
            "customer.details",
            {"personal": {"email": "nope"}},
            "data.personal.email: String should match pattern",
        ),
        (
            "touchpoint.refund",
            {"channel": "web", "order_id": "O1", "amount": "0", "currency": "GBP"},
            "data.amount: Input should be greater than 0",
        ),
        (
            "complaint.resolved",
            {
                "channel": "phone",
                "complaint_id": "X",
                "resolution": "fixed",
                "compensation": {"amount": "5"},
            },
            "data.compensation.currency: required",
        ),
    ],
)
def test_type_specific_rules(event_type: str, data: dict[str, Any], expected: str) -> None:
    document = {**PURCHASE, "type": event_type, "data": data}
    reasons = reasons_for(document)
    assert any(
        reason.replace("Value error, ", "").startswith(expected.replace("Value error, ", ""))
        for reason in reasons
    ), reasons


def test_non_objects_and_bad_json_are_refused() -> None:
    assert reasons_for([1, 2]) == ["(event): must be a JSON object, got list"]
    with pytest.raises(InvalidEvent) as caught:
        event_from_json(b'{"id": ')
    assert caught.value.reasons[0].startswith("(event): not valid JSON")


def test_events_are_frozen() -> None:
    event = parse_event(PURCHASE)
    with pytest.raises(ValidationError):
        event.subject = "someone else"  # type: ignore[misc]


def test_a_naive_datetime_object_is_refused_too() -> None:
    document = {**PURCHASE, "time": datetime(2025, 1, 1, 12)}
    assert reasons_for(document) == ["time: naive datetime: the time zone is required"]


# -- versions ---------------------------------------------------------------------------


FEEDBACK_V1 = {
    **PURCHASE,
    "type": "feedback.given",
    "data": {"channel": "email", "score": 4, "comment": "fine"},
}


@pytest.mark.parametrize(
    "dataschema", [None, "urn:touchpoint-ledger:feedback.given:v1"], ids=["implicit", "explicit"]
)
def test_feedback_version_1_is_upcast_to_the_current_version(dataschema: str | None) -> None:
    document = dict(FEEDBACK_V1)
    if dataschema:
        document["dataschema"] = dataschema
    event = parse_event(document)
    assert isinstance(event, FeedbackGiven)
    assert (event.data.scale, event.data.score, event.data.comment) == ("csat", 4, "fine")
    assert event.dataschema == "urn:touchpoint-ledger:feedback.given:v2"
    # Stored form is the current version, and reads back unchanged.
    assert event_from_json(event_to_json(event)) == event


def test_version_1_feedback_must_still_be_valid_after_upcasting() -> None:
    document = {**FEEDBACK_V1, "data": {"channel": "email", "score": 9}}
    assert reasons_for(document) == ["data: score 9 is outside the csat scale 1-5"]


def test_the_current_version_is_accepted_explicitly() -> None:
    document = {
        **FEEDBACK_V1,
        "dataschema": "urn:touchpoint-ledger:feedback.given:v2",
        "data": {"channel": "web", "scale": "nps", "score": 9},
    }
    assert parse_event(document).data.scale == "nps"  # type: ignore[union-attr]


def test_every_type_has_a_schema_urn_and_short_name() -> None:
    for name, cls in EVENT_CLASSES.items():
        assert cls.schema_urn() == f"urn:touchpoint-ledger:{name}:v{cls.schema_version}"
    assert resolve_type("purchase") == "touchpoint.purchase"
    assert resolve_type("touchpoint.sms") == "touchpoint.sms"
    assert resolve_type("fax") is None


# -- properties -------------------------------------------------------------------------


@settings(max_examples=400)
@given(event_documents())
def test_any_valid_event_round_trips_through_json_unchanged(document: dict[str, Any]) -> None:
    event = parse_event(document)
    encoded = event_to_json(event)
    assert event_from_json(encoded) == event
    assert event_to_json(event_from_json(encoded)) == encoded  # canonical bytes are stable


BREAKERS = {
    "time": st.sampled_from(["2025-01-01T10:00:00", "soon", "", 0]),
    "subject": st.sampled_from(["", "with space", None]),
    "id": st.sampled_from(["", "a b", None, 7]),
    "type": st.sampled_from(["touchpoint.unknown", "", None]),
    "data": st.sampled_from(["x", [], None]),
}


@settings(max_examples=300)
@given(event_documents(), st.sampled_from(sorted(BREAKERS)), st.data())
def test_invalid_input_is_refused_naming_the_field_never_accepted_half_way(
    document: dict[str, Any], field: str, data: st.DataObject
) -> None:
    document[field] = data.draw(BREAKERS[field])
    with pytest.raises(InvalidEvent) as caught:
        parse_event(document)
    assert any(reason.startswith(f"{field}:") for reason in caught.value.reasons), (
        caught.value.reasons
    )


@settings(max_examples=200)
@given(event_documents(), st.sampled_from(["zz_unknown", "colour"]))
def test_unknown_data_fields_are_refused(document: dict[str, Any], name: str) -> None:
    document["data"][name] = 1
    reasons = reasons_for(orjson.loads(orjson.dumps(document)))
    assert f"data.{name}: unknown field" in reasons


def test_a_blocked_contact_record_needs_its_reasons() -> None:
    decision = {
        "channel": "sms",
        "purpose": "marketing",
        "policy_version": "v1",
        "policy_sha256": "a" * 64,
    }
    envelope = {"id": "d1", "source": "t", "subject": "C1", "time": "2026-01-01T00:00:00Z"}
    allowed = parse_event({**envelope, "type": "contact.allowed", "data": decision})
    assert allowed.type == "contact.allowed"
    with pytest.raises(InvalidEvent) as refused:
        parse_event({**envelope, "type": "contact.blocked", "data": decision})
    assert refused.value.reasons == ["data.reasons: required"]
    with pytest.raises(InvalidEvent) as bad_hash:
        parse_event(
            {**envelope, "type": "contact.allowed", "data": {**decision, "policy_sha256": "x"}}
        )
    assert bad_hash.value.reasons[0].startswith("data.policy_sha256:")


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b'{"id": "a", "id": "b"}', "(event): not valid JSON: duplicate key 'id'"),
        (b'{"data": {"amount": "1", "amount": "2"}}', "(event): not valid JSON: duplicate key"),
        (b'{"data": {"amount": NaN}}', "(event): not valid JSON: NaN is not a JSON number"),
        (b"[" * 100_000, "(event): not valid JSON: nested too deeply"),
        (b"\xff\xfe{}", "(event): not valid JSON"),
    ],
)
def test_json_with_more_than_one_meaning_is_refused(document: bytes, expected: str) -> None:
    with pytest.raises(InvalidEvent) as caught:
        event_from_json(document)
    assert caught.value.reasons[0].startswith(expected), caught.value.reasons


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        ("1e2", "data.amount: 1e2 is not a plain decimal number"),
        ("1.0E+2", "data.amount: 1.0E+2 is not a plain decimal number"),
        ("-0", "data.amount: -0 is not a plain decimal number"),
        ("-0.0", "data.amount: -0.0 is not a plain decimal number"),
        ("9" * 5000, "data.amount: 9999"),
    ],
)
def test_json_numbers_must_be_written_plainly(number: str, expected: str) -> None:
    document = orjson.dumps(PURCHASE).replace(b'"amount":"12.50"', f'"amount":{number}'.encode())
    assert number.encode() in document
    with pytest.raises(InvalidEvent) as caught:
        event_from_json(document)
    assert caught.value.reasons[0].startswith(expected), caught.value.reasons


def test_a_plain_json_number_amount_is_read_exactly() -> None:
    document = orjson.dumps(PURCHASE).replace(b'"amount":"12.50"', b'"amount":19.90')
    event = event_from_json(document)
    assert isinstance(event, Purchase)
    assert str(event.data.amount) == "19.90"
