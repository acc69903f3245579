"""Late answers and what they cost: SLA breaches (the operator's to-do list) and the
churn of customers after bad service, computed from the service-level rows (pure)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from ledger.timeutil import from_micros
from projections.calendar import BusinessCalendar
from projections.service_levels import Scope, ServiceFact, cases, ratio, threads
from projections.service_rules import ServiceRules

# -- breaches --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Breach:
    """A message or complaint that missed (or is missing) its SLA."""

    kind: Literal["message", "complaint"]
    customer: str
    item: str
    channel: str | None
    received: datetime
    deadline: datetime
    answered: datetime | None
    """When it was replied to or resolved; ``None``: still open."""

    def late_by(self, now: datetime) -> float:
        """Seconds past the deadline (to the answer, or to ``now`` if open)."""
        return ((self.answered or now) - self.deadline).total_seconds()

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "customer": self.customer,
            "item": self.item,
            "channel": self.channel,
            "received": self.received.isoformat(),
            "deadline": self.deadline.isoformat(),
            "answered": None if self.answered is None else self.answered.isoformat(),
            "late_by_seconds": self.late_by(now),
        }


def breaches(
    rows: Iterable[ServiceFact],
    scope: Scope,
    calendar: BusinessCalendar,
    rules: ServiceRules,
    *,
    open_only: bool = False,
) -> list[Breach]:
    """Messages and complaints past their SLA as of ``scope.as_of``: answered late, or not
    answered by a deadline that has passed (``open_only``: those only), most overdue first."""
    rows = list(rows)
    now = from_micros(scope.as_of)
    found: list[Breach] = []
    for thread in threads(rows, scope):
        received = from_micros(thread.message.at)
        deadline = calendar.deadline(received, rules.reply_within_business_days)
        answered = None if thread.reply is None else from_micros(thread.reply.at)
        if _late(deadline, answered, now, open_only):
            found.append(
                Breach(
                    "message",
                    thread.message.customer,
                    thread.message.event_id,
                    thread.message.channel,
                    received,
                    deadline,
                    answered,
                )
            )
    for case in cases(rows, scope):
        received = from_micros(case.first_open.at)
        deadline = calendar.deadline(received, rules.resolve_within_business_days)
        first = case.first_resolution
        answered = None if first is None else from_micros(first.at)
        if _late(deadline, answered, now, open_only):
            found.append(
                Breach(
                    "complaint",
                    case.customer,
                    case.complaint,
                    case.first_open.channel,
                    received,
                    deadline,
                    answered,
                )
            )
    found.sort(key=lambda b: (-b.late_by(now), b.customer, b.item))
    return found


def _late(deadline: datetime, answered: datetime | None, now: datetime, open_only: bool) -> bool:
    # The deadline is the closing instant, which is no longer open: answering at it is late.
    if answered is None:
        return deadline <= now
    return not open_only and answered >= deadline


# -- bad service and churn ---------------------------------------------------------------


@dataclass
class ChurnReport:
    """Customers who stopped buying after bad service, against those who had service
    without anything bad (see :func:`churn_after_bad_service` for the definitions)."""

    as_of: datetime
    lapse_days: int
    bad_customers: int = 0
    bad_stopped: int = 0
    good_customers: int = 0
    good_stopped: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    """Customers in the bad group by the kind of their first bad experience."""
    left_out_recent: int = 0
    """Customers whose reference moment is less than ``lapse_days`` before ``as_of``."""
    left_out_not_buying: int = 0
    """Customers who had bought nothing before their reference moment."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "as_of": self.as_of.isoformat(),
            "lapse_days": self.lapse_days,
            "bad_service": {
                "customers": self.bad_customers,
                "stopped_buying": self.bad_stopped,
                "rate": ratio(self.bad_stopped, self.bad_customers),
                "first_bad_experience": dict(sorted(self.reasons.items())),
            },
            "no_bad_service": {
                "customers": self.good_customers,
                "stopped_buying": self.good_stopped,
                "rate": ratio(self.good_stopped, self.good_customers),
            },
            "left_out": {
                "reference_too_recent": self.left_out_recent,
                "no_purchase_before": self.left_out_not_buying,
            },
        }


CHURN_DEFINITION = (
    "Bad service: an inbound call abandoned after waiting at least {long_wait}s; a service "
    "message not replied to by the close of business day +{reply_days}; a complaint not "
    "resolved by the close of business day +{resolve_days}; CSAT of {low} or less. A "
    "customer's reference moment is their first bad experience (the call, the missed "
    "deadline, the feedback), or, for customers with service contacts and nothing bad, "
    "their first service contact (call, message, complaint). Counted: customers who bought "
    "something before their reference moment, whose reference is at least {lapse} days "
    "before the as-of moment. Stopped buying: no purchase in the {lapse} days after it."
)


@dataclass
class Experiences:
    """Per customer: the first bad experience, the first service contact, the purchases."""

    as_of: int
    first_bad: dict[str, tuple[int, str]] = field(default_factory=dict)
    first_contact: dict[str, int] = field(default_factory=dict)
    purchases: dict[str, list[int]] = field(default_factory=lambda: defaultdict(list))

    def bad(self, customer: str, at: int, why: str) -> None:
        if at > self.as_of:
            return  # a deadline still ahead: nothing bad yet
        known = self.first_bad.get(customer)
        if known is None or (at, why) < known:
            self.first_bad[customer] = (at, why)

    def contact(self, customer: str, at: int) -> None:
        self.first_contact[customer] = min(at, self.first_contact.get(customer, at))


def experiences(
    rows: list[ServiceFact], as_of: int, calendar: BusinessCalendar, rules: ServiceRules
) -> Experiences:
    """Every customer's experiences as of ``as_of`` (rows after it are ignored)."""
    rows = [row for row in rows if row.at <= as_of]
    scope = Scope(as_of)
    found = Experiences(as_of)
    for row in rows:
        if row.kind == "purchase":
            found.purchases[row.customer].append(row.at)
        elif row.kind == "call":
            found.contact(row.customer, row.at)
            if _long_abandon(row, rules):
                found.bad(row.customer, row.at, "long_wait_abandoned")
        elif row.kind == "feedback" and _low_score(row, rules):
            found.bad(row.customer, row.at, "low_csat")
    for thread in threads(rows, scope):
        message = thread.message
        found.contact(message.customer, message.at)
        cutoff = _micros(calendar.deadline_at(message.at / 1e6, rules.reply_within_business_days))
        if thread.reply is None or thread.reply.at >= cutoff:
            found.bad(message.customer, cutoff, "unanswered_message")
    for case in cases(rows, scope):
        found.contact(case.customer, case.first_open.at)
        cutoff = _micros(
            calendar.deadline_at(case.first_open.at / 1e6, rules.resolve_within_business_days)
        )
        first = case.first_resolution
        if first is None or first.at >= cutoff:
            found.bad(case.customer, cutoff, "complaint_unresolved")
    return found


def churn_after_bad_service(
    rows: Iterable[ServiceFact], as_of: int, calendar: BusinessCalendar, rules: ServiceRules
) -> ChurnReport:
    """Did bad service cost us the customer? Pure; definitions in :data:`CHURN_DEFINITION`."""
    seen = experiences(list(rows), as_of, calendar, rules)
    report = ChurnReport(from_micros(as_of), rules.lapse_days)
    lapse = rules.lapse_days * 86_400_000_000
    for customer in sorted(seen.first_contact.keys() | seen.first_bad.keys()):
        found = seen.first_bad.get(customer)
        reference = found[0] if found else seen.first_contact[customer]
        if reference + lapse > as_of:
            report.left_out_recent += 1
            continue
        bought = seen.purchases.get(customer, [])
        if not any(at < reference for at in bought):
            report.left_out_not_buying += 1
            continue
        stopped = not any(reference < at <= reference + lapse for at in bought)
        if found:
            report.bad_customers += 1
            report.bad_stopped += stopped
            report.reasons[found[1]] = report.reasons.get(found[1], 0) + 1
        else:
            report.good_customers += 1
            report.good_stopped += stopped
    return report


def _micros(posix: float) -> int:
    return round(posix * 1_000_000)


def _long_abandon(row: ServiceFact, rules: ServiceRules) -> bool:
    return row.outcome in ("abandoned", "missed") and (row.wait or 0) >= rules.long_wait_seconds


def _low_score(row: ServiceFact, rules: ServiceRules) -> bool:
    return row.outcome == "csat" and row.score is not None and row.score <= rules.low_score


def local_day(at: int, calendar: BusinessCalendar) -> date:
    return datetime.fromtimestamp(at / 1e6, calendar.zone).date()


def definitions(rules: ServiceRules) -> Mapping[str, str]:
    """The definitions printed with the figures, filled in with the rules in force."""
    return {
        "service_level": f"answered within {rules.answer_within_seconds}s of waiting / offered "
        f"(target {rules.target:.0%})",
        "short_abandon": f"abandoned after less than {rules.short_abandon_seconds}s: left out",
        "reply_sla": "first reply by the close of business day "
        f"+{rules.reply_within_business_days}",
        "complaint_sla": f"resolved by the close of business day "
        f"+{rules.resolve_within_business_days}",
        "churn": CHURN_DEFINITION.format(
            long_wait=rules.long_wait_seconds,
            reply_days=rules.reply_within_business_days,
            resolve_days=rules.resolve_within_business_days,
            low=rules.low_score,
            lapse=rules.lapse_days,
        ),
    }
