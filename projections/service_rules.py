"""The policy file's ``[calendar]`` and ``[service]`` sections: the business calendar and
the service-level targets that reply times, SLAs and "bad service" are judged by.

They live in the policy file (versioned, hashed, checked by ``ledger policy check``) beside
the contact rules; the read model keeps raw times only, so changing a target or a holiday
changes the answers at once, with no rebuild.
"""

from __future__ import annotations

import re
from datetime import date, time
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StrictInt, field_validator

from projections.calendar import WEEKDAYS, BusinessCalendar, Opening

_HOURS = re.compile(r"(?P<opens>\d\d:\d\d)-(?P<closes>\d\d:\d\d)", re.ASCII)
_MONTH_DAY = re.compile(r"(?P<month>\d\d)-(?P<day>\d\d)", re.ASCII)


def parse_hours(text: str) -> Opening | None:
    """``"09:00-18:00"`` (``"00:00-24:00"``: all day), or ``"closed"``."""
    if text == "closed":
        return None
    match = _HOURS.fullmatch(text)
    problem = f"{text[:40]!r} is not opening hours like 09:00-18:00 (or closed)"
    if match is None:
        raise ValueError(problem)
    try:
        opens = time.fromisoformat(match["opens"])
        closes = None if match["closes"] == "24:00" else time.fromisoformat(match["closes"])
    except ValueError:
        raise ValueError(problem) from None
    if closes is not None and closes <= opens:
        raise ValueError(f"{text!r}: closes before it opens")
    return opens, closes


def _hours(text: str) -> str:
    parse_hours(text)
    return text


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None
    return name


def _month_day(text: str) -> str:
    match = _MONTH_DAY.fullmatch(text)
    try:
        if match is None:
            raise ValueError
        date(2024, int(match["month"]), int(match["day"]))  # a leap year: 02-29 exists
    except ValueError:
        raise ValueError(f"{text[:40]!r} is not a month and day like 10-29") from None
    return text


Hours = Annotated[str, AfterValidator(_hours)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WeekHours(_Strict):
    monday: Hours = "09:00-18:00"
    tuesday: Hours = "09:00-18:00"
    wednesday: Hours = "09:00-18:00"
    thursday: Hours = "09:00-18:00"
    friday: Hours = "09:00-18:00"
    saturday: Hours = "closed"
    sunday: Hours = "closed"


class CalendarRules(_Strict):
    """When the company is open: reply times and SLAs count these hours only."""

    time_zone: Annotated[str, AfterValidator(_zone)] = "UTC"
    hours: WeekHours = WeekHours()
    every_year: list[Annotated[str, AfterValidator(_month_day)]] = Field(default_factory=list)
    """Fixed-date holidays, ``"MM-DD"``, every year."""
    holidays: list[date] = Field(default_factory=list)
    """Holidays on these dates (movable feasts, bridge days): list each year's."""

    @field_validator("holidays", mode="before")
    @classmethod
    def _toml_dates(cls, value: object) -> object:
        # Only TOML dates: "2026-03-20" as a string would be a second spelling.
        if isinstance(value, list):
            for item in value:
                if not isinstance(item, date) or hasattr(item, "hour"):
                    raise ValueError("holidays are TOML dates, e.g. 2026-03-20 (no quotes)")
        return value

    def calendar(self) -> BusinessCalendar:
        return BusinessCalendar(
            ZoneInfo(self.time_zone),
            tuple(parse_hours(getattr(self.hours, day)) for day in WEEKDAYS),
            frozenset(self.holidays),
            frozenset((int(md[:2]), int(md[3:])) for md in self.every_year),
        )


class ServiceRules(_Strict):
    """Service-level targets, and what counts as bad service (docs/read-models.md)."""

    answer_within_seconds: StrictInt = Field(default=20, ge=0, le=86_400)
    """Service level: a call or chat answered within this many seconds of waiting."""
    target: float = Field(default=0.8, ge=0, le=1)
    """The share answered within ``answer_within_seconds`` the company aims at (80/20)."""
    short_abandon_seconds: StrictInt = Field(default=5, ge=0, le=3600)
    """Calls abandoned after waiting less than this are short abandons: left out of
    offered, answered and abandoned (a misdial or a change of mind, not bad service)."""
    reply_within_business_days: StrictInt = Field(default=1, ge=0, le=365)
    """E-mails, chats, social and SMS: a first reply by the close of this business day
    after the one it arrived on (1: the same or the next business day)."""
    resolve_within_business_days: StrictInt = Field(default=5, ge=0, le=365)
    """Complaints: resolved by the close of this business day after the opening."""
    long_wait_seconds: StrictInt = Field(default=300, ge=0, le=7 * 86_400)
    """Bad service: a call abandoned after waiting at least this long."""
    low_score: StrictInt = Field(default=2, ge=0, le=10)
    """Bad service: CSAT feedback at or below this score (1-5)."""
    lapse_days: StrictInt = Field(default=90, ge=1, le=3650)
    """Churn report: a buying customer who buys nothing for this many days after the
    reference moment has stopped buying."""
