"""One contract suite, run against every EventLog adapter (embedded SQLite and Kafka)."""

from __future__ import annotations

import threading
import time
import uuid
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ledger.codec import event_to_json, parse_event
from ledger.events import TouchpointEvent
from ledger.generate import generated
from ledger.log import Appended, Duplicate, EventLog, LogRecord, ReadFilter
from tests.conftest import LogFactory
from tests.strategies import event_documents


def history(customers: int = 25, days: int = 60, seed: int = 5) -> list[TouchpointEvent]:
    return [parse_event(d) for d in generated(customers, days, seed)]


def append_in_batches(log: EventLog, events: list[TouchpointEvent], size: int = 150) -> list[Any]:
    outcomes = []
    for start in range(0, len(events), size):
        outcomes += log.append(events[start : start + size])  # type: ignore[arg-type]
    return outcomes


def stored(log: EventLog, events: list[Any]) -> list[Any]:
    """``events`` as the log stores them: personal values encrypted by the log's protector
    (the same bytes each time: the nonces are synthetic), or unchanged."""
    return list(log.protected(events))


def test_read_returns_every_appended_event_with_its_position(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    outcomes = append_in_batches(log, events)
    events = stored(log, events)
    assert all(isinstance(o, Appended) for o in outcomes)
    records = list(log.read())
    assert sorted(r.position for r in records) == sorted(o.position for o in outcomes)
    by_position = {r.position: r.event for r in records}
    for event, outcome in zip(events, outcomes, strict=True):
        assert by_position[outcome.position] == event


def test_each_customers_events_keep_their_append_order(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    append_in_batches(log, events)
    expected: dict[str, list[str]] = defaultdict(list)
    for event in events:
        expected[event.subject].append(event.id)
    seen: dict[str, list[str]] = defaultdict(list)
    for record in log.read():
        assert record.event is not None
        seen[record.event.subject].append(record.event.id)
    assert seen == expected


def test_positions_increase_within_each_partition(log_factory: LogFactory) -> None:
    log = log_factory()
    append_in_batches(log, history())
    last: dict[int, int] = {}
    for record in log.read():
        assert record.position.offset > last.get(record.position.partition, -1)
        last[record.position.partition] = record.position.offset
    assert set(last) <= set(log.partitions())


def test_duplicates_within_a_batch_are_reported_not_appended(log_factory: LogFactory) -> None:
    log = log_factory()
    first, second = history()[:2]
    outcomes = log.append([first, second, first])  # type: ignore[list-item]
    assert isinstance(outcomes[0], Appended)
    assert isinstance(outcomes[1], Appended)
    assert outcomes[2] == Duplicate(first.id, outcomes[0].position)
    assert [r.event.id for r in log.read() if r.event].count(first.id) == 1


def test_duplicates_across_batches_follow_the_adapters_promise(log_factory: LogFactory) -> None:
    log = log_factory()
    event = history()[0]
    original = log.append([event])[0]  # type: ignore[list-item]
    again = log.append([event])[0]  # type: ignore[list-item]
    copies = [r for r in log.read() if r.event and r.event.id == event.id]
    if log.refuses_duplicates_across_batches:
        assert again == Duplicate(event.id, original.position)
        assert len(copies) == 1
    else:
        # Kafka cannot refuse it; it is appended and consumers deduplicate by id.
        assert isinstance(again, Appended)
        assert [c.event for c in copies] == stored(log, [event, event])


def test_read_from_positions_starts_exactly_there(log_factory: LogFactory) -> None:
    log = log_factory()
    append_in_batches(log, history())
    everything = list(log.read())
    start = {}
    for partition in log.partitions():
        offsets = [r.position.offset for r in everything if r.position.partition == partition]
        if offsets:
            start[partition] = offsets[len(offsets) // 2]
    later = list(log.read(start))
    expected = [r for r in everything if r.position.offset >= start.get(r.position.partition, 0)]
    assert sorted(r.position for r in later) == sorted(r.position for r in expected)


def test_filters_match_a_brute_force_scan(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    append_in_batches(log, events)
    customer = events[len(events) // 2].subject
    middle = sorted(e.time for e in events)[len(events) // 2]
    filters = [
        ReadFilter(customer=customer),
        ReadFilter(types=frozenset({"touchpoint.purchase", "complaint.opened"})),
        ReadFilter(since=middle),
        ReadFilter(until=middle),
        ReadFilter(
            customer=customer,
            types=frozenset({"touchpoint.sms"}),
            since=middle - timedelta(days=20),
            until=middle + timedelta(days=5),
        ),
    ]
    for where in filters:
        got = sorted(r.event.id for r in log.read(where=where) if r.event)
        want = sorted(e.id for e in events if where.matches(e))  # type: ignore[arg-type]
        assert got == want, where
        assert got or where.types, where  # the data set exercises each filter


def test_follow_delivers_later_appends_then_stops(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    log.append(events[:10])  # type: ignore[arg-type]
    stop = threading.Event()
    received: list[LogRecord] = []

    def consume() -> None:
        for record in log.follow(stop=stop, poll_seconds=0.05):
            received.append(record)

    follower = threading.Thread(target=consume)
    follower.start()
    try:
        log.append(events[10:30])  # type: ignore[arg-type]
        deadline = time.monotonic() + 20
        while len(received) < 30 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        stop.set()
        follower.join(10)
    assert not follower.is_alive(), "follow() must return once stop is set"
    assert sorted(r.event.id for r in received if r.event) == sorted(e.id for e in events[:30])


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(event_documents(), min_size=1, max_size=12))
def test_any_valid_events_round_trip_unchanged(
    log_factory: LogFactory, documents: list[dict[str, Any]]
) -> None:
    for document in documents:
        document["id"] = f"{document['id']}-{uuid.uuid4().hex}"  # ids unique per example
    log = log_factory()
    events = [parse_event(d) for d in documents]
    log.append(events)
    events = stored(log, events)
    records = list(log.read())
    back = {r.event.id: r.event for r in records if r.event}
    assert len(records) == len(events)
    for event in events:
        assert back[event.id] == event
        assert event_to_json(back[event.id]) == event_to_json(event)


def test_event_time_filters_are_by_instant_not_by_text(log_factory: LogFactory) -> None:
    log = log_factory()
    base = {
        "source": "s",
        "type": "touchpoint.sms",
        "subject": "C1",
        "data": {"direction": "outbound"},
    }
    # 10:30 in Istanbul is 07:30 UTC: before 08:00Z although its text sorts after it.
    log.append(
        [
            parse_event({**base, "id": "ist", "time": "2025-03-01T10:30:00+03:00"}),
            parse_event({**base, "id": "utc", "time": "2025-03-01T09:00:00Z"}),
        ]
    )
    where = ReadFilter(until=datetime.fromisoformat("2025-03-01T08:00:00+00:00"))
    assert [r.event.id for r in log.read(where=where) if r.event] == ["ist"]


def test_end_positions_are_where_the_next_record_goes(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    outcomes = append_in_batches(log, events)
    ends = log.end_positions()
    last: dict[int, int] = {}
    for outcome in outcomes:
        last[outcome.position.partition] = max(
            last.get(outcome.position.partition, -1), outcome.position.offset
        )
    for partition, offset in last.items():
        assert ends[partition] == offset + 1
    assert set(ends) == set(log.partitions())


def test_record_at_returns_exactly_that_record(log_factory: LogFactory) -> None:
    log = log_factory()
    events = history()
    outcomes = append_in_batches(log, events)
    events = stored(log, events)
    for event, outcome in list(zip(events, outcomes, strict=True))[::37]:
        record = log.record_at(outcome.position)
        assert record is not None
        assert (record.position, record.event) == (outcome.position, event)
    beyond = outcomes[-1].position
    assert log.record_at(type(beyond)(beyond.partition, beyond.offset + 10_000)) is None
