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
from types import SimpleNamespace
from typing import Any

import orjson
from pydantic import BaseModel, ValidationError
from pydantic.plugin._schema_validator import PluggableSchemaValidator
from pydantic_core import SchemaSerializer, SchemaValidator, core_schema

from ledger.codec import ADDED_SINCE_V1
from ledger.events import EVENT_CLASSES, Touchpoint
from ledger.fast_schema import OPAQUE, native_schema
from ledger.timeutil import EPOCH, MICROSECOND

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
_REQUIRED = frozenset(_HEADERS) - {"ce_dataschema"}
"""The headers every record in the layout has (:func:`_attributes` reads them one by one)."""
_ALLOWED = frozenset({*_HEADERS, "content-type"})

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
    attributes = _attributes(key, value, headers)
    if attributes is None:
        return None
    try:
        event: Touchpoint = _VALIDATORS[str(attributes["type"])].validate_python(attributes)
    except (ValidationError, ValueError):
        return None
    if key != event.subject.encode():
        return None
    return event


FactParts = tuple[str, str, str, int, dict[str, Any]]
"""What a fact is made of: id, type, subject, event time in microseconds since the epoch,
and the data in its canonical JSON form (:class:`projections.fact.Fact`'s fields)."""


def fast_fact_parts(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> FactParts | None:
    """The fact of a record in the ledger's own binary-mode layout, validated without
    building its models: the same checks as :func:`fast_from_record` (the same schema,
    compiled as plain dicts: :func:`plain_schema`), and the data serialised as
    ``projections.fact.fact_of`` serialises a model's. ``None`` when the record is of
    another shape or not valid (the general path then decides, and names the problem)."""
    attributes = _attributes(key, value, headers)
    if attributes is None:
        return None
    event_type = str(attributes["type"])
    try:
        valid = _PLAIN_VALIDATORS[event_type].validate_python(attributes)
    except (ValidationError, ValueError):
        return None
    subject = valid["subject"]
    if key != subject.encode():
        return None
    data = _DATA_SERIALIZERS[event_type].to_python(valid["data"], mode="json", exclude_none=True)
    return valid["id"], event_type, subject, (valid["time"] - EPOCH) // MICROSECOND, data


def _attributes(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> dict[str, object] | None:
    """The attributes and data of a record in the ledger's own binary-mode layout, as the
    general path would give them to the contract; ``None`` for any other shape."""
    if value is None or key is None:
        return None
    named = dict(headers)
    names = named.keys()
    if len(names) != len(headers) or not _REQUIRED <= names <= _ALLOWED:
        return None  # a header twice, extensions, other spellings: the general path
    try:  # every header _HEADERS names, written out: a third faster than a loop
        attributes: dict[str, object] = {
            "specversion": named["ce_specversion"].decode(),  # type: ignore[union-attr]
            "id": named["ce_id"].decode(),  # type: ignore[union-attr]
            "source": named["ce_source"].decode(),  # type: ignore[union-attr]
            "type": named["ce_type"].decode(),  # type: ignore[union-attr]
            "subject": named["ce_subject"].decode(),  # type: ignore[union-attr]
            "time": named["ce_time"].decode(),  # type: ignore[union-attr]
        }
        if "ce_dataschema" in named:
            attributes["dataschema"] = named["ce_dataschema"].decode()  # type: ignore[union-attr]
    except (AttributeError, UnicodeDecodeError):  # a header without a value, not UTF-8
        return None
    if "content-type" in named:
        if named["content-type"] != b"application/json":
            return None
        attributes["datacontenttype"] = "application/json"
    event_type = attributes["type"]
    if event_type not in _VALIDATORS:
        return None
    assert isinstance(event_type, str)
    schema = attributes.get("dataschema")
    version_1 = schema is None and event_type in ADDED_SINCE_V1
    if schema != _CURRENT[event_type] and not version_1:
        return None  # an older version to upcast: the general path
    data = _plain_object(value)
    if data is None or (version_1 and not ADDED_SINCE_V1[event_type].isdisjoint(data)):
        return None
    attributes["data"] = data
    return attributes


def _plain_object(value: bytes) -> dict[str, object] | None:
    """``value`` decoded, if it is one JSON object that the strict reader
    (:mod:`ledger.strict`) reads to the same data: UTF-8 without a BOM, no key given twice
    in any object, no number but plain integers within 64 bits (no fractions, exponents or
    ``-0``, which the strict reader keeps exact or refuses by name; orjson makes floats of
    them, and of integers beyond 64 bits); else ``None``."""
    if value[:1] != b"{":
        return None
    try:
        document = orjson.loads(value)
    except orjson.JSONDecodeError:
        return None
    if type(document) is not dict:
        return None
    if orjson.dumps(document) == value:
        # Written as orjson writes it (the ledger's own records): so no key twice (it
        # would be written once), no blank, no -0 (written 0), no exponent, no integer
        # beyond 64 bits; a fraction would be written back alike, so look for floats.
        return document if _keys(document) >= 0 else None
    if _SPACE_BEFORE_COLON.search(value) or _NEGATIVE_ZERO.search(value):
        return None
    # Every key is followed directly by '":' (no space: checked above), so the text holds
    # at least as many '":' as keys were written; if the parsed objects hold as many keys
    # as that, no key was given twice (orjson would have kept one of them silently).
    keys = _keys(document)
    return document if keys >= 0 and keys == value.count(b'":') else None


def _keys(node: dict[str, object]) -> int:
    """The number of keys in the object ``node`` and the objects nested in it, or -1 if
    it holds a float."""
    total = len(node)
    for child in node.values():
        kind = type(child)
        if kind is dict or kind is list:
            found = _keys(child) if kind is dict else _keys_in_list(child)  # type: ignore[arg-type]
            if found < 0:
                return -1
            total += found
        elif kind is float:
            return -1
    return total


def _keys_in_list(node: list[object]) -> int:
    total = 0
    for child in node:
        kind = type(child)
        if kind is dict or kind is list:
            found = _keys(child) if kind is dict else _keys_in_list(child)  # type: ignore[arg-type]
            if found < 0:
                return -1
            total += found
        elif kind is float:
            return -1
    return total


def plain_schema(schema: Any) -> Any:
    """A pydantic-core schema with every model made a typed dict: the same fields, checks,
    defaults and extra-field rule, validated to plain dicts instead of model instances.

    A model's ``after`` validators get the validated fields as attributes (they read
    ``self.x`` only); the function is the model's own, so the checks cannot drift. Raises
    ``AssertionError`` for a schema feature this translation does not know (a new kind of
    model config, computed fields, ...): the contract changed, so must this.
    """
    if isinstance(schema, list):
        return [plain_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    kind = schema.get("type")
    if kind == "model":
        inner = schema["schema"]
        _known(inner["type"] == "model-fields", inner)
        _known(not inner.get("computed_fields"), inner)
        _known(set(schema.get("config", {})) <= {"title", "extra_fields_behavior"}, schema)
        _known(not schema.get("custom_init"), schema)
        _known(not schema.get("root_model"), schema)
        _known(set(inner) <= {"type", "fields", "model_name", "computed_fields"}, inner)
        fields = {}
        for name, field in inner["fields"].items():
            _known(set(field) <= {"type", "schema", "metadata"}, field)
            required = field["schema"]["type"] != "default"
            fields[name] = core_schema.typed_dict_field(
                plain_schema(field["schema"]), required=required
            )
        extra = schema.get("config", {}).get("extra_fields_behavior", "ignore")
        return core_schema.typed_dict_schema(fields, extra_behavior=extra, ref=schema.get("ref"))
    if kind == "function-after" and schema["schema"].get("type") == "model":
        _known(schema["function"]["type"] == "no-info", schema)
        check = schema["function"]["function"]

        def after(fields: dict[str, Any]) -> dict[str, Any]:
            check(SimpleNamespace(**fields))
            return fields

        return {
            **schema,
            "function": {"type": "no-info", "function": after},
            "schema": plain_schema(schema["schema"]),
        }
    _known(kind != "model-fields", schema)
    if kind == "default" and isinstance(schema.get("default"), BaseModel):
        # A model as a field's default (``personal: PersonalData = PersonalData()``): its
        # fields as a dict, as the typed dict it became holds them.
        default = schema["default"].model_dump()
        return {
            **{k: v if k in OPAQUE else plain_schema(v) for k, v in schema.items()},
            "default": default,
        }
    return {k: v if k in OPAQUE else plain_schema(v) for k, v in schema.items()}


def _known(condition: bool, schema: object) -> None:
    if not condition:
        raise TypeError(f"plain_schema: a schema feature it does not translate: {schema!r}")


def _data_schema(schema: Any) -> Any:
    """The ``data`` member's schema of an event's plain schema (with the definitions it
    may refer to)."""
    if schema["type"] == "definitions":
        return {**schema, "schema": _data_schema(schema["schema"])}
    return schema["fields"]["data"]["schema"]


_PLAIN_SCHEMAS = {
    name: plain_schema(cls.__pydantic_core_schema__) for name, cls in EVENT_CLASSES.items()
}
_FAST_SCHEMAS = {name: native_schema(s) for name, s in _PLAIN_SCHEMAS.items()}
_PLAIN_VALIDATORS = {name: SchemaValidator(s) for name, s in _FAST_SCHEMAS.items()}
_DATA_SERIALIZERS = {name: SchemaSerializer(_data_schema(s)) for name, s in _FAST_SCHEMAS.items()}
"""Per type: the contract's schema as plain dicts with its checks made pydantic-core's own
(:mod:`ledger.fast_schema`), and its data's serialiser (as ``fact_of`` serialises a
model's data: enums as values, amounts as exact decimal strings)."""
