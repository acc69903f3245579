"""What a projector hands a view store: one batch of rows, ids, dead letters and positions,
and the errors a commit can raise."""

from __future__ import annotations

import base64
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from ledger.errors import LedgerError
from projections.frequency import ContactKey
from projections.profile import Profile
from projections.service_levels import ServiceFact

VIEWS = "views"
PREFIXED = "substr(application_name, 1, ?) = ?"  # exact: LIKE would read _ as a wildcard
REBUILD_PREFIX = "views-rebuild"
REBUILD_SUFFIX = "_rebuild"


def name_prefix(prefix: str) -> tuple[int, str]:
    return len(prefix), prefix


class StoreUnavailable(LedgerError):
    """The view store cannot be opened, read or written."""


class SharedEventId(LedgerError):
    """Parallel shards of one batch each applied an event with the same id (the same id
    published under two customers' keys). Nothing of the batch was written; the range
    must be projected by one process, which sees every id."""


class BatchConflict(LedgerError):
    """Another projector committed some of this batch's events or positions first
    (a consumer-group rebalance overlap). Nothing of the batch was written."""


@dataclass(frozen=True, slots=True)
class DeadLetter:
    """A record that could not be decoded or applied, parked with its reason and all of
    the record a person needs to judge it: value, key, headers and timestamp."""

    partition: int
    offset: int
    raw: bytes
    """The record's value (the embedded log: the stored JSON)."""
    reason: str
    parked_at: datetime
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: datetime | None = None
    """When the log recorded it (Kafka: the record timestamp; embedded: append time)."""
    first: tuple[int, int] | None = None
    """A conflicting duplicate: the position of the copy of its id that was applied."""


class Seen(NamedTuple):
    """An applied event id: a digest of its content and where it was read (``None`` for
    ids applied before the ledger kept them: such a copy cannot be compared)."""

    digest: int | None
    partition: int | None
    offset: int | None
    micros: int | None = None
    """The event's time (microseconds): the dedupe window keeps ids by it (``None``: kept
    for ever, as ids recorded before the window existed)."""


def encode_headers(headers: Sequence[tuple[str, bytes]]) -> str | None:
    """Headers as JSON, losslessly: ``{"name", "value"}`` (UTF-8) or ``{"name", "base64"}``."""
    if not headers:
        return None
    encoded: list[dict[str, str]] = []
    for name, value in headers:
        if value is None:  # Kafka allows a header without a value
            encoded.append({"name": name, "value": None})
            continue
        try:
            encoded.append({"name": name, "value": value.decode()})
        except UnicodeDecodeError:
            encoded.append({"name": name, "base64": base64.b64encode(value).decode()})
    return orjson.dumps(encoded).decode()


def decode_headers(text: str | None) -> tuple[tuple[str, bytes], ...]:
    if not text:
        return ()
    return tuple(
        (
            h["name"],
            (h["value"] or "").encode() if "value" in h else base64.b64decode(h["base64"]),
        )
        for h in orjson.loads(text)
    )


@dataclass(slots=True)
class Misplaced:
    """Records of one partition that sit outside their key's murmur2 partition: how many,
    and the last one seen (its offset, customer and the partition murmur2 gives it)."""

    partition: int
    count: int
    offset: int
    customer: str
    home: int

    def add(self, other: Misplaced) -> None:
        """Count ``other``'s records too; the later of the two last records stays."""
        self.count += other.count
        if other.offset >= self.offset:
            self.offset, self.customer, self.home = other.offset, other.customer, other.home


@dataclass(slots=True)
class Cleartext:
    """Records of one partition whose personal fields hold a value in clear (a publisher
    that does not encrypt, or a log written before encryption): how many, and the last."""

    partition: int
    count: int
    offset: int
    customer: str

    def add(self, other: Cleartext) -> None:
        self.count += other.count
        if other.offset >= self.offset:
            self.offset, self.customer = other.offset, other.customer


@dataclass
class ViewBatch:
    """Everything one batch changes, written in one transaction."""

    profiles: dict[str, Profile] = field(default_factory=dict)
    contacts: Counter[ContactKey] = field(default_factory=Counter)
    applied_ids: dict[str, Seen] = field(default_factory=dict)
    """The ids this batch applied, with their content digest and position."""
    dead_letters: list[DeadLetter] = field(default_factory=list)
    positions: dict[int, int] = field(default_factory=dict)
    """Per partition, the next offset to read once this batch is committed."""
    newest: dict[int, int] = field(default_factory=dict)
    """Per partition, the latest event time among the events of this batch (microseconds)."""
    rate: float = 0.0
    """Records per second while this batch was processed."""
    expected: dict[int, int | None] = field(default_factory=dict)
    """Per partition, the stored position this batch was read from (``None``: no position
    yet). The commit fails if another projector moved it meanwhile."""
    generation: int | None = None
    """The store generation the batch's profiles were loaded in (see ``generation()``)."""
    bump_generation: bool = False
    resolved: list[tuple[int, int]] = field(default_factory=list)
    """Dead letters (partition, offset) that this batch applied at last."""
    misplaced: dict[int, Misplaced] = field(default_factory=dict)
    """Per partition, the records of this batch outside their key's murmur2 partition."""
    cleartext: dict[int, Cleartext] = field(default_factory=dict)
    """Per partition, the records of this batch with personal data in clear."""
    service: list[ServiceFact] = field(default_factory=list)
    """The service-level rows of the events this batch applied."""
    identity: list[tuple[str, str, str, str, int, str | None]] = field(default_factory=list)
    """Identity facts applied by this batch (rows of ``identity_events``)."""


Guard = tuple[str, int | None, int | None]
"""``(tracking name, value this batch expects, new value or None to only check)``."""


@dataclass(frozen=True, slots=True)
class PreparedBatch:
    """A batch turned into statements and rows, plus the guards its commit checks."""

    rows: list[tuple[str, list[tuple[Any, ...]]]]
    guards: list[Guard]
    staged: tuple[str, ...] = ()
    """Staging files (:func:`write_staged`) whose rows the commit adds too (SQLite only)."""
