"""Contact frequency: quarter-hour UTC slots answer rolling and calendar windows exactly."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from ledger.codec import parse_event
from ledger.generate import generated
from projections.frequency import Window, apply, count, replay, slot_of

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def sms(at: datetime, customer: str = "C1", purpose: str = "marketing", i: list[int] = [0]) -> Any:  # noqa: B006
    i[0] += 1
    return parse_event(
        {
            "id": f"s{i[0]}",
            "source": "t",
            "type": "touchpoint.sms",
            "subject": customer,
            "time": at.isoformat(),
            "data": {"direction": "outbound", "purpose": purpose},
        }
    )


def test_non_contacts_are_not_counted() -> None:
    consent = parse_event(
        {
            "id": "c",
            "source": "t",
            "type": "consent.given",
            "subject": "C1",
            "time": T0.isoformat(),
            "data": {"channel": "sms", "evidence_source": "web"},
        }
    )
    assert apply(Counter(), consent) == Counter()


def test_rolling_windows_and_filters() -> None:
    state = replay(
        [sms(T0 - timedelta(days=d)) for d in (0, 1, 2, 6, 8, 29, 31)]
        + [sms(T0, purpose="service"), sms(T0, customer="C2")]
    )
    assert count(state, "C1", Window.rolling(T0, timedelta(days=7))) == 5
    assert count(state, "C1", Window.rolling(T0, timedelta(days=7)), purpose="marketing") == 4
    assert count(state, "C1", Window.rolling(T0, timedelta(days=30)), channel="sms") == 7
    assert count(state, "C1", Window.rolling(T0, timedelta(hours=24)), direction="outbound") == 3
    assert count(state, "C2", Window.rolling(T0, timedelta(days=7))) == 1


def test_a_late_event_lands_in_its_own_slot() -> None:
    early, late = sms(T0 - timedelta(days=3)), sms(T0)
    assert replay([late, early]) == replay([early, late])


@pytest.mark.parametrize(
    ("zone", "day", "hours"),
    [
        ("America/New_York", date(2025, 3, 9), 23),  # spring forward
        ("America/New_York", date(2025, 11, 2), 25),  # fall back
        ("Europe/Istanbul", date(2025, 3, 30), 24),  # no DST since 2016
        ("Asia/Kolkata", date(2025, 3, 30), 24),  # UTC+05:30
        ("Asia/Kathmandu", date(2025, 3, 30), 24),
    ],  # UTC+05:45
)
def test_calendar_days_in_any_zone_are_exact(zone: str, day: date, hours: int) -> None:
    tz = ZoneInfo(zone)
    window = Window.calendar_days(day, day, tz)
    assert (window.end - window.start) * 15 == hours * 60
    # Instants in UTC: adding hours to a ZoneInfo datetime would be wall-clock arithmetic.
    start = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(UTC)
    inside = [start, start + timedelta(hours=hours) - timedelta(seconds=1)]
    outside = [start - timedelta(seconds=1), start + timedelta(hours=hours)]
    state = replay([sms(t) for t in inside + outside])
    assert count(state, "C1", window) == 2


def test_an_independent_count_agrees_on_a_generated_history() -> None:
    events = [parse_event(d) for d in generated(200, 120, seed=8)]
    state = replay(events)
    now = datetime(2025, 3, 15, tzinfo=UTC)
    for length in (timedelta(hours=24), timedelta(days=7), timedelta(days=30)):
        window = Window.rolling(now, length)
        lo, hi = window.start * 900, window.end * 900
        brute: Counter[str] = Counter()
        for e in events:
            data = e.data
            if (
                getattr(data, "direction", None) == "outbound"
                and getattr(data, "purpose", None) == "marketing"
                and lo <= e.time.timestamp() < hi
            ):
                brute[e.subject] += 1
        for customer in {e.subject for e in events}:
            got = count(state, customer, window, direction="outbound", purpose="marketing")
            assert got == brute[customer]
        assert sum(brute.values()) > 0


def test_slots_are_quarter_hours() -> None:
    assert slot_of(T0) - slot_of(T0 - timedelta(minutes=15)) == 1
    assert slot_of(T0 + timedelta(minutes=14, seconds=59)) == slot_of(T0)
