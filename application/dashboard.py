"""What the operators' dashboard shows, gathered in one call: projector lag and parked
records, outbound contacts per day by channel, the most-contacted customers, customers over
the caps and the violations by rule (in the last 30 days)."""

from __future__ import annotations

from collections import defaultdict
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timedelta

from application import decisions, status
from application.wiring import open_store
from ledger.settings import Settings
from projections.frequency import SLOT_SECONDS, Window

DAYS = 14
WINDOW = timedelta(days=30)


@dataclass(frozen=True)
class Dashboard:
    at: datetime
    status: status.StatusReport
    per_day: dict[str, dict[str, int]]
    """Outbound contacts per day (``YYYY-MM-DD``, the last :data:`DAYS` days) per channel."""
    top: list[tuple[str, int]]
    over_caps: list[tuple[str, int]]
    violations_by_rule: list[tuple[str, int]]


def dashboard(settings: Settings, now: datetime) -> Dashboard:
    report = status.projection_status(settings)
    start = (now - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    days = [(start + timedelta(days=d)).date().isoformat() for d in range(DAYS)]
    per_day: dict[str, dict[str, int]] = {d: defaultdict(int) for d in days}
    with closing(open_store(settings)) as store:
        window = Window.rolling(now, now - start)
        slots = store.outbound_slots(window, ("marketing", "transactional", "service"))
        top = store.most_contacted(Window.rolling(now, timedelta(days=7)), limit=10)
    for _, slot, channel, _, n in slots:
        day = datetime.fromtimestamp(slot * SLOT_SECONDS, now.tzinfo).date().isoformat()
        if day in per_day:
            per_day[day][channel] += n
    pressure = decisions.contact_pressure(settings, now, "30d", WINDOW, policy_file=None)
    found = decisions.violations(
        settings, policy_file=None, since=now - WINDOW, until=now, channel=None
    ).found
    return Dashboard(
        now,
        report,
        {d: dict(c) for d, c in per_day.items()},
        top,
        list(pressure.report.over_caps),
        decisions.rules_broken(found).most_common(),
    )
