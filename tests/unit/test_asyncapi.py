"""The AsyncAPI 3.0 document: valid by the official schema, and true to what the ledger writes.

The official AsyncAPI 3.0.0 JSON Schema is vendored in ``tests/fixtures/asyncapi`` (from the
``@asyncapi/specs`` package, Apache-2.0): no PyPI package carries it.
"""

from __future__ import annotations

import copy
import functools
from collections import Counter
from pathlib import Path
from typing import Any

import jsonschema
import orjson
import pytest

from ledger.asyncapi import asyncapi_document
from ledger.codec import parse_event
from ledger.events import EVENT_CLASSES
from ledger.generate import generated
from ledger.kafka_binding import to_binary

OFFICIAL = Path(__file__).parents[1] / "fixtures" / "asyncapi" / "asyncapi-3.0.0.schema.json"


@pytest.fixture(scope="module")
def official() -> jsonschema.Draft7Validator:
    return jsonschema.Draft7Validator(orjson.loads(OFFICIAL.read_bytes()))


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return asyncapi_document()


def test_the_document_is_valid_asyncapi_3(
    official: jsonschema.Draft7Validator, document: dict[str, Any]
) -> None:
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in official.iter_errors(document)]
    assert errors == []


@pytest.mark.parametrize(
    ("where", "value"),
    [
        (("operations", "publishTouchpoint", "action"), "publish"),  # AsyncAPI 2's word
        (("channels", "touchpoints", "bindings", "kafka", "partitions"), 0),
        (("asyncapi",), "2.6.0"),
    ],
)
def test_the_official_schema_refuses_a_broken_document(
    official: jsonschema.Draft7Validator,
    document: dict[str, Any],
    where: tuple[str, ...],
    value: object,
) -> None:
    broken = copy.deepcopy(document)
    node = broken
    for key in where[:-1]:
        node = node[key]
    node[where[-1]] = value
    assert not official.is_valid(broken)


def test_every_type_has_a_message_in_each_mode_and_every_reference_resolves(
    document: dict[str, Any],
) -> None:
    messages = document["components"]["messages"]
    assert set(messages) == {
        f"{name}.{mode}" for name in EVENT_CLASSES for mode in ("binary", "structured")
    }
    channel = document["channels"]["touchpoints"]
    for name, ref in channel["messages"].items():
        assert ref["$ref"] == f"#/components/messages/{name}"
    for operation in document["operations"].values():
        assert operation["channel"] == {"$ref": "#/channels/touchpoints"}
        assert {r["$ref"].rsplit("/", 1)[1] for r in operation["messages"]} == set(messages)


@functools.cache
def _cached(message: str, part: str) -> jsonschema.protocols.Validator:
    return _validator(asyncapi_document()["components"]["messages"][message], part)


def _validator(message: dict[str, Any], part: str) -> jsonschema.protocols.Validator:
    schema = message[part]["schema"] if part == "payload" else message[part]
    cls = jsonschema.Draft202012Validator if part == "payload" else jsonschema.Draft7Validator
    cls.check_schema(schema)
    return cls(schema)


def test_records_the_ledger_writes_validate_against_their_messages(
    document: dict[str, Any],
) -> None:
    """Binary records (key, headers, value) of a generated history, and the same events in
    structured mode, each against its own message; a record of one type fails another's."""
    messages = document["components"]["messages"]
    seen: Counter[str] = Counter()
    for raw in generated(customers=40, days=120, seed=7):
        event = parse_event(raw)
        key, value, headers = to_binary(event)
        binary = messages[f"{event.type}.binary"]
        header_map = {name: data.decode() for name, data in headers}
        problems = [
            e.message for e in _cached(f"{event.type}.binary", "headers").iter_errors(header_map)
        ]
        problems += [
            e.message
            for e in _cached(f"{event.type}.binary", "payload").iter_errors(orjson.loads(value))
        ]
        key_schema = binary["bindings"]["kafka"]["key"]
        problems += [
            e.message for e in jsonschema.Draft7Validator(key_schema).iter_errors(key.decode())
        ]
        whole = orjson.loads(orjson.dumps(event.model_dump(mode="json", exclude_none=True)))
        problems += [
            e.message for e in _cached(f"{event.type}.structured", "payload").iter_errors(whole)
        ]
        assert problems == [], (event.type, raw)
        seen[event.type] += 1
    # The history covers the touchpoint types a publisher sends, not only one or two.
    assert len(seen) >= 10, seen

    sms = messages["touchpoint.sms.binary"]
    purchase_data = {"order_id": "o1", "amount": "10.00", "currency": "TRY"}
    assert not _validator(sms, "payload").is_valid(purchase_data)


def test_the_partitioner_and_topic_configuration_are_machine_readable(
    document: dict[str, Any],
) -> None:
    channel = document["channels"]["touchpoints"]
    assert "murmur2_random" in channel["x-partitioner"]["librdkafka"]
    config = channel["bindings"]["kafka"]["topicConfiguration"]
    assert config["retention.ms"] == -1
    assert config["retention.bytes"] == -1
    assert config["cleanup.policy"] == ["delete"]
    key = document["components"]["messages"]["touchpoint.sms.binary"]["bindings"]["kafka"]["key"]
    assert key["type"] == "string"
