"""The published contract: JSON Schema of every touchpoint type and the Kafka binding."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from ledger.events import EVENT_CLASSES, SHORT_NAMES
from ledger.extensions import MAX_NAME, MAX_VALUE, STRING_EXTENSIONS

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


_EXTENSION_VALUE = {
    "anyOf": [
        {"type": "string", "maxLength": MAX_VALUE},
        {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1},
        {"type": "boolean"},
        {"type": "null"},
    ]
}


def event_schema(event_type: str, version: int | None = None) -> dict[str, Any]:
    """The JSON Schema (2020-12) of one touchpoint type: the current version, or an older
    one the ledger still accepts (and upcasts)."""
    cls = EVENT_CLASSES[event_type]
    schema = cls.model_json_schema(mode="validation")
    schema["$schema"] = SCHEMA_DIALECT
    version = cls.schema_version if version is None else version
    urn = f"urn:touchpoint-ledger:{event_type}:v{version}"
    schema["$id"] = urn
    schema["properties"]["dataschema"] = {
        "const": urn,
        "description": "Schema version of data; absent means version 1.",
    }
    if version > 1:
        # Absent means version 1, so a later version's event must say which it is.
        schema["required"].append("dataschema")
    if version != cls.schema_version:
        OLDER_VERSIONS[(event_type, version)](schema)
    # CloudEvents extensions (traceparent, partitionkey, ...) are kept; see ledger.extensions.
    schema["properties"].update(
        {
            name: {"type": ["string", "null"], "description": what}
            for name, what in STRING_EXTENSIONS.items()
        }
    )
    schema["propertyNames"] = {"pattern": f"^[a-z0-9]{{1,{MAX_NAME}}}$"}
    schema["additionalProperties"] = _EXTENSION_VALUE
    schema["description"] = (
        (schema.get("description") or "")
        + "\n\nCloudEvents extension attributes (lower-case a-z0-9 names) are kept with the "
        "event; the ledger also refuses a name within edit distance 1 (names of up to 4 "
        "letters) or 2 of a core attribute as a likely typo, which this schema cannot say."
    ).strip()
    return schema


def _feedback_v1(schema: dict[str, Any]) -> None:
    # Version 1 knew one scale only (CSAT 1-5): ``scale`` may be absent, and means csat.
    data = schema["$defs"]["FeedbackData"]
    data["required"] = [name for name in data["required"] if name != "scale"]
    data["properties"]["scale"]["default"] = "csat"
    data["description"] = "A survey answer or review (schema version 1: CSAT unless scale says)."


def _without(model: str, field: str, what: str) -> Callable[[dict[str, Any]], None]:
    # Version 1 of these types lacked one optional field, added in version 2.
    def older(schema: dict[str, Any]) -> None:
        data = schema["$defs"][model]
        del data["properties"][field]
        data["description"] = f"{what} (schema version 1: no {field})."

    return older


OLDER_VERSIONS: dict[tuple[str, int], Callable[[dict[str, Any]], None]] = {
    ("feedback.given", 1): _feedback_v1,
    ("touchpoint.call", 1): _without("CallData", "queue", "A phone call"),
    ("touchpoint.email", 1): _without("EmailData", "in_reply_to", "An e-mail"),
    ("touchpoint.sms", 1): _without("SmsData", "in_reply_to", "A text message"),
    ("touchpoint.chat", 1): _without("ChatData", "in_reply_to", "A chat conversation"),
}
"""How each older version the ledger accepts differs from the current one (its schema file
is ``<type>.v<N>.schema.json``); one entry per upcaster in :mod:`ledger.codec`."""


def schema_files() -> dict[str, tuple[str, int | None]]:
    """``file name -> (type, version)`` of every published event schema."""
    files: dict[str, tuple[str, int | None]] = {
        f"{name}.schema.json": (name, None) for name in sorted(EVENT_CLASSES)
    }
    for name, version in sorted(OLDER_VERSIONS):
        files[f"{name}.v{version}.schema.json"] = (name, version)
    return files


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
                "older_versions": {
                    str(version): {
                        "dataschema": f"urn:touchpoint-ledger:{name}:v{version}",
                        "schema_file": f"{name}.v{version}.schema.json",
                        "note": "accepted and upcast to the current version",
                    }
                    for other, version in sorted(OLDER_VERSIONS)
                    if other == name
                },
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
                "content-type: application/json (optionally ; charset=utf-8); CloudEvents "
                "extensions as ce_<name> (kept and replayed); header names read in any case, "
                "an attribute twice refused",
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
    for file_name, (name, version) in schema_files().items():
        path = directory / file_name
        path.write_bytes(dump(event_schema(name, version)))
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
