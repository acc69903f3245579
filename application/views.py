"""Queries over the views across customers: the most contacted, customers by status; a
person known under several ids or identifiers counts once (issue 12)."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime

from application import identity
from application.wiring import open_store
from ledger.settings import Settings
from projections.frequency import Window


def most_contacted(
    settings: Settings,
    window: Window,
    *,
    channel: str | None,
    direction: str | None,
    purpose: str | None,
    limit: int,
) -> list[tuple[str, int]]:
    """(customer, contacts) of the most-contacted customers in ``window``, most first."""
    with closing(open_store(settings)) as store:
        return identity.most_contacted(
            store,
            window,
            channel=channel,
            direction=direction,
            purpose=purpose,
            limit=limit,
            max_customers=settings.identity_max_customers,
        )


def most_contacted_dicts(rows: list[tuple[str, int]]) -> list[dict[str, object]]:
    """The answer for machines (``ledger contacts top --json``)."""
    return [{"customer": c, "contacts": n} for c, n in rows]


def customers(
    settings: Settings, now: datetime, *, status: str | None, at_risk: bool, limit: int | None
) -> list[str]:
    """Customers with lifecycle ``status`` at ``now`` (and a complaint open too long)."""
    with closing(open_store(settings)) as store:
        return identity.customers(
            store,
            now,
            status=status,
            at_risk=at_risk,
            limit=limit,
            max_customers=settings.identity_max_customers,
        )
