"""The ``EventLog`` port: append batches, read from positions with filters, follow.

Two adapters implement it: :mod:`ledger.sqlite_log` (embedded, one partition) and
:mod:`ledger.kafka_log` (a topic, keyed by customer). One contract test suite runs
against both (``tests/integration/test_log_contract.py``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType
from typing import TYPE_CHECKING, Any, NamedTuple

from ledger.errors import PositionBeyondEnd, PositionLost, RecordsDeleted
from ledger.events import Touchpoint

if TYPE_CHECKING:
    from ledger.stopping import Stop


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
    key: bytes | None = field(default=None, repr=False)
    """Kafka: the record key (what a parked record keeps besides its value)."""
    headers: tuple[tuple[str, bytes], ...] = field(default=(), repr=False)
    """Kafka: the record headers."""


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
    recorded_at: int = 0
    """When it was appended, microseconds since the epoch."""

    def intact(self) -> bool:
        """Whether every column holds the type the ledger writes, and the event time is
        one a date can hold (cheap: the fast path asks it of every record)."""
        return (
            type(self.micros) is int
            and type(self.document) is bytes
            and type(self.id) is str
            and type(self.type) is str
            and type(self.subject) is str
            and type(self.recorded_at) is int
            and EARLIEST_MICROS <= self.micros <= LATEST_MICROS
            and EARLIEST_MICROS <= self.recorded_at <= LATEST_MICROS
        )

    def damage(self) -> str | None:
        """Why this row cannot be what the ledger stored, naming each damaged column
        and its problem (``None`` if it is intact)."""
        return row_damage(
            originator_id=self.id,
            topic=self.type,
            subject=self.subject,
            event_time=self.micros,
            state=self.document,
            recorded_at=self.recorded_at,
        )


EARLIEST_MICROS = -62135596800000000
"""0001-01-01T00:00:00Z in microseconds since the epoch: the earliest time a date holds."""
LATEST_MICROS = 253402300799999999
"""9999-12-31T23:59:59.999999Z: the latest."""

_COLUMN_TYPES: dict[str, tuple[type, str]] = {
    "originator_id": (str, "text (the event id)"),
    "topic": (str, "text (the event type)"),
    "subject": (str, "text (the customer)"),
    "event_time": (int, "an integer (microseconds)"),
    "state": (bytes, "a blob (the event's JSON)"),
    "recorded_at": (int, "an integer (microseconds)"),
}


def row_damage(**columns: object) -> str | None:
    """Why an embedded-log row's ``columns`` cannot be what the ledger wrote -- a value
    of another type than it writes, an event time no date can hold -- one clause per
    damaged column naming it and its problem; ``None`` if there is none."""
    problems = []
    for column, value in columns.items():
        wanted, described = _COLUMN_TYPES[column]
        if type(value) is not wanted:
            problems.append(f"stored column {column}: holds {_shown(value)}, not {described}")
        elif column in ("event_time", "recorded_at"):
            assert isinstance(value, int)
            if not EARLIEST_MICROS <= value <= LATEST_MICROS:
                problems.append(
                    f"stored column {column}: {value} is outside years 1..9999 (no date holds it)"
                )
    if not problems:
        return None
    return "; ".join(problems) + " (changed outside the ledger? see: ledger audit verify)"


def _shown(value: object) -> str:
    kinds = {str: "text", bytes: "a blob", int: "an integer", float: "a real"}
    kind = "NULL" if value is None else kinds.get(type(value), type(value).__name__)
    if isinstance(value, str | bytes) and len(value) > 40:
        return f"{kind} {value[:40]!r}..."
    return kind if value is None else f"{kind} {value!r}"


def as_bytes(value: object) -> bytes:
    """A stored value as bytes, whatever its type (text as UTF-8, numbers as digits,
    NULL as nothing): what a parked record keeps of a damaged row."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, memoryview | bytearray):
        return bytes(value)
    if value is None:
        return b""
    text = value if isinstance(value, str) else repr(value)
    return text.encode("utf-8", "surrogatepass")


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


@dataclass(frozen=True, slots=True)
class CustomerTail:
    """One customer's records past some positions, up to the end of the log as it stood
    when the read began (what a decision folds beyond the views)."""

    ends: dict[int, int]
    """Per partition read, the end it read to (the offset of the next record)."""
    records: list[StoredEvent | LogRecord]
    """In log order per partition: the customer's records from the start positions, then
    (embedded log only) earlier ones of ``kept_types`` that happened since ``kept_since``."""
    complete: bool
    """False when more than ``limit`` records were found and the rest were not read."""


class EventLog(ABC):
    """An append-only, ordered log of touchpoints."""

    #: Whether :meth:`append` refuses an id seen in any earlier batch.
    refuses_duplicates_across_batches: bool

    #: Whether :meth:`write` releases the GIL for most of its time, so that encoding the
    #: next batch on another thread meanwhile pays off (SQLite: yes; kafka-python: no,
    #: its sends are Python work and it has its own I/O thread).
    overlapped_writes: bool = False

    #: Whether records are placed in partitions by their key (Kafka: the partition
    #: murmur2 gives the customer, Java's default), so that a projector can tell a record
    #: that another partitioner put elsewhere.
    placed_by_key: bool = False

    #: Whether every stored record was validated and canonically encoded by this ledger
    #: when it was appended, so :meth:`read_stored` may hand out undecoded bytes (SQLite:
    #: yes; Kafka: no, any client may publish to the topic).
    validated_at_append: bool = False

    #: What every batch goes through before it is encoded: the encryption of personal
    #: values (:class:`ledger.privacy.protect.Protector`, attached by ``application.wiring``);
    #: ``None``: events are stored as given.
    protector: Callable[[Sequence[Touchpoint]], Sequence[Touchpoint]] | None = None

    def protected(self, events: Sequence[Touchpoint]) -> Sequence[Touchpoint]:
        """``events`` as they are to be stored (personal values encrypted)."""
        return events if self.protector is None else self.protector(events)

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

    #: The offset of a partition's first record (the embedded log counts from 1).
    first_offset: int = 0

    @property
    def name(self) -> str:
        """The log as error messages name it (no credentials)."""
        return type(self).__name__

    def identity(self) -> str | None:
        """What tells this log from another one at the same address, as views record it
        (a Kafka topic's id, the embedded log's first event); ``None``: nothing yet."""
        return None

    def bounds(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        """Per partition asked for, ``(start, end)``: the offset of the first record it
        still holds and the offset its next record will get (``start == end``: empty). A
        partition the log does not have is ``(first_offset, first_offset)``."""
        ends = self.end_positions()
        return {p: (self.first_offset, ends.get(p, self.first_offset)) for p in partitions}

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

    def customer_tail(
        self,
        customer: str,
        start: Positions,
        *,
        limit: int,
        kept_types: frozenset[str] = frozenset(),
        kept_since: datetime | None = None,
    ) -> CustomerTail:
        """``customer``'s records from ``start`` to the end of the log as it stands now:
        at most ``limit`` of them (then ``complete`` is False). Logs that can find a
        customer's older records cheaply (the embedded log's customer index) also return
        those of ``kept_types`` that happened at or after ``kept_since``; others ignore it.

        This default reads every partition; adapters narrow it down."""
        ends = self.end_positions()
        records: list[StoredEvent | LogRecord] = []
        for record in self.read(start, ReadFilter(customer=customer)):
            if record.position.offset >= ends.get(record.position.partition, 0):
                continue
            if len(records) >= limit:
                return CustomerTail(ends, records, False)
            records.append(record)
        return CustomerTail(ends, records, True)

    def customers_tail(
        self,
        customers: Sequence[str],
        start: Positions,
        *,
        limit: int,
        kept_types: frozenset[str] = frozenset(),
        kept_since: datetime | None = None,
    ) -> dict[str, CustomerTail]:
        """:meth:`customer_tail` of each customer (adapters may read shared partitions once)."""
        return {
            customer: self.customer_tail(
                customer, start, limit=limit, kept_types=kept_types, kept_since=kept_since
            )
            for customer in customers
        }

    @abstractmethod
    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: Stop | None = None,
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
        close = getattr(self.protector, "close", None)
        if close is not None:
            close()  # the key store's connection


def position_problem(
    log: str, partition: int, position: int, start: int, end: int
) -> PositionLost | None:
    """What is wrong with reading on from a stored ``position`` of a partition that holds
    the records ``start`` to ``end - 1``: past its end (the log was replaced) or before its
    start (records were deleted unread). ``None`` if nothing is."""
    if position > end:
        return PositionBeyondEnd(log=log, partition=partition, position=position, end=end)
    if position < start:
        return RecordsDeleted(log=log, partition=partition, position=position, start=start)
    return None


def check_positions(log: EventLog, positions: Mapping[int, int]) -> None:
    """Raise :class:`PositionLost` if reading ``log`` on from any of these stored positions
    would skip records silently (see :func:`position_problem`); a partition without a
    stored position starts wherever its records start, and is not checked."""
    if not positions:
        return
    bounds = log.bounds(sorted(positions))
    for partition, position in sorted(positions.items()):
        start, end = bounds.get(partition, (log.first_offset, log.first_offset))
        problem = position_problem(log.name, partition, position, start, end)
        if problem is not None:
            raise problem
