"""Policy files and campaign lists: reading them from disk or a stream for the use cases.

The policy itself (parsing its text, judging contacts by it) is the pure
:mod:`projections.policy`; this module holds what touches files: a policy file, a folder of its
versions, the built-in policy shipped with the package, and the campaign lists of
``may-contact --batch``."""

from __future__ import annotations

import csv
import io
import itertools
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import IO

from ledger import strict
from ledger.vocabulary import Channel, Purpose
from projections.policy import LoadedPolicy, PolicyError, PolicyHistory, parse_policy


def load_policy(path: Path) -> LoadedPolicy:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise PolicyError(str(path), [f"cannot read: {exc.strerror}"]) from None
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise PolicyError(
            str(path), [f"line {line}: not UTF-8 (byte {data[exc.start]:#04x}); TOML is UTF-8"]
        ) from None
    return parse_policy(text, str(path))


def load_policies(path: Path) -> PolicyHistory:
    """A policy file, or a folder of them (``*.toml``): its history, checked as a whole."""
    if not path.is_dir():
        return PolicyHistory([load_policy(path)])
    versions = [load_policy(file) for file in sorted(path.glob("*.toml"))]
    if not versions:
        raise PolicyError(str(path), ["no *.toml policy files in this folder"])
    undated = [v.source for v in versions if v.policy.effective_from is None]
    if len(undated) > 1:
        raise PolicyError(str(path), [f"only one version may lack effective_from: {undated}"])
    starts = [v.policy.effective_from for v in versions if v.policy.effective_from]
    if len(set(starts)) != len(starts):
        raise PolicyError(str(path), ["two versions take effect at the same moment"])
    versions.sort(key=lambda v: v.policy.effective_from or datetime.min.replace(tzinfo=UTC))
    return PolicyHistory(versions)


DEFAULT_POLICY = Path(__file__).with_name("default_policy.toml")
"""The built-in policy; it documents every key."""


def default_policy() -> LoadedPolicy:
    """The built-in policy, application/default_policy.toml (it documents every key)."""
    return parse_policy(DEFAULT_POLICY.read_text(), "(built-in policy)")


@cache
def default_history() -> PolicyHistory:
    """The built-in policy's history, parsed once per process (a decision asks for it every
    time; parsing took ~0.3 ms of a ~0.8 ms decision). Nothing changes it in place."""
    return PolicyHistory([default_policy()])


Request = tuple[str, str, str]
"""``(customer, channel, purpose)``."""


def parse_requests(stream: IO[bytes]) -> Iterator[tuple[int, Request | str]]:
    """A campaign list, CSV (header ``customer,channel,purpose``) or JSON Lines (objects with
    those keys), line by line: each line's number and its request, or what is wrong with it.
    Read strictly, like an import: a leading BOM is skipped, a key or column given twice and
    bytes that are not UTF-8 are named, never guessed at."""
    first = stream.readline().removeprefix(b"\xef\xbb\xbf")
    if first.lstrip().startswith(b"{"):
        lines = itertools.chain([first], stream)
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = strict.loads(line)
            except strict.StrictJSONError as exc:
                yield number, f"not JSON: {exc}"
                continue
            yield number, _request(item if isinstance(item, dict) else {})
        return
    try:
        header = [h.strip() for h in first.decode().split(",")]
    except UnicodeDecodeError:
        yield 1, "the CSV header is not UTF-8"
        return
    missing = {"customer", "channel", "purpose"} - set(header)
    twice = sorted({h for h in header if h and header.count(h) > 1})
    if missing or twice:
        problem = f"lacks {', '.join(sorted(missing))}" if missing else f"repeats {twice[0]!r}"
        yield 1, f"the CSV header {problem}"
        return
    text = io.TextIOWrapper(stream, encoding="utf-8", errors="surrogateescape", newline="")
    try:
        for number, row in enumerate(csv.DictReader(text, header), 2):
            if any(_SURROGATE.search(cell) for cell in row.values() if isinstance(cell, str)):
                yield number, "not UTF-8"
                continue
            yield number, _request(row)
    finally:
        text.detach()  # the caller owns the stream


_SURROGATE = re.compile("[\udc80-\udcff]")
_CHANNELS = frozenset(c.value for c in Channel)
_PURPOSES = frozenset(p.value for p in Purpose)


def _request(item: Mapping[str, object]) -> Request | str:
    customer, channel, purpose = (item.get(k) for k in ("customer", "channel", "purpose"))
    if not isinstance(customer, str) or not customer.strip():
        return "customer: required"
    if channel not in _CHANNELS:
        return f"channel: {channel!r} is not one of {', '.join(sorted(_CHANNELS))}"
    if purpose not in _PURPOSES:
        return f"purpose: {purpose!r} is not one of {', '.join(sorted(_PURPOSES))}"
    return customer.strip(), str(channel), str(purpose)
