"""CloudEvents extension attributes: which the ledger keeps, which it refuses, and why.

CloudEvents 1.0 lets a producer add *extension* context attributes beside the core ones
(tracing middleware adds ``traceparent``/``tracestate``, the SDKs' Kafka key mapping adds
``partitionkey``). The ledger keeps every extension that follows the spec's rules with the
event, stores it, and gives it back on replay. It refuses only:

* a name that is not lower-case ASCII letters and digits (the spec's naming rule); names
  may be up to :data:`MAX_NAME` characters (the spec recommends at most 20);
* a value that is not a string, an integer (32-bit, the spec's Integer) or a boolean, and
  for the documented extensions whose type is a string, anything but a string;
* ``data_base64`` (binary data: a touchpoint's data is a JSON object);
* a name within a small edit distance of a core attribute (``subjet``, ``tme``): almost
  always a typo, which would otherwise silently lose the attribute it was meant to be
  (see :func:`likely_typo` for the rule).

An extension whose value is ``null`` is absent (the JSON format's rule) and is dropped.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

CORE_ATTRIBUTES = (
    "specversion",
    "id",
    "source",
    "type",
    "subject",
    "time",
    "datacontenttype",
    "dataschema",
    "data",
)
"""The context attributes the contract defines, plus ``data``."""

_CORE = frozenset(CORE_ATTRIBUTES)

STRING_EXTENSIONS = {
    "traceparent": "W3C Trace Context (distributed tracing)",
    "tracestate": "W3C Trace Context (distributed tracing)",
    "partitionkey": "partitioning: the key the producer partitioned by",
    "sequence": "sequence: the event's position in the producer's sequence",
    "sequencetype": "sequence: how to compare sequence values (deprecated)",
    "dataref": "claim check: a URI-reference to the data",
    "recordedtime": "the time the producer recorded the event (RFC 3339)",
}
"""Documented extensions whose value the spec types as a string (String, URI-reference or
Timestamp, each a string in JSON and in Kafka headers)."""

MAX_NAME = 64
MAX_VALUE = 4096
MAX_EXTENSIONS = 32
"""Bounds beyond the spec's, so that a record stays small; far above real use
(``tracestate`` is at most 512 characters)."""

_NAME = re.compile(r"[a-z0-9]+", re.ASCII)
_PLAIN = re.compile(r"[A-Za-z0-9_]{1,64}", re.ASCII)
_INT32 = (-(2**31), 2**31 - 1)


def extension_problem(name: str, value: object) -> str | None:
    """Why the extension ``name`` with ``value`` is refused, or ``None`` if it is kept."""
    if name == "data_base64":
        return "data_base64: binary data is not a touchpoint; send data as a JSON object"
    if not _NAME.fullmatch(name):
        # A name a person can read stands as the field; anything else is quoted, shortened.
        field = name if _PLAIN.fullmatch(name) else f"(event): attribute {name[:40]!r}"
        return (
            f"{field}: unknown attribute, and not a valid extension name "
            "(CloudEvents: lower-case a-z and 0-9 only)"
        )
    if len(name) > MAX_NAME:
        return f"(event): extension name {name[:20]!r}… longer than {MAX_NAME} characters"
    if (typo := likely_typo(name)) is not None:
        return f"{name}: unknown attribute; did you mean {typo!r}?"
    if isinstance(value, str):
        if len(value) > MAX_VALUE:
            return f"{name}: extension value longer than {MAX_VALUE} characters"
        return None
    if name in STRING_EXTENSIONS:
        return f"{name}: must be a string ({STRING_EXTENSIONS[name]})"
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        if not _INT32[0] <= value <= _INT32[1]:
            return f"{name}: {value} is outside the CloudEvents Integer range (32-bit)"
        return None
    return (
        f"{name}: an extension value must be a string, a whole number or true/false "
        f"(got {_kind(value)})"
    )


def _kind(value: object) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"{value!r}"


def likely_typo(name: str) -> str | None:
    """The core attribute ``name`` is probably a typo of, or ``None``.

    The rule: a name that is not a core attribute (nor a documented extension) and is within
    Damerau-Levenshtein distance 1 of a core attribute of up to 4 letters (``id``, ``type``,
    ``time``, ``data``), or within distance 2 of a longer one (``subjet``, ``sorce``,
    ``datacontentype``), is refused as a likely typo.
    """
    if name in CORE_ATTRIBUTES or name in STRING_EXTENSIONS:
        return None
    for core in CORE_ATTRIBUTES:
        limit = 1 if len(core) <= 4 else 2
        if abs(len(core) - len(name)) <= limit and _distance(name, core) <= limit:
            return core
    return None


def _distance(a: str, b: str) -> int:
    """Optimal string alignment distance (insertions, deletions, substitutions, swaps)."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def split_extensions(
    raw: dict[str, object], core: Iterable[str] = CORE_ATTRIBUTES
) -> tuple[dict[str, object], list[str]]:
    """``raw`` with refused and ``null`` extensions left out, and the reasons for refusals."""
    known = _CORE if core is CORE_ATTRIBUTES else frozenset(core)
    if raw.keys() <= known:
        return raw, []  # the common case, checked in C
    reasons: list[str] = []
    kept: dict[str, object] = {}
    extensions = 0
    for name, value in raw.items():
        if name in known:
            kept[name] = value
            continue
        if value is None:
            continue
        problem = extension_problem(name, value)
        if problem is not None:
            reasons.append(problem)
            continue
        extensions += 1
        kept[name] = value
    if extensions > MAX_EXTENSIONS:
        reasons.append(f"(event): {extensions} extension attributes; at most {MAX_EXTENSIONS}")
    return kept, reasons
