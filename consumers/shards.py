"""Parallel catch-up: worker processes fold shares of each batch, one transaction commits it.

Folding is Python and CPU-bound, so one process cannot use a second core. Here each
worker process owns a fixed share of the customers -- on the embedded log a shard of
customer ids that SQLite computes while reading (:class:`ledger.sqlite_log.Span`), on
Kafka a set of partitions (the topic is keyed by customer) -- so each customer's events
are folded by one process, in log order, into the profiles that process caches. For every
batch each worker reads its share, folds it, and writes the batch's view rows to a staging
file; the projector then commits all the staging files together with the positions in
**one** transaction of the view store. A batch's rows and positions land together or not
at all, exactly as in a one-process run, so a crash anywhere loses or repeats nothing.

While a batch commits, the workers already fold the next one. If the commit fails (another
projector moved the positions first), the next batch is thrown away and the workers start
again from the store's positions with empty caches.

A SQLite store attaches the staging files and copies their rows inside SQLite; a
PostgreSQL store reads them back and COPYs them in (its workers read the views in
PostgreSQL). Small backlogs and ``workers=1`` take the one-process path
(:class:`consumers.projector.Projector`).
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import multiprocessing.connection
import resource
import shutil
import signal
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from multiprocessing import resource_tracker
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from consumers.folding import (
    READ_CHUNK,
    BulkGarbage,
    CatchUpHost,
    Folder,
    Item,
    PoisonEvent,
    RunReport,
    check_views_fit,
    item_of,
    item_of_record,
    item_of_stored,
)
from consumers.store import (
    BatchConflict,
    Cleartext,
    Misplaced,
    SharedEventId,
    Staging,
    ViewBatch,
    ViewReader,
    write_staged,
)
from ledger.errors import LedgerError, LogUnavailable, PositionLost
from ledger.kafka_log import KafkaLog, PartitionReader
from ledger.log import EventLog
from ledger.sqlite_log import Span, SQLiteLog
from ledger.stopping import Stop, signals_held

STOP_POLL_SECONDS = 0.1
"""How often the projector, waiting for its workers, looks whether it was asked to stop."""


class WorkerFailed(LedgerError):
    """A worker process raised or died; nothing of its batch was committed."""


@dataclass(frozen=True, slots=True)
class Job:
    """One worker's share of a batch."""

    number: int
    start: dict[int, int]
    """Per partition, the position to read from (absent: the beginning)."""
    end: int | None
    """Embedded log: read positions before this one."""
    limit: int
    """Kafka: read at most this many records."""
    reset: bool
    """Drop the cached profiles first (the last batch was not committed)."""
    staging: Path


@dataclass(slots=True)
class Share:
    """What a worker did with its job."""

    number: int
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    positions: dict[int, int] = field(default_factory=dict)
    """Kafka: per partition that moved, the next position to read."""
    newest: dict[int, int] = field(default_factory=dict)
    dead_letters: int = 0
    misplaced: dict[int, Misplaced] = field(default_factory=dict)
    cleartext: dict[int, Cleartext] = field(default_factory=dict)
    first_dead_letter: str | None = None
    caught_up: bool = True
    peak_rss_mb: float = 0.0
    """The worker's peak memory so far."""


@dataclass(frozen=True, slots=True)
class WorkerSpec:
    """How a worker opens what it reads: the log, its share, the view store."""

    open_log: Callable[[], EventLog]
    staging: Staging
    shard: int
    shards: int
    partitions: tuple[int, ...]
    """Kafka: the partitions this worker reads."""
    dedupe: bool
    validate: bool
    partition_count: int | None = None
    """Kafka: the topic's partitions (to count records outside their key's partition)."""
    window: int | None = None
    """The dedupe window (see :meth:`consumers.folding.Folder.too_old`)."""


def log_opener(log: EventLog) -> Callable[[], EventLog] | None:
    """How another process opens ``log`` (``None``: it cannot be split)."""
    if isinstance(log, SQLiteLog):
        return partial(SQLiteLog, log.path, create=False, cache_mib=16)
    if isinstance(log, KafkaLog):
        return partial(KafkaLog, log.target, log.settings, check_config=False)
    return None


# -- the worker process ---------------------------------------------------------------


def _work(connection: Connection, spec: WorkerSpec) -> None:
    """A worker's life: open the log and the store, then fold jobs until told to stop
    (``None``) or until the projector goes away (its end of the pipe closes).

    Ctrl-C and SIGTERM sent to the whole process group are the projector's to handle (it
    commits the batch in hand or throws it away, then ends the pool): a worker ignores
    them (it starts with them held back, see :class:`WorkerPool`), and when the projector
    is gone it ends quietly: no traceback for a pipe nobody reads."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        log = spec.open_log()
        views = ViewReader(spec.staging)
    except BaseException as exc:
        _answer(connection, _failure(exc))
        return
    folder = Folder(
        views, dedupe=spec.dedupe, partition_count=spec.partition_count, window=spec.window
    )
    reader = PartitionReader(log, spec.partitions) if isinstance(log, KafkaLog) else None
    left_at: dict[int, int] | None = None
    garbage = BulkGarbage()  # a worker only folds: the collector off, settled every so often
    try:
        while True:
            try:
                job = connection.recv()
            except (EOFError, OSError):
                return
            if job is None:
                return
            try:
                if job.reset or job.start != left_at:
                    folder.forget()
                share = _fold(job, log, reader, folder, spec, garbage=garbage)
                left_at = {**job.start, **share.positions}
                if job.end is not None:
                    left_at = {0: job.end}
                answer: Share | tuple[str, str] = share
            except BaseException as exc:
                left_at = None
                answer = _failure(exc)
            if not _answer(connection, answer):
                return  # the projector has gone (stopped or died): nobody to tell
    finally:
        if reader is not None:
            reader.close()
        views.close()
        log.close()


def _answer(connection: Connection, answer: Share | tuple[str, str]) -> bool:
    """Send ``answer`` to the projector; whether it could be sent."""
    try:
        connection.send(answer)
    except OSError:  # BrokenPipeError: the projector closed its end
        return False
    return True


def _failure(exc: BaseException) -> tuple[str, str]:
    if isinstance(exc, PositionLost):  # a finding about the log, not a bug: no traceback
        return (str(exc), "")
    if isinstance(exc, LogUnavailable):  # the projector's caller may wait and retry
        return (str(exc), UNAVAILABLE)
    return (f"{type(exc).__name__}: {exc}", traceback.format_exc())


UNAVAILABLE = "log unavailable"
"""Marks a worker's failure to reach the log (no traceback to show)."""


def _fold(
    job: Job,
    log: EventLog,
    reader: PartitionReader | None,
    folder: Folder,
    spec: WorkerSpec,
    *,
    garbage: BulkGarbage,
) -> Share:
    share = Share(job.number)
    items: Iterator[Item]
    if reader is not None:
        items = itertools.starmap(
            item_of_record, reader.take_records(job.start, job.limit, READ_CHUNK)
        )
    else:
        assert isinstance(log, SQLiteLog)
        span = Span(job.end, spec.shard, spec.shards)
        if spec.validate:
            items = map(item_of, log.read_span(job.start, span))
        else:
            items = map(item_of_stored, log.read_stored(job.start, span))
    batch = ViewBatch()
    while chunk := list(itertools.islice(items, READ_CHUNK)):
        applied, duplicates = folder.add(batch, chunk)
        share.records += len(chunk)
        garbage.folded(len(chunk), bulk=True)
        share.applied += applied
        share.duplicates += duplicates
    if reader is not None:
        share.positions, share.caught_up = reader.moved, reader.caught_up
    write_staged(job.staging, batch)
    # This batch may still be committing while the next one is folded: remember its ids.
    folder.recent_ids = batch.applied_ids
    share.newest = batch.newest
    share.misplaced = batch.misplaced
    share.cleartext = batch.cleartext
    share.dead_letters = len(batch.dead_letters)
    share.peak_rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    if batch.dead_letters:
        first = min(batch.dead_letters, key=lambda d: (d.partition, d.offset))
        share.first_dead_letter = f"record at {first.partition}:{first.offset}: {first.reason}"
    return share


# -- the projector's side -------------------------------------------------------------


class WorkerPool:
    """The worker processes of one parallel run, and the staging directory they share."""

    def __init__(self, specs: list[WorkerSpec], staging_dir: Path) -> None:
        # forkserver: workers are forked from a clean server process (not from this one,
        # which may hold threads and connections), with this module imported once.
        context: Any
        if "forkserver" in multiprocessing.get_all_start_methods():
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
        else:  # pragma: no cover - Windows
            context = multiprocessing.get_context("spawn")
        self.directory = staging_dir
        self.connections: list[Connection] = []
        self.processes: list[Any] = []
        # Started with SIGINT/SIGTERM held back, the fork server and the workers inherit
        # that: a Ctrl-C to the process group cannot kill them before they ignore it. (The
        # resource tracker is started first: starting it unblocks both signals.)
        resource_tracker.ensure_running()
        with signals_held():
            for spec in specs:
                ours, theirs = context.Pipe()
                process = context.Process(target=_work, args=(theirs, spec), daemon=True)
                process.start()
                theirs.close()
                self.connections.append(ours)
                self.processes.append(process)

    def staging_file(self, worker: int, number: int) -> Path:
        # Two files per worker, alternating: one committing, one being written.
        return self.directory / f"worker{worker}-{number % 2}.db"

    def send(self, jobs: list[Job]) -> None:
        for connection, job in zip(self.connections, jobs, strict=True):
            # A worker that failed to start has said why and gone: receive() reports it.
            with contextlib.suppress(OSError):
                connection.send(job)

    def receive(self, stop: Stop | None = None) -> list[Share] | None:
        """Every worker's answer to its job; ``None`` if ``stop`` was set meanwhile (the
        answers still due are abandoned: :meth:`close` with ``abandon``)."""
        waiting = list(self.connections)
        while waiting and stop is not None:
            if stop.is_set():
                return None
            ready = multiprocessing.connection.wait(waiting, timeout=STOP_POLL_SECONDS)
            waiting = [c for c in waiting if c not in ready]
        shares: list[Share] = []
        failure: str | None = None
        unavailable: str | None = None
        for index, connection in enumerate(self.connections):
            try:
                answer = connection.recv()
            except (EOFError, OSError):
                code = self.processes[index].exitcode
                failure = failure or f"projector worker {index} died (exit code {code})"
                continue
            if isinstance(answer, Share):
                shares.append(answer)
            elif answer[1] == UNAVAILABLE:
                unavailable = unavailable or f"projector worker {index}: {answer[0]}"
            else:
                detail = f"{answer[0]}\n{answer[1]}" if answer[1] else answer[0]
                failure = failure or f"projector worker {index} failed: {detail}"
        if failure is None and unavailable is not None:
            raise LogUnavailable(unavailable)
        if failure is not None:
            raise WorkerFailed(failure)
        return shares

    def close(self, *, abandon: bool = False) -> None:
        """End the workers: ask them to (they finish the job in hand first), or with
        ``abandon``, kill them at once (their jobs are thrown away: nothing of them was
        committed, and they hold nothing else)."""
        for connection in self.connections:
            if not abandon:
                with contextlib.suppress(OSError):
                    connection.send(None)
            connection.close()
        for process in self.processes:
            if abandon:
                process.kill()
            process.join(timeout=10)
            if process.is_alive():
                process.kill()
                process.join()
        shutil.rmtree(self.directory, ignore_errors=True)


class ParallelCatchUp:
    """Catch a projector's views up with its log using ``workers`` processes."""

    def __init__(
        self,
        projector: CatchUpHost,
        workers: int,
        *,
        partitions: list[int] | None = None,
        between: Callable[[], bool] | None = None,
    ) -> None:
        self.projector = projector
        self.workers = workers
        self.partitions = partitions
        """The partitions to catch up (default: all of the log's)."""
        self.between = between
        """Called between batches; returning ``False`` ends the run (a consumer group
        member polls its group there, and stops when its assignment changes)."""
        self.shared_ids = False
        """Set when shards applied the same event id: the rest goes to one process."""

    @staticmethod
    def possible(projector: CatchUpHost, workers: int) -> bool:
        """Whether more than one process can fold this projector's log into its store."""
        if workers < 2 or projector.store.staging is None:
            return False
        if isinstance(projector.log, KafkaLog):
            return len(projector.log.partitions()) > 1
        return log_opener(projector.log) is not None

    def backlog(self, start: dict[int, int]) -> int:
        """Records between ``start`` and the end of the embedded log."""
        log = self.projector.log
        assert isinstance(log, SQLiteLog)
        return max(0, log.end_position() + 1 - start.get(0, 1))

    def run(self, stop: Stop | None) -> RunReport:
        projector, store, log = self.projector, self.projector.store, self.projector.log
        staging, opener = store.staging, log_opener(log)
        assert staging is not None
        assert opener is not None
        started = time.perf_counter()
        partitions = sorted(self.partitions if self.partitions is not None else log.partitions())
        check_views_fit(log, store, partitions)  # before any worker reads on from them
        embedded = isinstance(log, SQLiteLog)
        count = self.workers if embedded else min(self.workers, len(partitions))
        report = RunReport(workers=count)
        specs = [
            WorkerSpec(
                opener,
                staging,
                shard=index,
                shards=count,
                partitions=tuple(partitions[index::count]),
                dedupe=projector.folder.dedupe,
                validate=projector.validate,
                partition_count=projector.folder.partition_count,
                window=projector.folder.window,
            )
            for index in range(count)
        ]
        pool = WorkerPool(specs, staging.new_directory())
        deferred = store.defer_indexes()
        try:
            self._drive(pool, specs, partitions, stop, report)
        finally:
            pool.close(abandon=stop is not None and stop.is_set())
            if deferred:
                store.restore_indexes()
            projector.folder.forget()  # the workers changed profiles it may hold
            projector.resume(store.positions(partitions), partitions)
            report.seconds = time.perf_counter() - started
        return report

    def _jobs(
        self,
        pool: WorkerPool,
        specs: list[WorkerSpec],
        start: dict[int, int],
        number: int,
        reset: bool,
    ) -> list[Job] | None:
        """The next batch's jobs from ``start``, or ``None`` when there is nothing to read."""
        log, batch_size = self.projector.log, self.projector.batch_size
        if isinstance(log, SQLiteLog):
            first = start.get(0, 1)
            end = min(first + batch_size, log.end_position() + 1)
            if end <= first:
                return None
            return [
                Job(number, {0: first}, end, 0, reset, pool.staging_file(index, number))
                for index in range(len(specs))
            ]
        return [
            Job(
                number,
                {p: start[p] for p in spec.partitions if p in start},
                None,
                max(1, batch_size // len(specs)),
                reset,
                pool.staging_file(index, number),
            )
            for index, spec in enumerate(specs)
        ]

    def _drive(
        self,
        pool: WorkerPool,
        specs: list[WorkerSpec],
        partitions: list[int],
        stop: Stop | None,
        report: RunReport,
    ) -> None:
        projector, store = self.projector, self.projector.store
        embedded = isinstance(projector.log, SQLiteLog)
        stored, generation = store.positions(partitions), store.generation()
        jobs = self._jobs(pool, specs, stored, 0, reset=True)
        if jobs is None:
            return
        pool.send(jobs)
        last = time.perf_counter()
        while True:
            shares = pool.receive(stop)
            if shares is None:
                return  # stopped: the batch in hand is thrown away (nothing of it committed)
            now = time.perf_counter()
            batch, records = self._merge(shares, jobs, stored, generation)
            batch.rate, last = records / max(now - last, 1e-9), now
            poisoned = [s.first_dead_letter for s in shares if s.first_dead_letter]
            if poisoned and projector.on_error == "stop":
                raise PoisonEvent(min(poisoned))
            reached = {**stored, **batch.positions}
            finished = (
                (not embedded and all(s.caught_up for s in shares))
                or (stop is not None and stop.is_set())
                or (self.between is not None and not self.between())
            )
            number = jobs[0].number + 1
            upcoming = None if finished else self._jobs(pool, specs, reached, number, False)
            if upcoming is not None:
                pool.send(upcoming)  # folded while this batch commits
            try:
                if batch.positions:
                    store.commit(batch, staged=[job.staging for job in jobs])
            except (BatchConflict, SharedEventId) as exc:
                if upcoming is not None:
                    pool.receive()  # thrown away: it was folded on top of this batch
                if isinstance(exc, SharedEventId):
                    self.shared_ids = True
                    return
                report.conflicts += 1
                stored, generation = store.positions(partitions), store.generation()
                upcoming = self._jobs(pool, specs, stored, number, reset=True)
                if upcoming is None:
                    return
                pool.send(upcoming)
                jobs = upcoming
                continue
            report.batches += 1
            report.records += records
            report.applied += sum(s.applied for s in shares)
            report.duplicates += sum(s.duplicates for s in shares)
            report.parked += sum(s.dead_letters for s in shares)
            report.positions.update(batch.positions)
            report.worker_peak_rss_mb = max(
                report.worker_peak_rss_mb, *(s.peak_rss_mb for s in shares)
            )
            stored = reached
            if upcoming is None:
                return
            jobs = upcoming

    def _merge(
        self,
        shares: list[Share],
        jobs: list[Job],
        stored: dict[int, int],
        generation: int | None,
    ) -> tuple[ViewBatch, int]:
        """The batch the shares make together: positions, newest event times, guards."""
        batch = ViewBatch(generation=generation)
        end = jobs[0].end
        records = sum(s.records for s in shares)
        if end is not None:
            batch.positions = {0: end}
        for share in shares:
            batch.positions.update(share.positions)
            for partition, newest in share.newest.items():
                batch.newest[partition] = max(newest, batch.newest.get(partition, newest))
            for partition, misplaced in share.misplaced.items():
                if partition in batch.misplaced:
                    batch.misplaced[partition].add(misplaced)
                else:
                    batch.misplaced[partition] = misplaced
            for partition, clear in share.cleartext.items():
                if partition in batch.cleartext:
                    batch.cleartext[partition].add(clear)
                else:
                    batch.cleartext[partition] = clear
        batch.expected = {p: stored.get(p) for p in batch.positions}
        return batch, records
