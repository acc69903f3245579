"""In-memory test doubles for unit tests (no I/O). Integration tests use the real adapters."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime

from ledger.codec import event_to_json
from ledger.errors import LogUnavailable
from ledger.events import Touchpoint
from ledger.log import (
    EVERYTHING,
    Appended,
    AppendOutcome,
    Duplicate,
    EventLog,
    LogRecord,
    Position,
    Positions,
    RawRecord,
    ReadFilter,
)
from ledger.stopping import Stop


class InMemoryLog(EventLog):
    """A one-partition log in a list; ``fail_after`` appends, it becomes unavailable."""

    refuses_duplicates_across_batches = True

    def __init__(self, fail_after: int | None = None) -> None:
        self.records: list[LogRecord] = []
        self.index: dict[str, Position] = {}
        self.batches: list[int] = []
        self.fail_after = fail_after

    def encode(self, events: Sequence[Touchpoint]) -> list[Touchpoint]:
        return list(events)

    def write(self, events: list[Touchpoint]) -> list[AppendOutcome]:
        if self.fail_after is not None and len(self.batches) >= self.fail_after:
            raise LogUnavailable("the fake log is down")
        self.batches.append(len(events))
        outcomes: list[AppendOutcome] = []
        for event in events:
            if event.id in self.index:
                outcomes.append(Duplicate(event.id, self.index[event.id]))
                continue
            position = Position(0, len(self.records) + 1)
            self.index[event.id] = position
            self.records.append(
                LogRecord(position, datetime.now(UTC), event, None, event_to_json(event))
            )
            outcomes.append(Appended(event.id, position))
        return outcomes

    def partitions(self) -> list[int]:
        return [0]

    def record_at(self, position: Position) -> LogRecord | None:
        index = position.offset - 1
        ok = position.partition == 0 and 0 <= index < len(self.records)
        return self.records[index] if ok else None

    def end_positions(self) -> dict[int, int]:
        return {0: len(self.records) + 1}

    def read(
        self, start: Positions | None = None, where: ReadFilter = EVERYTHING
    ) -> Iterator[LogRecord]:
        first = (start or {}).get(0, 1)
        return iter(
            [
                r
                for r in self.records
                if r.position.offset >= first and r.event is not None and where.matches(r.event)
            ]
        )

    def read_raw(self, partition: int, start: int = 0) -> Iterator[RawRecord]:
        for r in self.records:
            if partition == 0 and r.position.offset >= start and r.event is not None:
                key = r.event.subject.encode()
                yield RawRecord(r.position, key, (), r.raw, int(r.recorded_at.timestamp() * 1e6))

    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: Stop | None = None,
        poll_seconds: float = 0.2,
    ) -> Iterator[LogRecord]:
        return self.read(start, where)

    def close(self) -> None:
        pass
