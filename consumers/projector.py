"""Drive the read models from a log: catch up, follow, park what cannot be applied.

Each batch: read records from the positions the *store* holds, skip events the views
already applied (by id), fold the rest into the profiles and contact counts, and commit
rows, applied ids, dead letters and the next positions in one transaction. A crash at
any point leaves either the whole batch or none of it, and the next run resumes from
the committed positions: every event counts exactly once.
"""

from __future__ import annotations

import itertools
import os
import time
from collections.abc import Iterable, Sequence

from consumers.folding import (
    PARALLEL_MIN,
    PROJECTOR_BATCH,
    READ_CHUNK,
    BulkGarbage,
    Folder,
    Item,
    OnError,
    Pending,
    RunReport,
    check_views_fit,
    item_of,
    read_items,
)
from consumers.shards import ParallelCatchUp
from consumers.store import BatchConflict, ViewBatch, ViewStore
from ledger.log import (
    EventLog,
    LogRecord,
    Position,
)
from ledger.stopping import Stop


class Projector:
    """Keeps the profile and contact-frequency views of one store up to date with one log."""

    def __init__(
        self,
        log: EventLog,
        store: ViewStore,
        *,
        batch_size: int = PROJECTOR_BATCH,
        on_error: OnError = "park",
        validate: bool = False,
        workers: int | None = None,
        parallel_min: int | None = None,
    ) -> None:
        self.log = log
        self.workers = workers or os.cpu_count() or 1
        """Processes a large catch-up may fold with (see :mod:`consumers.shards`)."""
        self.parallel_min = PARALLEL_MIN if parallel_min is None else parallel_min
        """Records behind before a catch-up uses ``workers``."""
        self._backlog_checked = False
        self._positions_checked = False
        self.store = store
        self.batch_size = batch_size
        self.on_error = on_error
        self.validate = validate
        # The embedded log's database refuses a second event with the same id, so its
        # events need no dedupe records; Kafka's can repeat, so theirs are kept.
        self.folder = Folder(
            store,
            dedupe=not log.refuses_duplicates_across_batches,
            on_error=on_error,
            partition_count=len(log.partitions()) if log.placed_by_key else None,
            window=store.dedupe_window,
        )
        self._next: dict[int, int] = {}
        """Per partition, the position this projector last read from or committed."""
        self._generation = store.generation()

    def resume(self, positions: dict[int, int], partitions: Iterable[int]) -> None:
        """Start reading ``partitions`` at the store's ``positions`` (absent: the start)."""
        for partition in partitions:
            if partition in positions:
                self._next[partition] = positions[partition]
            else:
                self._next.pop(partition, None)
        self.folder.forget()
        self._generation = self.store.generation()

    def catch_up(self, stop: Stop | None = None) -> RunReport:
        """Apply everything up to the current end of the log, then return.

        Records are read and folded in chunks of :data:`READ_CHUNK`, and committed every
        ``batch_size`` records (and at the end). With ``stop``, returns early once it is
        set, after committing what was folded. If another projector commits in between
        (``BatchConflict``), resumes from the positions it left.
        """
        report = RunReport()
        started = time.perf_counter()
        self._check_positions()
        parallel = self._parallel()
        if parallel is not None:
            report.merge(parallel.run(stop))
            if parallel.shared_ids:
                self.workers = 1  # shards would apply one id twice: one process from here on
            if stop is not None and stop.is_set():
                report.seconds = time.perf_counter() - started
                return report
        partitions = self.log.partitions()
        finished = False
        garbage = BulkGarbage()
        while not finished:
            start = self.store.positions(partitions)
            if start != {p: o for p, o in self._next.items() if p in partitions}:
                self.resume(start, partitions)  # someone else moved the views on
            items = read_items(self.log, start, validate=self.validate)
            finished = True
            pending: Pending | None = None
            try:
                while chunk := list(itertools.islice(items, self._room(pending))):
                    pending = pending or self._begin()
                    self._add(pending, chunk)
                    # a full chunk: a bulk catch-up, not a follower's trickle
                    garbage.folded(len(chunk), bulk=len(chunk) == READ_CHUNK)
                    stopping = stop is not None and stop.is_set()
                    if pending.records >= self.batch_size or stopping:
                        self._finish(pending, report)
                        pending = None
                    if stopping:
                        break
                if pending is not None:
                    self._finish(pending, report)
            except BatchConflict:
                report.conflicts += 1
                finished = False
            finally:
                garbage.end()
        report.seconds = time.perf_counter() - started
        return report

    def _check_positions(self) -> None:
        """Stop (:class:`~ledger.errors.PositionLost`) rather than read on from a stored
        position the log no longer fits: one past its end (the log was replaced) or before
        its start (records deleted unread). On the embedded log before every catch-up (two
        index lookups); on Kafka before the first, and the readers check every fetch."""
        if self._positions_checked and not self.log.refuses_duplicates_across_batches:
            return
        check_views_fit(self.log, self.store, self.log.partitions())
        self._positions_checked = True

    def _parallel(self) -> ParallelCatchUp | None:
        """Worker processes for this catch-up, if they are possible and worth it.

        On the embedded log: a backlog of at least ``parallel_min`` records. On Kafka,
        learning the backlog takes longer (~0.4 s) than starting the workers (~0.3 s), so
        the first catch-up of a projector uses them whatever the backlog, and later ones
        (a follower's) do not."""
        embedded = self.log.refuses_duplicates_across_batches
        if self._backlog_checked and not embedded:
            return None
        self._backlog_checked = True
        if not ParallelCatchUp.possible(self, self.workers):
            return None
        parallel = ParallelCatchUp(self, self.workers)
        if embedded and parallel.backlog(self.store.positions([0])) < self.parallel_min:
            return None
        return parallel

    def follow(self, stop: Stop, poll_seconds: float = 0.2) -> RunReport:
        """Catch up, then keep applying new records until ``stop`` is set (SIGINT/SIGTERM
        in the CLI). The batch in hand is always finished and committed first."""
        total = RunReport()
        while not stop.is_set():
            report = self.catch_up(stop)
            total.merge(report)
            if not report.records:
                stop.wait(poll_seconds)
        return total

    def apply(self, records: Sequence[Item | LogRecord], report: RunReport) -> None:
        """Fold one batch of records into the views and commit it with its positions."""
        pending = self._begin()
        self._add(pending, [r if isinstance(r, Item) else item_of(r) for r in records])
        self._finish(pending, report)

    def _room(self, pending: Pending | None) -> int:
        """How many records to read next: a chunk, but never past ``batch_size``."""
        return min(READ_CHUNK, self.batch_size - (pending.records if pending else 0))

    def _begin(self) -> Pending:
        return Pending(ViewBatch(generation=self._generation), time.perf_counter())

    def _add(self, pending: Pending, items: list[Item]) -> None:
        """Fold a chunk of records into the pending transaction."""
        batch = pending.batch
        for item in items:
            partition = item.position.partition
            if partition not in batch.expected:
                batch.expected[partition] = self._next.get(partition)
        applied, duplicates = self.folder.add(batch, items)
        pending.records += len(items)
        pending.applied += applied
        pending.duplicates += duplicates

    def _finish(self, pending: Pending, report: RunReport) -> None:
        """Commit the pending transaction: view rows, dedupe records, dead letters and
        positions together."""
        batch = pending.batch
        batch.rate = pending.records / max(time.perf_counter() - pending.began, 1e-9)
        self._commit(batch)
        self._next.update(batch.positions)
        pending.count_into(report)

    def retry(self) -> RunReport:
        """Apply the parked records again, read afresh from the log (after a fix).

        The log is the truth, so each record is re-read at its position and decoded by
        the current code; the projections do not depend on arrival order, so applying it
        late gives the views it would have given in time. Records that still fail stay
        parked with the new reason. Bumps the store's generation, so any projector running
        meanwhile reloads its profiles instead of overwriting these changes.
        """
        started = time.perf_counter()
        partitions = self.log.partitions()
        self.resume(self.store.positions(partitions), partitions)
        batch = ViewBatch(generation=self._generation, bump_generation=True)
        decoded = []
        for letter in self.store.dead_letters():
            record = self.log.record_at(Position(letter.partition, letter.offset))
            if record is None:
                continue
            item = item_of(record)
            if item.fact is None:
                self.folder.park(batch, item, item.error or "cannot be decoded")
            else:
                decoded.append(item)
        applied, duplicates = self.folder.fold(decoded, batch, resolve=True)
        self._commit(batch)
        self._generation = (self._generation or 0) + 1
        return RunReport(
            records=len(decoded) + len(batch.dead_letters),
            applied=applied,
            duplicates=duplicates,
            parked=len(batch.dead_letters),
            seconds=time.perf_counter() - started,
        )

    def _commit(self, batch: ViewBatch) -> None:
        try:
            self.store.commit(batch)
        except BaseException:
            self.folder.forget()  # its profiles hold changes the store does not
            self._generation = self.store.generation()
            raise


def rebuild(
    log: EventLog,
    store: ViewStore,
    *,
    batch_size: int = PROJECTOR_BATCH,
    validate: bool = False,
    workers: int | None = None,
    parallel_min: int | None = None,
    stop: Stop | None = None,
) -> RunReport:
    """Rebuild the views from position 0 into fresh tables while the live ones stay
    readable, then swap them in (one transaction). A projector running meanwhile
    conflicts once, resumes from the rebuilt positions and goes on. If ``stop`` is set
    before the end, nothing is swapped in: the live views stay as they were (the next
    rebuild drops the unfinished tables)."""
    fresh = store.rebuild_store()
    fresh.defer_indexes()  # built once, by the swap
    report = Projector(
        log,
        fresh,
        batch_size=batch_size,
        validate=validate,
        workers=workers,
        parallel_min=parallel_min,
    ).catch_up(stop)
    if stop is None or not stop.is_set():
        store.swap_in(fresh)
    return report
