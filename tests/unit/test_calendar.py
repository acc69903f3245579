"""Business-calendar arithmetic, hand-checked: holidays, weekends, closing times, DST."""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from application.policy_files import default_policy
from projections.calendar import BusinessCalendar, always_open
from projections.policy import PolicyError, parse_policy
from projections.service_rules import CalendarRules

IST = ZoneInfo("Europe/Istanbul")
BERLIN = ZoneInfo("Europe/Berlin")
OFFICE = ((time(9), time(18)),) * 5 + (None, None)


def office(zone: ZoneInfo = IST, holidays: frozenset[date] = frozenset()) -> BusinessCalendar:
    return BusinessCalendar(zone, OFFICE, holidays)


def test_friday_1750_answered_monday_0910_with_a_monday_holiday() -> None:
    # Friday 2025-04-18 17:50 in Istanbul, answered Monday 2025-04-21 09:10, a holiday.
    # Answer: 10 business minutes (Friday 17:50-18:00; the weekend and the holiday count
    # nothing); the reply counts on Tuesday, the next business day after Friday, so it
    # was answered "the next business day", within a one-business-day SLA whose deadline
    # is Tuesday 18:00.
    calendar = office(holidays=frozenset({date(2025, 4, 21)}))
    received = datetime(2025, 4, 18, 17, 50, tzinfo=IST)
    answered = datetime(2025, 4, 21, 9, 10, tzinfo=IST)
    assert calendar.business_seconds(received, answered) == 600
    assert calendar.next_business_day(date(2025, 4, 18)) == date(2025, 4, 22)
    assert calendar.business_day_of(answered) == date(2025, 4, 22)
    assert calendar.business_days_between(received, answered) == 1
    assert calendar.deadline(received, 1) == datetime(2025, 4, 22, 18, tzinfo=IST)
    # Without the holiday the same reply is Monday's: still the next business day, and
    # 10 + 10 business minutes.
    plain = office()
    assert plain.business_seconds(received, answered) == 1200
    assert plain.business_days_between(received, answered) == 1


def test_arrivals_after_closing_or_at_the_weekend_count_from_the_next_business_day() -> None:
    calendar = office()
    friday_evening = datetime(2025, 4, 18, 19, 0, tzinfo=IST)
    saturday = datetime(2025, 4, 19, 11, 0, tzinfo=IST)
    monday_morning = datetime(2025, 4, 21, 8, 0, tzinfo=IST)
    for moment in (friday_evening, saturday, monday_morning):
        assert calendar.business_day_of(moment) == date(2025, 4, 21)
    monday_noon = datetime(2025, 4, 21, 12, 0, tzinfo=IST)
    assert calendar.business_seconds(friday_evening, monday_noon) == 3 * 3600
    assert calendar.business_days_between(saturday, monday_noon) == 0  # the same business day
    assert calendar.business_seconds(monday_noon, saturday) == 0  # never negative


def test_business_seconds_across_a_long_span_add_up_day_by_day() -> None:
    calendar = office(holidays=frozenset({date(2025, 5, 1)}))
    start = datetime(2025, 4, 28, 9, tzinfo=IST)  # a Monday
    end = datetime(2025, 5, 12, 9, tzinfo=IST)  # two weeks later
    assert calendar.business_seconds(start, end) == 9 * 9 * 3600  # 10 weekdays, 1 holiday
    # Positions are cached per day; asking backwards gives the same answers.
    assert calendar.business_seconds(datetime(2025, 4, 1, 9, tzinfo=IST), start) == 19 * 9 * 3600


def test_the_spring_forward_day_is_23_hours_long_in_berlin() -> None:
    calendar = always_open(BERLIN)
    saturday_noon = datetime(2025, 3, 29, 12, tzinfo=BERLIN)
    monday_noon = datetime(2025, 3, 31, 12, tzinfo=BERLIN)
    assert calendar.business_seconds(saturday_noon, monday_noon) == (12 + 23 + 12) * 3600
    # Opening hours of 00:00-24:00 on the day itself: 23 hours.
    assert calendar.opening(date(2025, 3, 30)) is not None
    start, end = calendar.opening(date(2025, 3, 30))  # type: ignore[misc]
    assert end - start == 23 * 3600


def test_the_fall_back_day_is_25_hours_and_office_hours_do_not_notice() -> None:
    friday = datetime(2025, 10, 24, 17, tzinfo=BERLIN)  # CEST, +02:00
    monday = datetime(2025, 10, 27, 10, tzinfo=BERLIN)  # CET, +01:00
    assert (monday - friday) == timedelta(hours=65)  # wall-clock difference, same zone
    assert always_open(BERLIN).business_seconds(friday, monday) == 66 * 3600  # real time
    assert office(BERLIN).business_seconds(friday, monday) == 2 * 3600


def test_yearly_holidays_recur() -> None:
    calendar = BusinessCalendar(IST, OFFICE, yearly=frozenset({(10, 29)}))
    assert not calendar.is_business_day(date(2025, 10, 29))
    assert not calendar.is_business_day(date(2026, 10, 29))
    assert calendar.is_business_day(date(2026, 10, 28))


def test_the_built_in_policy_ships_turkeys_fixed_holidays() -> None:
    rules = default_policy().policy.calendar
    calendar = rules.calendar()
    assert calendar.zone == IST
    for day in ("01-01", "04-23", "05-01", "05-19", "07-15", "08-30", "10-29"):
        month, dom = map(int, day.split("-"))
        assert calendar.is_holiday(date(2027, month, dom))
    assert calendar.is_business_day(date(2027, 4, 22))


def test_a_policy_calendar_is_checked_with_its_lines() -> None:
    text = """version = "x"
[calendar]
time_zone = "Europe/Berlin"
every_year = ["12-25", "13-01"]
holidays = [2026-04-03, "2026-04-06"]
[calendar.hours]
monday = "18:00-09:00"
"""
    with pytest.raises(PolicyError) as caught:
        parse_policy(text)
    problems = " ".join(caught.value.problems)
    assert "'13-01' is not a month and day" in problems
    assert "holidays are TOML dates" in problems
    assert "closes before it opens" in problems
    good = parse_policy(
        'version = "x"\n[calendar]\ntime_zone = "Europe/Berlin"\nholidays = [2026-04-06]\n'
        '[calendar.hours]\nsaturday = "10:00-14:00"\nsunday = "00:00-24:00"\n'
    )
    calendar = good.policy.calendar.calendar()
    assert not calendar.is_business_day(date(2026, 4, 6))
    assert calendar.opening(date(2026, 4, 4)) == (
        datetime(2026, 4, 4, 10, tzinfo=BERLIN).timestamp(),
        datetime(2026, 4, 4, 14, tzinfo=BERLIN).timestamp(),
    )
    assert CalendarRules().calendar().zone == ZoneInfo("UTC")


def test_measure_agrees_with_the_day_by_day_answers() -> None:
    import random

    holidays, yearly = frozenset({date(2025, 4, 21)}), frozenset({(12, 25)})
    calendar = BusinessCalendar(BERLIN, OFFICE, holidays, yearly)
    slow = BusinessCalendar(BERLIN, OFFICE, holidays, yearly)
    rng = random.Random(4)
    start = datetime(2025, 1, 1, tzinfo=BERLIN).timestamp()
    for _ in range(2000):
        a = start + rng.uniform(0, 700 * 86400)
        b = a + rng.choice([rng.uniform(0, 3600), rng.uniform(0, 30 * 86400)])
        days, seconds = calendar.measure_at(a, b)
        first, last = slow.business_day_at(a), slow.business_day_at(b)
        counted, day = 0, first
        while day < last:
            day = slow.next_business_day(day)
            counted += 1
        assert days == counted
        assert seconds == pytest.approx(slow.business_seconds_at(a, b))
