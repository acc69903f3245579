"""Projectors sharing a Kafka topic as one consumer group.

Kafka spreads the partitions over the group's members. On every assignment a member
seeks each partition to the position the **view store** holds (the store, not Kafka's
committed offset, is the truth), applies batches through :class:`Projector`, and after
each store commit also commits the offsets to Kafka, for lag tools.

During a rebalance two members can briefly hold the same partition. Whichever commits
second hits the store's guards -- the dedupe record of an event id, or a tracked
position that would go backwards -- and its whole transaction rolls back
(:class:`BatchConflict`); it then seeks back to the store's positions. So an event is
never counted twice, and a position never moves past an event the views do not hold.

A catch-up commits in a pipeline: while one full batch is written (a thread: PostgreSQL or
SQLite work, the GIL released), the member already reads and folds the next one on top of
it -- the next batch's guards expect the positions of the one in flight, and its dedupe
looks in the ids of the one in flight as well as the store's. One batch is in flight at
most. If it fails (another member committed first), the batch being folded on top of it is
thrown away with the folded state, and the member reads again from the store's positions,
as after any conflict: both batches are read again, neither is counted twice.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from kafka import ConsumerRebalanceListener, OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError

from consumers.folding import (
    PROJECTOR_BATCH,
    READ_CHUNK,
    BulkGarbage,
    Pending,
    RunReport,
    check_views_fit,
    item_of_record,
)
from consumers.projector import Projector
from consumers.store import BatchConflict, ViewStore
from ledger.errors import LogUnavailable
from ledger.kafka_log import KafkaLog
from ledger.stopping import Stop

GROUP_BATCH = 25_000
"""Records a member's transaction holds at most. A rebalance commits the batch in hand
inside the rebalance callback (kafka-python's, or librdkafka's inside its poll), which
sends no heartbeats meanwhile, so it must stay short against the session timeout. And a
catch-up commits in a pipeline (one batch written while the next is folded), which hides
all but the last batch's write: smaller batches hide more of it, at the cost of writing
a profile touched by several batches more than once (see BENCHMARKS.md, "Fourth round")."""
LEAVE_GROUP_MS = 1000
"""How long a stopping projector waits to leave its group politely."""
LOGGER = logging.getLogger("ledger")
DOWN_REPORT_SECONDS = 5.0
"""How long a member waits for an unreachable broker before it says so."""


class _SeekToStore(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, group: GroupProjector) -> None:
        self.group = group

    def on_partitions_revoked(self, revoked: Any) -> None:
        self.group.assignments += 1
        # The batch in hand, before the partitions move. On kafka-python's I/O thread (or
        # inside librdkafka's poll): the offsets for lag tools wait for the next commit
        # (blocking it would fail there).
        self.group.flush(commit_offsets=False)

    def on_partitions_assigned(self, assigned: Any) -> None:
        self.group.assignments += 1
        self.group.seek_to_store(list(assigned))
        if not assigned:
            self.group.warn_idle()


class GroupProjector:
    """One member of a projector group on a Kafka log."""

    def __init__(
        self,
        log: KafkaLog,
        store: ViewStore,
        *,
        group_id: str,
        batch_size: int = PROJECTOR_BATCH,
        session_timeout_ms: int = 10_000,
        on_error: str = "park",
        workers: int | None = None,
    ) -> None:
        self.log = log
        self.store = store
        self.projector = Projector(
            log,
            store,
            batch_size=batch_size,
            on_error="stop" if on_error == "stop" else "park",
            workers=workers,
        )
        self.assignments = 0
        """Bumped by every rebalance (partitions revoked or assigned)."""
        self.batch_size = min(batch_size, GROUP_BATCH)
        self.consumer = log.group_consumer(group_id, session_timeout_ms, READ_CHUNK)
        self.conflicts = 0
        self.report = RunReport()
        """What the last :meth:`run` did (so far, if it raised)."""
        self._down_since: float | None = None
        self._reported_at: float | None = None
        self.unchecked: set[int] = set()
        """Partitions sought since the views were last checked against the log."""
        self._pending: Pending | None = None
        """The batch being filled: folded, not committed yet."""
        self._flush_error: BaseException | None = None
        self._in_flight: tuple[Future[None], Pending] | None = None
        """The full batch being written by the commit thread while the next one is folded."""
        self._committer: ThreadPoolExecutor | None = None
        self._lookups: ThreadPoolExecutor | None = None
        """Dedupe lookups of the records just polled, asked while they are decoded."""
        self._offsets_owed = False
        """A batch committed in the background: its offsets go to Kafka from the run loop
        (the consumer is not shared with the commit thread)."""

    def warn_idle(self) -> None:
        """Say that this member got no partition (logger ``ledger``): the group has more
        members than the topic has partitions, and this one stays idle until another
        leaves (``ledger project status`` shows the group; docs/kafka.md, "More
        partitions")."""
        count = len(self.log.partitions())
        LOGGER.warning(
            "%s: this projector holds no partition of the group's %d: the group has more "
            "members than the topic has partitions, so it waits idle until a member leaves "
            '(see docs/kafka.md, "More partitions")',
            self.log.name,
            count,
        )

    def seek_to_store(self, partitions: list[TopicPartition]) -> None:
        positions = self.store.positions([tp.partition for tp in partitions])
        self.unchecked.update(tp.partition for tp in partitions)  # by the run loop: a
        # rebalance listener's exceptions are swallowed by kafka-python
        self.projector.resume(positions, [tp.partition for tp in partitions])
        for tp in partitions:
            if tp.partition in positions:
                self.consumer.seek(tp, positions[tp.partition])
            else:
                self.consumer.seek_to_beginning(tp)

    def run(
        self, stop: Stop, *, until_caught_up: bool = False, poll_seconds: float = 0.5
    ) -> RunReport:
        """Apply batches until ``stop`` is set (or, with ``until_caught_up``, until every
        assigned partition has reached its high watermark). The batch in hand is always
        committed or rolled back before returning; the group is left cleanly."""
        report = self.report = RunReport()
        started = time.perf_counter()
        self.consumer.subscribe([self.log.topic], listener=_SeekToStore(self))
        backlog_folded = False
        garbage = BulkGarbage(collect=False)  # frozen, not collected: see BulkGarbage
        try:
            while not stop.is_set():
                room = min(
                    READ_CHUNK, self.batch_size - (self._pending.records if self._pending else 0)
                )
                polled = self._poll(poll_seconds, room)
                dropped = self._settle(wait=False)  # a batch written meanwhile: counted
                self._raise_flush_error()
                if dropped:  # what that poll returned follows the batches dropped with the
                    continue  # one that failed: read again from the store's positions
                self._watch_broker()
                if not backlog_folded and self.consumer.assignment():
                    backlog_folded = True
                    if self._fold_backlog(stop, report):
                        continue  # what that poll returned is read again from the store's positions
                if polled:
                    self._look_ahead(polled)
                items = [
                    item_of_record(tp.partition, r) for tp, batch in polled.items() for r in batch
                ]
                if items:
                    self._pending = self._pending or self.projector._begin()
                    self.projector._add(self._pending, items)
                    garbage.folded(len(items), bulk=not self._caught_up())
                pending = self._pending
                if pending is not None and pending.records >= self.batch_size and items:
                    self._launch()  # full: written while the next batch is folded
                    self._raise_flush_error()
                elif pending is not None and (not items or self._caught_up()):
                    self.flush()  # nothing more to read at once: a follower commits what
                    self._raise_flush_error()  # it has without waiting
                elif pending is None and until_caught_up and self._caught_up():
                    self._settle()  # the batch in flight: a conflict reads it again
                    self._raise_flush_error()
                    if self._pending is None and self._caught_up():
                        break
                if self._offsets_owed:
                    self._commit_offsets(report)
            self.flush()  # stopping: the batch in hand is committed
            self._raise_flush_error()
        finally:
            self._pending = None  # not committed: rolled back (read again next time)
            try:
                self._leave(garbage)
            finally:
                report.seconds = time.perf_counter() - started
        return report

    def _leave(self, garbage: BulkGarbage) -> None:
        """The run ends: the batch in flight settled (committed or rolled back whole) and
        its offsets sent, the collector back as it was, the group left -- each step even
        if one before it fails."""
        try:
            self._drain()
            if self._offsets_owed:
                self._commit_offsets(self.report)
        finally:
            garbage.end()
            # Bounded: a LeaveGroup sent while a join is in flight is answered only when
            # the join completes (seconds); the group then drops this member by timeout.
            self.consumer.close(timeout_ms=LEAVE_GROUP_MS)

    def flush(self, *, commit_offsets: bool = True) -> None:
        """Commit the batch in hand (if any) to the store, then its offsets to Kafka. A
        catch-up fills batches of ``batch_size`` records from many polls (every profile a
        transaction touches is written once); a follower commits each poll's records at
        once, since it has read everything there is. Called by the rebalance listener too,
        before partitions move: a failure there is kept and raised by the run loop after
        the poll (raised in the listener, kafka-python would fail the join instead)."""
        self._settle()
        pending, self._pending = self._pending, None
        if pending is None:
            return
        try:
            self.projector._finish(pending, self.report)
        except BatchConflict:
            self._conflict()
            return
        except BaseException as exc:
            self._flush_error = exc
            return
        self._offsets_owed = True
        if commit_offsets:
            self._commit_offsets(self.report)

    def _launch(self) -> None:
        """Hand the batch in hand to the commit thread (after the one in flight, if any,
        is written) and go on folding the next batch on top of it. The batch is prepared
        here (its profiles serialised now: folding the next batch changes them); the
        next batch's guards expect its positions, and its ids count as applied."""
        self._settle()
        pending, self._pending = self._pending, None
        if pending is None:  # dropped: the batch in flight failed
            return
        projector, batch = self.projector, pending.batch
        batch.rate = pending.records / max(time.perf_counter() - pending.began, 1e-9)
        try:
            prepared = self.store.prepare(batch)
        except BaseException as exc:
            self._flush_error = exc
            return
        projector._next.update(batch.positions)
        projector.folder.recent_ids = batch.applied_ids
        if self._committer is None:
            self._committer = ThreadPoolExecutor(1, thread_name_prefix="ledger-commit")
        self._in_flight = (self._committer.submit(self.store.write, prepared), pending)

    def _settle(self, *, wait: bool = True, leaving: bool = False) -> bool:
        """Take the result of the batch in flight (``wait``: wait for it; otherwise only
        if it is written already). Committed: counted, its offsets owed to Kafka. Failed:
        the batch folded on top of it is dropped with the folded state; a conflict reads
        both again from the store's positions (unless ``leaving``), anything else is
        raised by the run loop. Returns whether anything was dropped: records polled
        before then follow the dropped batches and must not be folded."""
        if self._in_flight is None:
            return False
        future, pending = self._in_flight
        if not wait and not future.done():
            return False
        error = future.exception()  # waits; interrupted here, the batch stays in flight
        self._in_flight = None
        if error is None:
            self.projector.folder.recent_ids = {}  # in the store's dedupe records now
            pending.count_into(self.report)
            self._offsets_owed = True
            return False
        self._pending = None
        self.projector.folder.forget()  # its profiles hold changes the store does not
        if isinstance(error, BatchConflict):
            self._conflict(seek=not leaving)
        else:
            self._flush_error = error
        return True

    def _conflict(self, *, seek: bool = True) -> None:
        """Another member committed first: counted, and (``seek``) read again from the
        store's positions."""
        self.conflicts += 1
        self.report.conflicts += 1
        if seek:
            self.seek_to_store(list(self.consumer.assignment()))

    def _drain(self) -> None:
        """Leaving: wait for the batch in flight (it commits or rolls back whole) and stop
        the commit and lookup threads; a failure here is the run's to report only if
        nothing else is."""
        try:
            self._settle(leaving=True)
        finally:
            self.projector.folder.forget_look_ahead()
            for pool in (self._committer, self._lookups):
                if pool is not None:
                    pool.shutdown(wait=True)
            self._committer = self._lookups = None

    def _look_ahead(self, polled: dict[TopicPartition, list[Any]]) -> None:
        """Ask the store which of the polled records' ids it applied before, on the lookup
        thread, while this thread decodes them (the ids from their ``ce_id`` headers: a
        record without one is looked up when folded). PostgreSQL answers a chunk's lookup
        in ~15-20 ms, which this thread waited for, folding nothing."""
        ids = []
        for batch in polled.values():
            for record in batch:
                for name, value in record.headers:
                    if name == "ce_id":
                        if type(value) is bytes:
                            with contextlib.suppress(UnicodeDecodeError):
                                ids.append(value.decode())
                        break
        if self._lookups is None:
            self._lookups = ThreadPoolExecutor(1, thread_name_prefix="ledger-lookup")
        self.projector.folder.look_ahead(ids, self._lookups)

    def _raise_flush_error(self) -> None:
        error, self._flush_error = self._flush_error, None
        if error is not None:
            raise error

    def _poll(self, poll_seconds: float, room: int) -> dict[TopicPartition, list[Any]]:
        """Poll the group, then stop (:class:`~ledger.errors.PositionLost`) rather than read
        on from a position the topic no longer fits: every position sought from the store
        is checked against the topic's bounds, and every fetch against its high watermark
        (Tansu answers a fetch past the end with no records; Kafka with OFFSET_OUT_OF_RANGE,
        which this consumer does not let reset itself)."""
        try:
            polled: dict[TopicPartition, list[Any]] = self.consumer.poll(
                timeout_ms=int(poll_seconds * 1000), max_records=max(room, 1)
            )
        except OffsetOutOfRangeError as exc:
            raise self.log.out_of_range(exc) from exc
        except KafkaError as exc:  # the member joins again (follow_group) or says why
            raise self.log._unavailable("cannot poll the group", exc) from exc
        if self.unchecked:
            check_views_fit(self.log, self.store, sorted(self.unchecked))
            self.unchecked = set()
        self.log.check_overrun(self.consumer, self.consumer.assignment())
        return polled

    def _watch_broker(self) -> None:
        """While the group's coordinator cannot be reached (the broker is down), say so
        (logger ``ledger``) after :data:`DOWN_REPORT_SECONDS` and every 30 s after that,
        and say when it is back: the member waits for the broker (kafka-python reconnects),
        its views stay at their committed positions."""
        coordinator: Any = getattr(self.consumer, "_coordinator", None)
        down = coordinator is not None and coordinator.coordinator_unknown()
        now = time.monotonic()
        if not down:
            if self._down_since is not None and self._reported_at is not None:
                LOGGER.warning(
                    "%s: Kafka reachable again after %.0fs", self.log.name, now - self._down_since
                )
            self._down_since = self._reported_at = None
            return
        if self._down_since is None:
            self._down_since = now
        waited = now - self._down_since
        if waited >= DOWN_REPORT_SECONDS and (
            self._reported_at is None or now - self._reported_at >= 30
        ):
            LOGGER.warning(
                "%s: Kafka at %s unreachable for %.0fs: waiting (the views stay at their "
                "positions)",
                self.log.name,
                ",".join(self.log.target.bootstrap_servers),
                waited,
            )
            self._reported_at = now

    def _fold_backlog(self, stop: Stop, report: RunReport) -> bool:
        """On the first assignment, catch its partitions up with worker processes (see
        :mod:`consumers.shards`), if there is more than one to share and the store can
        merge the workers' rows. The group consumer is paused meanwhile and polled between
        batches, so that it keeps its membership; a rebalance ends the parallel run, and the
        group loop goes on from the store's positions. Returns whether it ran."""
        from consumers.shards import ParallelCatchUp

        assignment = list(self.consumer.assignment())
        if self.projector.workers < 2 or self.store.staging is None or len(assignment) < 2:
            return False
        seen = self.assignments
        self.consumer.pause(*assignment)

        def between() -> bool:
            self.consumer.poll(timeout_ms=0)  # paused: no records, only the group's business
            return self.assignments == seen and not stop.is_set()

        try:
            parallel = ParallelCatchUp(
                self.projector,
                self.projector.workers,
                partitions=sorted(tp.partition for tp in assignment),
                between=between,
            )
            report.merge(parallel.run(stop))
        finally:
            current = list(self.consumer.assignment())
            self.consumer.resume(*current)
            self.seek_to_store(current)
        self._commit_offsets(report)
        return True

    def _commit_offsets(self, report: RunReport) -> None:
        self._offsets_owed = False
        owned = {tp.partition for tp in self.consumer.assignment()}
        offsets = {
            TopicPartition(self.log.topic, p): OffsetAndMetadata(o, "", -1)
            for p, o in report.positions.items()
            if p in owned
        }
        with contextlib.suppress(KafkaError):  # only lag tools read these; the store is truth
            self.consumer.commit(offsets)

    def _caught_up(self) -> bool:
        assignment = self.consumer.assignment()
        if not assignment:
            return False
        for tp in assignment:
            highwater = self.consumer.highwater(tp)
            if highwater is None or self.consumer.position(tp) < highwater:
                return False
        return True


def follow_group(
    join: Callable[[], GroupProjector], stop: Stop, *, retry_seconds: float = 2.0
) -> RunReport:
    """Be a group member until ``stop`` is set. While Kafka cannot be reached
    (:class:`LogUnavailable`) wait, say so (logger ``ledger``) and join again; anything
    else -- a position the topic no longer fits (:class:`~ledger.errors.PositionLost`),
    ``--on-error stop`` -- ends the run: a follower never skips past it."""
    total = RunReport()
    down_since: float | None = None
    while not stop.is_set():
        member: GroupProjector | None = None
        try:
            member = join()
            if down_since is not None:
                LOGGER.warning("%s: Kafka reachable again, joining the group", member.log.name)
                down_since = None
            total.merge(member.run(stop))
        except LogUnavailable as exc:
            if member is not None:
                total.merge(member.report)
            now = time.monotonic()
            if down_since is None:
                down_since = now
                LOGGER.warning(
                    "%s: waiting for Kafka, joining again every %.0fs", exc, retry_seconds
                )
            stop.wait(retry_seconds)
    return total
