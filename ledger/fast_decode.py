"""The fast validating decode of a Kafka record in binary mode (the common case).

Records on a topic come from publishers the ledger does not control, so every one is
validated against the contract. :func:`ledger.kafka_binding.from_record` does it in the
most general way: headers in any case, strict JSON read by Python's decoder with a hook
per object and per number, extensions checked, older schema versions upcast, then the
discriminated union validated. This module takes the shape almost every record has --
the header names the ledger itself writes, a JSON object of strings, integers, booleans
and nested objects as the value -- and decodes it with orjson (checked to mean the same as
the strict reader: no key twice, no fraction, exponent or ``-0``), then validates it with
the one event class its ``ce_type`` names (the union resolved once, by a dict lookup):
about a fifth less time per record (bench/scale_bench.py).

It decides nothing on its own: whatever it is not sure of -- another header spelling, an
extension, an older schema version, a number that is not a plain integer, a possible
duplicate key, any validation failure -- returns ``None``, and the caller takes the
general path, which accepts or rejects with its exact reasons. So both paths accept the
same records and give the same events (``tests/unit/test_fast_decode.py``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import orjson
from pydantic import ValidationError
from pydantic.plugin._schema_validator import PluggableSchemaValidator
from pydantic_core import SchemaValidator

from ledger.codec import ADDED_SINCE_V1
from ledger.events import EVENT_CLASSES, Touchpoint

_HEADERS = {
    "ce_specversion": "specversion",
    "ce_id": "id",
    "ce_source": "source",
    "ce_type": "type",
    "ce_subject": "subject",
    "ce_time": "time",
    "ce_dataschema": "dataschema",
}
"""The header names the ledger writes, and the JSON member each becomes."""

_VALIDATORS: dict[str, SchemaValidator | PluggableSchemaValidator] = {
    name: cls.__pydantic_validator__ for name, cls in EVENT_CLASSES.items()
}
_CURRENT: dict[str, str | None] = {
    name: None if cls.schema_version == 1 else cls.schema_urn()
    for name, cls in EVENT_CLASSES.items()
}
"""Per type, the ``ce_dataschema`` a record needs no upcasting with (``None``: absent; a
record of an older version takes the general path, which upcasts it)."""
_SPACE_BEFORE_COLON = re.compile(rb'"[ \t\r\n]+:')
_NEGATIVE_ZERO = re.compile(rb"[:\[,][ \t\r\n]*-0(?![.0-9])")
"""A ``-0`` where a number may stand (not inside a string such as a UUID, ``...-0fb2...``;
a string that merely looks like it only sends the record down the general path)."""


def fast_from_record(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> Touchpoint | None:
    """The event of a record in the ledger's own binary-mode layout, validated; ``None``
    when the record is of another shape or not valid (the general path then decides)."""
    if value is None or key is None:
        return None
    attributes: dict[str, object] = {}
    typed = False
    for name, raw in headers:
        attribute = _HEADERS.get(name)
        if attribute is None:
            if name == "content-type" and raw == b"application/json" and not typed:
                typed = True
                attributes["datacontenttype"] = "application/json"
                continue
            return None  # extensions, other spellings: the general path
        if attribute in attributes or type(raw) is not bytes:
            return None
        try:
            attributes[attribute] = raw.decode()
        except UnicodeDecodeError:
            return None
    if len(attributes) != len(_HEADERS) - 1 + typed + ("dataschema" in attributes):
        return None
    event_type = str(attributes["type"])
    validator = _VALIDATORS.get(event_type)
    if validator is None:
        return None
    schema = attributes.get("dataschema")
    version_1 = schema is None and event_type in ADDED_SINCE_V1
    if schema != _CURRENT[event_type] and not version_1:
        return None  # an older version to upcast: the general path
    data = _plain_object(value)
    if data is None or (version_1 and not ADDED_SINCE_V1[event_type].isdisjoint(data)):
        return None
    attributes["data"] = data
    try:
        event: Touchpoint = validator.validate_python(attributes)
    except (ValidationError, ValueError):
        return None
    if key != event.subject.encode():
        return None
    return event


def _plain_object(value: bytes) -> dict[str, object] | None:
    """``value`` decoded, if it is one JSON object that the strict reader
    (:mod:`ledger.strict`) reads to the same data: UTF-8 without a BOM, no key given twice
    in any object, no number but plain integers (no fractions, exponents or ``-0``, which
    the strict reader keeps exact or refuses by name); else ``None``."""
    if value[:1] != b"{" or _SPACE_BEFORE_COLON.search(value) or _NEGATIVE_ZERO.search(value):
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    keys = _keys_and_check(document)
    # Every key is followed directly by '":' (no space: checked above), so the text holds
    # at least as many '":' as keys were written; if the parsed objects hold as many keys
    # as that, no key was given twice (orjson would have kept one of them silently).
    return document if keys >= 0 and keys == value.count(b'":') else None


def _keys_and_check(node: object) -> int:
    """The number of keys in ``node`` and its nested objects, or -1 if it holds a float
    (a number with a fraction or exponent: the strict reader keeps those exact)."""
    if type(node) is dict:
        total = len(node)
        for child in node.values():
            found = _keys_and_check(child)
            if found < 0:
                return -1
            total += found
        return total
    if type(node) is list:
        total = 0
        for child in node:
            found = _keys_and_check(child)
            if found < 0:
                return -1
            total += found
        return total
    if type(node) is float:
        return -1
    return 0
