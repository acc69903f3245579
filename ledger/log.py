"""The ``EventLog`` port: append batches, read from positions with filters, follow.

Two adapters implement it: :mod:`ledger.sqlite_log` (embedded, one partition) and
:mod:`ledger.kafka_log` (a topic, keyed by customer). One contract test suite runs
against both (``tests/integration/test_log_contract.py``).
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import Any, NamedTuple

from ledger.events import Touchpoint


@dataclass(frozen=True, order=True, slots=True)
class Position:
    """Where a record sits in the log: a partition and an offset within it.

    The embedded log has one partition (0) whose offsets start at 1; Kafka
    offsets start at 0. Positions only compare within a partition.
    """

    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.partition}:{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Position:
        """Parse ``"PARTITION:OFFSET"`` or a bare ``"OFFSET"`` (partition 0)."""
        partition, colon, offset = text.partition(":")
        if not colon:
            partition, offset = "0", partition
        if not (partition.isdigit() and offset.isdigit()):
            raise ValueError(f"{text!r} is not a position (OFFSET or PARTITION:OFFSET)")
        return cls(int(partition), int(offset))


@dataclass(frozen=True, slots=True)
class Appended:
    """The event is now in the log at ``position``."""

    event_id: str
    position: Position


@dataclass(frozen=True, slots=True)
class Duplicate:
    """An event with this id is already in the log (at ``position`` when known).

    The embedded log refuses duplicates across its whole history; Kafka cannot,
    so its adapter refuses them within one batch only and projections deduplicate.
    """

    event_id: str
    position: Position | None


AppendOutcome = Appended | Duplicate


@dataclass(frozen=True, slots=True)
class LogRecord:
    """One record read back from a log.

    ``event`` is ``None`` when the stored bytes could not be decoded as a
    touchpoint; ``error`` then says why. Readers never crash on such a record:
    they report it with its position.
    """

    position: Position
    recorded_at: datetime
    """When the ledger stored the record (SQLite: append time; Kafka: record timestamp)."""
    event: Touchpoint | None
    error: str | None = None
    raw: bytes = field(default=b"", repr=False)
    """The stored bytes (embedded: the structured JSON; Kafka: the record value)."""


class StoredEvent(NamedTuple):
    """A record exactly as a log that validates at append time stored it (see
    :meth:`EventLog.read_stored`): its envelope columns and canonical bytes, not decoded."""

    position: Position
    id: str
    type: str
    subject: str
    micros: int
    """Event time, microseconds since the epoch."""
    document: bytes
    """The canonical structured-mode JSON the ledger wrote."""


class RawRecord(NamedTuple):
    """A record's stored parts, exactly as the log holds them (what audit seals cover).

    Kafka: the record's key, headers, value and timestamp. The embedded log: the customer
    as key, the id, type and event-time columns as headers, the stored JSON as value, and
    the append time: every column the ledger reads back.
    """

    position: Position
    key: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    value: bytes | None
    timestamp: int
    """Microseconds since the epoch (Kafka: the record timestamp, milliseconds x 1000)."""
    tag: bytes = b"TPL-RECORD-1"
    """Which record layout of docs/audit.md these parts follow (the embedded log's records
    sealed since layout 2 carry every column, with its type: ``TPL-RECORD-2``)."""


@dataclass(frozen=True, slots=True)
class ReadFilter:
    """Which records a read returns. Empty fields mean "all"."""

    customer: str | None = None
    types: frozenset[str] = frozenset()
    since: datetime | None = None
    """Event time at or after this instant."""
    until: datetime | None = None
    """Event time strictly before this instant."""

    def matches(self, event: Touchpoint) -> bool:
        """Whether a decoded event passes the filter."""
        if self.customer is not None and event.subject != self.customer:
            return False
        if self.types and event.type not in self.types:
            return False
        if self.since is not None and event.time < self.since:
            return False
        return self.until is None or event.time < self.until


EVERYTHING = ReadFilter()
"""The filter that passes every record."""

Positions = Mapping[int, int]
"""Per partition, the first offset to read (inclusive). Missing partitions start at 0."""


class EventLog(ABC):
    """An append-only, ordered log of touchpoints."""

    #: Whether :meth:`append` refuses an id seen in any earlier batch.
    refuses_duplicates_across_batches: bool

    #: Whether :meth:`write` releases the GIL for most of its time, so that encoding the
    #: next batch on another thread meanwhile pays off (SQLite: yes; kafka-python: no,
    #: its sends are Python work and it has its own I/O thread).
    overlapped_writes: bool = False

    #: Whether every stored record was validated and canonically encoded by this ledger
    #: when it was appended, so :meth:`read_stored` may hand out undecoded bytes (SQLite:
    #: yes; Kafka: no, any client may publish to the topic).
    validated_at_append: bool = False

    def append(self, events: Sequence[Touchpoint]) -> list[AppendOutcome]:
        """Append a batch; returns one outcome per event, in order.

        Returns only once the events are durable (committed to SQLite, or
        acknowledged by all in-sync Kafka replicas). Raises ``LogUnavailable``
        if the log cannot take them; no partial success is reported as success.
        """
        return self.write(self.encode(events))

    @abstractmethod
    def encode(self, events: Sequence[Touchpoint]) -> Any:
        """Turn a batch into what :meth:`write` sends: CPU work only, no I/O.

        Split from :meth:`write` so that a pipeline can encode the next batch while
        the previous one is written (the write releases the GIL while it waits).
        """

    @abstractmethod
    def write(self, encoded: Any) -> list[AppendOutcome]:
        """Write a batch made by :meth:`encode`; the promise of :meth:`append`."""

    @abstractmethod
    def partitions(self) -> list[int]:
        """The partition numbers of this log."""

    @abstractmethod
    def record_at(self, position: Position) -> LogRecord | None:
        """The record at exactly ``position``, decoded now (``None`` if there is none)."""

    @abstractmethod
    def end_positions(self) -> dict[int, int]:
        """Per partition, the offset the next appended record will get."""

    @abstractmethod
    def read(
        self, start: Positions | None = None, where: ReadFilter = EVERYTHING
    ) -> Iterator[LogRecord]:
        """The records from ``start`` to the current end, in log order per partition.

        Records whose bytes cannot be decoded are yielded with ``event=None`` and
        an ``error`` regardless of the filter, so that nothing is hidden silently.
        """

    @abstractmethod
    def read_raw(self, partition: int, start: int = 0) -> Iterator[RawRecord]:
        """Every record of one partition from offset ``start`` to the current end, undecoded
        (for sealing and verifying: nothing is interpreted, so nothing is hidden)."""

    def read_stored(self, start: Positions | None = None) -> Iterator[StoredEvent]:
        """Every record from ``start`` to the current end, undecoded, in log order.

        Only for logs that are :attr:`validated_at_append`; readers that need speed more
        than a model per record (projectors) decode just what they use.
        """
        raise NotImplementedError(f"{type(self).__name__} does not vouch for its records")

    @abstractmethod
    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: threading.Event | None = None,
        poll_seconds: float = 0.2,
    ) -> Iterator[LogRecord]:
        """Like :meth:`read`, then block for new records until ``stop`` is set."""

    @abstractmethod
    def close(self) -> None:
        """Release connections and clients."""

    def __enter__(self) -> EventLog:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
