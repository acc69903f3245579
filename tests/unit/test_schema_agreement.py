"""The published JSON Schemas and the ledger agree: what one accepts the other accepts.

Validated with the ``jsonschema`` package (Draft 2020-12, format checking OFF, as Java and Go
validators default), against the ledger's own door (:func:`ledger.codec.event_from_json`).
A schema looser than the ledger (a Java producer's validator passes, the ledger parks the
record) or stricter (a valid event refused by the published schema) fails here.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from jsonschema import Draft202012Validator

from ledger.codec import event_from_json
from ledger.errors import InvalidEvent
from ledger.events import EVENT_CLASSES, SCHEMA_URN
from ledger.generate import generated
from ledger.schema import event_schema, schema_files
from tests.strategies import event_documents

DELETE = object()


@cache
def validator(event_type: str, version: int) -> Draft202012Validator:
    current = EVENT_CLASSES[event_type].schema_version
    schema = event_schema(event_type, None if version == current else version)
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)  # no format_checker: "format" is an annotation


def schema_accepts(document: dict[str, Any]) -> bool:
    event_type = document.get("type")
    if event_type not in EVENT_CLASSES:
        return False
    dataschema = document.get("dataschema")
    match = SCHEMA_URN.match(dataschema) if isinstance(dataschema, str) else None
    version = 1 if dataschema is None else int(match["version"]) if match else 1
    if version > EVENT_CLASSES[event_type].schema_version:
        return False
    return validator(event_type, version).is_valid(document)


def ledger_accepts(document: dict[str, Any]) -> bool:
    try:
        event_from_json(json.dumps(document))
    except InvalidEvent:
        return False
    return True


def agree(document: dict[str, Any]) -> tuple[bool, bool]:
    return schema_accepts(document), ledger_accepts(document)


@pytest.fixture(scope="module")
def samples() -> dict[str, dict[str, Any]]:
    """One valid event of every type (generated, plus the two decision records)."""
    found: dict[str, dict[str, Any]] = {}
    for document in generated(200, 90, seed=5):
        found.setdefault(document["type"], document)
    envelope = {
        "specversion": "1.0",
        "source": "ledger/policy",
        "subject": "C1",
        "time": "2025-03-01T10:00:00Z",
    }
    decision = {
        "channel": "sms",
        "purpose": "marketing",
        "policy_version": "2025-03",
        "policy_sha256": "0" * 64,
    }
    found["contact.allowed"] = {
        **envelope,
        "id": "d-1",
        "type": "contact.allowed",
        "data": decision,
    }
    found["contact.blocked"] = {
        **envelope,
        "id": "d-2",
        "type": "contact.blocked",
        "data": {
            **decision,
            "reasons": [
                {"rule": "quiet", "message": "quiet hours", "until": "2025-03-01T21:00:00Z"}
            ],
            "earliest": "2025-03-01T21:00:00+03:00",
        },
    }
    identity_samples = {
        "identity.linked": {"identifier": "phone:+905551112233", "evidence": "verified login"},
        "identity.unlinked": {"identifier": "email:ayse@example.com", "reason": "typo"},
        "customer.merged": {"survivor": "C0000007", "reason": "same person (call centre)"},
        "customer.unmerged": {"survivor": "C0000007", "reason": "wrong merge"},
    }
    for number, (kind, data) in enumerate(identity_samples.items()):
        found[kind] = {**envelope, "id": f"i-{number}", "type": kind, "data": data}
    found["feedback.given.v1"] = {
        **envelope,
        "id": "f-1",
        "type": "feedback.given",
        "data": {"channel": "web", "score": 4},
    }
    found["customer.erased"] = {
        **envelope,
        "id": "e-1",
        "type": "customer.erased",
        "data": {"reason": "KVKK Art. 7 request", "request_id": "R-1", "keys_destroyed": 1},
    }
    found["details.sealed"] = mutated(
        found["customer.details"],
        "data.personal",
        {
            "name": {"enc": "v1", "kid": "k1", "n": "A" * 16, "c": "B" * 40},
            "email": "[erased]",
        },
    )
    found["touchpoint.call"] = mutated(
        mutated(found["touchpoint.call"], "data.outcome", "missed"), "data.duration_seconds", 0
    )
    found["feedback.nps"] = mutated(
        mutated(found["feedback.given"], "data.scale", "nps"), "data.score", 9
    )
    return found


def test_every_published_schema_is_a_valid_2020_12_schema() -> None:
    for name, version in schema_files().values():
        Draft202012Validator.check_schema(event_schema(name, version))


def test_thousands_of_generated_events_pass_both() -> None:
    documents = list(generated(400, 120, seed=23))
    assert len(documents) > 2000
    disagreements = [d for d in documents if agree(d) != (True, True)]
    assert not disagreements, disagreements[:3]


def mutated(document: dict[str, Any], path: str, value: object) -> dict[str, Any]:
    changed = copy.deepcopy(document)
    node: Any = changed
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if value is DELETE:
        del node[parts[-1]]
    else:
        node[parts[-1]] = value
    return changed


INVALID = [
    # identifiers (issue 12): a known prefix means a normal form; identity events name customers
    ("touchpoint.sms", "subject", "phone:+90 555 111 2233"),
    ("touchpoint.sms", "subject", "phone:905551112233"),
    ("touchpoint.email", "subject", "email:ayse@Example.com"),
    ("touchpoint.purchase", "subject", "external:Shop:88412"),
    ("touchpoint.purchase", "subject", "external:shop"),
    ("identity.linked", "data.identifier", "phone:+90 555"),
    ("identity.linked", "data.identifier", "C42"),
    ("identity.linked", "data.identifier", "email:a@B.com"),
    ("identity.linked", "subject", "phone:+905551112233"),
    ("customer.merged", "data.survivor", "email:a@b.com"),
    ("customer.merged", "subject", "external:crm:1"),
    ("customer.unmerged", "data.reason", ""),
    # times: an RFC 3339 pattern with a required offset, at most microseconds
    ("touchpoint.sms", "time", "2025-01-01T10:00:00"),
    ("touchpoint.sms", "time", "2025-01-01 10:00:00Z"),
    ("touchpoint.sms", "time", "2025-01-01T10:00:00.1234567Z"),
    ("touchpoint.sms", "time", "2025-13-01T10:00:00Z"),
    ("touchpoint.sms", "time", "2025-01-32T10:00:00Z"),
    ("touchpoint.sms", "time", "2025-01-01T24:00:00Z"),
    ("touchpoint.sms", "time", "2025-01-01T10:60:00Z"),
    ("touchpoint.sms", "time", "2025-01-01T10:00:60Z"),
    ("touchpoint.sms", "time", "2025-01-01T10:00:00+24:00"),
    ("touchpoint.sms", "time", "2025-01-01T10:00:00+0300"),
    ("touchpoint.sms", "time", "1899-12-31T23:00:00Z"),
    ("touchpoint.sms", "time", "3000-01-01T00:00:00Z"),
    ("touchpoint.sms", "time", 1735725600),
    ("contact.blocked", "data.reasons.0.until", "2025-03-01T21:00:00"),
    ("contact.blocked", "data.earliest", "2025-03-01"),
    # currency, country, time zone, locale, phone, recipient: as the ledger checks them
    ("touchpoint.purchase", "data.currency", "gbp"),
    ("touchpoint.purchase", "data.currency", "XXX"),
    ("customer.details", "data.country", "UK"),
    ("customer.details", "data.time_zone", "Mars/Olympus"),
    ("customer.details", "data.time_zone", "europe/istanbul"),
    ("customer.details", "data.locale", "en_GB"),
    # (Not here: a value with one trailing newline. ECMA-262, the dialect of JSON Schema's
    # "pattern", and Go refuse it as the ledger does; Python's re, used by the jsonschema
    # package, and Java let "$" match before a final newline.)
    ("customer.details", "data.personal.phone", "05321234567"),
    ("customer.details", "data.personal.phone", "+90 532 123 45 67"),
    ("customer.details", "data.personal.email", "nobody"),
    ("consent.given", "data.recipient", "nobody"),
    ("consent.given", "data.recipient", "+0123456789"),
    ("consent.given", "data.recipient", "a@b"),
    # amounts: plain decimals, at most 14 + 4 digits; a refund gives back more than 0
    ("touchpoint.refund", "data.amount", "0"),
    ("touchpoint.refund", "data.amount", "0.0000"),
    ("touchpoint.refund", "data.amount", 0),
    ("touchpoint.refund", "data.amount", "-1"),
    ("touchpoint.purchase", "data.amount", "-0.01"),
    ("touchpoint.purchase", "data.amount", "1.23456"),
    ("touchpoint.purchase", "data.amount", "123456789012345"),
    ("touchpoint.purchase", "data.amount", "1e3"),
    ("touchpoint.purchase", "data.amount", "01.5"),
    ("touchpoint.purchase", "data.amount", "1,5"),
    ("touchpoint.purchase", "data.amount", -1),
    # no coercion: "3" is not an integer, "true" is not a boolean
    ("touchpoint.purchase", "data.item_count", "3"),
    ("touchpoint.purchase", "data.item_count", True),
    ("touchpoint.purchase", "data.item_count", 0),
    ("touchpoint.email", "data.bounced", "true"),
    ("touchpoint.email", "data.bounced", "yes"),
    ("touchpoint.email", "data.bounced", 1),
    ("touchpoint.chat", "data.wait_seconds", "10"),
    # rules across fields
    ("touchpoint.call", "data.duration_seconds", 5),
    ("feedback.given", "data.score", 6),
    ("feedback.nps", "data.score", 11),
    ("feedback.nps", "data.score", -1),
    ("feedback.given", "data.scale", "nps-10"),
    ("feedback.given", "data.scale", DELETE),
    ("feedback.given.v1", "data.score", 6),
    ("feedback.given.v1", "data.score", 0),
    ("feedback.given.v1", "dataschema", "urn:touchpoint-ledger:feedback.given:v3"),
    # extensions: names and values as CloudEvents allows them
    ("touchpoint.sms", "trace_parent", "00-abc"),
    ("touchpoint.sms", "TraceParent", "00-abc"),
    ("touchpoint.sms", "data_base64", "AAAA"),
    ("touchpoint.sms", "traceparent", 7),
    ("touchpoint.sms", "partitionkey", True),
    ("touchpoint.sms", "myextension", {"a": 1}),
    ("touchpoint.sms", "myextension", [1]),
    ("touchpoint.sms", "myextension", 1.5),
    ("touchpoint.sms", "myextension", 2**31),
    ("touchpoint.sms", "myextension", "x" * 4097),
    ("touchpoint.sms", "e" * 65, "x"),
    # content type: application/json, only charset=utf-8 as a parameter
    ("touchpoint.sms", "datacontenttype", "text/plain"),
    ("touchpoint.sms", "datacontenttype", "application/json; charset=latin-1"),
    ("touchpoint.sms", "datacontenttype", "application/jsonx"),
    # envelope
    ("touchpoint.sms", "id", DELETE),
    ("touchpoint.sms", "id", "has space"),
    ("touchpoint.sms", "specversion", "0.3"),
    ("touchpoint.sms", "data.colour", "red"),
]

VALID = [
    ("touchpoint.sms", "subject", "phone:+905551112233"),
    ("touchpoint.email", "subject", "email:Ayse@example.com"),
    ("touchpoint.purchase", "subject", "external:shop:88412"),
    ("touchpoint.purchase", "subject", "shop:88412"),
    ("identity.linked", "data.identifier", "external:loyalty-card:4000-1234"),
    ("touchpoint.sms", "traceparent", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"),
    ("touchpoint.sms", "tracestate", "congo=t61rcWkgMzE"),
    ("touchpoint.sms", "partitionkey", "C0000026"),
    ("touchpoint.sms", "sequence", "42"),
    ("touchpoint.sms", "myextension", 7),
    ("touchpoint.sms", "myextension", False),
    ("touchpoint.sms", "myextension", None),
    ("touchpoint.sms", "datacontenttype", "application/json; charset=utf-8"),
    ("touchpoint.sms", "datacontenttype", 'Application/JSON;charset="UTF-8"'),
    ("touchpoint.sms", "time", "2025-01-01t10:00:00.123456z"),
    ("touchpoint.sms", "time", "2025-01-01T10:00:00+23:59"),
    ("touchpoint.refund", "data.amount", "0.0001"),
    ("touchpoint.refund", "data.amount", "0.10000"),
    ("touchpoint.purchase", "data.amount", "0"),
    ("touchpoint.purchase", "data.amount", "12345678901234.5678"),
    ("touchpoint.purchase", "data.amount", 19),
    ("touchpoint.call", "data.duration_seconds", 0),
    ("feedback.given", "data.scale", "nps"),
    ("feedback.nps", "data.score", 0),
    ("feedback.nps", "data.score", 10),
    ("feedback.given.v1", "data.scale", "ces"),
    ("feedback.given.v1", "data.score", 5),
    ("feedback.given.v1", "dataschema", "urn:touchpoint-ledger:feedback.given:v1"),
    ("customer.details", "data.time_zone", "UTC"),
    ("customer.details", "data.locale", "sr-Latn-RS"),
    ("consent.given", "data.recipient", "+905321234567"),
]


@pytest.mark.parametrize(("sample", "path", "value"), INVALID)
def test_each_invalid_mutation_is_refused_by_both(
    samples: dict[str, dict[str, Any]], sample: str, path: str, value: object
) -> None:
    document = mutated(samples[sample], path, value)
    assert agree(document) == (False, False), document


@pytest.mark.parametrize(("sample", "path", "value"), VALID)
def test_each_valid_variant_is_accepted_by_both(
    samples: dict[str, dict[str, Any]], sample: str, path: str, value: object
) -> None:
    document = mutated(samples[sample], path, value)
    assert agree(document) == (True, True), document


def test_every_sample_is_valid(samples: dict[str, dict[str, Any]]) -> None:
    assert set(samples) >= set(EVENT_CLASSES)
    for document in samples.values():
        assert agree(document) == (True, True), document


@settings(max_examples=300, deadline=None)
@given(event_documents())
def test_arbitrary_valid_events_pass_both(document: dict[str, Any]) -> None:
    document = orjson.loads(orjson.dumps(document, default=str))  # nested datetimes
    assert agree(document) == (True, True), document
