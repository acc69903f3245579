"""The fast validating decode (issue 17) accepts exactly what the general path accepts,
with the same events, and leaves everything else to it (which keeps its reasons)."""

from __future__ import annotations

import itertools

import pytest

from ledger.codec import parse_event
from ledger.errors import InvalidEvent
from ledger.events import Touchpoint
from ledger.fast_decode import fast_from_record
from ledger.generate import generated
from ledger.kafka_binding import from_record, to_binary

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
