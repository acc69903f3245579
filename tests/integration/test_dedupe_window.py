"""The dedupe window (issue 17): the applied ids a store keeps are bounded by event time,
and a record older than the window whose id is gone is parked, never counted twice."""

from __future__ import annotations

from collections.abc import Callable

from application.wiring import open_log, open_store
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import StoreUrlFactory

DAY = 86_400_000_000


def test_ids_are_kept_for_the_window_only_and_an_older_copy_is_parked_not_counted(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    settings = kafka_settings().model_copy(
        update={"store": store_url("window"), "dedupe_window_days": 30}
    )
    events = [parse_event(d) for d in generated(60, 200, seed=5)]
    with open_log(settings) as log:
        log.append(events)
    store = open_store(settings)
    try:
        with open_log(settings) as log:
            report = Projector(log, store, batch_size=400, workers=1).catch_up()
            assert (report.applied, report.parked) == (len(events), 0)
            kept = store.recorder.select("SELECT partition, micros FROM {applied_events}")
            newest = store.newest_times()
            # The bound: every kept id is within the window (plus the 1 % a prune may lag).
            assert kept
            assert len(kept) < len(events) / 2
            for partition, micros in kept:
                assert micros >= newest[partition] - 30 * DAY - 30 * DAY // 100
            views = store.dump()

            # An early event published again: its id is gone, its time is long before
            # the window, so it is parked with the reason -- not applied a second time.
            recent = max(events, key=lambda e: e.time)
            log.append([events[0], recent])
            again = Projector(log, store, workers=1).catch_up()
        assert (again.applied, again.duplicates, again.parked) == (0, 1, 1)
        assert store.dump() == views
        (letter,) = store.dead_letters()
        assert letter.reason.startswith("older than the dedupe window: event time ")
        assert "30 days" in letter.reason
        assert "ledger project retry" in letter.reason
    finally:
        store.close()


def test_without_a_window_every_id_is_kept(
    kafka_settings: Callable[[], Settings], store_url: StoreUrlFactory
) -> None:
    settings = kafka_settings().model_copy(update={"store": store_url("forever")})
    events = [parse_event(d) for d in generated(30, 200, seed=6)]
    with open_log(settings) as log:
        log.append(events)
        log.append(events[:5])
        store = open_store(settings)
        try:
            report = Projector(log, store, batch_size=400, workers=1).catch_up()
            assert (report.applied, report.duplicates, report.parked) == (len(events), 5, 0)
            assert len(store.recorder.select("SELECT event_id FROM {applied_events}")) == len(
                events
            )
        finally:
            store.close()
