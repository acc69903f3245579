"""Customer profile: the whole relationship with one customer, folded from their touchpoints.

``apply(profile, event)`` is deterministic and does no I/O; the same function serves live
processing, rebuilds and "as of" answers (fold the history up to a time). It updates the
profile in place and returns it, because a projector folds millions of events and a copy
per event would cost more than the fold.

Order does not matter where it must not: the "latest" details, consent and feedback are
the ones with the latest *event time*, not the last to arrive, so late uploads and
out-of-order records give the same profile as a perfectly ordered stream.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, Field

from ledger.events import (
    ComplaintOpened,
    ComplaintResolved,
    ConsentGiven,
    ConsentWithdrawn,
    CustomerDetails,
    FeedbackGiven,
    Purchase,
    Refund,
    Touchpoint,
)


class Lifecycle(StrEnum):
    """Where the customer stands, by their purchases."""

    ACTIVE = "active"
    """Bought within the active window (default 90 days)."""
    PASSIVE = "passive"
    """Bought before, but not within the active window."""
    LAPSED = "lapsed"
    """No purchase within the lapsed window (default 365 days)."""
    PROSPECT = "prospect"
    """Never bought."""


class Stamped(BaseModel):
    """A value and the event time it is as of."""

    value: str
    at: datetime


class Complaint(BaseModel):
    opened_at: datetime | None = None
    resolved_at: datetime | None = None
    category: str | None = None
    severity: str | None = None
    resolution: str | None = None


class Feedback(BaseModel):
    latest_score: int
    latest_at: datetime
    total: int = 0
    count: int = 0

    @property
    def mean(self) -> float:
        return self.total / self.count


class Consent(BaseModel):
    status: str
    """``granted`` or ``withdrawn`` (a withdrawal with no earlier grant: "denied")."""
    since: datetime
    evidence_source: str
    recipient_type: str
    evidence_ref: str | None = None


class Profile(BaseModel):
    """Everything the ledger knows about one customer's relationship."""

    customer: str
    details: dict[str, Stamped] = Field(default_factory=dict)
    """Latest known value of each detail field (personal ones included)."""
    first_touch: datetime | None = None
    last_touch: datetime | None = None
    last_inbound: datetime | None = None
    last_outbound: datetime | None = None
    by_type: dict[str, int] = Field(default_factory=dict)
    by_channel: dict[str, int] = Field(default_factory=dict)
    purchases: int = 0
    orders_by_currency: dict[str, int] = Field(default_factory=dict)
    spend: dict[str, Decimal] = Field(default_factory=dict)
    first_purchase: datetime | None = None
    last_purchase: datetime | None = None
    refunds: int = 0
    refunded: dict[str, Decimal] = Field(default_factory=dict)
    complaints: dict[str, Complaint] = Field(default_factory=dict)
    feedback: dict[str, Feedback] = Field(default_factory=dict)
    consent: dict[str, Consent] = Field(default_factory=dict)

    # -- derived figures ------------------------------------------------------------------

    def net_spend(self) -> dict[str, Decimal]:
        """Spend minus refunds, per currency, exact."""
        currencies = set(self.spend) | set(self.refunded)
        return {
            c: self.spend.get(c, Decimal(0)) - self.refunded.get(c, Decimal(0))
            for c in sorted(currencies)
        }

    def average_order_value(self) -> dict[str, Decimal]:
        """Gross spend per order, per currency (rounded to cents, half-even)."""
        return {
            c: (self.spend[c] / self.orders_by_currency[c]).quantize(Decimal("0.01"))
            for c in sorted(self.spend)
        }

    def open_complaints(self) -> dict[str, datetime]:
        """Complaints opened and not resolved: id -> opened at."""
        return {
            cid: c.opened_at
            for cid, c in sorted(self.complaints.items())
            if c.opened_at is not None and c.resolved_at is None
        }

    def resolution_times(self) -> list[timedelta]:
        """Time from opening to resolution of every resolved complaint (never negative)."""
        return [
            max(c.resolved_at - c.opened_at, timedelta(0))
            for c in self.complaints.values()
            if c.opened_at is not None and c.resolved_at is not None
        ]

    def lifecycle(self, now: datetime, active_days: int = 90, lapsed_days: int = 365) -> Lifecycle:
        if self.last_purchase is None:
            return Lifecycle.PROSPECT
        if self.last_purchase >= now - timedelta(days=active_days):
            return Lifecycle.ACTIVE
        if self.last_purchase < now - timedelta(days=lapsed_days):
            return Lifecycle.LAPSED
        return Lifecycle.PASSIVE

    def at_risk(self, now: datetime, threshold: timedelta = timedelta(days=7)) -> bool:
        """A complaint has been open longer than ``threshold`` at ``now``."""
        return any(now - opened > threshold for opened in self.open_complaints().values())


def apply(profile: Profile, event: Touchpoint) -> Profile:
    """Fold one touchpoint of ``profile.customer`` into the profile (in place)."""
    moment = event.time
    profile.by_type[event.type] = profile.by_type.get(event.type, 0) + 1
    if profile.first_touch is None or moment < profile.first_touch:
        profile.first_touch = moment
    if profile.last_touch is None or moment > profile.last_touch:
        profile.last_touch = moment
    data = event.data
    channel = getattr(data, "channel", None)
    direction = getattr(data, "direction", None)
    if channel is not None and not isinstance(event, ConsentGiven | ConsentWithdrawn):
        profile.by_channel[str(channel)] = profile.by_channel.get(str(channel), 0) + 1
    if direction == "inbound" and (profile.last_inbound is None or moment > profile.last_inbound):
        profile.last_inbound = moment
    if direction == "outbound" and (
        profile.last_outbound is None or moment > profile.last_outbound
    ):
        profile.last_outbound = moment
    match event:
        case Purchase():
            _purchase(profile, event)
        case Refund():
            profile.refunds += 1
            currency = event.data.currency
            profile.refunded[currency] = (
                profile.refunded.get(currency, Decimal(0)) + event.data.amount
            )
        case ComplaintOpened():
            complaint = profile.complaints.setdefault(event.data.complaint_id, Complaint())
            if complaint.opened_at is None or moment < complaint.opened_at:
                complaint.opened_at = moment
            complaint.category = event.data.category
            complaint.severity = event.data.severity
        case ComplaintResolved():
            complaint = profile.complaints.setdefault(event.data.complaint_id, Complaint())
            if complaint.resolved_at is None or moment > complaint.resolved_at:
                complaint.resolved_at = moment
                complaint.resolution = event.data.resolution
        case FeedbackGiven():
            _feedback(profile, event)
        case ConsentGiven() | ConsentWithdrawn():
            _consent(profile, event)
        case CustomerDetails():
            _details(profile, event)
        case _:
            pass
    return profile


def _purchase(profile: Profile, event: Purchase) -> None:
    data, moment = event.data, event.time
    profile.purchases += 1
    profile.orders_by_currency[data.currency] = profile.orders_by_currency.get(data.currency, 0) + 1
    profile.spend[data.currency] = profile.spend.get(data.currency, Decimal(0)) + data.amount
    if profile.first_purchase is None or moment < profile.first_purchase:
        profile.first_purchase = moment
    if profile.last_purchase is None or moment > profile.last_purchase:
        profile.last_purchase = moment


def _feedback(profile: Profile, event: FeedbackGiven) -> None:
    data = event.data
    current = profile.feedback.get(data.scale)
    if current is None:
        current = profile.feedback[data.scale] = Feedback(
            latest_score=data.score, latest_at=event.time
        )
    elif event.time >= current.latest_at:
        current.latest_score, current.latest_at = data.score, event.time
    current.total += data.score
    current.count += 1


def _consent(profile: Profile, event: ConsentGiven | ConsentWithdrawn) -> None:
    data = event.data
    current = profile.consent.get(str(data.channel))
    if current is not None and event.time < current.since:
        return  # an older record arriving late does not undo a newer one
    profile.consent[str(data.channel)] = Consent(
        status="granted" if isinstance(event, ConsentGiven) else "withdrawn",
        since=event.time,
        evidence_source=data.evidence_source,
        recipient_type=data.recipient_type,
        evidence_ref=data.evidence_ref,
    )


def _details(profile: Profile, event: CustomerDetails) -> None:
    data = event.data
    stated = {
        "name": data.personal.name,
        "email": data.personal.email,
        "phone": data.personal.phone,
        "country": data.country,
        "time_zone": data.time_zone,
        "locale": data.locale,
    }
    for field, value in stated.items():
        if value is None:
            continue  # absent means "not stated here", not "erased"
        current = profile.details.get(field)
        if current is None or event.time >= current.at:
            profile.details[field] = Stamped(value=value, at=event.time)


def replay(customer: str, events: Iterable[Touchpoint]) -> Profile:
    """The profile of ``customer`` from their events (the as-of and rebuild path)."""
    profile = Profile(customer=customer)
    for event in events:
        apply(profile, event)
    return profile
