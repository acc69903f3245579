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
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from ledger.errors import LedgerError
from ledger.log import EventLog, LogRecord
from projections import frequency, profile
from projections.store import BatchConflict, DeadLetter, ViewBatch, ViewStore

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
    conflicts: int = 0
    """Batches rolled back because another projector committed first."""
    seconds: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)

    def merge(self, other: RunReport) -> None:
        self.batches += other.batches
        self.records += other.records
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.parked += other.parked
        self.conflicts += other.conflicts
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
        # Profiles stay in memory for the whole run (O(customers)): loading and parsing
        # them again for every batch cost more than applying the events. They are dropped
        # whenever a commit fails or another projector may have moved on.
        self._profiles: dict[str, profile.Profile] = {}
        self._next: dict[int, int] = {}
        """Per partition, the position this projector last read from or committed."""

    def resume(self, positions: dict[int, int], partitions: Iterable[int]) -> None:
        """Start reading ``partitions`` at the store's ``positions`` (absent: the start)."""
        for partition in partitions:
            if partition in positions:
                self._next[partition] = positions[partition]
            else:
                self._next.pop(partition, None)
        self._profiles.clear()

    def catch_up(self, stop: threading.Event | None = None) -> RunReport:
        """Apply everything up to the current end of the log, then return.

        With ``stop``, returns early once it is set, after committing the batch in hand.
        If another projector commits in between (``BatchConflict``), resumes from the
        positions it left.
        """
        report = RunReport()
        started = time.perf_counter()
        partitions = self.log.partitions()
        finished = False
        while not finished:
            start = self.store.positions(partitions)
            if start != {p: o for p, o in self._next.items() if p in partitions}:
                self.resume(start, partitions)  # someone else moved the views on
            records = iter(self.log.read(start))
            finished = True
            while batch := list(itertools.islice(records, self.batch_size)):
                try:
                    self.apply(batch, report)
                except BatchConflict:
                    report.conflicts += 1
                    finished = False
                    break
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
        began = time.perf_counter()
        batch = ViewBatch()
        batch.expected = {
            r.position.partition: self._next.get(r.position.partition) for r in records
        }
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
        unseen = sorted(
            {r.event.subject for r in fresh if r.event is not None} - self._profiles.keys()
        )
        self._profiles.update(self.store.load_profiles(unseen))
        profiles = self._profiles
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
            partition = record.position.partition
            if partition not in batch.newest or event.time > batch.newest[partition]:
                batch.newest[partition] = event.time
            applied += 1
            if self.dedupe:
                batch.applied_ids.append(event.id)
        batch.rate = len(records) / max(time.perf_counter() - began, 1e-9)
        try:
            self.store.commit(batch)
        except BaseException:
            self._profiles.clear()  # they hold changes the store does not
            raise
        self._next.update(batch.positions)
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
