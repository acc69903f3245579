"""The relationship at a glance: statuses, top spenders, complaints open too long, pressure."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from application import identity
from consumers.store import ViewStore
from projections.frequency import Window


@dataclass
class RelationshipReport:
    """The read models' view of the relationship, as of ``now``."""

    now: datetime
    projected: int
    statuses: dict[str, int]
    top_spenders: list[tuple[str, str, Decimal]]
    """``(customer, currency, net spend)``, in the most common currency."""
    at_risk: list[tuple[str, datetime]]
    """Customers with a complaint open longer than 7 days, and since when."""
    most_contacted: list[tuple[str, int]]
    """Outbound contacts in the 30 days before ``now``."""


def relationship_report(store: ViewStore, now: datetime, limit: int = 5) -> RelationshipReport:
    """Status counts, top spenders, complaints open too long, the most contacted people
    (each person once: the identity graph joins their identifiers)."""
    statuses = {
        s: len(identity.customers(store, now, status=s))
        for s in ("active", "passive", "lapsed", "prospect")
    }
    spend: list[tuple[str, str, Decimal]] = []
    projected = 0
    for profile in store.iter_profiles():
        projected += sum(profile.by_type.values())
        spend.extend(
            (profile.customer, currency, amount) for currency, amount in profile.net_spend().items()
        )
    currencies = Counter(currency for _, currency, _ in spend)
    main_currency = currencies.most_common(1)[0][0] if currencies else None
    top = sorted((row for row in spend if row[1] == main_currency), key=lambda r: (-r[2], r[0]))
    risky = []
    for customer in store.customers(now, at_risk=True):
        found = store.profile(customer)
        if found is not None:
            risky.append((customer, min(found.open_complaints().values())))
    risky.sort(key=lambda row: row[1])
    window = Window.rolling(now, timedelta(days=30))
    return RelationshipReport(
        now=now,
        projected=projected,
        statuses=statuses,
        top_spenders=top[:limit],
        at_risk=risky[:limit],
        most_contacted=identity.most_contacted(store, window, direction="outbound", limit=limit),
    )
