"""The fast validating decode (issue 17) accepts exactly what the general path accepts,
with the same events, and leaves everything else to it (which keeps its reasons)."""

from __future__ import annotations

import copy
import itertools
import json
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, computed_field

from ledger.codec import parse_event
from ledger.errors import InvalidEvent
from ledger.events import EVENT_CLASSES, Touchpoint
from ledger.fast_decode import (
    _PLAIN_SCHEMAS,
    FactParts,
    _plain_object,
    fast_fact_parts,
    fast_from_record,
    plain_schema,
)
from ledger.generate import generated
from ledger.kafka_binding import from_record, to_binary
from projections.fact import Fact, fact_of
from tests.strategies import event_documents

Record = tuple[bytes | None, bytes | None, list[tuple[str, bytes | None]]]

EVENTS = [parse_event(d) for d in itertools.islice(generated(300, 365, seed=3), 3000)]


def general(record: Record) -> Touchpoint | None:
    try:
        return from_record(*record)  # type: ignore[arg-type]
    except InvalidEvent:
        return None


def test_every_generated_record_takes_the_fast_path_to_the_same_event() -> None:
    types = set()
    for event in EVENTS:
        key, value, headers = to_binary(event)
        fast = fast_from_record(key, value, list(headers))
        assert fast is not None, (value, headers)
        assert fast == event
        assert fast == from_record(key, value, headers)
        assert fast.model_fields_set == from_record(key, value, headers).model_fields_set
        types.add(event.type)
    assert len(types) >= 12


def variants(record: Record) -> list[Record]:
    """Records near ``record`` that the fast path must not decide differently."""
    key, value, headers = record
    assert value is not None
    named = dict(headers)
    swapped = [(n.upper() if n == "ce_id" else n, v) for n, v in headers]
    without_schema = [(n, v) for n, v in headers if n != "ce_dataschema"]  # version 1
    body = value.decode()
    return [
        (key, value.replace(b"{", b'{"channel":"web",', 1), headers),  # a key given twice
        (key, value.replace(b'":', b'" :', 1), headers),
        (key, value[:-1] + b',"extra":-0}', headers),
        (key, value[:-1] + b',"n":1E2}', headers),
        (key, value[:-1] + b',"n":1.50}', headers),
        (key, value[:-1] + b',"n":NaN}', headers),
        (key, b"\xef\xbb\xbf" + value, headers),
        (key, value + b" []", headers),
        (key, body.encode("utf-16"), headers),
        (key, value.replace(b"}", b',"note":"\\ud800"}', 1), headers),
        (key, value, swapped),
        (key, value, [*headers, ("ce_id", named["ce_id"])]),
        (key, value, [*headers, ("content-type", b"application/json")]),
        (key, value, [(n, v) for n, v in headers if n != "content-type"]),
        (key, value, [(n, v) for n, v in headers if n != "ce_specversion"]),
        (key, value, [*headers, ("ce_traceparent", b"00-abc-def-01")]),
        (key, value, [*headers, ("ce_dataschema", b"urn:touchpoint-ledger:x:v1")]),
        (key, value, [(n, v) for n, v in headers if n != "ce_dataschema"]),
        (key, value[:-1] + b',"queue":"q","in_reply_to":"x"}', without_schema),
        (key, value, [(n, b"0.3" if n == "ce_specversion" else v) for n, v in headers]),
        (key, value, [(n, b"text/plain" if n == "content-type" else v) for n, v in headers]),
        (key, value, [(n, b"\xff" if n == "ce_source" else v) for n, v in headers]),
        (key, value, [(n, None if n == "ce_source" else v) for n, v in headers]),
        (key, value, [(n, b"2025-01-01 10:00" if n == "ce_time" else v) for n, v in headers]),
        (b"someone-else", value, headers),
        (None, value, headers),
        (key, None, headers),
        (key, b"[]", headers),
        (key, b'{"a":{"b":1,"b":2}}', headers),
    ]


@pytest.mark.parametrize("event", EVENTS[:40], ids=lambda e: e.type)
def test_near_misses_are_left_to_the_general_path_or_decoded_alike(event: Touchpoint) -> None:
    key, value, headers = to_binary(event)
    for record in variants((key, value, list(headers))):
        fast = fast_from_record(*record)
        if fast is not None:
            assert fast == general(record), record
            assert fast.model_fields_set == from_record(*record).model_fields_set  # type: ignore[arg-type]


def test_a_key_given_twice_is_refused_by_the_general_path_with_its_reason() -> None:
    key, value, headers = to_binary(EVENTS[0])
    doubled = value.replace(b"{", b'{"x":1,"x":2,', 1)
    assert fast_from_record(key, doubled, list(headers)) is None
    with pytest.raises(InvalidEvent, match="duplicate key 'x'"):
        from_record(key, doubled, headers)


# -- the fact path: validated straight to facts, no model built (issue 17) -------------


def general_fact(record: Record) -> Fact | None:
    event = general(record)
    return None if event is None else fact_of(event)


def check_same_as_general(record: Record) -> FactParts | None:
    """The fast paths decide ``record`` as the general path does, or leave it to it."""
    parts = fast_fact_parts(*record)
    expected = general_fact(record)
    if parts is not None:
        assert expected is not None, ("fast path accepted what the general path refuses", record)
        assert Fact(*parts) == expected, record
        assert list(parts[4]) == list(expected.data), record  # the same member order
        # ...at every depth, and the same JSON types (1 is not true, "1.50" not 1.5):
        assert orjson.dumps(parts[4]) == orjson.dumps(expected.data), record
    event = fast_from_record(*record)
    if event is not None:
        assert expected is not None, record
        assert fact_of(event) == expected, record
    return parts


def test_every_generated_record_takes_the_fact_path_to_the_same_fact() -> None:
    for event in EVENTS:
        key, value, headers = to_binary(event)
        parts = check_same_as_general((key, value, list(headers)))
        assert parts is not None, (value, headers)
        assert Fact(*parts) == fact_of(event)


@pytest.mark.parametrize("event", EVENTS[:40], ids=lambda e: e.type)
def test_near_misses_take_the_fact_path_only_to_the_same_fact(event: Touchpoint) -> None:
    key, value, headers = to_binary(event)
    for record in variants((key, value, list(headers))):
        check_same_as_general(record)


def record_of(document: dict[str, Any]) -> Record:
    key, value, headers = to_binary(parse_event(document))
    return key, value, list(headers)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event_documents())
def test_valid_events_of_every_type_take_the_fact_path_to_the_same_fact(
    document: dict[str, Any],
) -> None:
    record = record_of(document)
    parts = check_same_as_general(record)
    assert parts is not None, record
    # Written by another JSON writer (blanks, key order): decided alike, or left over.
    key, value, headers = record
    data = json.loads(value)
    for text in (
        json.dumps(data),
        json.dumps(data, ensure_ascii=False, separators=(",", ":")),
        json.dumps(dict(reversed(data.items())), separators=(",", ":")),
        json.dumps(data, indent=1),
    ):
        check_same_as_general((key, text.encode(), headers))


HOSTILE_VALUES: list[object] = [
    None,
    True,
    False,
    0,
    -1,
    1,
    7 * 24 * 3600 + 1,
    10**18,
    10**19,
    -(10**19),
    2**64,
    "",
    " ",
    "x",
    "0",
    "1",
    "true",
    "12.5",
    "1e3",
    "-0",
    "0.00001",
    "99999999999999.9999",
    "100000000000000",
    "GBP",
    "gbp",
    "XXX",
    "+905551112233",
    "+0555",
    "05551112233",
    "a@b.example",
    "phone:+905551112233",
    "email:A@B.EXAMPLE",
    "external:Shop:1",
    "h:" + "0" * 32,
    "2024-05-01T09:30:00Z",
    "2024-05-01T09:30:00",
    "2024-02-30T09:30:00Z",
    "1899-12-31T23:59:59Z",
    "3000-01-01T00:00:00+01:00",
    "2024-05-01T09:30:00.1234567Z",
    "Europe/Istanbul",
    "Mars/Olympus",
    "tr-TR",
    "answered",
    "missed",
    "web",
    "inbound",
    "marketing",
    "csat",
    "nps",
    "ı̇ünïcödé ✓ \u200b",
    "\x00",
    "x" * 600,
    [],
    [1],
    [{"rule": "cap", "message": "m"}],
    {},
    {"enc": "v1", "kid": "k", "n": "A" * 16, "c": "B" * 22},
    {"amount": "1.00", "currency": "GBP"},
    {"name": "x", "email": "a@b.example"},
]
"""Values a hostile publisher may put anywhere."""
HOSTILE_TEXTS = ["1.5", "1E2", "-0", "1.0", "12345678901234567890", "-12345678901234567890"]
"""Numbers as written in JSON that orjson would not read as the strict reader does."""
ENVELOPE_HEADERS = ["ce_id", "ce_source", "ce_subject", "ce_time", "ce_type", "ce_dataschema"]


def hostile(draw: st.DrawFn) -> object:
    return copy.deepcopy(draw(st.sampled_from(HOSTILE_VALUES)))  # mutated later


def compact(data: object) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


@st.composite
def hostile_records(draw: st.DrawFn) -> Record:
    """A valid record of any type with one to three hostile changes."""
    key, value, headers = record_of(draw(event_documents()))
    data = orjson.loads(value)
    extra_texts: list[str] = []
    for _ in range(draw(st.integers(1, 3))):
        action = draw(st.sampled_from(["set", "drop", "add", "nested", "number", "header"]))
        fields = sorted(data)
        if action == "set" and fields:
            data[draw(st.sampled_from(fields))] = hostile(draw)
        elif action == "drop" and fields:
            del data[draw(st.sampled_from(fields))]
        elif action == "add":
            name = draw(st.sampled_from(["extra", "note", "channel", "amount", "time"]))
            data[name] = hostile(draw)
        elif action == "nested":
            nested = [f for f in fields if isinstance(data[f], dict)]
            if nested:
                inner = data[draw(st.sampled_from(nested))]
                inner[draw(st.sampled_from([*inner, "extra"]))] = draw(
                    st.sampled_from(HOSTILE_VALUES)
                )
        elif action == "number" and fields:
            name = draw(st.sampled_from(fields))
            data[name] = "@@"
            extra_texts.append(name)
        elif action == "header":
            name = draw(st.sampled_from(ENVELOPE_HEADERS))
            bad = hostile(draw)
            text = bad if isinstance(bad, str) else json.dumps(bad)
            headers = [(n, v) for n, v in headers if n != name] + [(name, text.encode())]
    body = compact(data)
    for name in extra_texts:
        number = draw(st.sampled_from(HOSTILE_TEXTS)).encode()
        body = body.replace(b'"' + name.encode() + b'":"@@"', b'"' + name.encode() + b'":' + number)
    if draw(st.booleans()) and len(data) > 1:  # a key given twice
        first = next(iter(data))
        twice = compact({first: hostile(draw)})[1:-1]
        body = body[:-1] + b"," + twice + b"}"
    if draw(st.booleans()):
        key = draw(st.sampled_from([key, b"", b"someone-else", key + b" "]))
    return key, body, headers


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hostile_records())
def test_hostile_records_are_refused_by_the_fast_paths_or_decoded_alike(record: Record) -> None:
    check_same_as_general(record)


def test_hostile_records_do_reach_both_verdicts() -> None:
    """The hostile strategy is not vacuous: the fast path decides some of them, and the
    general path refuses others."""
    accepted = refused = 0

    @settings(max_examples=300, deadline=None, database=None)
    @given(hostile_records())
    def count(record: Record) -> None:
        nonlocal accepted, refused
        if fast_fact_parts(*record) is not None:
            accepted += 1
        if general_fact(record) is None:
            refused += 1

    count()
    assert accepted > 10
    assert refused > 50


def test_the_plain_schemas_are_the_models_schemas_with_dicts_for_models() -> None:
    """Derived from the models at import (so they cannot drift): every node is the model
    schema's own, but models, which became typed dicts with the same fields."""

    def shape(schema: object) -> object:
        if isinstance(schema, list):
            return [shape(s) for s in schema]
        if not isinstance(schema, dict):
            return schema
        kind = schema.get("type")
        if kind == "default" and isinstance(schema["default"], BaseModel):
            schema = {**schema, "default": schema["default"].model_dump()}  # a model default
        if kind == "model":
            fields = schema["schema"]["fields"]
            return ("object", {n: shape(f["schema"]) for n, f in fields.items()})
        if kind == "typed-dict":
            return ("object", {n: shape(f["schema"]) for n, f in schema["fields"].items()})
        if kind == "function-after":
            return ("after", shape(schema["schema"]))
        return {k: shape(v) for k, v in schema.items() if k not in {"metadata", "ref", "config"}}

    for name, cls in EVENT_CLASSES.items():
        assert shape(_PLAIN_SCHEMAS[name]) == shape(cls.__pydantic_core_schema__), name


def test_a_schema_feature_the_translation_does_not_know_stops_it() -> None:
    class Computed(BaseModel):
        x: int

        @computed_field  # type: ignore[prop-decorator]
        @property
        def y(self) -> int:
            return self.x

    with pytest.raises(TypeError, match="does not translate"):
        plain_schema(Computed.__pydantic_core_schema__)


def test_the_model_checks_run_on_the_fact_path() -> None:
    """The models' own ``after`` checks (no talk time without an answer, a score on its
    scale) refuse on the fact path too."""
    call = next(e for e in EVENTS if e.type == "touchpoint.call")
    key, value, headers = to_binary(call)
    data = {**orjson.loads(value), "outcome": "missed", "duration_seconds": 30}
    record = (key, orjson.dumps(data), list(headers))
    assert fast_fact_parts(*record) is None
    assert general(record) is None
    feedback = next(e for e in EVENTS if e.type == "feedback.given")
    key, value, headers = to_binary(feedback)
    data = {**orjson.loads(value), "scale": "csat", "score": 9}
    record = (key, orjson.dumps(data), list(headers))
    assert fast_fact_parts(*record) is None
    assert general(record) is None


@pytest.mark.parametrize(
    "text",
    [
        b'{"a":1.5}',
        b'{"a":[1,{"b":2.0}]}',
        b'{"a":1E2}',
        b'{"a":1e+20}',
        b'{"a":{"b":[1e-7]}}',
        b'{"a":1000000000000000.0}',
        b'{"a":-0}',
        b'{"a":123456789012345678901}',
        b'{"a":1,"a":1}',
        b'{"a" :1,"a":2}',
        b'{"a":{"b":1,"b":1}}',
    ],
)
def test_the_fast_reader_declines_what_orjson_reads_otherwise(text: bytes) -> None:
    """Fractions, exponents, -0, integers beyond 64 bits and keys given twice: orjson
    would read them otherwise than the strict reader (a float, 0, the last key)."""
    assert _plain_object(text) is None


def test_the_fast_reader_reads_plain_objects_in_any_layout() -> None:
    assert _plain_object(b'{"a":[1,{"b":-2}],"c":"x-0.5"}') == {"a": [1, {"b": -2}], "c": "x-0.5"}
    assert _plain_object(b'{ "a": 1, "b": {"c": true} }') == {"a": 1, "b": {"c": True}}
