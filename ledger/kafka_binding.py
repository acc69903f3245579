"""The CloudEvents Kafka protocol binding (v1.0) for touchpoints.

We write **binary mode**: each context attribute as a ``ce_<name>`` header (UTF-8),
``datacontenttype`` as the ``content-type`` header, ``data`` as the record value, and
the customer id as the record key. ``ce_dataschema`` is sent only for schema versions
above 1 (absent means version 1). We read binary mode and **structured mode**
(``content-type: application/cloudevents+json``, the whole event as the value).

Extension attributes travel as ``ce_<name>`` headers too, in the spec's canonical string form
(``true``/``false``, integers in decimal). Reading, header names are matched in any case
(``Content-Type``, ``CE_ID``: Kafka headers are case-sensitive, but HTTP-minded tools and
proxies change case) and an attribute given twice, in any spelling, is refused; the media
type is compared case-insensitively and may carry parameters (``charset=utf-8``).
"""

from __future__ import annotations

from collections.abc import Sequence

from ledger import strict
from ledger.codec import event_from_json, parse_event
from ledger.errors import InvalidEvent
from ledger.events import Touchpoint, TouchpointEvent

STRUCTURED = "application/cloudevents+json"
Headers = list[tuple[str, bytes]]


def to_binary(event: TouchpointEvent) -> tuple[bytes, bytes, Headers]:
    """``(key, value, headers)`` of a Kafka record carrying ``event`` in binary mode."""
    # Built from the fields directly: twice as fast as dumping the model to a dict.
    headers: Headers = [
        ("ce_specversion", event.specversion.encode()),
        ("ce_id", event.id.encode()),
        ("ce_source", event.source.encode()),
        ("ce_type", event.type.encode()),
        ("ce_subject", event.subject.encode()),
        ("ce_time", event.time.isoformat().encode()),
    ]
    if event.schema_version != 1:
        # Absent means version 1 (the contract); one header less per record is ~5% faster.
        headers.append(("ce_dataschema", event.schema_urn().encode()))
    if event.model_extra:
        headers += [
            (f"ce_{name}", _header_value(value)) for name, value in event.model_extra.items()
        ]
    headers.append(("content-type", event.datacontenttype.encode()))
    data = event.data.__pydantic_serializer__.to_json(event.data, exclude_none=True)
    return event.subject.encode(), data, headers


def _header_value(value: object) -> bytes:
    # The spec's canonical string encoding: Boolean as true/false, Integer in decimal.
    if isinstance(value, bool):
        return b"true" if value else b"false"
    return str(value).encode()


def from_record(
    key: bytes | None, value: bytes | None, headers: Sequence[tuple[str, bytes | None]]
) -> Touchpoint:
    """Decode a Kafka record in binary or structured mode; ``InvalidEvent`` if it is not one."""
    content_type: bytes | None = None
    attributes: dict[str, object] = {}
    for name, raw in headers:
        lowered = name.lower()
        if raw is None:
            if lowered == "content-type" or lowered.startswith("ce_"):
                raise InvalidEvent([f"headers: {name} has no value"])
            continue  # another application's header: not the ledger's to read
        if lowered == "content-type":
            if content_type is not None:
                raise InvalidEvent(["headers: content-type given twice"])
            content_type = raw
        elif lowered.startswith("ce_"):
            attribute = lowered[3:]
            if attribute in attributes:
                raise InvalidEvent([f"headers: ce_{attribute} given twice (names in any case)"])
            try:
                attributes[attribute] = raw.decode()
            except UnicodeDecodeError:
                raise InvalidEvent([f"headers: a ce_ header is not UTF-8 ({name})"]) from None
    if value is None:
        raise InvalidEvent(["value: empty record (a tombstone is not a touchpoint)"])
    if content_type is not None and _media_type(content_type) == STRUCTURED:
        event = event_from_json(value)
    else:
        if content_type is not None:
            attributes["datacontenttype"] = content_type.decode(errors="replace")
        try:
            data = strict.loads(value)
        except strict.StrictJSONError as exc:
            raise InvalidEvent([f"data: the record value is not JSON: {exc}"]) from None
        event = parse_event({**attributes, "data": data})
    if key != event.subject.encode():
        raise InvalidEvent(
            [
                f"key: the record key must be the customer id {event.subject!r} (got {key!r}), "
                "or that customer's events lose their order"
            ]
        )
    return event


def _media_type(content_type: bytes) -> str:
    """The media type without parameters, lower-cased (media types are case-insensitive)."""
    return content_type.split(b";")[0].strip().decode(errors="replace").lower()
