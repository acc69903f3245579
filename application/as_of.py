"""One customer now or as it stood: the profile and the contacts per window.

Now: the views plus the customer's records they do not hold yet (``fresh``, the default on
the embedded log). As it stood (``until``: event time; ``recorded_by``: what the ledger had
recorded): the customer's history folded by the projections' own code.
"""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from application.fresh import CustomerNow, customer_fresh, customer_in_views
from application.privacy import stored_customer_id
from application.reading import history, revealer
from application.wiring import fresh_by_default, known_partitions, open_log, open_store
from ledger.errors import NotFound
from ledger.settings import Settings
from projections import frequency
from projections.frequency import Window
from projections.policy import Freshness
from projections.profile import Profile


def current_customer(
    settings: Settings, customer: str, fresh: bool | None, window: Window
) -> CustomerNow:
    """The customer's profile and contact slots in ``window``: the views, plus (``fresh``;
    None: the log's default) the customer's records past their positions."""
    with closing(open_store(settings)) as store:
        if fresh is None:
            fresh = fresh_by_default(settings)
        if not fresh:
            return customer_in_views(
                store,
                known_partitions(settings),
                customer,
                window,
                max_customers=settings.identity_max_customers,
            )
        with open_log(settings, create=False) as log:
            known = known_partitions(settings)
            return customer_fresh(
                log,
                store,
                customer,
                window,
                known_partitions=known,
                max_customers=settings.identity_max_customers,
            )


@dataclass(frozen=True)
class ProfileAnswer:
    """A customer's profile, what follows from it at ``now``, and (read from the views)
    which log and view positions it saw."""

    profile: Profile
    now: datetime
    freshness: Freshness | None

    def derived(self) -> dict[str, Any]:
        found, now = self.profile, self.now
        return {
            "status": str(found.lifecycle(now)),
            "at_risk": found.at_risk(now),
            "net_spend": {c: str(v) for c, v in found.net_spend().items()},
            "average_order_value": {c: str(v) for c, v in found.average_order_value().items()},
            "open_complaints": {c: t.isoformat() for c, t in found.open_complaints().items()},
        }

    def to_dict(self) -> dict[str, Any]:
        """The answer for machines (``ledger profile --json``)."""
        seen = {"freshness": self.freshness.to_dict()} if self.freshness else {}
        return {**self.profile.to_dict(), **self.derived(), **seen}


def customer_profile(
    settings: Settings,
    customer: str,
    *,
    at: datetime | None,
    until: datetime | None,
    recorded_by: datetime | None,
    fresh: bool | None,
) -> ProfileAnswer:
    """The customer's profile, evaluated at ``at`` (default: the as-of moment, else now),
    its personal details opened (or ``[erased]``)."""
    customer = stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    freshness: Freshness | None = None
    if until or recorded_by:
        found = history(settings, customer, until, recorded_by).profile()
        if found is None:
            raise NotFound(f"no touchpoints of customer {customer!r} by then")
    else:
        current = current_customer(settings, customer, fresh, Window(0, 0))
        found, freshness = current.profile, current.freshness
        if found is None:
            raise NotFound(f"no profile for customer {customer!r} (try: ledger project run)")
    now = at or until or recorded_by or datetime.now(UTC)
    return ProfileAnswer(revealer(settings).profile(found), now, freshness)


Key = tuple[str, str, str]
"""(channel, direction, purpose)"""


@dataclass(frozen=True)
class ContactsAnswer:
    """A customer's contacts per (channel, direction, purpose) in rolling windows to ``now``."""

    customer: str
    now: datetime
    windows: list[str]
    """The windows' names (``7d``), in the order asked."""
    per_window: dict[str, dict[Key, int]]
    freshness: Freshness | None

    @property
    def keys(self) -> list[Key]:
        return sorted({k for counts in self.per_window.values() for k in counts})

    def to_dict(self) -> dict[str, Any]:
        """The answer for machines (``ledger contacts CUSTOMER --json``)."""
        return {
            "customer": self.customer,
            "at": self.now.isoformat(),
            "contacts": [
                {
                    "channel": ch,
                    "direction": d,
                    "purpose": p,
                    **{w: self.per_window[w].get((ch, d, p), 0) for w in self.windows},
                }
                for ch, d, p in self.keys
            ],
            **({"freshness": self.freshness.to_dict()} if self.freshness else {}),
        }


def customer_contacts(
    settings: Settings,
    customer: str,
    lengths: dict[str, timedelta],
    *,
    at: datetime | None,
    until: datetime | None,
    recorded_by: datetime | None,
    fresh: bool | None,
) -> ContactsAnswer:
    """The customer's contacts in each window of ``lengths`` (name -> length) ending at
    ``at`` (default: the as-of moment, else now)."""
    customer = stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    now = at or until or recorded_by or datetime.now(UTC)
    windows = {w: Window.rolling(now, length) for w, length in lengths.items()}
    freshness: Freshness | None = None
    if until or recorded_by:
        counts = history(settings, customer, until, recorded_by).contacts()
        per_window = {w: frequency.totals(counts, customer, win) for w, win in windows.items()}
    else:
        widest = Window(
            min(w.start for w in windows.values()), max(w.end for w in windows.values())
        )
        current = current_customer(settings, customer, fresh, widest)
        per_window = {w: _totals(current.slots, win) for w, win in windows.items()}
        freshness = current.freshness
    return ContactsAnswer(customer, now, list(lengths), per_window, freshness)


def _totals(slots: list[tuple[int, str, str, str, int]], window: Window) -> dict[Key, int]:
    """Contacts per (channel, direction, purpose) among ``slots`` in ``window``."""
    found: dict[Key, int] = {}
    for slot, channel, direction, purpose, n in slots:
        if window.start <= slot < window.end:
            key = (channel, direction, purpose)
            found[key] = found.get(key, 0) + n
    return found
