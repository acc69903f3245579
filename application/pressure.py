"""Contact pressure: how hard the company leans on its customers, per channel.

From the views (all outbound contacts, any purpose: transactional and service messages
count here even though they need no consent), plus the violations for who caused the
over-contact.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from application.identity import joined
from consumers.store import ViewStore
from projections.frequency import Window, slot_of
from projections.identity import MAX_CUSTOMERS
from projections.policy import Cap, LoadedPolicy, cap_window, parse_duration, zone_of
from projections.violations import Violation


@dataclass(frozen=True)
class Spread:
    """Outbound contacts per contacted customer on one channel in the window."""

    channel: str
    customers: int
    contacts: int
    p50: int
    p90: int
    p99: int
    max: int


@dataclass
class PressureReport:
    at: datetime
    window: timedelta
    spreads: list[Spread]
    over_caps: list[tuple[str, int]]
    """Per cap of the policy in force: customers whose contacts in the cap's window ending
    at ``at`` are over the cap (a calendar cap: in the customer's own day, week or month
    so far, in their time zone)."""
    sources: list[tuple[str, int]] = field(default_factory=list)
    """Who caused the contacts that broke a cap in the window, most first."""


class _CalendarCounts:
    """Contacts per customer in their own calendar day, week or month up to ``at``: each
    customer's period starts at local midnight in their time zone (their details, else the
    policy's), as ``decide`` counts it. Reads the outbound slots of the last 33 days (a
    month in any zone) and the zones of the customers in them, once, when first asked."""

    def __init__(self, store: ViewStore, loaded: LoadedPolicy, at: datetime) -> None:
        self.store, self.loaded, self.at = store, loaded, at
        self.rows: list[tuple[str, int, str, str, int]] | None = None
        self.zones: dict[str, ZoneInfo] = {}

    def totals(self, cap: Cap) -> Counter[str]:
        if self.rows is None:
            purposes = {c.purpose for c in self.loaded.policy.caps if c.per.startswith("calendar")}
            self.rows = self.store.outbound_slots(
                Window.rolling(self.at, timedelta(days=33)), purposes
            )
            customers = sorted({row[0] for row in self.rows})
            profiles = self.store.load_profiles(customers)
            policy = self.loaded.policy
            self.zones = {c: zone_of(profiles.get(c), policy) for c in customers}
        now = slot_of(self.at) + 1
        windows: dict[str, Window] = {}
        totals: Counter[str] = Counter()
        for customer, slot, channel, purpose, n in self.rows:
            if purpose != cap.purpose or cap.channel not in ("*", channel):
                continue
            window = windows.get(customer)
            if window is None:
                window = windows[customer] = cap_window(cap, self.zones[customer], self.at)[0]
            if window.start <= slot < min(window.end, now):
                totals[customer] += n
        return totals


def percentile(sorted_values: Sequence[int], fraction: float) -> int:
    """Nearest-rank percentile of sorted values."""
    if not sorted_values:
        return 0
    rank = max(1, round(fraction * len(sorted_values) + 0.4999))
    return sorted_values[min(rank, len(sorted_values)) - 1]


def _people(counts: Mapping[str, int], person_of: Mapping[str, str]) -> Counter[str]:
    """Counts per subject -> counts per person (identifiers the graph joins, together)."""
    found: Counter[str] = Counter()
    for subject, n in counts.items():
        found[person_of.get(subject, subject)] += n
    return found


def pressure(
    store: ViewStore,
    loaded: LoadedPolicy,
    at: datetime,
    window: timedelta,
    found: Sequence[Violation] = (),
    *,
    max_customers: int = MAX_CUSTOMERS,
) -> PressureReport:
    """Contacts per person (the identity graph as the views hold it now: every identifier
    of a person counted together) per channel, who is over each cap, who caused it."""
    person_of = joined(store, max_customers)
    per_channel = {
        channel: _people(counts, person_of)
        for channel, counts in store.outbound_per_customer(Window.rolling(at, window)).items()
    }
    spreads = []
    for channel, counts in sorted(per_channel.items()):
        values = sorted(counts.values())
        spreads.append(
            Spread(
                channel,
                len(values),
                sum(values),
                percentile(values, 0.5),
                percentile(values, 0.9),
                percentile(values, 0.99),
                values[-1],
            )
        )
    over_caps = []
    calendar = _CalendarCounts(store, loaded, at)
    for cap in loaded.policy.caps:
        if cap.per.startswith("calendar"):
            totals = calendar.totals(cap)
        else:
            in_window = store.outbound_per_customer(
                Window.rolling(at, parse_duration(cap.per)), purpose=cap.purpose
            )
            totals = Counter()
            for channel, by_customer in in_window.items():
                if cap.channel in ("*", channel):
                    for customer, n in by_customer.items():
                        totals[customer] += n
        people = _people(totals, person_of)
        over_caps.append((cap.label(), sum(1 for n in people.values() if n > cap.max)))
    since = at - window
    sources = Counter(
        v.source or "(unknown)"
        for v in found
        if since <= v.time <= at and any(r.rule == "cap" for r in v.reasons)
    )
    return PressureReport(at, window, spreads, over_caps, sources.most_common(10))
