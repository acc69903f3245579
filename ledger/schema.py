"""The published contract: JSON Schema of every touchpoint type and the Kafka binding."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson

from ledger.events import EVENT_CLASSES, SHORT_NAMES

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def event_schema(event_type: str) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one touchpoint type, current version."""
    cls = EVENT_CLASSES[event_type]
    schema = cls.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    schema["$id"] = cls.schema_urn()
    schema["properties"]["dataschema"] = {
        "const": cls.schema_urn(),
        "description": "Schema version of data; absent means version 1.",
    }
    return schema


def contract() -> dict[str, Any]:
    """The index of types and the Kafka topic contract, for publishers in any language."""
    short = {full: name for name, full in SHORT_NAMES.items()}
    return {
        "cloudevents": "1.0",
        "types": {
            name: {
                "schema_version": cls.schema_version,
                "dataschema": cls.schema_urn(),
                "schema_file": f"{name}.schema.json",
                "cli_name": short[name],
            }
            for name, cls in sorted(EVENT_CLASSES.items())
        },
        "kafka": {
            "record_key": "the customer id (CloudEvents subject), UTF-8",
            "partitioner": (
                "Kafka's default murmur2 on the key, so a customer's events stay ordered"
            ),
            "binary_mode": {
                "headers": "ce_specversion, ce_id, ce_source, ce_type, ce_subject, ce_time, "
                "and ce_dataschema for schema versions above 1 (UTF-8); "
                "content-type: application/json",
                "value": "the data object as JSON",
            },
            "structured_mode": {
                "headers": "content-type: application/cloudevents+json",
                "value": "the whole event as one JSON object",
            },
            "producer": "acks=all, enable.idempotence=true",
            "duplicates": "the event id is the idempotency key; consumers deduplicate by id",
        },
    }


def write_schemas(directory: Path) -> list[Path]:
    """Write ``<type>.schema.json`` for every type, ``contract.json`` and the AsyncAPI 3.0
    document ``asyncapi.json``; return the paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name in sorted(EVENT_CLASSES):
        path = directory / f"{name}.schema.json"
        path.write_bytes(dump(event_schema(name)))
        written.append(path)
    path = directory / "contract.json"
    path.write_bytes(dump(contract()))
    written.append(path)
    from ledger.asyncapi import asyncapi_document  # it embeds this module's schemas

    path = directory / "asyncapi.json"
    path.write_bytes(dump(asyncapi_document()))
    written.append(path)
    return written


def dump(document: Any) -> bytes:
    return orjson.dumps(document, option=orjson.OPT_INDENT_2 | orjson.OPT_SORT_KEYS) + b"\n"
