"""History "as of" a moment equals a full rebuild of the views at that moment.

``service.history`` folds one customer's events with the projections' own code; the
projector builds the views from a whole log. Cut the log at a moment (by event time, or by
what had been recorded), project it from scratch, and the two must agree for every
customer.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

from application import service
from consumers.projector import Projector
from consumers.store import SQLiteViewStore, ViewStore
from ledger.codec import parse_event
from ledger.events import TouchpointEvent
from ledger.generate import generated
from ledger.log import EventLog
from ledger.sqlite_log import SQLiteLog
from ledger.timeutil import utc_now
from projections import frequency
from projections.frequency import Window
from tests.conftest import LogFactory


def rebuilt(
    path: Path, events: Sequence[TouchpointEvent], like: EventLog | None = None
) -> tuple[SQLiteLog, ViewStore]:
    """A fresh embedded log of just ``events`` (encrypted as ``like`` encrypts: with the
    same keys, the same bytes), projected from scratch."""
    log = SQLiteLog(path / "cut.db")
    log.protector = like.protector if like is not None else None
    log.append(list(events))
    store = SQLiteViewStore(path / "cut-views.db", "embedded")
    Projector(log, store).catch_up()
    return log, store


def assert_agree(log: EventLog, store: ViewStore, customers: set[str], **cut: datetime) -> None:
    window = Window.rolling(cut.get("until") or cut["recorded_by"], timedelta(days=30))
    for customer in sorted(customers):
        history = service.history(log, customer, **cut)
        assert history.profile() == store.profile(customer), customer
        assert frequency.totals(history.contacts(), customer, window) == store.contacts(
            customer, window
        )


def test_as_of_an_event_time_equals_a_rebuild_cut_there(
    log_factory: LogFactory, tmp_path: Path
) -> None:
    events = [parse_event(d) for d in generated(25, 90, seed=12)]
    log = log_factory()
    log.append(events)
    moment = sorted(e.time for e in events)[len(events) // 2]
    cut_log, store = rebuilt(tmp_path, [e for e in events if e.time <= moment], log)
    try:
        assert_agree(log, store, {e.subject for e in events}, until=moment)
    finally:
        store.close()
        cut_log.close()


def test_as_recorded_by_a_moment_is_what_the_ledger_knew_then(tmp_path: Path) -> None:
    events = [parse_event(d) for d in generated(25, 90, seed=13)]
    early, late = events[::2], events[1::2]  # the late half includes older event times
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(early)
        time.sleep(0.01)
        known = utc_now()
        time.sleep(0.01)
        log.append(late)
        cut_log, store = rebuilt(tmp_path, early)
        try:
            assert_agree(log, store, {e.subject for e in events}, recorded_by=known)
            customer = late[0].subject
            assert service.history(log, customer).profile() != store.profile(customer)
        finally:
            store.close()
            cut_log.close()
