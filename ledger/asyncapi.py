"""The Kafka contract as an AsyncAPI 3.0 document, generated from the event classes.

Java, Go and JavaScript teams read the topic's contract with their own tools (code
generators, catalogues, linters); this document gives them what ``docs/contract.md`` says in
prose: the topic and its configuration, the record key, the partitioner, the CloudEvents
headers, one message per touchpoint type in each mode with its payload schema, the ordering
guarantee and the version rule. Payload schemas are the same JSON Schemas (2020-12) that
``ledger schema --out`` writes, embedded as AsyncAPI multi-format schemas.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

from ledger.events import EVENT_CLASSES, JSON_MEDIA_TYPE_PATTERN, SHORT_NAMES
from ledger.extensions import MAX_NAME, STRING_EXTENSIONS
from ledger.kafka_binding import STRUCTURED
from ledger.schema import event_schema

ASYNCAPI_VERSION = "3.0.0"
KAFKA_BINDING_VERSION = "0.5.0"
JSON_SCHEMA_FORMAT = "application/schema+json;version=2020-12"

# What the ledger asks of its topic: keep every event forever (an immutable ledger that a
# broker's default 7-day retention would quietly shorten is not a ledger).
TOPIC_CONFIGURATION: dict[str, Any] = {
    "cleanup.policy": ["delete"],
    "retention.ms": -1,
    "retention.bytes": -1,
}

PARTITIONER = {
    "algorithm": "murmur2 of the record key, positive, modulo the partition count "
    "(the Java client's default)",
    "java": "the default partitioner",
    "librdkafka": "partitioner=murmur2_random (confluent-kafka, node-rdkafka, ...); "
    "its default consistent_random (CRC32) places keys elsewhere",
    "go": "franz-go: the default key partitioning (Kafka-compatible murmur2); sarama: its "
    "default hash is FNV-1a, so configure a murmur2 partitioner",
}

ORDERING = (
    "Every record of one customer has that customer's id as its key, so all of a customer's "
    "touchpoints are in one partition, in the order they were appended. There is no order "
    "between customers."
)

VERSION_RULE = (
    "Each type's data has a schema version, named by the CloudEvents attribute dataschema "
    "(urn:touchpoint-ledger:<type>:v<N>); absent means version 1. A new version is added only "
    "with an upcaster, so every older version stays valid and its new fields mean 'not known'. "
    "Publishers send the current version; consumers read every version."
)


def _version() -> str:
    try:
        return metadata.version("touchpoint-ledger")
    except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
        return "0.0.0"


def _payload(schema: dict[str, Any]) -> dict[str, Any]:
    return {"schemaFormat": JSON_SCHEMA_FORMAT, "schema": schema}


def _data_schema(name: str) -> dict[str, Any]:
    """The JSON Schema of ``data`` alone: the record value in binary mode."""
    whole = event_schema(name)
    data = dict(whole["properties"]["data"])
    return {
        "$schema": whole["$schema"],
        "$id": f"{whole['$id']}:data",
        **data,
        "$defs": whole.get("$defs", {}),
    }


def _binary_headers(name: str) -> dict[str, Any]:
    cls = EVENT_CLASSES[name]
    text = {"type": "string", "description": "UTF-8"}
    properties: dict[str, Any] = {
        "ce_specversion": {"const": "1.0"},
        "ce_id": {**text, "description": "The event id: unique across the ledger."},
        "ce_source": {**text, "description": "URI-reference of the publishing service."},
        "ce_type": {"const": name},
        "ce_subject": {**text, "description": "The customer id; equal to the record key."},
        "ce_time": {
            **text,
            "description": "When it happened: RFC 3339 with a UTC offset.",
        },
        "ce_dataschema": {
            "const": cls.schema_urn(),
            "description": "Schema version of data; absent means version 1.",
        },
        "content-type": {
            "type": "string",
            "pattern": JSON_MEDIA_TYPE_PATTERN,
            "description": "The data's content type: application/json, optionally with "
            "charset=utf-8. Header names are read in any case.",
        },
    }
    properties.update(
        {
            f"ce_{extension}": {**text, "description": f"CloudEvents extension: {what}."}
            for extension, what in STRING_EXTENSIONS.items()
        }
    )
    required = ["ce_specversion", "ce_id", "ce_source", "ce_type", "ce_subject", "ce_time"]
    if cls.schema_version != 1:
        required.append("ce_dataschema")
    return {
        "type": "object",
        "properties": properties,
        "patternProperties": {
            f"^ce_[a-z0-9]{{1,{MAX_NAME}}}$": {
                **text,
                "description": "Any other CloudEvents extension attribute: kept with the event.",
            }
        },
        "required": required,
    }


def _key() -> dict[str, Any]:
    return {
        "type": "string",
        "description": "The customer id (the event's subject), UTF-8. It places the record "
        "in its customer's partition; a record whose key is not its subject is refused.",
    }


def _messages() -> dict[str, Any]:
    short = {full: name for name, full in SHORT_NAMES.items()}
    kafka = {"kafka": {"key": _key(), "bindingVersion": KAFKA_BINDING_VERSION}}
    messages: dict[str, Any] = {}
    for name, cls in sorted(EVENT_CLASSES.items()):
        summary = (cls.__doc__ or name).strip().splitlines()[0]
        common = {
            "summary": summary,
            "bindings": kafka,
            "x-schema-version": cls.schema_version,
            "x-cli-name": short[name],
        }
        messages[f"{name}.binary"] = {
            "name": name,
            "title": f"{name} (binary mode)",
            "contentType": "application/json",
            "headers": _binary_headers(name),
            "payload": _payload(_data_schema(name)),
            "description": "CloudEvents Kafka binding, binary mode: the context attributes "
            "as ce_ headers, the data as the record value. The ledger writes this mode.",
            **common,
        }
        messages[f"{name}.structured"] = {
            "name": name,
            "title": f"{name} (structured mode)",
            "contentType": STRUCTURED,
            "headers": {
                "type": "object",
                "properties": {"content-type": {"const": STRUCTURED}},
                "required": ["content-type"],
            },
            "payload": _payload(event_schema(name)),
            "description": "CloudEvents Kafka binding, structured mode: the whole event as "
            "one JSON object in the record value.",
            **common,
        }
    return messages


def asyncapi_document(partitions: int = 12) -> dict[str, Any]:
    """The AsyncAPI 3.0 document of the ledger's Kafka topic."""
    messages = _messages()
    refs = {name: {"$ref": f"#/components/messages/{name}"} for name in messages}
    message_refs = [
        {"$ref": f"#/channels/touchpoints/messages/{name}"} for name in sorted(messages)
    ]
    return {
        "asyncapi": ASYNCAPI_VERSION,
        "id": "urn:touchpoint-ledger:kafka-contract",
        "info": {
            "title": "touchpoint-ledger",
            "version": _version(),
            "description": (
                "An event-sourced ledger of every touchpoint between a company and its "
                "customers. Each record is one CloudEvents 1.0 event.\n\n"
                f"Ordering: {ORDERING}\n\nVersions: {VERSION_RULE}\n\n"
                "Duplicates: the event id is the idempotency key; publishing the same event "
                "again is harmless, and consumers deduplicate by id."
            ),
            "license": {"name": "Apache-2.0"},
        },
        "defaultContentType": "application/json",
        "servers": {
            "kafka": {
                "host": "{bootstrap}",
                "protocol": "kafka",
                "description": "The Kafka cluster that holds the ledger's topic.",
                "variables": {
                    "bootstrap": {
                        "default": "localhost:9092",
                        "description": "A bootstrap server, host:port.",
                    }
                },
            }
        },
        "channels": {
            "touchpoints": {
                "address": "{topic}",
                "title": "The ledger's topic",
                "description": "Every touchpoint, keyed by customer. The topic is named by "
                "the ledger's log URL: kafka://host:port/<topic>.",
                "parameters": {
                    "topic": {
                        "default": "touchpoints",
                        "description": "The topic named in the log URL.",
                    }
                },
                "messages": refs,
                "servers": [{"$ref": "#/servers/kafka"}],
                "bindings": {
                    "kafka": {
                        "partitions": partitions,
                        "topicConfiguration": dict(TOPIC_CONFIGURATION),
                        "bindingVersion": KAFKA_BINDING_VERSION,
                    }
                },
                "x-partitioner": PARTITIONER,
                "x-ordering": ORDERING,
            }
        },
        "operations": {
            "publishTouchpoint": {
                "action": "send",
                "channel": {"$ref": "#/channels/touchpoints"},
                "summary": "Append a touchpoint. Producer: acks=all, enable.idempotence=true, "
                "the murmur2 partitioner (x-partitioner).",
                "messages": message_refs,
            },
            "projectTouchpoints": {
                "action": "receive",
                "channel": {"$ref": "#/channels/touchpoints"},
                "summary": "Projectors read every record, in order per partition, in one "
                "consumer group, and deduplicate by event id.",
                "messages": message_refs,
            },
        },
        "components": {"messages": messages},
    }
