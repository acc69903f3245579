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
    _cumulative: dict[date, tuple[float, int]] = field(
        default_factory=dict, compare=False, repr=False
    )
    _span: list[date] = field(default_factory=list, compare=False, repr=False)
    _days: dict[int, date | None] = field(default_factory=dict, compare=False, repr=False)
    _openings: dict[date, tuple[float, float] | None] = field(
        default_factory=dict, compare=False, repr=False
    )
    _next: dict[date, date] = field(default_factory=dict, compare=False, repr=False)

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
        found = self._next.get(day)
        if found is None:
            found = self._next[day] = self._find_next_business_day(day)
        return found

    def _find_next_business_day(self, day: date) -> date:
        for step in range(1, 367):
            candidate = day + timedelta(days=step)
            if self.is_business_day(candidate):
                return candidate
        raise ValueError("the calendar has no business day within a year")

    def opening(self, day: date) -> tuple[float, float] | None:
        """The opening of ``day`` as POSIX seconds ``[opens, closes)``, or ``None`` if closed
        (cached per day: figures ask about the same days again and again)."""
        if day in self._openings:
            return self._openings[day]
        found = self._openings[day] = self._opening(day)
        return found

    def _opening(self, day: date) -> tuple[float, float] | None:
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
        return self.day_at(moment.timestamp())

    def day_at(self, at: float) -> date:
        """The local day of POSIX time ``at`` (cached per quarter hour: every zone's offset
        and every change of it falls on a quarter hour, so a quarter hour is in one day)."""
        quarter = int(at // 900)
        if quarter in self._days:
            found = self._days[quarter]
            if found is not None:
                return found
        else:
            first = datetime.fromtimestamp(quarter * 900, self.zone).date()
            last = datetime.fromtimestamp(quarter * 900 + 899, self.zone).date()
            # A historical offset off the quarter hours (local mean time): not cached.
            self._days[quarter] = first if first == last else None
            if first == last:
                return first
        return datetime.fromtimestamp(at, self.zone).date()

    def business_day_of(self, moment: datetime) -> date:
        """The business day a moment counts on: its own local day if that is a business day
        and the moment is before closing; otherwise the next business day (an e-mail that
        arrives on Saturday, or after closing, counts from the next business day)."""
        return self.business_day_at(moment.timestamp())

    def business_day_at(self, at: float) -> date:
        """:meth:`business_day_of` for POSIX time ``at``."""
        day = self.day_at(at)
        span = self.opening(day)
        if span is not None and at < span[1]:
            return day
        return self.next_business_day(day)

    def business_days_between(self, start: datetime, end: datetime) -> int:
        """How many business days after ``start``'s business day ``end``'s falls: 0 = the
        same business day, 1 = the next, ... (negative if ``end`` is earlier)."""
        return self.business_days_between_at(start.timestamp(), end.timestamp())

    def measure_at(self, start: float, end: float) -> tuple[int, float]:
        """``(business days between, business seconds between)`` of two POSIX times, as
        :meth:`business_days_between_at` and :meth:`business_seconds_at`, in one pass."""
        first_day, last_day = self.day_at(start), self.day_at(end)
        first, last = self.opening(first_day), self.opening(last_day)
        first_seconds, first_days = self._cumulative_at(first_day)
        last_seconds, last_days = self._cumulative_at(last_day)
        # The business days before a day number it (the count excludes the day itself); a
        # moment after closing on a business day counts on the next number, and a moment
        # on a closed day on the next business day's, which is the same count.
        start_ordinal = first_days + (1 if first is not None and start >= first[1] else 0)
        end_ordinal = last_days + (1 if last is not None and end >= last[1] else 0)
        seconds = 0.0
        if end > start:
            within_start = 0.0 if first is None else min(max(start, first[0]), first[1]) - first[0]
            within_end = 0.0 if last is None else min(max(end, last[0]), last[1]) - last[0]
            seconds = (last_seconds + within_end) - (first_seconds + within_start)
        return end_ordinal - start_ordinal, seconds

    def business_days_between_at(self, start: float, end: float) -> int:
        first, last = self.business_day_at(start), self.business_day_at(end)
        return self._cumulative_at(last)[1] - self._cumulative_at(first)[1]

    # -- seconds ----------------------------------------------------------------------

    def business_seconds(self, start: datetime, end: datetime) -> float:
        """Seconds of opening hours in ``[start, end)`` (0 if ``end`` is not after ``start``)."""
        return self.business_seconds_at(start.timestamp(), end.timestamp())

    def business_seconds_at(self, start: float, end: float) -> float:
        """:meth:`business_seconds` for POSIX times."""
        if end <= start:
            return 0.0
        return self.position_at(end) - self.position_at(start)

    def position(self, moment: datetime) -> float:
        """Business seconds from a fixed origin to ``moment``: differences of two positions
        are business seconds between them (cached per local day, so folding many replies
        costs one lookup each)."""
        return self.position_at(moment.timestamp())

    def position_at(self, at: float) -> float:
        day = self.day_at(at)
        within = 0.0
        span = self.opening(day)
        if span is not None:
            within = min(max(at, span[0]), span[1]) - span[0]
        return self._cumulative_at(day)[0] + within

    def _cumulative_at(self, day: date) -> tuple[float, int]:
        """Business seconds and business days from the origin (the first day asked about)
        to ``day``'s start; computed by walking from the nearest day known (the known days
        are contiguous), so each day is computed once."""
        cache = self._cumulative
        found = cache.get(day)
        if found is not None:
            return found
        if not cache:
            found = cache[day] = (0.0, 0)
            self._span[:] = [day, day]
            return found
        low, high = self._span
        one = timedelta(days=1)
        if day > high:
            (seconds, days), current = cache[high], high
            while current < day:
                span = self.opening(current)
                if span is not None:
                    seconds, days = seconds + span[1] - span[0], days + 1
                current += one
                cache[current] = (seconds, days)
            self._span[1] = day
        else:
            (seconds, days), current = cache[low], low
            while current > day:
                current -= one
                span = self.opening(current)
                if span is not None:
                    seconds, days = seconds - (span[1] - span[0]), days - 1
                cache[current] = (seconds, days)
            self._span[0] = day
        return cache[day]

    def add_business_days(self, day: date, count: int) -> date:
        """The business day ``count`` business days after ``day`` (0: ``day`` itself)."""
        for _ in range(count):
            day = self.next_business_day(day)
        return day

    def deadline_at(self, start: float, business_days: int) -> float:
        """:meth:`deadline` as POSIX time."""
        day = self.add_business_days(self.business_day_at(start), business_days)
        span = self.opening(day)
        assert span is not None
        return span[1]

    def deadline(self, start: datetime, business_days: int) -> datetime:
        """When "within ``business_days`` business days" of ``start`` ends: the closing of
        the business day that many after ``start``'s business day (0: the same day)."""
        return datetime.fromtimestamp(self.deadline_at(start.timestamp(), business_days), self.zone)


def always_open(zone: ZoneInfo) -> BusinessCalendar:
    """A calendar open around the clock every day: business time is wall time."""
    return BusinessCalendar(zone, ((time(), None),) * 7)
