"""A group member's pipelined commits (consumers/kafka_group.py): a full batch is written by
the commit thread while the next one is folded on top of it, and neither a copy of an event
in flight nor a conflict of the batch in flight counts an event twice or loses one."""

from __future__ import annotations

import gc
import itertools
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from application.wiring import open_log, open_store
from consumers.folding import RunReport, read_items
from consumers.kafka_group import GroupProjector
from consumers.projector import Projector
from consumers.store import BatchConflict
from ledger.codec import parse_event
from ledger.events import Touchpoint
from ledger.generate import generated
from ledger.kafka_log import KafkaLog
from ledger.settings import Settings
from tests.conftest import StoreUrlFactory
from tests.integration.test_kafka_group import assert_views_of_one_process

BATCH = 200


def run_member(settings: Settings, store: Any) -> RunReport:
    """One group member on ``store`` until caught up (then the store is closed)."""
    try:
        log = open_log(settings, create=False)
        assert isinstance(log, KafkaLog)
        group = GroupProjector(
            log,
            store,
            group_id=f"views-{uuid.uuid4().hex[:8]}",
            batch_size=BATCH,
            session_timeout_ms=6000,
            workers=1,
        )
        try:
            return group.run(threading.Event(), until_caught_up=True)
        finally:
            log.close()
    finally:
        store.close()


def publish_with_copies(settings: Settings, events: list[Touchpoint], every: int) -> int:
    """Publish ``events`` with each run of ``every`` events published twice in a row (the
    second time a plain re-publication, as a retrying producer does): a batch boundary
    falls between many an original and its copy. Returns the records published."""
    with open_log(settings) as log:
        for start in range(0, len(events), every):
            log.append(events[start : start + every])
            log.append(events[start : start + every])
    return 2 * len(events)


def test_a_batch_is_written_while_the_next_is_folded_and_copies_in_flight_count_once(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    """The first batch's write waits until the member has read and looked up the next
    chunk's ids (so it cannot be written in line), then every write is slow: copies of
    events of the batch in flight arrive in the batch being folded. They are found in the
    ids of the batch in flight, not applied again (a second application would fail that
    batch's commit as a conflict and read it again): no conflict, every copy a duplicate,
    the views of one process."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": store_url("group")})
    clean = base.model_copy(update={"store": store_url("clean")})
    events = [parse_event(d) for d in generated(90, 60, seed=31)]
    assert publish_with_copies(settings, events, 30) >= 5 * BATCH
    store = open_store(settings)
    writing, folded_meanwhile = threading.Event(), threading.Event()
    overlapped: list[bool] = []
    write, seen = store.write, store.seen

    def watching_seen(ids: Any) -> Any:
        if writing.is_set() and not threading.current_thread().name.startswith("ledger-commit"):
            folded_meanwhile.set()  # the member looks up the next chunk during a write
        return seen(ids)

    def slow_write(prepared: Any) -> None:
        writing.set()
        try:
            if not overlapped:
                overlapped.append(folded_meanwhile.wait(20))
            else:
                time.sleep(0.2)
            write(prepared)
        finally:
            writing.clear()

    store.seen = watching_seen  # type: ignore[method-assign,assignment]
    store.write = slow_write  # type: ignore[method-assign]
    report = run_member(settings, store)
    assert overlapped == [True], "the first batch was written in line, not while folding"
    assert gc.isenabled()  # off while the backlog was folded, on again after
    assert report.conflicts == 0
    assert (report.applied, report.duplicates) == (len(events), len(events))
    assert report.batches >= 5
    assert_views_of_one_process(settings, clean)


def test_a_conflict_of_the_batch_in_flight_drops_the_next_and_reads_both_again(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    """While the member's first batch is being written, another projector commits the
    whole log first, and more events arrive for the same customers. The batch in flight
    fails its guards; the batch folded on top of it, and the profiles folded into, are
    dropped; the member reads on from the store's positions and applies the new events
    onto the other projector's profiles: every event counted once."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": store_url("group")})
    clean = base.model_copy(update={"store": store_url("clean")})
    events = [parse_event(d) for d in generated(120, 90, seed=37)]
    first, later = events[: len(events) * 2 // 3], events[len(events) * 2 // 3 :]
    assert len(first) >= 3 * BATCH
    assert len(later) >= BATCH
    with open_log(settings) as log:
        log.append(first)
    store = open_store(settings)
    write = store.write
    failures: list[BaseException] = []

    def overtaken_write(prepared: Any) -> None:
        if not failures:
            other = open_store(settings)
            try:
                with open_log(settings) as log:
                    Projector(log, other, workers=1).catch_up()  # commits first
                    log.append(later)
            finally:
                other.close()
            try:
                write(prepared)
            except BatchConflict as exc:
                failures.append(exc)
                raise
            failures.append(AssertionError("the overtaken batch was committed"))
            return
        write(prepared)

    store.write = overtaken_write  # type: ignore[method-assign]
    report = run_member(settings, store)
    assert [type(f) for f in failures] == [BatchConflict]
    assert report.conflicts == 1
    assert report.applied == len(later)  # the rest was the other projector's
    assert_views_of_one_process(settings, clean)


def test_records_polled_before_a_failure_is_seen_are_read_again_not_committed(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    """Another projector commits the first records of some partitions while the member's
    first batch is being written, so that batch fails; the member sees it right after a
    poll, and is stopped there. The records that poll returned follow the failed batch:
    folded on top of the other projector's positions and committed by the stop, they would
    skip the rest of the failed batch for good. They are dropped and read again: after the
    member, a catch-up gives the views of one process."""
    base = kafka_settings()
    settings = base.model_copy(update={"store": store_url("group")})
    clean = base.model_copy(update={"store": store_url("clean")})
    events = [parse_event(d) for d in generated(120, 60, seed=41)]
    assert len(events) >= 3 * BATCH
    with open_log(settings) as log:
        log.append(events)
    store = open_store(settings)
    write = store.write
    writing, failed = threading.Event(), threading.Event()

    def overtaken_write(prepared: Any) -> None:
        if writing.is_set():
            write(prepared)
            return
        writing.set()
        names = {store.tracking_name(p): p for p in range(4)}
        moved = {names[name] for name, _, new in prepared.guards if name in names and new}
        other = open_store(settings)
        try:
            with open_log(settings) as log:  # the first records of the batch's partitions
                mine = (i for i in read_items(log, {}) if i.position.partition in moved)
                first = list(itertools.islice(mine, 30))
                Projector(log, other, workers=1).apply(first, RunReport())
        finally:
            other.close()
        try:
            write(prepared)
        finally:
            failed.set()

    store.write = overtaken_write  # type: ignore[method-assign]
    stop = threading.Event()
    log = open_log(settings, create=False)
    assert isinstance(log, KafkaLog)
    group = GroupProjector(
        log, store, group_id=f"views-{uuid.uuid4().hex[:8]}", batch_size=BATCH,
        session_timeout_ms=6000, workers=1,
    )  # fmt: skip
    poll = group.consumer.poll

    def small_poll(timeout_ms: int = 0, max_records: int | None = None) -> Any:
        if writing.is_set() and not stop.is_set():
            assert failed.wait(20)
            stop.set()  # a stop signal right after the poll that sees the failure
        return poll(timeout_ms=timeout_ms, max_records=min(max_records or 50, 50))

    group.consumer.poll = small_poll  # type: ignore[method-assign]
    try:
        report = group.run(stop)
    finally:
        log.close()
    assert report.conflicts == 1
    with open_log(settings) as log:
        Projector(log, store, workers=1).catch_up()
    store.close()
    assert_views_of_one_process(settings, clean)
