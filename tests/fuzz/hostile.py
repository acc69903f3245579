"""Hypothesis strategies for hostile input: random bytes and JSON, valid events mutated one
field at a time, and times and numbers at and beyond the edges of the contract."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from typing import Any

from hypothesis import strategies as st

from tests.strategies import event_documents

# Accepted, at the very edges of the contract's range (1900..2999 UTC), in extreme offsets.
EDGE_TIMES = st.sampled_from(
    [
        "1900-01-01T00:00:00Z",
        "1900-01-01T14:00:00+14:00",
        "1899-12-31T12:00:00-12:00",
        "1899-12-31T00:01:00-23:59",
        "2999-12-31T23:59:59.999999Z",
        "3000-01-01T13:59:59+14:00",
        "2999-12-31T11:59:59.999999999-12:00",
        "2024-02-29T23:59:59+23:59",
        "2025-03-30T03:30:00+03:00",
    ]
)
# Refused: beyond the range, impossible dates and clocks, other spellings.
BAD_TIMES = st.sampled_from(
    [
        "9999-12-31T23:59:59-12:00",
        "0001-01-01T00:00:00+14:00",
        "3000-01-01T00:00:00Z",
        "1899-12-31T23:59:59.999999Z",
        "2025-02-29T00:00:00Z",
        "2025-01-01T24:00:00Z",
        "2025-01-01T23:59:60Z",
        "2025-01-01T00:00:00+24:00",
        "2025-01-01T00:00:00",
        "2025-01-01",
        "20250101T000000Z",
        "٢٠٢٥-01-01T00:00:00Z",
        "",
    ]
)
ANY_TIMES = st.builds(
    lambda moment, minutes: moment.replace(tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
    st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59, 59)),
    st.integers(-(24 * 60 - 1), 24 * 60 - 1),
)
"""Any RFC 3339 time Python can write: years 1..9999, offsets up to ±23:59."""
EXTREME_TIMES = EDGE_TIMES | BAD_TIMES | ANY_TIMES
NUMBERS: st.SearchStrategy[Any] = (
    st.sampled_from(
        [
            0,
            -1,
            1,
            2**31,
            2**63,
            10**40,
            1e308,
            0.1,
            -0.0,
            True,
            False,
            None,
            "0",
            "0.0001",
            "99999999999999.9999",
            "1E+2",
            "-0",
            "1_000",
            "٣",
            " 1",
            "NaN",
            "",
        ]
    )
    | st.integers()
    | st.decimals(allow_nan=False, allow_infinity=False).map(str)
)
STRINGS = st.text(max_size=30) | st.sampled_from(["", " ", "x" * 600, "\x00", "\u202e"])
JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | STRINGS
RANDOM_JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(STRINGS, inner, max_size=4),
    max_leaves=12,
)
ZONES = st.sampled_from(
    ["Pacific/Kiritimati", "Etc/GMT+12", "Pacific/Chatham", "Asia/Kathmandu", "Europe/Istanbul"]
)


@st.composite
def edge_events(draw: st.DrawFn, customers: tuple[str, ...] = ("C1", "C2")) -> dict[str, Any]:
    """An event of any type for one of ``customers``, at an extreme moment (at the edges of
    the contract's range, or anywhere Python can write), with extreme (still valid) amounts
    and counts where the type has them."""
    document = draw(event_documents())
    document["subject"] = draw(st.sampled_from(customers))
    document["time"] = draw(EDGE_TIMES | EXTREME_TIMES)
    data = document["data"]
    if "amount" in data:
        data["amount"] = draw(st.sampled_from(["0.0001", "99999999999999.9999", "1"]))
    if data.get("item_count"):
        data["item_count"] = draw(st.sampled_from([1, 1_000_000]))
    if document["type"] == "customer.details":
        data["time_zone"] = draw(ZONES)
    for reason in data.get("reasons", []):
        reason.pop("until", None)
    data.pop("earliest", None)
    return document


def dumps(document: Any, *, ensure_ascii: bool = True) -> str:
    """JSON text of a document (datetimes in RFC 3339, NaN and infinities as Python writes
    them: hostile on purpose)."""
    return json.dumps(document, ensure_ascii=ensure_ascii, default=_isoformat)


def _isoformat(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


_TIMES = {"time", "until", "earliest"}
_NUMBERS = {
    "amount",
    "item_count",
    "score",
    "segments",
    "messages",
    "wait_seconds",
    "duration_seconds",
    "bounced",
}


def _paths(document: dict[str, Any]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = [(key,) for key in document]
    for key, value in document.get("data", {}).items():
        paths.append(("data", key))
        if isinstance(value, dict):
            paths += [("data", key, inner) for inner in value]
    return paths


@st.composite
def mutated_events(draw: st.DrawFn) -> bytes:
    """A valid event (edge or ordinary) with one thing changed, as one JSON Lines line."""
    document = copy.deepcopy(draw(edge_events() | event_documents()))
    paths = _paths(document)
    operation = draw(st.sampled_from(["number", "time", "string", "json", "delete", "dup"]))
    # Numbers and times go where numbers and times are read, most of the time.
    aimed = [p for p in paths if p[-1] in (_TIMES if operation == "time" else _NUMBERS)]
    if operation in {"number", "time"} and aimed and draw(st.integers(0, 3)):
        paths = aimed
    path = draw(st.sampled_from(paths))
    *parents, leaf = path
    node = document
    for part in parents:
        node = node[part]
    if operation == "delete":
        del node[leaf]
    elif operation != "dup":
        node[leaf] = draw(
            {"number": NUMBERS, "time": EXTREME_TIMES, "string": STRINGS}.get(
                operation, RANDOM_JSON
            )
        )
    text = dumps(document, ensure_ascii=draw(st.booleans()))
    if operation == "dup":
        # The same key twice: the first occurrence gets a different value in front.
        key = json.dumps(leaf)
        text = text.replace(f"{key}:", f"{key}: null, {key}:", 1)
    return text.encode("utf-8", "surrogatepass")


HOSTILE_LINES = (
    st.binary(max_size=200)
    | RANDOM_JSON.map(lambda value: json.dumps(value).encode())
    | mutated_events()
    | edge_events().map(lambda document: dumps(document).encode())
)
"""One line of hostile input: bytes, any JSON, a mutated event, or an edge-valid event."""
