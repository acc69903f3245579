"""Turning bytes and dicts into validated touchpoints and back: the edge of the ledger.

Validation happens here, once; code behind this module trusts the models.
:func:`parse_event` is the single door: it upcasts old schema versions and returns
a model, or raises :class:`InvalidEvent` with one ``"field: problem"`` per violation.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError

from ledger import strict
from ledger.errors import InvalidEvent
from ledger.events import (
    EVENT_CLASSES,
    JSON_MEDIA_TYPE_PROBLEM,
    SCHEMA_URN,
    Touchpoint,
    TouchpointEvent,
)
from ledger.extensions import CORE_ATTRIBUTES, split_extensions

EVENT_ADAPTER: TypeAdapter[Touchpoint] = TypeAdapter(Touchpoint)
_REQUIRED = ("id", "source", "subject", "time", "data")
"""Core attributes without a default, besides ``type``."""

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]


def _feedback_v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    # Version 1 knew one scale only: CSAT 1-5. Version 2 names the scale.
    return {**data, "scale": data.get("scale", "csat")}


def _added(*fields: str) -> Upcaster:
    """The upcaster of a version that only added optional ``fields``: a version 1 event
    has none of them, which means "not known"; one that sends them must say version 2
    (its JSON Schema refuses them too)."""

    def upcaster(data: dict[str, Any]) -> dict[str, Any]:
        present = [name for name in fields if name in data]
        if present:
            raise InvalidEvent(
                [
                    f"data.{name}: unknown field in version 1 (send dataschema of version 2 "
                    "with it)"
                    for name in present
                ]
            )
        return data

    _ADDITIVE.add(upcaster)
    _ADDED_BY[upcaster] = frozenset(fields)
    return upcaster


_ADDITIVE: set[Upcaster] = set()
_ADDED_BY: dict[Upcaster, frozenset[str]] = {}

UPCASTERS: dict[tuple[str, int], Upcaster] = {
    ("feedback.given", 1): _feedback_v1_to_v2,
    ("touchpoint.call", 1): _added("queue"),
    ("touchpoint.email", 1): _added("in_reply_to"),
    ("touchpoint.sms", 1): _added("in_reply_to"),
    ("touchpoint.chat", 1): _added("in_reply_to"),
}
"""``(type, version) -> function`` turning version N's ``data`` into version N+1's."""

ADDITIVE_TYPES = frozenset(
    name
    for name, cls in EVENT_CLASSES.items()
    if all(UPCASTERS[(name, step)] in _ADDITIVE for step in range(1, cls.schema_version))
)
"""Types whose every older version is the current one minus optional fields (their
upcasters change nothing): a stored older document of these validates as it is."""

ADDED_SINCE_V1: dict[str, frozenset[str]] = {
    name: frozenset().union(
        *(
            _ADDED_BY[UPCASTERS[(name, step)]]
            for step in range(1, EVENT_CLASSES[name].schema_version)
        )
    )
    for name in ADDITIVE_TYPES
}
"""Per additive type, the optional fields its later versions added: a version 1 document
that sends one of them is refused (it must name the version that has it)."""


def upcast(raw: Mapping[str, Any]) -> Mapping[str, Any]:
    """Bring an event dict of an older schema version up to the current one.

    Unknown types pass through untouched (validation names the problem).
    """
    event_type = raw.get("type")
    cls = EVENT_CLASSES.get(event_type) if isinstance(event_type, str) else None
    if cls is None:
        return raw
    version = schema_version_of(raw.get("dataschema"), cls)
    if version == cls.schema_version:
        return raw
    data = raw.get("data")
    if isinstance(data, dict):
        for step in range(version, cls.schema_version):
            data = UPCASTERS[(cls.type_name(), step)](data)
    return {**raw, "data": data, "dataschema": cls.schema_urn()}


def schema_version_of(dataschema: object, cls: type[TouchpointEvent]) -> int:
    """The schema version named by ``dataschema`` (absent: 1), checked against ``cls``."""
    if dataschema is None:
        return 1
    match = SCHEMA_URN.match(dataschema) if isinstance(dataschema, str) else None
    if match is None or match["type"] != cls.type_name():
        raise InvalidEvent(
            [
                f"dataschema: expected urn:touchpoint-ledger:{cls.type_name()}:v<N>, "
                f"got {dataschema!r}"
            ]
        )
    version = int(match["version"])
    if version > cls.schema_version:
        raise InvalidEvent(
            [
                f"dataschema: version {version} of {cls.type_name()} is newer than this ledger "
                f"knows (up to {cls.schema_version}); upgrade touchpoint-ledger"
            ]
        )
    return version


def parse_event(raw: object) -> Touchpoint:
    """Validate a decoded JSON object as a touchpoint (upcasting old versions first)."""
    if not isinstance(raw, dict):
        raise InvalidEvent([f"(event): must be a JSON object, got {type(raw).__name__}"])
    kept, refused = split_extensions(raw)
    try:
        event = EVENT_ADAPTER.validate_python(upcast(kept))
    except ValidationError as exc:
        reasons = reasons_of(exc)
        event_type = raw.get("type")
        if not (isinstance(event_type, str) and event_type in EVENT_CLASSES):
            # Without a type pydantic names nothing else: a file of another layout would
            # get only "type: required". Name every missing core attribute, every column
            # that is no attribute of the contract.
            reasons += [f"{name}: required" for name in _REQUIRED if name not in raw]
            reasons += [
                f"{name}: unknown attribute (extensions are kept only on a valid touchpoint)"
                for name in kept
                if name not in CORE_ATTRIBUTES
            ]
        raise InvalidEvent(refused + reasons) from None
    if refused:
        raise InvalidEvent(refused)
    return event


def from_text_cells(document: dict[str, Any]) -> dict[str, Any]:
    """``document`` whose ``data`` leaves are text (CSV cells, ``--set`` values), with each
    integer and boolean field of its type converted from text explicitly (plain digits,
    ``true``/``false``); anything else stays text, and validation names the problem.

    JSON input never passes through here: there ``"3"`` is not an integer.
    """
    event_type = document.get("type")
    kinds = _text_kinds(event_type) if isinstance(event_type, str) else {}
    data = document.get("data")
    if not kinds or not isinstance(data, dict):
        return document
    converted = dict(data)
    for name, kind in kinds.items():
        cell = converted.get(name)
        if isinstance(cell, str):
            converted[name] = (
                strict.whole_number_text(cell) if kind == "integer" else (strict.flag_text(cell))
            )
    return {**document, "data": converted}


@cache
def _text_kinds(event_type: str) -> dict[str, str]:
    cls = EVENT_CLASSES.get(event_type)
    if cls is None:
        return {}
    data_model = cls.model_fields["data"].annotation
    assert isinstance(data_model, type)
    assert issubclass(data_model, BaseModel)
    properties = data_model.model_json_schema()["properties"]
    return {
        name: spec["type"]
        for name, spec in properties.items()
        if spec.get("type") in ("integer", "boolean")
    }


def event_from_json(document: bytes | str) -> Touchpoint:
    """Parse one structured-mode CloudEvent (a JSON object) from outside the ledger, strictly
    (see :mod:`ledger.strict`): duplicate keys, ``NaN`` and numbers not written plainly are
    refused by name."""
    try:
        raw = strict.loads(document)
    except strict.StrictJSONError as exc:
        raise InvalidEvent([f"(event): not valid JSON: {exc}"]) from None
    return parse_event(raw)


def event_from_stored(document: bytes | str) -> Touchpoint:
    """Parse a document the ledger wrote itself (canonical JSON, validated when appended)."""
    # Fast path: types still at schema version 1, or whose newer versions only added
    # optional fields (ADDITIVE_TYPES), need no upcasting, so pydantic can validate the
    # bytes directly (an explicit older dataschema fails there and is upcast below).
    # Anything else, and every failure, takes the full path below, which also produces
    # the reasons.
    try:
        event = EVENT_ADAPTER.validate_json(document)
    except ValidationError:
        pass
    else:
        if event.type in ADDITIVE_TYPES:
            return event
    return event_from_json(document)


def event_to_json(event: TouchpointEvent) -> bytes:
    """The canonical structured-mode JSON of an event: field order fixed, nulls left out."""
    # The model's own serializer: 1.5x faster than the union adapter's, same bytes.
    return event.__pydantic_serializer__.to_json(event, exclude_none=True)


def event_to_dict(event: TouchpointEvent) -> dict[str, Any]:
    """The canonical JSON-ready dict of an event."""
    return event.model_dump(mode="json", exclude_none=True)


_STORED_FORMS = frozenset({"Sealed", "literal['[erased]']"})
"""Union members of personal fields that hold what the ledger stores (the encrypted
envelope, the erased marker): a cleartext value that fails is reported as cleartext."""
_UNION_TAG = re.compile(r"^(constrained-str|str|function-after\[.*\])$")
_PLAIN_PART = re.compile(r"[A-Za-z0-9_]{1,64}", re.ASCII)
_ENUM_REPR = re.compile(r"<\w+\.\w+: ('[^']*')>")
_TYPES = ", ".join(sorted(EVENT_CLASSES))


def reasons_of(exc: ValidationError) -> list[str]:
    """One ``"field.path: problem"`` line per pydantic error, in the contract's words."""
    reasons: list[str] = []
    for error in exc.errors(include_url=False):
        location = [str(part) for part in error["loc"]]
        if location and location[0] in EVENT_CLASSES:
            location = location[1:]  # the discriminator tag pydantic puts first
        if any(part in _STORED_FORMS for part in location):
            continue  # a personal field's stored forms (envelope, marker): not what was meant
        location = [part for part in location if not _UNION_TAG.match(part)]
        # A name a person cannot read (a space, a control character, 300 characters) is
        # quoted, shortened, after the path that holds it.
        odd = next((i for i, part in enumerate(location) if not _PLAIN_PART.fullmatch(part)), None)
        named = "" if odd is None else f"{location[odd][:40]!r}"
        location = location if odd is None else location[:odd]
        field = ".".join(location) or "(event)"
        kind = error["type"]
        if kind == "union_tag_not_found":
            reason = f"type: required (one of {_TYPES})"
        elif kind == "union_tag_invalid":
            tag = error.get("ctx", {}).get("tag")
            reason = f"type: {tag!r} is not a touchpoint type (one of {_TYPES})"
        elif kind == "missing":
            reason = f"{field}: required"
        elif kind == "string_pattern_mismatch" and field == "datacontenttype":
            reason = f"{field}: {error['input']!r} {JSON_MEDIA_TYPE_PROBLEM}"
        elif kind == "extra_forbidden":
            reason = f"{field}: unknown field {named}".rstrip()
        else:
            message = _ENUM_REPR.sub(r"\1", error["msg"]).removeprefix("Value error, ")
            reason = f"{field}: {f'field {named}: ' if named else ''}{message}"
        if reason not in reasons:
            reasons.append(reason)
    return reasons
