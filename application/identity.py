"""Identity use cases: link an identifier to a customer, merge and unmerge customers, show
one person's graph, list suspicious identifiers, and find who a key belongs to for every
other answer (profile, contacts, may-contact, history, violations).

The graph is folded by :mod:`projections.identity` from the identity facts the views hold
plus those the projector has not applied yet (read from the log past the views'
positions), so a link appended a moment ago counts at once, as a consent does.
"""

from __future__ import annotations

import contextlib
import dataclasses
import uuid
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from consumers.store import ViewStore
from ledger.codec import parse_event
from ledger.errors import LedgerError, LogUnavailable
from ledger.events import IDENTITY_TYPES
from ledger.identifiers import (
    CUSTOMER,
    InvalidIdentifier,
    identifier_key,
    kind_of,
)
from ledger.log import AppendOutcome, EventLog, ReadFilter
from ledger.timeutil import MICROSECOND, from_micros, to_micros
from projections import identity
from projections.fact import fact_of
from projections.frequency import Window
from projections.identity import (
    MAX_CUSTOMERS,
    IdentityFact,
    IdentityGraph,
    Person,
    person_to_dict,
)
from projections.person import combine

SOURCE = "ledger/identity"


class IdentityRefused(LedgerError):
    """A link, merge or unmerge the identity graph refuses (a merge cycle, a customer
    already merged, an unmerge of a merge that does not stand, ...)."""


# -- reading the graph ---------------------------------------------------------------------


def facts_in_log(
    log: EventLog,
    start: dict[int, int] | None = None,
    *,
    until: datetime | None = None,
    recorded_by: datetime | None = None,
) -> list[IdentityFact]:
    """The identity facts of ``log`` from ``start`` that happened by ``until`` and were
    recorded by ``recorded_by`` (each id once)."""
    where = ReadFilter(types=IDENTITY_TYPES, until=until + MICROSECOND if until else None)
    found: dict[str, IdentityFact] = {}
    for record in log.read(start, where):
        event = record.event
        if event is None or event.type not in IDENTITY_TYPES or event.id in found:
            continue
        if recorded_by is not None and record.recorded_at > recorded_by:
            continue
        fact = identity.identity_fact(fact_of(event))
        if fact is not None:
            found[fact.id] = fact
    return list(found.values())


def current_facts(
    store: ViewStore, keys: Sequence[str], log: EventLog | None = None
) -> list[IdentityFact]:
    """The identity facts touching ``keys``' people: the views', plus (with ``log``) every
    identity fact past the views' positions (the projector has not applied them yet)."""
    if log is None:
        return store.identity_facts(keys)
    try:
        partitions = log.partitions()
    except LogUnavailable:
        return store.identity_facts(keys)  # the views alone; answers say so (freshness)
    viewed, positions = store.identity_snapshot(keys, partitions)
    found = {f.id: f for f in viewed}
    try:
        tail = facts_in_log(log, positions)
    except LogUnavailable:
        tail = []  # the views alone; answers say so through their freshness
    if tail:
        found.update((f.id, f) for f in tail)
        # A fact of the tail can join the people of keys with people the first look did
        # not reach: look again from everything the tail names.
        named = {*keys, *(f.customer for f in tail), *(f.other for f in tail)}
        found.update((f.id, f) for f in store.identity_facts(sorted(named)))
    return list(found.values())


def graph_of(
    facts: Iterable[IdentityFact],
    *,
    at: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> IdentityGraph:
    """The graph of ``facts`` as it stood at ``at`` (event time; ``None``: all of them)."""
    until = None if at is None else to_micros(at)
    return identity.replay(facts, until=until, max_customers=max_customers)


def people(
    store: ViewStore,
    keys: Sequence[str],
    log: EventLog | None = None,
    *,
    at: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> dict[str, Person]:
    """The person each key belongs to (now, or at ``at``)."""
    graph = graph_of(current_facts(store, keys, log), at=at, max_customers=max_customers)
    return {key: graph.person(key) for key in keys}


# -- writing it ----------------------------------------------------------------------------


def identifier_of(kind: str, value: str) -> str:
    """The lookup key of an identifier given on a command line (normalised), or a
    one-line error."""
    try:
        return identifier_key(kind, value)
    except InvalidIdentifier as exc:
        raise LedgerError(str(exc)) from exc


def _document(
    kind: str, customer: str, data: dict[str, Any], at: datetime | None
) -> dict[str, Any]:
    moment = at or datetime.now(UTC)
    return {
        "specversion": "1.0",
        "id": str(uuid.uuid4()),
        "source": SOURCE,
        "type": kind,
        "subject": customer,
        "time": moment.isoformat(),
        "data": {k: v for k, v in data.items() if v is not None},
    }


def _check_customer(customer: str) -> None:
    if kind_of(customer) != CUSTOMER:
        raise LedgerError(f"{customer!r} is an identifier, not a customer id")


def link(
    log: EventLog,
    customer: str,
    identifier: str,
    *,
    evidence: str | None = None,
    at: datetime | None = None,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``identity.linked``: ``identifier`` (a lookup key, e.g. from
    :func:`identifier_of`) belongs to ``customer``."""
    _check_customer(customer)
    data = {"identifier": identifier, "evidence": evidence}
    document = _document(identity.LINKED, customer, data, at)
    return document, log.append([parse_event(document)])[0]


def unlink(
    log: EventLog,
    store: ViewStore,
    customer: str,
    identifier: str,
    *,
    reason: str | None = None,
    at: datetime | None = None,
    stored: Callable[[str], str] | None = None,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``identity.unlinked`` (refused if the link does not stand). ``stored``: the
    key the ledger stores for an identifier (the keyed hash of a phone number or e-mail
    address when it encrypts: ``application.privacy.stored_customer_ids``)."""
    _check_customer(customer)
    data = {"identifier": identifier, "reason": reason}
    document = _document(identity.UNLINKED, customer, data, at)
    return document, _append_checked(log, store, document, stored=stored)


def _append_checked(
    log: EventLog,
    store: ViewStore,
    document: dict[str, Any],
    facts: list[IdentityFact] | None = None,
    max_customers: int = MAX_CUSTOMERS,
    *,
    stored: Callable[[str], str] | None = None,
) -> AppendOutcome:
    """Append an identity event unless the graph refuses it: folded with the facts it
    knows, in event-time order (so an event back-dated before others is checked where it
    lands), the new fact must apply and must not make any other fact refused. The fact is
    checked with its identifier as the log will store it (``stored``: hashed)."""
    event = parse_event(document)
    fact = identity.identity_fact(fact_of(event))
    assert fact is not None
    if stored is not None and fact.type in (identity.LINKED, identity.UNLINKED):
        fact = dataclasses.replace(fact, other=stored(fact.other))
    if facts is None:
        facts = current_facts(store, [fact.customer, fact.other], log)
    before = graph_of(facts, max_customers=max_customers).refused
    after = graph_of([*facts, fact], max_customers=max_customers).refused
    new = [r for r in after if r not in before]
    if new:
        mine = [r for r in new if r.event_id == fact.id]
        if mine:
            raise IdentityRefused(f"refused: {mine[0].reason}")
        raise IdentityRefused(
            f"refused: at {event.time.isoformat()} it would make the {new[0].type} "
            f"{new[0].event_id} of {new[0].customer} refused ({new[0].reason})"
        )
    return log.append([event])[0]


def _first_touch(store: ViewStore, person: Person) -> int | None:
    profiles = store.load_profiles(list(person.members))
    touches = [p.state["first_touch"] for p in profiles.values() if p.state["first_touch"]]
    return min(touches, default=None)


def survivor_of(store: ViewStore, graph: IdentityGraph, first: Person, second: Person) -> str:
    """The survivor rule: the person whose customer is the oldest, by their first touchpoint
    in the views (then by when they entered the identity graph, then by id), keeps their id."""
    never = 1 << 62

    def age(person: Person) -> tuple[int, int, str]:
        touch = _first_touch(store, person)
        return (
            never if touch is None else touch,
            graph.first_seen.get(person.id, never),
            person.id,
        )

    return min((first, second), key=age).id


def merge(
    log: EventLog,
    store: ViewStore,
    first: str,
    second: str,
    *,
    reason: str,
    survivor: str | None = None,
    at: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``customer.merged``: ``first`` and ``second`` are one person.

    Without ``survivor``, the two people's ids are merged, the younger into the older
    (:func:`survivor_of`); with it, ``first`` is merged into ``survivor`` exactly as
    asked. Refused (:class:`IdentityRefused`) if they are one person already, or if the
    merge would close a cycle or merge a customer already merged."""
    _check_customer(first)
    _check_customer(second)
    facts = current_facts(store, [first, second], log)
    graph = graph_of(facts, max_customers=max_customers)
    if survivor is None:
        a, b = graph.person(first), graph.person(second)
        if a.id == b.id:
            raise IdentityRefused(f"refused: {first!r} and {second!r} are one person already")
        for person in (a, b):
            if kind_of(person.id) != CUSTOMER:
                raise IdentityRefused(f"refused: {person.id!r} is not linked to a customer")
        survivor = survivor_of(store, graph, a, b)
        merged = b.id if survivor == a.id else a.id
    else:
        _check_customer(survivor)
        merged = first if survivor != first else second
    data = {"survivor": survivor, "reason": reason}
    document = _document(identity.MERGED, merged, data, at)
    return document, _append_checked(log, store, document, facts, max_customers)


def unmerge(
    log: EventLog,
    store: ViewStore,
    customer: str,
    *,
    reason: str,
    at: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> tuple[dict[str, Any], AppendOutcome]:
    """Append ``customer.unmerged`` for the standing merge of ``customer``."""
    _check_customer(customer)
    facts = current_facts(store, [customer], log)
    standing = graph_of(facts, max_customers=max_customers).merges.get(customer)
    if standing is None:
        raise IdentityRefused(f"refused: customer {customer!r} is not merged into anyone")
    data = {"survivor": standing.survivor, "reason": reason}
    document = _document(identity.UNMERGED, customer, data, at)
    return document, _append_checked(log, store, document, facts, max_customers)


# -- answers -------------------------------------------------------------------------------


def _times(found: dict[str, Any]) -> dict[str, Any]:
    for entry in (*found["links"], *found["merges"]):
        entry["since"] = from_micros(entry["since"]).isoformat()
    for entry in found["refused"]:
        entry["at"] = from_micros(entry["at"]).isoformat()
    return found


def describe(
    store: ViewStore,
    key: str,
    log: EventLog | None = None,
    *,
    at: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> dict[str, Any]:
    """One person's graph (now, or as of ``at``): customers, identifiers, the links and
    merges with their evidence, suspicious identifiers, refused facts."""
    graph = graph_of(current_facts(store, [key], log), at=at, max_customers=max_customers)
    found = person_to_dict(graph.person(key), graph)
    return {"asked": key, "as_of": at.isoformat() if at else None, **_times(found)}


def suspicious(
    store: ViewStore,
    log: EventLog | None = None,
    *,
    max_customers: int = MAX_CUSTOMERS,
) -> dict[str, Any]:
    """Identifiers linked to more than ``max_customers`` customers (reported, never merged
    blindly), and identity facts the graph refused."""
    facts = {f.id: f for f in store.all_identity_facts()}
    if log is not None:
        with contextlib.suppress(LogUnavailable):  # the views alone
            facts.update((f.id, f) for f in facts_in_log(log, store.positions(log.partitions())))
    graph = graph_of(facts.values(), max_customers=max_customers)
    return {
        "max_customers": max_customers,
        "suspicious": [
            {"identifier": identifier, "customers": list(customers)}
            for identifier, customers in graph.suspicious().items()
        ],
        "refused": [
            {
                "event_id": r.event_id,
                "type": r.type,
                "customer": r.customer,
                "other": r.other,
                "at": from_micros(r.micros).isoformat(),
                "reason": r.reason,
            }
            for r in graph.refused
        ],
    }


# -- reports over every person ---------------------------------------------------------------


def joined(store: ViewStore, max_customers: int) -> dict[str, str]:
    """Every key the graph (now, as the views hold it) joins to others -> its person."""
    facts = store.all_identity_facts()
    return graph_of(facts, max_customers=max_customers).people() if facts else {}


def most_contacted(
    store: ViewStore,
    window: Window,
    *,
    channel: str | None = None,
    direction: str | None = None,
    purpose: str | None = None,
    limit: int = 20,
    max_customers: int = MAX_CUSTOMERS,
) -> list[tuple[str, int]]:
    """The people contacted most in ``window`` (the harassment report): the contacts of
    every identifier of a person counted together, under the person's id."""
    person_of = joined(store, max_customers)
    if not person_of:
        return store.most_contacted(
            window, channel=channel, direction=direction, purpose=purpose, limit=limit
        )
    rows = store.most_contacted(
        window, channel=channel, direction=direction, purpose=purpose, limit=1 << 62
    )
    totals: dict[str, int] = {}
    for subject, n in rows:
        person = person_of.get(subject, subject)
        totals[person] = totals.get(person, 0) + int(n)
    return sorted(totals.items(), key=lambda row: (-row[1], row[0]))[:limit]


def customers(
    store: ViewStore,
    now: datetime,
    *,
    status: str | None = None,
    at_risk: bool = False,
    limit: int | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> list[str]:
    """People by lifecycle status and risk, each once under their id: a person whose
    identifiers the graph joins is judged by their composed profile (purchases under a
    shop id make the CRM customer active)."""
    person_of = joined(store, max_customers)
    if not person_of:
        return store.customers(now, status=status, at_risk=at_risk, limit=limit)
    alone = [c for c in store.customers(now, status=status, at_risk=at_risk) if c not in person_of]
    members: dict[str, list[str]] = {}
    for key, person in person_of.items():
        members.setdefault(person, []).append(key)
    found = []
    for person, keys in sorted(members.items()):
        composed = combine(person, store.load_profiles(sorted(keys)))
        if composed is None:
            continue
        if status is not None and str(composed.lifecycle(now)) != status:
            continue
        if at_risk and not composed.at_risk(now):
            continue
        found.append(person)
    listed = sorted([*alone, *found])
    return listed if limit is None else listed[:limit]
