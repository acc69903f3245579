"""The contract's checks made pydantic-core's own (:mod:`ledger.fast_schema`) accept the
same JSON values as the nodes they replace, with the same serialised results."""

from __future__ import annotations

import collections
from collections.abc import Iterator
from enum import Enum
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic_core import SchemaSerializer, SchemaValidator, core_schema

from ledger import fast_schema
from ledger.events import EVENT_CLASSES
from ledger.fast_decode import _PLAIN_SCHEMAS
from ledger.kafka_binding import to_binary
from tests.strategies import TIMES
from tests.unit.test_fast_decode import EVENTS, HOSTILE_VALUES, check_same_as_general, compact


def rewritten_nodes() -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """Every node of the events' plain schemas that :func:`fast_schema.native_schema`
    rewrites: its kind, the node and its rewriting."""

    def walk(schema: object) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
        if isinstance(schema, list):
            for item in schema:
                yield from walk(item)
            return
        if not isinstance(schema, dict):
            return
        native = fast_schema._rewritten(schema)
        kind = schema.get("type")
        if native is not None:
            function = schema.get("function", schema.get("schema", {}).get("function", {}))
            yield getattr(function.get("function"), "__name__", str(kind)), schema, native
            return
        if kind == "enum" or (kind in ("literal", "default") and _holds_members(schema)):
            yield str(kind), schema, fast_schema.native_schema(schema)
            return
        for key, value in schema.items():
            if key not in fast_schema.OPAQUE:
                yield from walk(value)

    for schema in _PLAIN_SCHEMAS.values():
        yield from walk(schema)


def _holds_members(schema: dict[str, Any]) -> bool:
    """Whether a literal expects, or a default is, an enum member (a value once native)."""
    values = schema["expected"] if schema["type"] == "literal" else [schema["default"]]
    return any(isinstance(value, Enum) for value in values)


class Node:
    """A node as a typed dict's one field ``v`` (optional if the node has a default), to
    validate a value -- or its absence -- and serialise the result."""

    def __init__(self, schema: dict[str, Any]) -> None:
        field = core_schema.typed_dict_field(schema, required=schema["type"] != "default")
        whole = core_schema.typed_dict_schema({"v": field})
        self.validator = SchemaValidator(whole)
        self.serializer = SchemaSerializer(whole)

    def verdict(self, document: dict[str, object]) -> object:
        try:
            valid = self.validator.validate_python(document)
        except ValueError:  # ValidationError, or a check's own error
            return "refused"
        return self.serializer.to_python(valid, mode="json")


NODES = [(name, Node(old), Node(new)) for name, old, new in rewritten_nodes()]

RFC3339 = "2024-05-01T09:30:00"
EDGE_TEXTS = [
    # times: the years at the range's ends, offsets, precision, spelling
    *(
        f"{year}-{rest}{zone}"
        for year in ("0001", "1899", "1900", "1901", "2998", "2999", "3000", "9999")
        for rest in ("01-01T00:00:00", "12-31T23:59:59.999999")
        for zone in ("Z", "+14:00", "-12:00", "+00:00", "-23:59")
    ),
    RFC3339 + "Z",
    RFC3339 + "z",
    RFC3339.replace("T", "t") + "Z",
    RFC3339.replace("T", " ") + "Z",
    RFC3339 + ".1234567Z",
    RFC3339 + ".123456Z",
    RFC3339 + ".Z",
    RFC3339,
    RFC3339 + "+0300",
    RFC3339 + "+24:00",
    RFC3339 + "Z\n",
    " " + RFC3339 + "Z",
    "2024-02-30T09:30:00Z",
    "2024-05-01T24:00:00Z",
    "2024-05-01T23:59:60Z",
    "２０２４-05-01T09:30:00Z",
    # amounts
    *("0 0.0 0.0000 0.00000 0.0000000 00.5 1. .5 -1 -0 -0.0 1e3 1E+2 0.0001 0.00010".split()),
    *("0.10 0.5 1.23456 1.2345 12345678901234.5678 99999999999999.9999 100000000000000".split()),
    "99999999999999.99990",
    "123456789012345",
    "１２",
    "1_000",
    " 1",
    "1\n",
    "+1",
    # subjects and recipients
    "C0000001",
    "a:b",
    "phone:+905551112233",
    "x" * 128,
    "x" * 129,
    "C1\n",
    "é",
    "a@b.example",
    "a@b",
    "a@@b.c",
    "a b@c.d",
    "a@b.c\n",
    "a\x1c@b.c",
    "a\u00a0@b.c",
    "é@b.c",
    "@b.c",
    "a@.c",
    "a@b.",
    "a.b@c",
    "a@b.c.d",
    "a" * 250 + "@b.c",
    "a" * 251 + "@b.c",
    "+905551112233",
    "+9055511122334455",
    "+123456",
    "+1234567",
    "+０555111222",
    # locales, currencies, countries, flags, enums
    *("tr-TR tr TR tr-tr zh-Hant-TW es-419 tr-TR\n tr_TR GBP gbp XXX GB gb ZZ".split()),
    *("true false yes phone PHONE email sms chat social inbound outbound marketing".split()),
    *("service transactional store web post".split()),
    *(f"urn:touchpoint-ledger:{name}:v{cls.schema_version}" for name, cls in EVENT_CLASSES.items()),
    "urn:touchpoint-ledger:touchpoint.call:v1",
]
EDGE_NUMBERS = [
    0,
    1,
    -1,
    255,
    256,
    604_800,
    604_801,
    1_000_000,
    1_000_001,
    10**14 - 1,
    10**14,
    2**63,
    10**39,
    10**40 - 1,
    10**40,
    -(10**39 - 1),
    -(10**39),
    1.0,
    1.5,
]
VALUES = [*HOSTILE_VALUES, *EDGE_TEXTS, *EDGE_NUMBERS]


def test_every_kind_of_rewriting_is_used() -> None:
    """The shapes written in fast_schema still match the contract (else it silently
    stops rewriting: slower, and these tests would check nothing)."""
    kinds = collections.Counter(name for name, _, _ in NODES)
    assert set(kinds) >= {
        "whole_number",
        "flag",
        "check_currency",
        "check_country",
        "check_phone",
        "check_locale",
        "check_range",
        "check_subject",
        "_check_recipient",
        "_whole_digits",
        "_current_schema",
        "enum",
        "literal",
        "default",
    }, kinds
    assert kinds["_current_schema"] == len(EVENT_CLASSES)


@pytest.mark.parametrize(("name", "old", "new"), NODES, ids=[n for n, _, _ in NODES])
def test_a_rewritten_node_decides_every_value_as_the_node_it_replaces(
    name: str, old: Node, new: Node
) -> None:
    assert new.verdict({}) == old.verdict({})  # absent
    decided = set()
    for value in VALUES:
        expected = old.verdict({"v": value})
        assert new.verdict({"v": value}) == expected, (name, value)
        decided.add(expected == "refused")
    assert decided == {True, False} or name.startswith("_current"), name  # not vacuous


def texts_near(pattern_like: str) -> st.SearchStrategy[str]:
    """Strings that share the alphabet and rough shape of ``pattern_like`` (so that they
    reach the checks, not only the first character test)."""
    alphabet = st.sampled_from([*sorted(set(pattern_like)), "é", " ", "\n", "@", ":", "."])
    return st.lists(alphabet, max_size=len(pattern_like) + 3).map("".join)


SAMPLES = st.one_of(
    st.builds(lambda moment: moment.isoformat(), TIMES),
    st.builds(lambda moment: moment.isoformat().replace("+00:00", "Z"), TIMES),
    st.decimals(min_value=0, max_value=10**15, allow_nan=False, places=6).map(str),
    texts_near("2024-05-01T09:30:00.123456+03:00Zz"),
    texts_near("0123456789.0"),
    texts_near("a.b-C_d+1@x.example"),
    texts_near("+905551112233"),
    texts_near("zh-Hant-TW"),
    st.text(max_size=20),
    st.integers(),
    st.booleans(),
    st.none(),
)


@settings(max_examples=600, deadline=None)
@given(SAMPLES)
def test_rewritten_nodes_decide_random_values_as_the_nodes_they_replace(value: object) -> None:
    for name, old, new in NODES:
        assert new.verdict({"v": value}) == old.verdict({"v": value}), (name, value)


def one_record_per_type() -> list[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    found: dict[str, Any] = {}
    for event in EVENTS:
        found.setdefault(event.type, event)
    return [record_of_event(event) for event in found.values()]


def record_of_event(event: Any) -> tuple[bytes, bytes, list[tuple[str, bytes]]]:
    key, value, headers = to_binary(event)
    return key, value, list(headers)


@pytest.mark.parametrize("record", one_record_per_type(), ids=lambda r: r[2][3][1].decode())
def test_edge_values_in_every_field_take_the_fact_path_only_to_the_same_fact(
    record: tuple[bytes, bytes, list[tuple[str, bytes]]],
) -> None:
    """Whole records, deterministically: every value above in every member of the data
    (and of its nested objects) and in the headers the rewritten checks read, decided by
    the fast path as by the general path, or left to it."""
    key, value, headers = record
    data = orjson.loads(value)
    places = [(data, name) for name in data]
    places += [
        (inner, name) for inner in data.values() if isinstance(inner, dict) for name in inner
    ]
    for edge in VALUES:
        for holder, name in places:
            was = holder[name]
            holder[name] = edge
            check_same_as_general((key, compact(data), headers))
            holder[name] = was
        if isinstance(edge, str):
            for header in ("ce_time", "ce_subject", "ce_dataschema"):
                changed = [(n, v) for n, v in headers if n != header] + [(header, edge.encode())]
                check_same_as_general((edge.encode(), value, changed))
                check_same_as_general((key, value, changed))
