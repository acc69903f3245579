"""Contact frequency: how often each customer was contacted, per channel, direction and purpose.

State is a count per ``(customer, channel, direction, purpose, slot)``, where a slot is
a quarter of an hour in UTC (``epoch seconds // 900``). The issue asked for daily buckets
in the customer's zone; quarter-hours in UTC answer exactly that for every zone (all UTC
offsets are multiples of 15 minutes, DST included), need no re-bucketing when a
customer's zone becomes known later, and give rolling windows 15-minute precision.
Late and out-of-order events simply land in their own slot.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from ledger.events import TouchpointEvent
from ledger.timeutil import to_micros
from projections.fact import Fact, fact_of

SLOT_SECONDS = 900
SLOT_MICROS = SLOT_SECONDS * 1_000_000

ContactKey = tuple[str, str, str, str, int]
"""``(customer, channel, direction, purpose, slot)``."""

ContactCounts = Counter[ContactKey]


def slot_of(moment: datetime) -> int:
    """The quarter-hour slot (UTC) that contains an aware datetime."""
    return to_micros(moment) // SLOT_MICROS


def slot_start(slot: int) -> datetime:
    return datetime.fromtimestamp(slot * SLOT_SECONDS, UTC)


def contact_key(fact: Fact) -> ContactKey | None:
    """The counter a touchpoint adds to, or ``None`` for records that are not contacts
    (consent, customer details, records of may-contact decisions: none has a direction)."""
    data = fact.data
    channel = data.get("channel")
    direction = data.get("direction")
    purpose = data.get("purpose")
    if channel is None or direction is None or purpose is None:
        return None
    return (fact.subject, channel, direction, purpose, fact.micros // SLOT_MICROS)


def apply(state: ContactCounts, fact: Fact | TouchpointEvent) -> ContactCounts:
    """Count one touchpoint. Deterministic, no I/O; updates ``state`` in place and returns it."""
    key = contact_key(fact if isinstance(fact, Fact) else fact_of(fact))
    if key is not None:
        state[key] += 1
    return state


@dataclass(frozen=True, slots=True)
class Window:
    """``[start, end)`` in UTC slots."""

    start: int
    end: int

    @classmethod
    def rolling(cls, end: datetime, length: timedelta) -> Window:
        """The ``length`` before ``end``, e.g. the last 7 days."""
        return cls(slot_of(end - length), slot_of(end) + 1)

    @classmethod
    def calendar_days(cls, first: date, last: date, zone: ZoneInfo) -> Window:
        """Whole local days ``first`` .. ``last`` in ``zone`` (DST-aware)."""
        start = datetime.combine(first, time(), zone)
        end = datetime.combine(last + timedelta(days=1), time(), zone)
        return cls(slot_of(start), slot_of(end))


def count(
    state: ContactCounts,
    customer: str,
    window: Window,
    *,
    channel: str | None = None,
    direction: str | None = None,
    purpose: str | None = None,
) -> int:
    """Contacts of ``customer`` in ``window``, optionally of one channel/direction/purpose."""
    return sum(
        n
        for (ch, di, pu), n in totals(state, customer, window).items()
        if (channel is None or ch == channel)
        and (direction is None or di == direction)
        and (purpose is None or pu == purpose)
    )


def replay(
    events: Iterable[Fact | TouchpointEvent], state: ContactCounts | None = None
) -> ContactCounts:
    """Fold ``apply`` over events (rebuilds and "as of" answers use exactly this)."""
    state = Counter() if state is None else state
    for event in events:
        apply(state, event)
    return state


def totals(state: ContactCounts, customer: str, window: Window) -> dict[tuple[str, str, str], int]:
    """Contacts of ``customer`` in ``window`` per (channel, direction, purpose): what
    ``ViewStore.contacts`` answers from the store, here from an in-memory state."""
    found: Counter[tuple[str, str, str]] = Counter()
    for (who, channel, direction, purpose, slot), n in state.items():
        if who == customer and window.start <= slot < window.end:
            found[(channel, direction, purpose)] += n
    return dict(found)
