"""Drive the read models from a log: catch up, follow, park what cannot be applied.

Each batch: read records from the positions the *store* holds, skip events the views
already applied (by id), fold the rest into the profiles and contact counts, and commit
rows, applied ids, dead letters and the next positions in one transaction. A crash at
any point leaves either the whole batch or none of it, and the next run resumes from
the committed positions: every event counts exactly once.
"""

from __future__ import annotations

import itertools
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ledger.errors import LedgerError
from ledger.log import EventLog, LogRecord
from projections import frequency, profile
from projections.store import DeadLetter, ViewBatch, ViewStore

OnError = Literal["park", "stop"]


class PoisonEvent(LedgerError):
    """A record could not be decoded or applied, and ``--on-error stop`` was asked for."""


@dataclass
class RunReport:
    """What a run did."""

    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    seconds: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)

    def merge(self, other: RunReport) -> None:
        self.batches += other.batches
        self.records += other.records
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.parked += other.parked
        self.seconds += other.seconds
        self.positions.update(other.positions)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Projector:
    """Keeps the profile and contact-frequency views of one store up to date with one log."""

    def __init__(
        self,
        log: EventLog,
        store: ViewStore,
        *,
        batch_size: int = 5000,
        on_error: OnError = "park",
    ) -> None:
        self.log = log
        self.store = store
        self.batch_size = batch_size
        self.on_error = on_error
        # The embedded log's database refuses a second event with the same id, so its
        # events need no dedupe records; Kafka's can repeat, so theirs are kept.
        self.dedupe = not log.refuses_duplicates_across_batches

    def catch_up(self, stop: threading.Event | None = None) -> RunReport:
        """Apply everything up to the current end of the log, then return.

        With ``stop``, returns early once it is set, after committing the batch in hand.
        """
        report = RunReport()
        started = time.perf_counter()
        start = self.store.positions(self.log.partitions())
        records = iter(self.log.read(start))
        while batch := list(itertools.islice(records, self.batch_size)):
            self.apply(batch, report)
            if stop is not None and stop.is_set():
                break
        report.seconds = time.perf_counter() - started
        return report

    def follow(self, stop: threading.Event, poll_seconds: float = 0.2) -> RunReport:
        """Catch up, then keep applying new records until ``stop`` is set (SIGINT/SIGTERM
        in the CLI). The batch in hand is always finished and committed first."""
        total = RunReport()
        while not stop.is_set():
            report = self.catch_up(stop)
            total.merge(report)
            if not report.records:
                stop.wait(poll_seconds)
        return total

    def apply(self, records: list[LogRecord], report: RunReport) -> None:
        """Fold one batch of records into the views and commit it with its positions."""
        batch = ViewBatch()
        fresh = []
        ids = [r.event.id for r in records if r.event is not None]
        already = self.store.applied(ids) if self.dedupe else set()
        for record in records:
            batch.positions[record.position.partition] = record.position.offset + 1
            if record.event is None:
                self._park(batch, record, record.error or "cannot be decoded")
                continue
            if record.event.id in already:
                report.duplicates += 1
                continue
            already.add(record.event.id)
            fresh.append(record)
        applied = 0
        customers = sorted({r.event.subject for r in fresh if r.event is not None})
        profiles = self.store.load_profiles(customers)
        for record in fresh:
            event = record.event
            assert event is not None
            customer = profiles.get(event.subject) or profile.Profile(customer=event.subject)
            try:
                profile.apply(customer, event)
                frequency.apply(batch.contacts, event)
            except Exception as exc:  # a bug in apply must not stop other customers' records
                self._park(batch, record, f"apply failed: {exc!r}")
                continue
            profiles[event.subject] = customer
            batch.profiles[event.subject] = customer
            applied += 1
            if self.dedupe:
                batch.applied_ids.append(event.id)
        self.store.commit(batch)
        report.batches += 1
        report.records += len(records)
        report.applied += applied
        report.parked += len(batch.dead_letters)
        report.positions.update(batch.positions)

    def _park(self, batch: ViewBatch, record: LogRecord, reason: str) -> None:
        if self.on_error == "stop":
            raise PoisonEvent(f"record at {record.position}: {reason}")
        batch.dead_letters.append(
            DeadLetter(
                record.position.partition,
                record.position.offset,
                record.raw,
                reason,
                datetime.now(UTC),
            )
        )
