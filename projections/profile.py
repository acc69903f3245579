"""Customer profile: the whole relationship with one customer, folded from their touchpoints.

``apply(profile, fact)`` is deterministic and does no I/O; the same function serves live
processing, rebuilds and "as of" answers (fold the history up to a time). It updates the
profile in place and returns it, because a projector folds millions of events and a copy
per event would cost more than the fold.

Order does not matter where it must not: the "latest" details, consent and feedback are
the ones with the latest *event time*, not the last to arrive, so late uploads and
out-of-order records give the same profile as a perfectly ordered stream.

The state is one JSON-ready dict (times as microseconds since the epoch, amounts as exact
decimal strings), and :class:`Profile` reads it with types. A projector applies millions
of events and writes hundreds of thousands of profiles: folding into plain dicts and
writing them with one ``orjson.dumps`` costs ~2 µs per profile, where pydantic models took
16.5 µs to dump and dataclasses 8-30 µs.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

import orjson

from ledger.events import NOT_TOUCHPOINTS, TouchpointEvent
from ledger.payloads import ERASED
from ledger.timeutil import from_micros, to_micros
from projections.fact import Fact, fact_of


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


@dataclass(frozen=True, slots=True)
class Stamped:
    """A value and the event time it is as of."""

    value: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Complaint:
    opened_at: datetime | None
    resolved_at: datetime | None
    category: str | None
    severity: str | None
    resolution: str | None


@dataclass(frozen=True, slots=True)
class Feedback:
    latest_score: int
    latest_at: datetime
    total: int
    count: int

    @property
    def mean(self) -> float:
        return self.total / self.count


@dataclass(frozen=True, slots=True)
class Consent:
    status: str
    """``granted`` or ``withdrawn`` (a withdrawal with no earlier grant: "denied")."""
    since: datetime
    evidence_source: str
    recipient_type: str
    evidence_ref: str | None


State = dict[str, Any]
TIME_FIELDS = (
    "first_touch",
    "last_touch",
    "last_inbound",
    "last_outbound",
    "first_purchase",
    "last_purchase",
)


def new_state(customer: str) -> State:
    return {
        "customer": customer,
        "details": {},
        "first_touch": None,
        "last_touch": None,
        "last_inbound": None,
        "last_outbound": None,
        "by_type": {},
        "by_channel": {},
        "purchases": 0,
        "orders_by_currency": {},
        "spend": {},
        "first_purchase": None,
        "last_purchase": None,
        "refunds": 0,
        "refunded": {},
        "complaints": {},
        "feedback": {},
        "consent": {},
    }


def _time(micros: int | None) -> datetime | None:
    return None if micros is None else from_micros(micros)


class Profile:
    """Everything the ledger knows about one customer's relationship (typed reads of the
    state the projection folds)."""

    __slots__ = ("state",)

    def __init__(self, customer: str | None = None, *, state: State | None = None) -> None:
        if state is None:
            if customer is None:
                raise TypeError("a profile needs a customer or a state")
            state = new_state(customer)
        self.state = state

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Profile) and self.state == other.state

    __hash__ = None  # type: ignore[assignment]  # mutable

    def __repr__(self) -> str:
        return f"Profile({self.customer!r}, {sum(self.by_type.values())} touchpoints)"

    # -- the figures ----------------------------------------------------------------------

    @property
    def customer(self) -> str:
        customer: str = self.state["customer"]
        return customer

    @property
    def details(self) -> dict[str, Stamped]:
        """Latest known value of each detail field (personal ones included)."""
        return {k: Stamped(v, from_micros(at)) for k, (v, at) in self.state["details"].items()}

    @property
    def first_touch(self) -> datetime | None:
        return _time(self.state["first_touch"])

    @property
    def last_touch(self) -> datetime | None:
        return _time(self.state["last_touch"])

    @property
    def last_inbound(self) -> datetime | None:
        return _time(self.state["last_inbound"])

    @property
    def last_outbound(self) -> datetime | None:
        return _time(self.state["last_outbound"])

    @property
    def first_purchase(self) -> datetime | None:
        return _time(self.state["first_purchase"])

    @property
    def last_purchase(self) -> datetime | None:
        return _time(self.state["last_purchase"])

    @property
    def by_type(self) -> dict[str, int]:
        return dict(self.state["by_type"])

    @property
    def by_channel(self) -> dict[str, int]:
        return dict(self.state["by_channel"])

    @property
    def purchases(self) -> int:
        purchases: int = self.state["purchases"]
        return purchases

    @property
    def refunds(self) -> int:
        refunds: int = self.state["refunds"]
        return refunds

    @property
    def orders_by_currency(self) -> dict[str, int]:
        return dict(self.state["orders_by_currency"])

    @property
    def spend(self) -> dict[str, Decimal]:
        return {c: Decimal(a) for c, a in self.state["spend"].items()}

    @property
    def refunded(self) -> dict[str, Decimal]:
        return {c: Decimal(a) for c, a in self.state["refunded"].items()}

    @property
    def complaints(self) -> dict[str, Complaint]:
        return {
            k: Complaint(
                _time(c["opened_at"]),
                _time(c["resolved_at"]),
                c["category"],
                c["severity"],
                c["resolution"],
            )
            for k, c in self.state["complaints"].items()
        }

    @property
    def feedback(self) -> dict[str, Feedback]:
        return {
            k: Feedback(f["latest_score"], from_micros(f["latest_at"]), f["total"], f["count"])
            for k, f in self.state["feedback"].items()
        }

    @property
    def consent(self) -> dict[str, Consent]:
        return {
            k: Consent(
                c["status"],
                from_micros(c["since"]),
                c["evidence_source"],
                c["recipient_type"],
                c["evidence_ref"],
            )
            for k, c in self.state["consent"].items()
        }

    # -- derived figures ------------------------------------------------------------------

    def net_spend(self) -> dict[str, Decimal]:
        """Spend minus refunds, per currency, exact."""
        spend, refunded = self.spend, self.refunded
        return {
            c: spend.get(c, Decimal(0)) - refunded.get(c, Decimal(0))
            for c in sorted(set(spend) | set(refunded))
        }

    def average_order_value(self) -> dict[str, Decimal]:
        """Gross spend per order, per currency (rounded to cents, half-even)."""
        orders = self.state["orders_by_currency"]
        return {
            c: (amount / orders[c]).quantize(Decimal("0.01"))
            for c, amount in sorted(self.spend.items())
        }

    def open_complaints(self) -> dict[str, datetime]:
        """Complaints opened and not resolved: id -> opened at."""
        return {
            cid: from_micros(c["opened_at"])
            for cid, c in sorted(self.state["complaints"].items())
            if c["opened_at"] is not None and c["resolved_at"] is None
        }

    def oldest_open_complaint(self) -> int | None:
        """When the oldest open complaint was opened (microseconds), if any."""
        return min(
            (
                c["opened_at"]
                for c in self.state["complaints"].values()
                if c["opened_at"] is not None and c["resolved_at"] is None
            ),
            default=None,
        )

    def resolution_times(self) -> list[timedelta]:
        """Time from opening to resolution of every resolved complaint (never negative)."""
        return [
            timedelta(microseconds=max(c["resolved_at"] - c["opened_at"], 0))
            for c in self.state["complaints"].values()
            if c["opened_at"] is not None and c["resolved_at"] is not None
        ]

    def lifecycle(self, now: datetime, active_days: int = 90, lapsed_days: int = 365) -> Lifecycle:
        last = self.last_purchase
        if last is None:
            return Lifecycle.PROSPECT
        if last >= now - timedelta(days=active_days):
            return Lifecycle.ACTIVE
        if last < now - timedelta(days=lapsed_days):
            return Lifecycle.LAPSED
        return Lifecycle.PASSIVE

    def at_risk(self, now: datetime, threshold: timedelta = timedelta(days=7)) -> bool:
        """A complaint has been open longer than ``threshold`` at ``now``."""
        oldest = self.oldest_open_complaint()
        return oldest is not None and to_micros(now) - oldest > threshold // timedelta(
            microseconds=1
        )

    # -- storage --------------------------------------------------------------------------

    def to_json(self) -> bytes:
        """The stored form: keys sorted, so the same profile gives the same bytes whatever
        order its events arrived in."""
        return orjson.dumps(self.state, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, document: bytes | str) -> Profile:
        return cls(state=orjson.loads(document))

    def to_dict(self) -> dict[str, Any]:
        """A readable JSON-ready form: times as RFC 3339 strings."""

        def iso(micros: int | None) -> str | None:
            return None if micros is None else from_micros(micros).isoformat()

        state = self.state
        readable: dict[str, Any] = {**state}
        for name in TIME_FIELDS:
            readable[name] = iso(state[name])
        readable["details"] = {
            k: {"value": v, "at": iso(at)} for k, (v, at) in state["details"].items()
        }
        readable["complaints"] = {
            k: {**c, "opened_at": iso(c["opened_at"]), "resolved_at": iso(c["resolved_at"])}
            for k, c in state["complaints"].items()
        }
        readable["feedback"] = {
            k: {**f, "latest_at": iso(f["latest_at"]), "mean": f["total"] / f["count"]}
            for k, f in state["feedback"].items()
        }
        readable["consent"] = {
            k: {**c, "since": iso(c["since"])} for k, c in state["consent"].items()
        }
        return readable


# -- the fold -----------------------------------------------------------------------------

_CONSENT_TYPES = frozenset({"consent.given", "consent.withdrawn"})
ERASED_TYPE = "customer.erased"


Handler = Callable[[State, int, Mapping[str, Any]], None]


def apply(profile: Profile, fact: Fact | TouchpointEvent) -> Profile:
    """Fold one touchpoint of ``profile.customer`` into the profile (in place). Records of
    the ledger's own contact-policy decisions and identity facts (links, merges) are not
    touchpoints: they change nothing (the identity graph is :mod:`projections.identity`)."""
    if not isinstance(fact, Fact):
        fact = fact_of(fact)
    kind = fact.type
    if kind in NOT_TOUCHPOINTS:
        return profile
    state = profile.state
    if kind == ERASED_TYPE:  # a record of the erasure, not a touchpoint: nothing counts
        _erased(state, fact.micros)
        return profile
    moment = fact.micros
    by_type = state["by_type"]
    by_type[kind] = by_type.get(kind, 0) + 1
    first = state["first_touch"]
    if first is None or moment < first:
        state["first_touch"] = moment
    last = state["last_touch"]
    if last is None or moment > last:
        state["last_touch"] = moment
    data = fact.data
    channel = data.get("channel")
    if channel is not None and kind not in _CONSENT_TYPES:
        by_channel = state["by_channel"]
        by_channel[channel] = by_channel.get(channel, 0) + 1
    direction = data.get("direction")
    if direction == "inbound":
        last = state["last_inbound"]
        if last is None or moment > last:
            state["last_inbound"] = moment
    elif direction == "outbound":
        last = state["last_outbound"]
        if last is None or moment > last:
            state["last_outbound"] = moment
    handler = _HANDLERS.get(kind)
    if handler is not None:
        handler(state, moment, data)
    elif kind == "customer.details":
        _details(state, moment, data, fact.id)
    return profile


def _add_amount(totals: dict[str, str], currency: str, amount: str) -> None:
    current = totals.get(currency)
    totals[currency] = amount if current is None else str(Decimal(current) + Decimal(amount))


def _purchase(state: State, moment: int, data: Mapping[str, Any]) -> None:
    currency = data["currency"]
    state["purchases"] += 1
    orders = state["orders_by_currency"]
    orders[currency] = orders.get(currency, 0) + 1
    _add_amount(state["spend"], currency, data["amount"])
    first = state["first_purchase"]
    if first is None or moment < first:
        state["first_purchase"] = moment
    last = state["last_purchase"]
    if last is None or moment > last:
        state["last_purchase"] = moment


def _refund(state: State, moment: int, data: Mapping[str, Any]) -> None:
    state["refunds"] += 1
    _add_amount(state["refunded"], data["currency"], data["amount"])


def _complaint(state: State, complaint_id: str) -> dict[str, Any]:
    complaints = state["complaints"]
    complaint: dict[str, Any] | None = complaints.get(complaint_id)
    if complaint is None:
        complaint = complaints[complaint_id] = {
            "opened_at": None,
            "resolved_at": None,
            "category": None,
            "severity": None,
            "resolution": None,
        }
    return complaint


def _complaint_opened(state: State, moment: int, data: Mapping[str, Any]) -> None:
    complaint = _complaint(state, data["complaint_id"])
    if complaint["opened_at"] is None or moment < complaint["opened_at"]:
        complaint["opened_at"] = moment
    complaint["category"] = data.get("category")
    complaint["severity"] = data.get("severity")


def _complaint_resolved(state: State, moment: int, data: Mapping[str, Any]) -> None:
    complaint = _complaint(state, data["complaint_id"])
    if complaint["resolved_at"] is None or moment > complaint["resolved_at"]:
        complaint["resolved_at"] = moment
        complaint["resolution"] = data.get("resolution")


def _feedback(state: State, moment: int, data: Mapping[str, Any]) -> None:
    scale, score = data["scale"], data["score"]
    current = state["feedback"].get(scale)
    if current is None:
        current = state["feedback"][scale] = {
            "latest_score": score,
            "latest_at": moment,
            "total": 0,
            "count": 0,
        }
    elif moment >= current["latest_at"]:
        current["latest_score"], current["latest_at"] = score, moment
    current["total"] += score
    current["count"] += 1


def _consent(status: str) -> Handler:
    def record(state: State, moment: int, data: Mapping[str, Any]) -> None:
        channel = data["channel"]
        current = state["consent"].get(channel)
        if current is not None and moment < current["since"]:
            return  # an older record arriving late does not undo a newer one
        state["consent"][channel] = {
            "status": status,
            "since": moment,
            "evidence_source": data["evidence_source"],
            "recipient_type": data["recipient_type"],
            "evidence_ref": data.get("evidence_ref"),
        }

    return record


_DETAIL_FIELDS = ("country", "time_zone", "locale")
_PERSONAL_FIELDS = ("name", "email", "phone")


def _details(state: State, moment: int, data: Mapping[str, Any], event_id: str) -> None:
    personal = data.get("personal") or {}
    details = state["details"]
    stated = [(f, personal.get(f)) for f in _PERSONAL_FIELDS]
    stated += [(f, data.get(f)) for f in _DETAIL_FIELDS]
    for name, value in stated:
        if value is None:
            continue  # absent means "not stated here", not "erased"
        current = details.get(name)
        if current is None or moment >= current[1]:
            if isinstance(value, dict):
                # An encrypted value (ledger.privacy): kept sealed, with the event it is
                # bound to, so that only a read that shows it opens it.
                value = {**value, "event": event_id}
            details[name] = [value, moment]


def _erased(state: State, moment: int) -> None:
    """The customer's personal data was erased: no personal detail stays in the view, not
    even sealed, and none stated before the erasure (by event time) comes back."""
    details = state["details"]
    for name in _PERSONAL_FIELDS:
        current = details.get(name)
        details[name] = [ERASED, moment if current is None else max(moment, current[1])]


_HANDLERS: dict[str, Handler] = {
    "touchpoint.purchase": _purchase,
    "touchpoint.refund": _refund,
    "complaint.opened": _complaint_opened,
    "complaint.resolved": _complaint_resolved,
    "feedback.given": _feedback,
    "consent.given": _consent("granted"),
    "consent.withdrawn": _consent("withdrawn"),
}


def replay(customer: str, events: Iterable[Fact | TouchpointEvent]) -> Profile:
    """The profile of ``customer`` from their events (the as-of and rebuild path)."""
    profile = Profile(customer)
    for event in events:
        apply(profile, event)
    return profile
