"""Strict reading of input: one meaning per input, or a rejection that names it.

JSON is read with duplicate keys refused (``json`` keeps the last silently), ``NaN`` and
``Infinity`` refused, and every number kept as written until a field's validator decides;
numbers must be plain ASCII decimals (``19.90``, ``3``): no exponent (``1E+2``), no negative
zero (``-0``), no ``_`` separators, no other scripts' digits, and ``true`` is not ``1``.
Types are not coerced: ``"3"`` is not an integer and ``"true"`` is not a boolean in JSON (as
in the published JSON Schemas). CSV cells and ``--set`` values are text by nature: they are
converted by the field's type first (:func:`whole_number_text`, :func:`flag_text`), by the same
rules for numbers and flags. Amounts are the exception by design: a plain decimal string is
the recommended form (exact), so ``"19.90"`` is an amount.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from decimal import Decimal
from typing import Any

_WHOLE = re.compile(r"-?(0|[1-9][0-9]*)", re.ASCII)
_DECIMAL = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?", re.ASCII)
MAX_DIGITS = 40
"""Longer numbers are refused before any conversion (no field needs more)."""


class StrictJSONError(ValueError):
    """A JSON document that does not have exactly one meaning."""


class NonPlainNumber:
    """A JSON number not written in plain form (``1E+2``, ``-0``, ``1.0e3``): it reaches
    the field's validator, which refuses it by name."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    document = dict(pairs)
    if len(document) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise StrictJSONError(f"duplicate key {key!r}")
            seen.add(key)
    return document


def _number(text: str) -> object:
    if len(text) > MAX_DIGITS or not _DECIMAL.fullmatch(text) or _negative_zero(text):
        return NonPlainNumber(text)
    return Decimal(text) if "." in text else int(text)


def _constant(name: str) -> object:
    raise StrictJSONError(f"{name} is not a JSON number")


def loads(document: bytes | str) -> Any:
    """Decode one JSON document strictly; :class:`StrictJSONError` says what is wrong."""
    try:
        if isinstance(document, bytes | bytearray):
            # As json.loads does (UTF-8, with or without a BOM; UTF-16/32 by their BOM or
            # their zero bytes), with the usual case first.
            if document[:1] in _PLAIN_UTF8_START and document[1:2] != b"\x00":
                document = document.decode("utf-8", "surrogatepass")
            else:
                document = document.decode(json.detect_encoding(document), "surrogatepass")
        elif document.startswith("\ufeff"):
            raise StrictJSONError("Unexpected UTF-8 BOM (decode using utf-8-sig)")
        return _DECODER.decode(document)
    except StrictJSONError:
        raise
    except RecursionError:
        raise StrictJSONError("nested too deeply") from None
    except (ValueError, UnicodeDecodeError) as exc:  # JSONDecodeError is a ValueError
        raise StrictJSONError(str(exc)) from None


_PLAIN_UTF8_START = frozenset((b"{", b"[", b'"'))
"""First bytes of a JSON text that can only be UTF-8 with no BOM (UTF-16/32 would put a
zero byte beside them)."""

_DECODER = json.JSONDecoder(
    object_pairs_hook=_object,
    parse_float=_number,
    parse_int=_number,
    parse_constant=_constant,
)
"""Built once: ``json.loads`` with hooks builds a new decoder per call (40 % of its time)."""


def _negative_zero(text: str) -> bool:
    return text.startswith("-") and not text.strip("-0.")


def _describe(value: object) -> str:
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, NonPlainNumber):
        text = value.text
    elif isinstance(value, Decimal | int):
        text = str(value)
    else:
        text = repr(value)
    return text if len(text) <= MAX_DIGITS else text[:MAX_DIGITS] + "…"


def whole_number(value: object) -> object:
    """Validator: a JSON integer (not a boolean, not a string: ``"3"`` is refused, as the
    JSON Schema refuses it; text sources such as CSV convert with :func:`whole_number_text`
    first)."""
    if isinstance(value, bool):
        raise ValueError(f"{_describe(value)} is a boolean, not a whole number")
    if isinstance(value, int):
        return value if len(str(value)) <= MAX_DIGITS else _too_long(value)
    if isinstance(value, str) and whole_number_text(value) is not value:
        raise ValueError(f"{value!r} is a string, not a whole number: send {value} unquoted")
    raise ValueError(f"{_describe(value)} is not a whole number in plain digits (e.g. 3)")


def whole_number_text(text: str) -> object:
    """A CSV cell or ``--set`` value meant as a whole number: its ``int`` when written in
    plain ASCII digits, else ``text`` itself (the validator then names the problem)."""
    if len(text) <= MAX_DIGITS and _WHOLE.fullmatch(text) and not _negative_zero(text):
        return int(text)
    return text


def flag_text(text: str) -> object:
    """A CSV cell or ``--set`` value meant as true/false: ``True``/``False`` for exactly
    ``true``/``false``, else ``text`` itself (the validator then names the problem)."""
    return {"true": True, "false": False}.get(text, text)


def plain_decimal(value: object) -> object:
    """Validator: an exact decimal written plainly (``19.90``, ``3``), as a JSON number or a
    string; no exponent, no negative zero, no separators, ASCII digits only."""
    if isinstance(value, bool):
        raise ValueError(f"{_describe(value)} is a boolean, not a number")
    if isinstance(value, int | Decimal):
        return value if len(str(value)) <= MAX_DIGITS else _too_long(value)
    if isinstance(value, str) and len(value) <= MAX_DIGITS and _DECIMAL.fullmatch(value):
        if _negative_zero(value):
            raise ValueError(f"{value!r} is a negative zero; write 0")
        return Decimal(value)
    if isinstance(value, float):
        # Only reachable through a non-strict decoder: a binary float is never exact.
        raise ValueError(f"{value!r} is a binary float; send the amount as a string")
    raise ValueError(
        f"{_describe(value)} is not a plain decimal number (e.g. 19.90; no exponent, no separators)"
    )


def _too_long(value: object) -> object:
    raise ValueError(f"{_describe(value)} has more than {MAX_DIGITS} digits")


def flag(value: object) -> object:
    """Validator: a JSON ``true`` or ``false``; the strings ``"true"``, ``"yes"`` are refused
    (text sources convert with :func:`flag_text` first)."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and flag_text(value) is not value:
        raise ValueError(f"{value!r} is a string, not true or false: send {value} unquoted")
    raise ValueError(f"{_describe(value)} is not true or false")


RFC3339 = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?([Zz]|[+-][0-9]{2}:[0-9]{2})",
    re.ASCII,
)


RFC3339_SCHEMA = (
    r"^(19[0-9]{2}|2[0-9]{3})-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"
    r"[Tt]([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?"
    r"([Zz]|[+-]([01][0-9]|2[0-3]):[0-5][0-9])$"
)
"""The JSON Schema ``pattern`` of a time, since ``format: date-time`` is only an annotation
in 2020-12 (validators ignore it by default). It cannot see two checks the ledger makes:
the day exists in its month (no 31 April), and the UTC instant, after the offset, lies in
1900..2999."""


def rfc3339(value: object) -> object:
    """Validator: an RFC 3339 string with an offset, or an aware datetime; nothing else
    (no naive times, no Unix timestamps, no other ISO 8601 spellings)."""
    if isinstance(value, str):
        match = RFC3339.fullmatch(value)
        if match and match[1] and len(match[1]) > 7:
            raise ValueError(
                f"{value!r} is more precise than a microsecond; the ledger keeps at most 6 "
                "fractional digits and does not round silently: send at most 6"
            )
        if not match:
            raise ValueError(
                f"{value!r} is not an RFC 3339 timestamp with a time zone "
                "(e.g. 2024-05-01T09:30:00+03:00 or 2024-05-01T06:30:00Z)"
            )
        return value
    if isinstance(value, datetime):
        if value.utcoffset() is None:
            raise ValueError("naive datetime: the time zone is required")
        return value
    raise ValueError("must be an RFC 3339 timestamp string")
