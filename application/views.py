"""Queries over the views across customers: the most contacted, customers by status."""

from __future__ import annotations

from contextlib import closing
from datetime import datetime

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
        return store.most_contacted(
            window, channel=channel, direction=direction, purpose=purpose, limit=limit
        )


def most_contacted_dicts(rows: list[tuple[str, int]]) -> list[dict[str, object]]:
    """The answer for machines (``ledger contacts top --json``)."""
    return [{"customer": c, "contacts": n} for c, n in rows]


def customers(
    settings: Settings, now: datetime, *, status: str | None, at_risk: bool, limit: int | None
) -> list[str]:
    """Customers with lifecycle ``status`` at ``now`` (and a complaint open too long)."""
    with closing(open_store(settings)) as store:
        return store.customers(now, status=status, at_risk=at_risk, limit=limit)
