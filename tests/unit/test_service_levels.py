"""Service levels, hand-checked: each table below was worked out by hand (issue 13)."""

from __future__ import annotations

import itertools
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledger.codec import parse_event
from ledger.events import EVENT_CLASSES, TouchpointEvent
from ledger.timeutil import to_micros
from projections import service_levels as sl
from projections.bad_service import breaches, churn_after_bad_service
from projections.calendar import BusinessCalendar, always_open
from projections.service_rules import ServiceRules

IST = ZoneInfo("Europe/Istanbul")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = ((time(9), time(18)),) * 5 + (None, None)
RULES = ServiceRules()
_ids = itertools.count()


def event(
    kind: str, at: datetime, data: dict[str, Any], customer: str = "C1", event_id: str = ""
) -> TouchpointEvent:
    cls = EVENT_CLASSES[kind]
    return parse_event(
        {
            "id": event_id or f"e{next(_ids)}",
            "source": "t",
            "type": kind,
            "subject": customer,
            "time": at.isoformat(),
            "dataschema": f"urn:touchpoint-ledger:{kind}:v{cls.schema_version}",
            "data": data,
        }
    )


def call(at: datetime, outcome: str, wait: int, **more: Any) -> TouchpointEvent:
    data = {"direction": "inbound", "outcome": outcome, "wait_seconds": wait, **more}
    if outcome == "answered":
        data.setdefault("duration_seconds", 60)
    return event("touchpoint.call", at, data)


def figures_of(
    events: list[TouchpointEvent],
    calendar: BusinessCalendar,
    by: sl.By = "all",
    as_of: datetime | None = None,
) -> dict[str, Any]:
    rows = sl.replay(events).values()
    scope = sl.Scope(to_micros(as_of or datetime(2030, 1, 1, tzinfo=IST)))
    found = sl.figures(rows, scope, calendar, RULES, by)
    return {f.group: f.to_dict() for f in found}


def test_calls_a_long_wait_abandoned_and_a_short_abandon() -> None:
    t = datetime(2025, 4, 14, 10, tzinfo=IST)
    events = [
        call(t, "answered", 15, agent="a1", queue="billing"),
        call(t, "answered", 40, agent="a2", queue="billing"),
        call(t, "abandoned", 700, queue="billing"),  # after 11m40s on hold: bad service
        call(t, "abandoned", 3, queue="billing"),  # a short abandon: left out
    ]
    calls = figures_of(events, always_open(IST))["all"]["calls"]
    assert calls == {
        "offered": 3,
        "answered": 2,
        "abandoned": 1,
        "short_abandons": 1,
        "voicemail": 0,
        "long_abandons": 1,
        "answered_in_time": 1,
        "service_level": pytest.approx(1 / 3),
        "abandonment_rate": pytest.approx(1 / 3),
        "average_speed_of_answer": 27.5,
        "wait_p50": 40.0,
        "wait_p90": 700.0,
    }
    by_agent = figures_of(events, always_open(IST), by="agent")
    assert sorted(by_agent) == ["(none)", "a1", "a2"]
    assert by_agent["(none)"]["calls"]["abandoned"] == 1
    assert figures_of(events, always_open(IST), by="queue")["billing"]["calls"]["offered"] == 3


def test_email_friday_1750_answered_monday_0910_on_a_monday_holiday() -> None:
    # The calendar's next business day after Friday 2025-04-18 is Tuesday (Monday 04-21 is
    # a holiday): the reply counts on Tuesday, one business day later: within the default
    # one-business-day SLA, not the same day; 10 business minutes.
    calendar = BusinessCalendar(IST, OFFICE, frozenset({date(2025, 4, 21)}))
    inbound = event(
        "touchpoint.email",
        datetime(2025, 4, 18, 17, 50, tzinfo=IST),
        {"direction": "inbound"},
        event_id="mail-1",
    )
    reply = event(
        "touchpoint.email",
        datetime(2025, 4, 21, 9, 10, tzinfo=IST),
        {"direction": "outbound", "in_reply_to": "mail-1", "agent": "a7"},
    )
    found = figures_of([inbound, reply], calendar)["all"]["messages"]
    assert found == {
        "received": 1,
        "replied": 1,
        "unanswered": 0,
        "replied_in_time": 1,
        "within_sla": 1.0,
        "same_business_day": 0.0,
        "next_business_day": 1.0,
        "first_reply_business_p50": 600.0,
        "first_reply_business_p90": 600.0,
    }
    # With a same-day SLA it is a breach: due at the close of Friday itself.
    strict = ServiceRules(reply_within_business_days=0)
    rows = sl.replay([inbound, reply]).values()
    late = breaches(rows, sl.Scope(to_micros(datetime(2025, 5, 1, tzinfo=IST))), calendar, strict)
    assert [(b.item, b.deadline) for b in late] == [
        ("mail-1", datetime(2025, 4, 18, 18, tzinfo=IST))
    ]


def test_a_reply_that_arrives_before_its_inbound_message_is_matched_when_it_comes() -> None:
    inbound = event(
        "touchpoint.chat",
        datetime(2025, 4, 14, 10, 0, tzinfo=IST),
        {"channel": "social", "direction": "inbound", "wait_seconds": 0},
        event_id="dm-1",
    )
    reply = event(
        "touchpoint.chat",
        datetime(2025, 4, 14, 10, 30, tzinfo=IST),
        {"channel": "social", "direction": "outbound", "in_reply_to": "dm-1"},
    )
    calendar = BusinessCalendar(IST, OFFICE)
    in_order = figures_of([inbound, reply], calendar)
    late_upload = figures_of([reply, inbound], calendar)
    assert in_order == late_upload
    assert in_order["all"]["messages"]["first_reply_business_p50"] == 1800.0
    # Before the inbound message arrives the reply waits, counted nowhere.
    alone = figures_of([reply], calendar)
    assert alone == {}
    # Another customer's reply with the same in_reply_to answers nothing of C1's.
    stranger = event(
        "touchpoint.chat",
        datetime(2025, 4, 14, 10, 5, tzinfo=IST),
        {"channel": "social", "direction": "outbound", "in_reply_to": "dm-1"},
        customer="C2",
    )
    assert figures_of([stranger, reply, inbound], calendar) == in_order


def test_a_dst_day_counts_its_real_length() -> None:
    # Saturday 2025-03-29 12:00 Berlin, replied Monday 12:00, on a calendar open around the
    # clock: 12 h + 23 h (Sunday, clocks forward) + 12 h = 47 h. By day, both fall on the
    # local days they happened on.
    calendar = always_open(BERLIN)
    inbound = event(
        "touchpoint.email",
        datetime(2025, 3, 29, 12, tzinfo=BERLIN),
        {"direction": "inbound"},
        event_id="m-dst",
    )
    reply = event(
        "touchpoint.email",
        datetime(2025, 3, 31, 12, tzinfo=BERLIN),
        {"direction": "outbound", "in_reply_to": "m-dst"},
    )
    late_call = call(datetime(2025, 3, 30, 23, 30, tzinfo=BERLIN), "answered", 5)
    found = figures_of([inbound, reply, late_call], calendar, by="day")
    assert sorted(found) == ["2025-03-29", "2025-03-30"]  # 23:30 CEST is still the 30th
    assert found["2025-03-29"]["messages"]["first_reply_business_p50"] == 47 * 3600
    assert found["2025-03-30"]["calls"]["answered"] == 1


def test_complaints_resolution_sla_reopened_and_open_breaches() -> None:
    calendar = BusinessCalendar(IST, OFFICE)
    monday = datetime(2025, 4, 14, 10, tzinfo=IST)
    opened = {"channel": "phone", "complaint_id": "K1", "category": "delivery"}
    resolved = {"channel": "phone", "complaint_id": "K1", "resolution": "fixed", "agent": "a3"}
    events = [
        event("complaint.opened", monday, opened),
        event("complaint.resolved", monday + timedelta(days=2), resolved),  # Wednesday 10:00
        event("complaint.opened", monday + timedelta(days=3), opened),  # reopened Thursday
        event("complaint.opened", monday, {**opened, "complaint_id": "K2"}),  # never resolved
    ]
    found = figures_of(events, calendar)["all"]["complaints"]
    assert found == {
        "opened": 2,
        "resolved": 1,
        "resolved_in_time": 1,
        "within_sla": 0.5,
        "reopened": 1,
        "resolution_business_p50": 2 * 9 * 3600.0,
    }
    rows = sl.replay(events).values()
    now = to_micros(datetime(2025, 4, 30, tzinfo=IST))
    late = breaches(rows, sl.Scope(now), calendar, RULES, open_only=True)
    # K2's deadline: the close of the fifth business day after Monday 14th = Monday 21st.
    assert [(b.item, b.deadline, b.answered) for b in late] == [
        ("K2", datetime(2025, 4, 21, 18, tzinfo=IST), None)
    ]


def test_as_of_counts_only_what_had_happened() -> None:
    calendar = BusinessCalendar(IST, OFFICE)
    inbound = event(
        "touchpoint.email",
        datetime(2025, 4, 14, 10, tzinfo=IST),
        {"direction": "inbound"},
        event_id="m-9",
    )
    reply = event(
        "touchpoint.email",
        datetime(2025, 4, 16, 10, tzinfo=IST),
        {"direction": "outbound", "in_reply_to": "m-9"},
    )
    before = figures_of([inbound, reply], calendar, as_of=datetime(2025, 4, 15, tzinfo=IST))
    assert before["all"]["messages"]["unanswered"] == 1
    after = figures_of([inbound, reply], calendar, as_of=datetime(2025, 4, 17, tzinfo=IST))
    assert after["all"]["messages"]["replied"] == 1
    assert after["all"]["messages"]["replied_in_time"] == 0  # two business days later


def test_churn_after_bad_service_counts_both_groups() -> None:
    calendar = always_open(IST)
    t0 = datetime(2025, 1, 6, 10, tzinfo=IST)

    def purchase(customer: str, at: datetime) -> TouchpointEvent:
        data = {
            "channel": "web",
            "order_id": f"O{next(_ids)}",
            "amount": "10",
            "currency": "TRY",
            "item_count": 1,
        }
        return event("touchpoint.purchase", at, data, customer=customer)

    def contact(customer: str, at: datetime, wait: int, outcome: str) -> TouchpointEvent:
        data = {"direction": "inbound", "outcome": outcome, "wait_seconds": wait}
        if outcome == "answered":
            data["duration_seconds"] = 60
        return event("touchpoint.call", at, data, customer=customer)

    day = timedelta(days=1)
    events = [
        # B1: bought, then abandoned after 10 minutes, never bought again: bad, stopped.
        purchase("B1", t0),
        contact("B1", t0 + day, 600, "abandoned"),
        # B2: bought, abandoned after 10 minutes, bought again 30 days later: bad, kept.
        purchase("B2", t0),
        contact("B2", t0 + day, 600, "abandoned"),
        purchase("B2", t0 + 31 * day),
        # G1: bought, answered quickly, never bought again: good, stopped.
        purchase("G1", t0),
        contact("G1", t0 + day, 10, "answered"),
        # G2: answered, bought again: good, kept. G3: never bought before: left out.
        purchase("G2", t0),
        contact("G2", t0 + day, 10, "answered"),
        purchase("G2", t0 + 50 * day),
        contact("G3", t0 + day, 10, "answered"),
        # R1: bad service too recently to judge.
        purchase("R1", t0),
        contact("R1", t0 + 150 * day, 900, "abandoned"),
    ]
    rows = sl.replay(events).values()
    report = churn_after_bad_service(rows, to_micros(t0 + 200 * day), calendar, RULES)
    assert report.to_dict()["bad_service"] == {
        "customers": 2,
        "stopped_buying": 1,
        "rate": 0.5,
        "first_bad_experience": {"long_wait_abandoned": 2},
    }
    assert (report.good_customers, report.good_stopped) == (2, 1)
    assert (report.left_out_recent, report.left_out_not_buying) == (1, 1)


def test_figures_do_not_depend_on_arrival_order_and_totals_add_up() -> None:
    import random

    from ledger.generate import generated

    events = [parse_event(d) for d in generated(80, 120, seed=6)]
    calendar = BusinessCalendar(IST, OFFICE, yearly=frozenset({(4, 23), (5, 1)}))
    scope = sl.Scope(to_micros(datetime(2026, 1, 1, tzinfo=IST)))
    in_order = sl.figures(sl.replay(events).values(), scope, calendar, RULES, "day")
    shuffled = events[:]
    random.Random(1).shuffle(shuffled)
    again = sl.figures(sl.replay(shuffled).values(), scope, calendar, RULES, "day")
    assert [f.to_dict() for f in again] == [f.to_dict() for f in in_order]
    total = sl.Figures("all")
    for group in in_order:
        total.add(group)
    (everything,) = sl.figures(sl.replay(events).values(), scope, calendar, RULES, "all")
    assert sorted(total.waits) == sorted(everything.waits)
    total.waits, everything.waits = [], []
    total.reply_seconds.sort()
    everything.reply_seconds.sort()
    total.answered_waits.sort()
    everything.answered_waits.sort()
    total.resolve_seconds.sort()
    everything.resolve_seconds.sort()
    total.csat_scores.sort()
    everything.csat_scores.sort()
    assert total == everything
    assert everything.offered > 20
    assert everything.messages > 20
