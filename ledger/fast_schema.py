"""The contract's checks as pydantic-core's own, for the fast decode (issue 17).

The contract writes many checks as Python functions (``AfterValidator(check_phone)``,
``BeforeValidator(whole_number)``, the amount's chain of five), because they must name
the problem for a person. pydantic-core calls back into Python for each, about a tenth of
a microsecond apiece, and the fast decode (:mod:`ledger.fast_decode`) validates every
record read. It only needs a yes or a no -- a no sends the record to the general path,
which names the problem -- so here those checks become pydantic-core schemas of their own
(a pattern, a literal, a strict type) that accept the same values with the same result.

The rewritings, each exact for the values a JSON document holds (strings, integers,
booleans, ``null``, lists and objects; stricter for others, such as bytes, which the fast
decode never passes):

* a check equivalent to a constraint: the constraint (:data:`_SAME`);
* a check that usually passes: a ``left_to_right`` union whose first member accepts a
  subset of what the check accepts, natively and with the same result, and whose second
  member is the check itself for the rest (:data:`_FIRST`) -- an unusual value costs
  one more try, never a different verdict;
* enums as literals of their values: the data is serialised to its JSON form anyway,
  and a member's ``.value`` is a Python call per field there (:func:`native_schema`);
  and ``dataschema``, whose check makes an absent one the current URN, has that URN as
  its default (:func:`_dataschema`).

A node is rewritten only when it is exactly the shape written here (the function and its
inner schema, constraints included); any other shape stays as it is, so a changed contract
is slower here, never different. ``tests/unit/test_fast_schema.py`` checks every rewritten
node against the node it replaces, value by value, and whole records against the general
path.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from enum import Enum
from typing import Any, cast

from pydantic._internal import _validators
from pydantic_core import core_schema

from ledger.events import TouchpointEvent
from ledger.identifiers import check_subject
from ledger.payloads import _check_recipient, _whole_digits
from ledger.strict import MAX_DIGITS, flag, plain_decimal, rfc3339, whole_number
from ledger.timeutil import check_range
from ledger.vocabulary import (
    E164_PATTERN,
    ISO_3166,
    ISO_4217,
    LOCALE_PATTERN,
    check_country,
    check_currency,
    check_locale,
    check_phone,
)

Schema = Mapping[str, Any]
"""A schema node as read (a plain dict) or built (one of ``core_schema``'s typed dicts)."""

OPAQUE = frozenset({"metadata", "cls", "members", "function", "config", "serialization"})
"""Schema members that hold no nested schema."""


def native_schema(schema: Any) -> Any:
    """``schema`` with the checks this module knows made pydantic-core's own (see the module
    docstring); everything else as it is."""
    if isinstance(schema, list):
        return [native_schema(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    replaced = _rewritten(schema)
    if replaced is not None:
        return replaced
    kind = schema.get("type")
    if kind == "enum" and schema.get("sub_type") == "str" and _plain_keys(schema):
        # The values, not the members: the serialised data holds the values.
        return core_schema.literal_schema(
            [member.value for member in schema["members"]], ref=schema.get("ref")
        )
    native = {k: v if k in OPAQUE else native_schema(v) for k, v in schema.items()}
    if kind == "literal":
        native["expected"] = [_value(e) for e in schema["expected"]]
    if kind == "default":
        native["default"] = _value(schema["default"])
    return native


def _value(value: object) -> object:
    """A str enum member's value (a literal's expected value, a default); else ``value``."""
    return value.value if isinstance(value, Enum) and isinstance(value, str) else value


def _plain_keys(schema: Schema) -> bool:
    return set(schema) <= {"type", "cls", "members", "sub_type", "ref", "metadata"}


def _rewritten(schema: Schema) -> Schema | None:
    """The native form of ``schema``, if it is a node written here; else ``None``."""
    kind = schema.get("type")
    if kind == "default" and _is_dataschema(schema.get("schema")):
        return _dataschema(schema)
    if kind not in ("function-after", "function-before"):
        return None
    function = schema["function"]
    if function.get("type") != "no-info":
        return None
    rewrite = _SAME.get(function["function"])
    if rewrite is not None:
        return rewrite(schema)
    first = _FIRST.get(function["function"])
    if first is not None:
        accepted = first(schema)
        if accepted is not None:
            choices: list[Any] = [accepted, schema]
            return core_schema.union_schema(choices, mode="left_to_right")
    return None


# -- checks equivalent to a constraint ---------------------------------------------------


def _whole_number(schema: Schema) -> Schema | None:
    """``whole_number`` then an integer: a strict integer (no boolean, no string, no
    float), of at most :data:`ledger.strict.MAX_DIGITS` characters as ``whole_number``
    counts them (the sign included)."""
    inner = schema["schema"]
    if schema["type"] != "function-before" or inner.get("type") != "int":
        return None
    if not set(inner) <= {"type", "ge", "le", "metadata"}:
        return None
    ge = max(inner.get("ge", -(10 ** (MAX_DIGITS - 1) - 1)), -(10 ** (MAX_DIGITS - 1) - 1))
    le = min(inner.get("le", 10**MAX_DIGITS - 1), 10**MAX_DIGITS - 1)
    return core_schema.int_schema(strict=True, ge=ge, le=le)


def _flag(schema: Schema) -> Schema | None:
    """``flag`` then a boolean: a strict boolean (``true``/``false`` only)."""
    if schema["type"] != "function-before" or schema["schema"] != {"type": "bool"}:
        return None
    return core_schema.bool_schema(strict=True)


def _after_plain_str(make: Callable[[], Schema]) -> Callable[[Schema], Schema | None]:
    """The rewriting of a check after an unconstrained string."""

    def rewrite(schema: Schema) -> Schema | None:
        if schema["type"] != "function-after" or schema["schema"] != {"type": "str"}:
            return None
        return make()

    return rewrite


_SAME: dict[object, Callable[[Schema], Schema | None]] = {
    whole_number: _whole_number,
    flag: _flag,
    check_currency: _after_plain_str(lambda: core_schema.literal_schema(sorted(ISO_4217))),
    check_country: _after_plain_str(lambda: core_schema.literal_schema(sorted(ISO_3166))),
    check_phone: _after_plain_str(
        lambda: core_schema.str_schema(strict=True, pattern=E164_PATTERN)
    ),
    check_locale: _after_plain_str(
        lambda: core_schema.str_schema(strict=True, pattern=LOCALE_PATTERN)
    ),
}
"""Per check: its rewriting as a constraint that accepts the same values with the same
result (Rust's regex is Python's here: ASCII classes, ``$`` only at the end)."""


# -- checks that usually pass: a native subset first, the check for the rest -------------

_CENTURIES = "(190[1-9]|19[1-9][0-9]|2[0-8][0-9]{2}|29[0-8][0-9]|299[0-8])"
"""Years 1901..2998: any offset (under a day) keeps such a time's UTC instant inside the
ledger's range, so :func:`ledger.timeutil.check_range` passes without looking."""
_RFC3339_IN_RANGE = (
    rf"^{_CENTURIES}-[0-9]{{2}}-[0-9]{{2}}[Tt][0-9]{{2}}:[0-9]{{2}}:[0-9]{{2}}(\.[0-9]{{1,6}})?"
    r"([Zz]|[+-][0-9]{2}:[0-9]{2})$"
)
"""What :func:`ledger.strict.rfc3339` lets through (at most 6 fractional digits), in those
years; the datetime validator after it still refuses a 31 April."""


def _moment(schema: Schema) -> Schema | None:
    """``check_range`` after ``rfc3339`` before a datetime: a time string in the years
    1901..2998, then the same datetime validator."""
    inner = schema["schema"]
    if schema["type"] != "function-after" or inner.get("type") != "function-before":
        return None
    if inner["function"] != {"type": "no-info", "function": rfc3339}:
        return None
    if inner["schema"].get("type") != "datetime":
        return None
    pattern = core_schema.str_schema(strict=True, pattern=_RFC3339_IN_RANGE)
    return core_schema.chain_schema([pattern, cast(core_schema.CoreSchema, inner["schema"])])


_SUBJECT = core_schema.str_schema(strict=True, pattern=r"^[\x21-\x39\x3b-\x7e]{1,128}$")
"""A customer id without a colon: ``check_subject`` returns it as it is."""


def _subject(schema: Schema) -> Schema | None:
    inner = schema["schema"]
    expected = {"type", "min_length", "max_length", "pattern", "metadata"}
    if schema["type"] != "function-after" or inner.get("type") != "str" or set(inner) > expected:
        return None
    if (inner.get("min_length"), inner.get("max_length"), inner.get("pattern")) != (
        1,
        128,
        r"^[\x21-\x7e]+$",
    ):
        return None
    return _SUBJECT


_ADDRESS = r"[\x21-\x3f\x41-\x7e]+"
"""Printable ASCII but ``@``: never a blank, never ``@`` (what ``EMAIL_PATTERN`` refuses
around its ``@`` and dot)."""
_RECIPIENT = core_schema.union_schema(
    [
        core_schema.str_schema(
            strict=True, pattern=rf"^{_ADDRESS}@{_ADDRESS}\.{_ADDRESS}$", max_length=254
        ),
        core_schema.str_schema(strict=True, pattern=E164_PATTERN),
    ],
    mode="left_to_right",
)
"""An e-mail address in printable ASCII, or an E.164 number: ``_check_recipient`` returns
either as it is."""


def _recipient(schema: Schema) -> Schema | None:
    if schema["type"] != "function-after" or schema["schema"] != {"type": "str"}:
        return None
    return _RECIPIENT


_AMOUNT_TEXT = {
    ("ge", 0): r"^(0|[1-9][0-9]{0,13})(\.[0-9]{1,4})?$",
    ("gt", 0): r"^([1-9][0-9]{0,13}(\.[0-9]{1,4})?|0\.[0-9]{0,3}[1-9])$",
}
"""Amounts as the ledger writes them (a string; at most 14 digits before the point and 4
after it), not zero for ``gt``. Each passes the whole chain (``plain_decimal``, the bound,
18 digits, 4 places, 14 before the point), and its ``Decimal`` serialises back to the same
text (plain notation: the exponent is -4 or more), so the string is kept as the result."""


def _amount(schema: Schema) -> Schema | None:
    """The amount's chain: ``_whole_digits`` after ``decimal_places=4`` after
    ``max_digits=18`` after ``ge=0`` (or ``gt=0``) after ``plain_decimal`` before a
    decimal."""
    chain = []
    node = schema
    while node.get("type") in ("function-after", "function-before"):
        if node["function"].get("type") != "no-info":
            return None
        chain.append((node["type"], node["function"]["function"]))
        node = node["schema"]
    if node != {"type": "decimal"} or len(chain) != 5:
        return None
    (_, whole), (_, places), (_, digits), (_, bound), plain = chain
    if whole is not _whole_digits or plain != ("function-before", plain_decimal):
        return None
    if not (
        _is_partial(places, "decimal_places_validator", decimal_places=4)  # pydantic 2.13
        or _is_partial(places, "decimal_places_validator", decimal_places=4, max_digits=18)
    ):  # 2.14 binds max_digits too, to check the digits before the point: the pattern does
        return None
    if not _is_partial(digits, "max_digits_validator", max_digits=18):
        return None
    for (name, limit), pattern in _AMOUNT_TEXT.items():
        if _is_partial(bound, _BOUNDS[name], **{name: limit}):
            return core_schema.str_schema(strict=True, pattern=pattern)
    return None


_BOUNDS = {"ge": "greater_than_or_equal_validator", "gt": "greater_than_validator"}


def _is_partial(function: object, name: str, **keywords: object) -> bool:
    """Whether ``function`` is pydantic's constraint validator ``name`` bound to exactly
    ``keywords``. Where pydantic applies decimal constraints has changed between its
    versions: a version without these functions has its amounts left as they are."""
    of = getattr(_validators, name, None)
    return (
        of is not None
        and isinstance(function, functools.partial)
        and function.func is of
        and not function.args
        and function.keywords == keywords
    )


_FIRST: dict[object, Callable[[Schema], Schema | None]] = {
    check_range: _moment,
    check_subject: _subject,
    _check_recipient: _recipient,
    _whole_digits: _amount,
}
"""Per check: the native schema of a subset of what its node accepts, with the same
result; the node itself follows it in a ``left_to_right`` union."""


# -- the dataschema attribute ------------------------------------------------------------


def _is_dataschema(schema: object) -> bool:
    """Whether ``schema`` is ``TouchpointEvent._current_schema`` after an optional string
    (the ``dataschema`` attribute of an event class)."""
    if not isinstance(schema, dict) or schema.get("type") != "function-after":
        return False
    method = getattr(schema["function"].get("function"), "__func__", None)
    current = TouchpointEvent._current_schema.__func__  # type: ignore[attr-defined]
    return method is current and schema["schema"] == {"type": "nullable", "schema": {"type": "str"}}


def _dataschema(schema: Schema) -> Schema | None:
    """``dataschema``: absent (validated as ``None``) or its class's current URN gives that
    URN, anything else is the check's (a ``null`` gives the URN too, another URN fails)."""
    if schema.get("default") is not None or not schema.get("validate_default"):
        return None
    if not set(schema) <= {"type", "default", "validate_default", "schema", "metadata"}:
        return None
    check = schema["schema"]
    urn = check["function"]["function"].__self__.schema_urn()
    current = core_schema.union_schema(
        [core_schema.literal_schema([urn]), cast(core_schema.CoreSchema, check)],
        mode="left_to_right",
    )
    return core_schema.with_default_schema(current, default=urn)
