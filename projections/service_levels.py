"""Service levels: how well the company answers, as a pure fold and pure figures.

The read model keeps **raw facts**, one row per event that matters to service levels (an
inbound call, an inbound service message, a reply naming what it answers, a complaint
opening or resolution, feedback, a purchase), each with its time and what it says. Every
figure is computed from those rows when asked: for any window, grouping, calendar, target
and "as of" moment (a row counts only if its event time is at or before it), and a reply
that arrives before the message it answers (a late upload) simply waits in its row. Keeping
no derived state means the fold is one row per event, exactly once with the other views,
and a change of calendar or target needs no rebuild.

Definitions (docs/read-models.md, "Service levels", says the same in words):

* **calls**: inbound calls. *Short abandons* (abandoned after waiting less than
  ``short_abandon_seconds``) are counted apart and left out of everything else. *Offered*:
  the rest; *answered*: outcome ``answered``; *abandoned*: ``abandoned`` or ``missed``;
  ``voicemail`` is offered, neither answered nor abandoned. *Service level*: answered
  within ``answer_within_seconds`` of waiting ÷ offered. *ASA*: mean wait of answered calls.
  Wait percentiles over answered and abandoned calls (nearest rank).
* **messages**: inbound e-mails, SMS and chats (chat, social, web) of purpose ``service``;
  replied by the first outbound message of the same customer whose ``in_reply_to`` is the
  message's id. First-reply time in business seconds of the calendar; *within SLA*: replied
  by the close of the ``reply_within_business_days``-th business day after the one it
  arrived on; *unanswered*: no reply as of the moment asked.
* **complaints**: by ``complaint_id`` per customer; time to resolution from the first
  opening to the first resolution, in business seconds; within SLA by
  ``resolve_within_business_days``; *reopened*: opened again after a resolution.
* **feedback**: CSAT scores (1-5) per group, and how many are at or below ``low_score``.

Groups: the company's local day (the calendar's zone) or ISO week of the call, message or
complaint opening; the agent (a call's, a message's first replier, a complaint's first
resolver); the queue (calls; others have none).
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from ledger.events import TouchpointEvent
from projections.calendar import BusinessCalendar
from projections.fact import Fact, fact_of
from projections.service_rules import ServiceRules

Kind = Literal["call", "message", "reply", "complaint", "resolution", "feedback", "purchase"]
MESSAGE_TYPES = frozenset({"touchpoint.email", "touchpoint.sms", "touchpoint.chat"})
NONE = "(none)"
"""The group of rows without an agent or queue."""


class ServiceFact(NamedTuple):
    """One row of the service-level read model (the table's columns, in order)."""

    event_id: str
    customer: str
    kind: str
    item: str
    """What the row is about: a call's or message's own event id, the message a reply
    answers (``in_reply_to``), a complaint id, the order or complaint feedback is about."""
    at: int
    """Event time, microseconds since the epoch."""
    channel: str | None
    queue: str | None
    agent: str | None
    wait: int | None
    outcome: str | None
    """A call's outcome; feedback's scale."""
    score: int | None


def fact_row(fact: Fact) -> ServiceFact | None:
    """The service-level row of one touchpoint, or ``None`` if it says nothing about
    service levels. Pure; the same for live processing, rebuilds and "as of" answers."""
    kind: str
    data = fact.data
    event_type = fact.type
    item = fact.id
    wait: int | None = None
    outcome: str | None = None
    score: int | None = None
    queue: str | None = None
    if event_type == "touchpoint.call":
        if data["direction"] != "inbound":
            return None
        kind, wait, outcome = "call", data["wait_seconds"], data["outcome"]
        queue = data.get("queue")
    elif event_type in MESSAGE_TYPES:
        if data["direction"] == "outbound":
            replied = data.get("in_reply_to")
            if replied is None:
                return None
            kind, item = "reply", replied
        elif data["purpose"] == "service":
            kind = "message"
            wait = data.get("wait_seconds")
        else:
            return None
    elif event_type == "complaint.opened":
        kind, item = "complaint", data["complaint_id"]
    elif event_type == "complaint.resolved":
        kind, item = "resolution", data["complaint_id"]
    elif event_type == "feedback.given":
        kind, outcome, score = "feedback", data["scale"], data["score"]
        item = data.get("about") or fact.id
    elif event_type == "touchpoint.purchase":
        kind, item = "purchase", data["order_id"]
    else:
        return None
    return ServiceFact(
        fact.id,
        fact.subject,
        kind,
        item,
        fact.micros,
        data.get("channel"),
        queue,
        data.get("agent"),
        wait,
        outcome,
        score,
    )


ServiceState = dict[str, ServiceFact]
"""The rows of a fold, by event id."""


def apply(state: ServiceState, fact: Fact | TouchpointEvent) -> ServiceState:
    """Add one touchpoint's row (if it has one). No I/O; updates ``state`` in place."""
    row = fact_row(fact if isinstance(fact, Fact) else fact_of(fact))
    if row is not None:
        state[row.event_id] = row
    return state


def replay(events: Iterable[Fact | TouchpointEvent]) -> ServiceState:
    """Fold ``apply`` over events (rebuilds and "as of" answers use exactly this)."""
    state: ServiceState = {}
    for event in events:
        apply(state, event)
    return state


# -- figures ---------------------------------------------------------------------------

By = Literal["day", "week", "agent", "queue", "channel", "all"]


@dataclass
class Figures:
    """Service-level figures of one group."""

    group: str
    offered: int = 0
    answered: int = 0
    answered_in_time: int = 0
    abandoned: int = 0
    short_abandons: int = 0
    voicemail: int = 0
    long_abandons: int = 0
    """Abandoned after at least ``long_wait_seconds``: bad service."""
    answered_waits: list[int] = field(default_factory=list)
    waits: list[int] = field(default_factory=list)
    messages: int = 0
    replied: int = 0
    replied_in_time: int = 0
    replied_same_day: int = 0
    replied_next_day: int = 0
    reply_seconds: list[float] = field(default_factory=list)
    complaints: int = 0
    resolved: int = 0
    resolved_in_time: int = 0
    reopened: int = 0
    resolve_seconds: list[float] = field(default_factory=list)
    feedback: int = 0
    csat_scores: list[int] = field(default_factory=list)
    low_scores: int = 0

    def add(self, other: Figures) -> None:
        """Count ``other``'s figures in too (totals over groups)."""
        for name, value in vars(other).items():
            if name != "group":
                mine = getattr(self, name)
                setattr(self, name, mine + value)

    def to_dict(self) -> dict[str, Any]:
        """The figures as JSON-ready values (rates as fractions, ``None`` when undefined)."""
        return {
            "group": self.group,
            "calls": {
                "offered": self.offered,
                "answered": self.answered,
                "abandoned": self.abandoned,
                "short_abandons": self.short_abandons,
                "voicemail": self.voicemail,
                "long_abandons": self.long_abandons,
                "answered_in_time": self.answered_in_time,
                "service_level": ratio(self.answered_in_time, self.offered),
                "abandonment_rate": ratio(self.abandoned, self.offered),
                "average_speed_of_answer": mean(self.answered_waits),
                "wait_p50": percentile(self.waits, 50),
                "wait_p90": percentile(self.waits, 90),
            },
            "messages": {
                "received": self.messages,
                "replied": self.replied,
                "unanswered": self.messages - self.replied,
                "replied_in_time": self.replied_in_time,
                "within_sla": ratio(self.replied_in_time, self.messages),
                "same_business_day": ratio(self.replied_same_day, self.messages),
                "next_business_day": ratio(self.replied_next_day, self.messages),
                "first_reply_business_p50": percentile(self.reply_seconds, 50),
                "first_reply_business_p90": percentile(self.reply_seconds, 90),
            },
            "complaints": {
                "opened": self.complaints,
                "resolved": self.resolved,
                "resolved_in_time": self.resolved_in_time,
                "within_sla": ratio(self.resolved_in_time, self.complaints),
                "reopened": self.reopened,
                "resolution_business_p50": percentile(self.resolve_seconds, 50),
            },
            "feedback": {
                "csat_answers": len(self.csat_scores),
                "csat_average": mean(self.csat_scores),
                "low_scores": self.low_scores,
            },
        }


def ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def mean(values: list[int] | list[float]) -> float | None:
    return sum(values) / len(values) if values else None


def percentile(values: list[int] | list[float], p: int) -> float | None:
    """Nearest-rank percentile (the value at rank ceil(p/100 * n) of the sorted values)."""
    if not values:
        return None
    ordered = sorted(values)
    return float(ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1])


@dataclass(frozen=True)
class Scope:
    """Which rows count: openings in ``[since, until)`` (microseconds; ``None``: open
    ended) of ``channel``, with everything as it stood at ``as_of``."""

    as_of: int
    since: int | None = None
    until: int | None = None
    channel: str | None = None

    def opens(self, at: int) -> bool:
        low, high = self.bounds()
        return low <= at < high

    def bounds(self) -> tuple[int, int]:
        """``[low, high)`` in microseconds: the window, cut at ``as_of``."""
        high = self.as_of + 1 if self.until is None else min(self.until, self.as_of + 1)
        return (-(1 << 62) if self.since is None else self.since), high


class Thread(NamedTuple):
    """A message and its first reply (as of the scope's moment)."""

    message: ServiceFact
    reply: ServiceFact | None


class Case(NamedTuple):
    """A complaint's openings and resolutions (as of the scope's moment), in time order."""

    customer: str
    complaint: str
    opened: list[ServiceFact]
    resolved: list[ServiceFact]

    @property
    def first_open(self) -> ServiceFact:
        return self.opened[0]

    @property
    def first_resolution(self) -> ServiceFact | None:
        return self.resolved[0] if self.resolved else None

    @property
    def reopened(self) -> bool:
        first = self.first_resolution
        return first is not None and any(o.at > first.at for o in self.opened)

    @property
    def is_open(self) -> bool:
        return not self.resolved or self.opened[-1].at > self.resolved[-1].at


Kinds = dict[str, list[ServiceFact]]
"""Rows by kind."""


def by_kind(rows: Iterable[ServiceFact]) -> Kinds:
    """Rows sorted into their kinds, once (every figure reads a few kinds only)."""
    found: Kinds = defaultdict(list)
    for row in rows:
        found[row.kind].append(row)
    return found


def threads(rows: Iterable[ServiceFact] | Kinds, scope: Scope) -> list[Thread]:
    """Messages opened in scope, each with its first reply at or before ``as_of``."""
    kinds = rows if isinstance(rows, dict) else by_kind(rows)
    as_of, channel = scope.as_of, scope.channel
    replies: dict[tuple[str, str], ServiceFact] = {}
    for row in kinds.get("reply", ()):
        if row.at <= as_of:
            key = (row.customer, row.item)
            best = replies.get(key)
            if best is None or (row.at, row.event_id) < (best.at, best.event_id):
                replies[key] = row
    low, high = scope.bounds()
    get = replies.get
    return [
        Thread(m, get((m.customer, m.event_id)))
        for m in kinds.get("message", ())
        if low <= m.at < high and (channel is None or m.channel == channel)
    ]


def cases(rows: Iterable[ServiceFact] | Kinds, scope: Scope) -> list[Case]:
    """Complaints first opened in scope, with their history at or before ``as_of``."""
    kinds = rows if isinstance(rows, dict) else by_kind(rows)
    opened: dict[tuple[str, str], list[ServiceFact]] = defaultdict(list)
    resolved: dict[tuple[str, str], list[ServiceFact]] = defaultdict(list)
    as_of = scope.as_of
    for row in kinds.get("complaint", ()):
        if row.at <= as_of:
            opened[(row.customer, row.item)].append(row)
    for row in kinds.get("resolution", ()):
        if row.at <= as_of:
            resolved[(row.customer, row.item)].append(row)
    found = []
    low, high = scope.bounds()
    for key, opens in opened.items():
        if len(opens) > 1:
            opens.sort(key=_order)
        first = opens[0]
        if not low <= first.at < high:
            continue
        if scope.channel is not None and first.channel != scope.channel:
            continue
        closes = resolved.get(key, [])
        if len(closes) > 1:
            closes.sort(key=_order)
        found.append(Case(key[0], key[1], opens, closes))
    return found


def _order(row: ServiceFact) -> tuple[int, str]:
    return row.at, row.event_id


def group_key(by: By, calendar: BusinessCalendar) -> Callable[[int, str | None, str | None], str]:
    """``(micros, agent, queue) -> group name`` for a grouping."""
    names: dict[int, str] = {}
    if by in ("day", "week"):

        def local(at: int, agent: str | None, queue: str | None) -> str:
            quarter = at // 900_000_000
            name = names.get(quarter)
            if name is None:
                day = calendar.day_at(at / 1e6)
                year, number, _ = day.isocalendar()
                name = day.isoformat() if by == "day" else f"{year}-W{number:02d}"
                if calendar.day_at(quarter * 900) == calendar.day_at(quarter * 900 + 899):
                    names[quarter] = name  # the whole quarter hour is in one local day
            return name

        return local
    if by == "agent":
        return lambda at, agent, queue: agent or NONE
    if by == "queue":
        return lambda at, agent, queue: queue or NONE
    return lambda at, agent, queue: "all"


def figures(
    rows: Iterable[ServiceFact],
    scope: Scope,
    calendar: BusinessCalendar,
    rules: ServiceRules,
    by: By = "day",
) -> list[Figures]:
    """Service-level figures per group, sorted by group name. Pure: ``rows`` may come from
    the view store or from a fold of the log (they give the same figures)."""
    kinds = by_kind(rows)
    key = group_key(by, calendar)
    groups: dict[str, Figures] = {}

    def of(name: str) -> Figures:
        found = groups.get(name)
        if found is None:
            found = groups[name] = Figures(name)
        return found

    low, high = scope.bounds()
    if scope.channel in (None, "phone"):
        for row in kinds.get("call", ()):
            if low <= row.at < high:
                _add_call(of(key(row.at, row.agent, row.queue)), row, rules)
    for thread in threads(kinds, scope):
        reply = thread.reply
        message = thread.message
        name = key(message.at, reply.agent if reply else None, message.queue)
        _add_thread(of(name), thread, calendar, rules)
    for case in cases(kinds, scope):
        first = case.first_resolution
        name = key(case.first_open.at, first.agent if first else None, None)
        _add_case(of(name), case, calendar, rules)
    for row in kinds.get("feedback", ()):
        if low <= row.at < high and (scope.channel is None or row.channel == scope.channel):
            target = of(key(row.at, row.agent, None))
            target.feedback += 1
            if row.outcome == "csat" and row.score is not None:
                target.csat_scores.append(row.score)
                target.low_scores += row.score <= rules.low_score
    return [groups[name] for name in sorted(groups)]


def _add_call(target: Figures, row: ServiceFact, rules: ServiceRules) -> None:
    wait = row.wait or 0
    if row.outcome == "abandoned" and wait < rules.short_abandon_seconds:
        target.short_abandons += 1
        return
    target.offered += 1
    if row.outcome == "answered":
        target.answered += 1
        target.answered_in_time += wait <= rules.answer_within_seconds
        target.answered_waits.append(wait)
        target.waits.append(wait)
    elif row.outcome in ("abandoned", "missed"):
        target.abandoned += 1
        target.long_abandons += wait >= rules.long_wait_seconds
        target.waits.append(wait)
    else:
        target.voicemail += 1


def reply_days(thread: Thread, calendar: BusinessCalendar) -> int | None:
    """Business days from a message's business day to its first reply's (0: the same);
    ``None`` if unanswered. A reply timed before its message counts as immediate."""
    if thread.reply is None:
        return None
    received = thread.message.at / 1e6
    answered = max(thread.reply.at, thread.message.at) / 1e6
    return calendar.measure_at(received, answered)[0]


def _add_thread(
    target: Figures, thread: Thread, calendar: BusinessCalendar, rules: ServiceRules
) -> None:
    target.messages += 1
    if thread.reply is None:
        return
    target.replied += 1
    received = thread.message.at / 1e6
    answered = max(thread.reply.at, thread.message.at) / 1e6
    days, seconds = calendar.measure_at(received, answered)
    target.reply_seconds.append(seconds)
    target.replied_same_day += days == 0
    target.replied_next_day += days <= 1
    target.replied_in_time += days <= rules.reply_within_business_days


def _add_case(target: Figures, case: Case, calendar: BusinessCalendar, rules: ServiceRules) -> None:
    target.complaints += 1
    target.reopened += case.reopened
    first = case.first_resolution
    if first is None:
        return
    target.resolved += 1
    opened = case.first_open.at / 1e6
    resolved = max(first.at, case.first_open.at) / 1e6
    days, seconds = calendar.measure_at(opened, resolved)
    target.resolve_seconds.append(seconds)
    target.resolved_in_time += days <= rules.resolve_within_business_days
