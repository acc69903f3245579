"""Business-calendar arithmetic: opening hours per weekday in one zone, minus holidays.

Pure and deterministic (no I/O, no clock). Every instant is an aware ``datetime``; local
days and opening hours are taken in the calendar's zone, so a day on which the clocks
change is as long as it really is (an opening of 00:00-24:00 on the spring-forward day in
Berlin is 23 hours). Used for reply times and SLAs "in business hours" and "within N
business days" (docs/read-models.md, "Service levels").
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")

Opening = tuple[time, time | None]
"""``(opens, closes)`` local times; ``closes`` ``None`` means midnight at the day's end."""


@dataclass(frozen=True)
class BusinessCalendar:
    """Opening hours per weekday (Monday first; ``None``: closed) in ``zone``, and the
    holidays on which nothing is open (dates, plus month-day pairs that recur every year)."""

    zone: ZoneInfo
    hours: tuple[Opening | None, ...]
    holidays: frozenset[date] = frozenset()
    yearly: frozenset[tuple[int, int]] = frozenset()
    """``(month, day)`` holidays of every year (fixed-date public holidays)."""
    _cumulative: dict[date, float] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if len(self.hours) != 7:
            raise ValueError("give opening hours for the seven weekdays, Monday first")

    # -- days -------------------------------------------------------------------------

    def is_holiday(self, day: date) -> bool:
        return day in self.holidays or (day.month, day.day) in self.yearly

    def is_business_day(self, day: date) -> bool:
        """Open at all on ``day``: a weekday with hours that is no holiday."""
        return self.hours[day.weekday()] is not None and not self.is_holiday(day)

    def next_business_day(self, day: date) -> date:
        """The first business day after ``day`` (raises ``ValueError`` if none within a
        year: a calendar that is never open)."""
        for step in range(1, 367):
            candidate = day + timedelta(days=step)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError("the calendar has no business day within a year")

    def opening(self, day: date) -> tuple[float, float] | None:
        """The opening of ``day`` as POSIX seconds ``[opens, closes)``, or ``None`` if closed."""
        if not self.is_business_day(day):
            return None
        hours = self.hours[day.weekday()]
        assert hours is not None
        opens, closes = hours
        start = datetime.combine(day, opens, self.zone).timestamp()
        if closes is None:
            end = datetime.combine(day + timedelta(days=1), time(), self.zone).timestamp()
        else:
            end = datetime.combine(day, closes, self.zone).timestamp()
        return start, end

    def local_day(self, moment: datetime) -> date:
        return moment.astimezone(self.zone).date()

    def business_day_of(self, moment: datetime) -> date:
        """The business day a moment counts on: its own local day if that is a business day
        and the moment is before closing; otherwise the next business day (an e-mail that
        arrives on Saturday, or after closing, counts from the next business day)."""
        day = self.local_day(moment)
        span = self.opening(day)
        if span is not None and moment.timestamp() < span[1]:
            return day
        return self.next_business_day(day)

    def business_days_between(self, start: datetime, end: datetime) -> int:
        """How many business days after ``start``'s business day ``end``'s falls: 0 = the
        same business day, 1 = the next, ... (negative if ``end`` is earlier)."""
        first, last = self.business_day_of(start), self.business_day_of(end)
        if last < first:
            return -self._count_business_days(last, first)
        return self._count_business_days(first, last)

    def _count_business_days(self, first: date, last: date) -> int:
        count, day = 0, first
        while day < last:
            day = self.next_business_day(day)
            if day <= last:
                count += 1
        return count

    # -- seconds ----------------------------------------------------------------------

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of opening hours in ``[start, end)`` (0 if ``end`` is not after ``start``)."""
        if end <= start:
            return 0.0
        return self.position(end) - self.position(start)

    def position(self, moment: datetime) -> float:
        """Business seconds from a fixed origin to ``moment``: differences of two positions
        are business seconds between them (cached per local day, so folding many replies
        costs one lookup each)."""
        day = self.local_day(moment)
        within = 0.0
        span = self.opening(day)
        if span is not None:
            at = moment.timestamp()
            within = min(max(at, span[0]), span[1]) - span[0]
        return self._before(day) + within

    def _day_seconds(self, day: date) -> float:
        span = self.opening(day)
        return 0.0 if span is None else span[1] - span[0]

    def _before(self, day: date) -> float:
        """Business seconds from the origin (the first day asked about) to ``day``'s start."""
        cache = self._cumulative
        found = cache.get(day)
        if found is not None:
            return found
        if not cache:
            cache[day] = 0.0
            return 0.0
        # Walk from the nearest cached day (cached days are contiguous).
        low, high = min(cache), max(cache)
        if day > high:
            total, current = cache[high], high
            while current < day:
                total += self._day_seconds(current)
                current += timedelta(days=1)
                cache[current] = total
        else:
            total, current = cache[low], low
            while current > day:
                current -= timedelta(days=1)
                total -= self._day_seconds(current)
                cache[current] = total
        return cache[day]

    def add_business_days(self, day: date, count: int) -> date:
        """The business day ``count`` business days after ``day`` (0: ``day`` itself)."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day

    def deadline(self, start: datetime, business_days: int) -> datetime:
        """When "within ``business_days`` business days" of ``start`` ends: the closing of
        the business day that many after ``start``'s business day (0: the same day)."""
        day = self.add_business_days(self.business_day_of(start), business_days)
        span = self.opening(day)
        assert span is not None
        return datetime.fromtimestamp(span[1], self.zone)


def always_open(zone: ZoneInfo) -> BusinessCalendar:
    """A calendar open around the clock every day: business time is wall time."""
    return BusinessCalendar(zone, ((time(), None),) * 7)
