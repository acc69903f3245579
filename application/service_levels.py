"""Service-level use cases: figures per day/week/agent/queue, SLA breaches, churn after bad
service. Every face (CLI, library) calls these; they read the service-level rows from the
view store (or fold them from a log) and compute with the pure code in
:mod:`projections.service_levels` and :mod:`projections.bad_service`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

from pydantic import TypeAdapter, ValidationError

from application import identity
from application.api import policy_history
from application.policy_files import load_policies
from application.wiring import open_store
from consumers.store import ViewStore
from consumers.store import service_levels as service_level_store
from ledger.errors import LedgerError
from ledger.events import EventTime
from ledger.log import EventLog
from ledger.settings import Settings
from ledger.timeutil import from_micros, to_micros, utc_now
from projections import service_levels as sl
from projections.bad_service import (
    Breach,
    ChurnReport,
    breaches,
    churn_after_bad_service,
    definitions,
)
from projections.calendar import BusinessCalendar
from projections.fact import fact_of
from projections.identity import MAX_CUSTOMERS
from projections.policy import Policy
from projections.service_rules import ServiceRules

REPLY_SKEW = timedelta(days=7)
"""Replies are looked for from this long before the window's start: a reply whose event
time is earlier than that before the message it answers is not found (a clock that far
off is a data error)."""

OPENINGS = ("call", "message", "feedback")


class ServiceLevelsNotBuilt(LedgerError):
    """The views hold purchases but no service-level rows: they were built before the
    ledger kept them (``ledger project rebuild`` builds them)."""


def check_built(store: ViewStore) -> None:
    """Refuse to answer from views built before service levels existed: their figures would
    be silently empty."""
    select = store.recorder.select
    # Every purchase has a row: purchases in the profiles and no rows at all cannot be.
    if select("SELECT 1 FROM {profiles} WHERE purchases > 0 LIMIT 1") and not select(
        "SELECT 1 FROM {service_facts} LIMIT 1"
    ):
        raise ServiceLevelsNotBuilt(
            f"the views in {store.where} were built before service levels were kept: run "
            "`ledger project rebuild` once"
        )


LATER = ("reply", "resolution", "complaint")


@dataclass(frozen=True)
class ServiceLevelReport:
    """Figures per group and in total, with the scope and rules they were computed by."""

    groups: list[sl.Figures]
    total: sl.Figures
    by: sl.By
    scope: sl.Scope
    rules: ServiceRules
    zone: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "by": self.by,
            "since": _iso(self.scope.since),
            "until": _iso(self.scope.until),
            "as_of": _iso(self.scope.as_of),
            "channel": self.scope.channel,
            "calendar_zone": self.zone,
            "definitions": dict(definitions(self.rules)),
            "total": self.total.to_dict(),
            "groups": [group.to_dict() for group in self.groups],
        }


def _iso(micros: int | None) -> str | None:
    return None if micros is None else from_micros(micros).isoformat()


def scope_of(
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
    as_of: datetime | None,
) -> sl.Scope:
    return sl.Scope(
        to_micros(as_of or utc_now()),
        None if since is None else to_micros(since),
        None if until is None else to_micros(until),
        channel,
    )


def rows_in(store: ViewStore, scope: sl.Scope) -> list[sl.ServiceFact]:
    """The rows a scope's figures need: openings in the window, and the replies,
    resolutions and complaint openings that may belong to them, up to ``as_of``."""
    read = store.recorder
    end = scope.as_of if scope.until is None else min(scope.until - 1, scope.as_of)
    since = scope.since
    early = None if since is None else since - REPLY_SKEW // timedelta(microseconds=1)
    columns = service_level_store.FIGURES
    return [
        *service_level_store.read(read, OPENINGS, since=since, until=end, columns=columns),
        *service_level_store.read(
            read, ("reply", "resolution"), since=early, until=scope.as_of, columns=columns
        ),
        # Complaints: every opening up to as_of, so a reopening is never a first opening.
        *service_level_store.read(read, ("complaint",), until=scope.as_of, columns=columns),
    ]


def report(
    rows: Iterable[sl.ServiceFact], scope: sl.Scope, policy: Policy, by: sl.By
) -> ServiceLevelReport:
    """Figures of ``rows`` (from the views or a fold of the log) per group and in total."""
    rows = list(rows)
    calendar = policy.calendar.calendar()
    rules = policy.service
    groups = sl.figures(rows, scope, calendar, rules, by)
    total = sl.Figures("all")
    for group in groups:
        total.add(group)
    return ServiceLevelReport(
        groups,
        total,
        by,
        scope,
        rules,
        policy.calendar.time_zone,
    )


def service_levels(
    store: ViewStore,
    policy: Policy,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    by: sl.By = "day",
    as_of: datetime | None = None,
) -> ServiceLevelReport:
    """Service-level figures from the views: calls, messages, complaints and feedback
    opened in ``[since, until)``, as they stood at ``as_of`` (default: now)."""
    check_built(store)
    scope = scope_of(since, until, channel, as_of)
    return report(rows_in(store, scope), scope, policy, by)


def rows_from_log(log: EventLog, until: datetime | None = None) -> list[sl.ServiceFact]:
    """The service-level rows folded straight from the log (events up to ``until``, by
    event time): what a rebuild of the views would hold."""
    state: sl.ServiceState = {}
    limit = None if until is None else to_micros(until)
    for record in log.read():
        if record.event is None:
            continue  # parked by the projector too
        fact = fact_of(record.event)
        if limit is None or fact.micros <= limit:
            sl.apply(state, fact)
    return list(state.values())


def sla_breaches(
    store: ViewStore,
    policy: Policy,
    *,
    open_only: bool = False,
    since: datetime | None = None,
    as_of: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> tuple[list[Breach], datetime]:
    """Messages and complaints past their SLA (``open_only``: still unanswered), most
    overdue first, and the moment they were judged at."""
    check_built(store)
    scope = scope_of(since, None, None, as_of)
    rows = [
        *service_level_store.read(
            store.recorder,
            ("message", "reply", "complaint", "resolution"),
            until=scope.as_of,
        )
    ]
    rows = as_people(store, rows, scope.as_of, max_customers)
    calendar: BusinessCalendar = policy.calendar.calendar()
    found = breaches(rows, scope, calendar, policy.service, open_only=open_only)
    return found, from_micros(scope.as_of)


def churn(
    store: ViewStore,
    policy: Policy,
    *,
    as_of: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> ChurnReport:
    """Did bad service cost us the customer? (definitions: ``bad_service.CHURN_DEFINITION``)."""
    check_built(store)
    moment = to_micros(as_of or utc_now())
    rows = service_level_store.read(
        store.recorder,
        ("call", "message", "reply", "complaint", "resolution", "feedback", "purchase"),
        until=moment,
    )
    rows = as_people(store, rows, moment, max_customers)
    return churn_after_bad_service(rows, moment, policy.calendar.calendar(), policy.service)


def as_people(
    store: ViewStore,
    rows: list[sl.ServiceFact],
    moment: int,
    max_customers: int = MAX_CUSTOMERS,
) -> list[sl.ServiceFact]:
    """``rows`` with each customer key replaced by its person's id (issue 12) as the graph
    stood at ``moment``: a call from a phone number linked to a customer and that customer's
    purchases under a shop id are one customer's experience."""
    facts = store.all_identity_facts()
    if not facts:
        return rows
    graph = identity.graph_of(facts, at=from_micros(moment), max_customers=max_customers)
    person_of = graph.people()
    if not person_of:
        return rows
    return [
        row._replace(customer=person_of[row.customer]) if row.customer in person_of else row
        for row in rows
    ]


# --- Answers from settings and text arguments: what the CLI and the HTTP API call. ---


class BadArgument(LedgerError):
    """An argument of a service-level question that cannot be read; names the argument."""

    def __init__(self, name: str, problem: str) -> None:
        super().__init__(f"{name}: {problem}")
        self.name = name
        self.problem = problem


_TIME: TypeAdapter[datetime] = TypeAdapter(EventTime)
"""Times by the contract's own rules (a zone, the accepted range)."""
_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
BY = ("day", "week", "agent", "queue")


def policy_in_force(settings: Settings, policy_file: Path | None = None) -> Policy:
    """The calendar and targets to judge by: ``policy_file`` if given, else the policy in
    force (``LEDGER_POLICY``, the data folder's, or the built-in default)."""
    history = load_policies(policy_file) if policy_file else policy_history(settings)
    return history.current().policy


def moment(
    value: str | None, name: str, zone: ZoneInfo, *, next_day: bool = False
) -> datetime | None:
    """RFC 3339 with a zone, or a bare date: a local day of the calendar's zone (its start;
    ``next_day``: the start of the day after, so the whole day is included)."""
    if value is None:
        return None
    if _DATE.fullmatch(value):
        try:
            day = datetime.fromisoformat(value).date()
        except ValueError as exc:
            raise BadArgument(name, str(exc)) from None
        if next_day:
            day += timedelta(days=1)
        return datetime.combine(day, time(), zone)
    try:
        return _TIME.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise BadArgument(name, problem) from None


def as_of_moment(value: str | None, name: str, zone: ZoneInfo) -> datetime | None:
    """``as of`` a moment, or a bare date: the end of that local day."""
    found = moment(value, name, zone, next_day=True)
    if found is not None and value is not None and _DATE.fullmatch(value):
        found -= timedelta(microseconds=1)
    return found


@dataclass(frozen=True)
class Question:
    """The arguments every service-level question shares, as given (text)."""

    as_of: str | None = None
    policy_file: Path | None = None


def service_levels_of(
    settings: Settings,
    question: Question = Question(),
    *,
    since: str | None = None,
    until: str | None = None,
    channel: str | None = None,
    by: str = "day",
) -> ServiceLevelReport:
    """``ledger service-levels``: figures per day, week, agent or queue from the views."""
    if by not in BY:
        raise BadArgument("by", f"one of {', '.join(BY)}, not {by!r}")
    policy = policy_in_force(settings, question.policy_file)
    zone = ZoneInfo(policy.calendar.time_zone)
    window = (moment(since, "since", zone), moment(until, "until", zone, next_day=True))
    as_of = as_of_moment(question.as_of, "as_of", zone)
    with closing(open_store(settings)) as store:
        return service_levels(
            store,
            policy,
            since=window[0],
            until=window[1],
            channel=channel,
            by=cast(sl.By, by),
            as_of=as_of,
        )


@dataclass(frozen=True)
class BreachList:
    """``ledger sla breaches``: the breaches, the moment they were judged at, the rules."""

    breaches: list[Breach]
    now: datetime
    policy: Policy

    def to_dicts(self) -> list[dict[str, Any]]:
        return [breach.to_dict(self.now) for breach in self.breaches]


def sla_breaches_of(
    settings: Settings,
    question: Question = Question(),
    *,
    open_only: bool = False,
    since: str | None = None,
) -> BreachList:
    """``ledger sla breaches``: messages and complaints past their SLA, most overdue first."""
    policy = policy_in_force(settings, question.policy_file)
    zone = ZoneInfo(policy.calendar.time_zone)
    start, as_of = moment(since, "since", zone), as_of_moment(question.as_of, "as_of", zone)
    with closing(open_store(settings)) as store:
        found, now = sla_breaches(
            store,
            policy,
            open_only=open_only,
            since=start,
            as_of=as_of,
            max_customers=settings.identity_max_customers,
        )
    return BreachList(found, now, policy)


def churn_of(
    settings: Settings, question: Question = Question()
) -> tuple[ChurnReport, dict[str, Any]]:
    """``ledger churn after-bad-service``: the report, and its ``--json`` answer (the report
    with the definition it was computed by)."""
    policy = policy_in_force(settings, question.policy_file)
    zone = ZoneInfo(policy.calendar.time_zone)
    as_of = as_of_moment(question.as_of, "as_of", zone)
    with closing(open_store(settings)) as store:
        found = churn(store, policy, as_of=as_of, max_customers=settings.identity_max_customers)
    return found, {**found.to_dict(), "definition": definitions(policy.service)["churn"]}
