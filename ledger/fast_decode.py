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
about a fifth less time per record (bench/scale_bench.py). The fact path the projectors
read with (:func:`fast_fact_parts`) goes further: no model is built, the constant
attributes are compared as header bytes, and the schema's checks are pydantic-core's own
(:mod:`ledger.fast_schema`), not calls back into Python: about 9 µs of CPU a record
instead of 15 (bench/decode_bench.py).

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
from typing import Any, NamedTuple

import orjson
from pydantic import BaseModel, ValidationError
from pydantic.plugin._schema_validator import PluggableSchemaValidator
from pydantic_core import SchemaSerializer, SchemaValidator, core_schema

from ledger.codec import ADDED_SINCE_V1
from ledger.events import EVENT_CLASSES, Touchpoint
from ledger.fast_schema import OPAQUE, native_schema
from ledger.timeutil import EPOCH, MICROSECOND

_VALIDATORS: dict[str, SchemaValidator | PluggableSchemaValidator] = {
    name: cls.__pydantic_validator__ for name, cls in EVENT_CLASSES.items()
}
_SPACE_BEFORE_COLON = re.compile(rb'"[ \t\r\n]+:')
_NEGATIVE_ZERO = re.compile(rb"[:\[,][ \t\r\n]*-0(?![.0-9])")
"""A ``-0`` where a number may stand (not inside a string such as a UUID, ``...-0fb2...``;
a string that merely looks like it only sends the record down the general path)."""


def fast_from_record(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> Touchpoint | None:
    """The event of a record in the ledger's own binary-mode layout, validated; ``None``
    when the record is of another shape or not valid (the general path then decides)."""
    read = _read(key, value, headers)
    if read is None:
        return None
    kind, attributes, named = read
    # The attributes as the general path passes them, so that the model's fields set are
    # the same too, not only its values: a version 1 record that needs no upcasting gets
    # the current dataschema there as well.
    attributes |= {"specversion": "1.0", "type": kind.name}
    if kind.dataschema is not None:
        attributes["dataschema"] = kind.dataschema.decode()
    if "content-type" in named:
        attributes["datacontenttype"] = "application/json"
    try:
        event: Touchpoint = _VALIDATORS[kind.name].validate_python(attributes)
    except (ValidationError, ValueError):
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
    compiled as plain dicts: :func:`plain_schema`, its checks made pydantic-core's own:
    :mod:`ledger.fast_schema`), and the data serialised as ``projections.fact.fact_of``
    serialises a model's. ``None`` when the record is of another shape or not valid (the
    general path then decides, and names the problem)."""
    read = _read(key, value, headers)
    if read is None:
        return None
    kind, attributes, _ = read
    try:
        valid = kind.validator.validate_python(attributes)
    except (ValidationError, ValueError):
        return None
    data = kind.serializer.to_python(valid["data"], mode="json", exclude_none=True)
    return valid["id"], kind.name, valid["subject"], (valid["time"] - EPOCH) // MICROSECOND, data


class _Kind(NamedTuple):
    """What the fast decode needs of an event type, found by its ``ce_type`` header."""

    name: str
    dataschema: bytes | None
    """The ``ce_dataschema`` header of the current version (``None``: absent)."""
    added_since_v1: frozenset[str] | None
    """For a type whose older versions only lack optional fields: those fields (without
    ``ce_dataschema`` a record is of version 1, and must not send them); else ``None``
    (a record of an older version takes the general path, which upcasts it)."""
    validator: SchemaValidator
    serializer: SchemaSerializer


def _read(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> tuple[_Kind, dict[str, object], dict[str, bytes | None]] | None:
    """The type of a record in the ledger's own binary-mode layout, and the attributes
    that vary from record to record (``id``, ``source``, ``subject``, ``time``) with its
    ``data``, as the general path would give them to the contract, and the headers by
    name; ``None`` for any other shape, or a record the contract refuses for its constant
    attributes.

    Those (``specversion``, ``type``, ``dataschema``, ``datacontenttype``) are checked here
    against the one value each may have, as bytes, and not validated again (the fact holds
    none of them): a decode, a check and a field less per record each.
    """
    if value is None or key is None:
        return None
    named = dict(headers)
    has_schema = "ce_dataschema" in named
    has_content_type = "content-type" in named
    if len(named) != len(headers) or len(named) != 6 + has_schema + has_content_type:
        return None  # a header twice, extensions, other spellings: the general path
    try:
        kind = _KINDS[named["ce_type"]]  # type: ignore[index]
        if named["ce_specversion"] != b"1.0" or named["ce_subject"] != key:
            return None  # the contract refuses it, or its events would lose their order
        attributes: dict[str, object] = {
            "id": named["ce_id"].decode(),  # type: ignore[union-attr]
            "source": named["ce_source"].decode(),  # type: ignore[union-attr]
            "subject": key.decode(),
            "time": named["ce_time"].decode(),  # type: ignore[union-attr]
        }
    except (KeyError, TypeError, AttributeError, UnicodeDecodeError):
        return None  # a header missing or without a value, an unknown type, not UTF-8
    if has_content_type and named["content-type"] != b"application/json":
        return None
    added = kind.added_since_v1
    if has_schema:
        if kind.dataschema is None or named["ce_dataschema"] != kind.dataschema:
            return None  # an older version to upcast (or none the contract knows)
    elif kind.dataschema is not None and added is None:
        return None  # version 1 of a type whose next version changed its data: upcast
    data = _plain_object(value)
    if data is None or (not has_schema and added and not added.isdisjoint(data)):
        return None  # not plain JSON, or a version 1 record with a newer version's field
    attributes["data"] = data
    return kind, attributes, named


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


_CONSTANT = frozenset({"specversion", "type", "dataschema", "datacontenttype"})
"""The attributes :func:`_read` checks as header bytes (each has one valid value)."""


def _varying(schema: Any) -> Any:
    """An event's schema without the attributes in :data:`_CONSTANT`: the fact path never
    passes them (:func:`_read` checked them), and their defaults can fail no record."""
    if schema["type"] == "definitions":
        return {**schema, "schema": _varying(schema["schema"])}
    _known(schema["type"] == "typed-dict" and set(schema["fields"]) >= _CONSTANT, schema)
    fields = {k: v for k, v in schema["fields"].items() if k not in _CONSTANT}
    return {**schema, "fields": fields}


_PLAIN_SCHEMAS = {
    name: plain_schema(cls.__pydantic_core_schema__) for name, cls in EVENT_CLASSES.items()
}


def _kind(name: str) -> _Kind:
    cls = EVENT_CLASSES[name]
    schema = native_schema(_PLAIN_SCHEMAS[name])
    return _Kind(
        name,
        None if cls.schema_version == 1 else cls.schema_urn().encode(),
        ADDED_SINCE_V1.get(name),
        SchemaValidator(_varying(schema)),
        SchemaSerializer(_data_schema(schema)),
    )


_KINDS = {name.encode(): _kind(name) for name in EVENT_CLASSES}
"""Per ``ce_type`` header: the type, its contract's schema as plain dicts with its checks
made pydantic-core's own (:mod:`ledger.fast_schema`) and the constant attributes left out,
and its data's serialiser (as ``fact_of`` serialises a model's data: enums as values,
amounts as exact decimal strings)."""
