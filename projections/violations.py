"""Violations: every outbound contact that, when it happened, broke the policy.

Each customer's history is walked in event-time order with the projections' own code: before
each outbound contact, the profile folded so far (consent, time zone, complaints) and the
contacts so far are handed to the same :func:`~projections.policy.decide` that answers
``may-contact``, at the contact's own time. So a contact is judged by what had happened by
then: a consent withdrawn later does not make an earlier contact a violation, and a contact
uploaded late is judged where it happened.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime

from ledger.identifiers import PERSONAL_KINDS, kind_of
from projections import frequency, identity, profile
from projections.fact import Fact
from projections.frequency import SLOT_MICROS
from projections.identity import MAX_CUSTOMERS, IdentityFact, IdentityGraph
from projections.person import combine
from projections.policy import Context, PolicyHistory, Reason, decide


@dataclass(frozen=True)
class Violation:
    """One contact that the policy in force did not allow when it happened."""

    event_id: str
    customer: str
    time: datetime
    channel: str
    purpose: str
    source: str | None
    """The service or campaign that caused it (``data.campaign``, else the event source)."""
    reasons: list[Reason]
    policy_version: str

    def to_dict(self) -> dict[str, object]:
        return {
            "event_id": self.event_id,
            "customer": self.customer,
            "time": self.time.isoformat(),
            "channel": self.channel,
            "purpose": self.purpose,
            "source": self.source,
            "rules": sorted({r.rule for r in self.reasons}),
            "reasons": [r.message for r in self.reasons],
            "policy": self.policy_version,
        }


def violations(
    history: PolicyHistory,
    customer: str,
    facts: Iterable[Fact],
    sources: Mapping[str, str] | None = None,
) -> Iterator[Violation]:
    """The violations in one customer's history (facts in any order; each id once), each
    judged by the policy version in force when it happened."""
    ordered = sorted(facts, key=lambda f: (f.micros, f.id))
    state = profile.Profile(customer)
    slots: list[tuple[int, str, str, str, int]] = []
    for fact in ordered:
        data = fact.data
        loaded = history.at(fact.time)
        outbound = data.get("direction") == "outbound" and data.get("channel")
        if loaded is not None and outbound and data.get("purpose"):
            decision = decide(
                loaded,
                Context(state, slots),
                customer=customer,
                channel=data["channel"],
                purpose=data["purpose"],
                at=fact.time,
            )
            if not decision.allowed:
                yield Violation(
                    fact.id,
                    customer,
                    fact.time,
                    data["channel"],
                    data["purpose"],
                    data.get("campaign") or (sources or {}).get(fact.id),
                    decision.reasons,
                    loaded.version,
                )
        profile.apply(state, fact)
        key = frequency.contact_key(fact)
        if key is not None:
            slots.append((fact.micros // SLOT_MICROS, key[1], key[2], key[3], 1))


def person_violations(
    history: PolicyHistory,
    facts: Iterable[Fact],
    identity_facts: Iterable[IdentityFact],
    sources: Mapping[str, str] | None = None,
    *,
    max_customers: int = MAX_CUSTOMERS,
) -> Iterator[Violation]:
    """The violations among the facts of several subjects that the identity graph joins
    (at some time) into people: each outbound contact is judged with the graph as it stood
    when it happened, by the history of every member of the contacted person then (their
    profiles composed as a live answer composes them, their contacts counted together)."""
    ordered = sorted(facts, key=lambda f: (f.micros, f.id))
    pending = identity.ordered(identity_facts)
    graph = IdentityGraph(max_customers)
    states: dict[str, profile.Profile] = {}
    slots: dict[str, list[tuple[int, str, str, str, int]]] = {}
    next_fact = 0
    for fact in ordered:
        while next_fact < len(pending) and pending[next_fact].micros <= fact.micros:
            identity.apply(graph, pending[next_fact])
            next_fact += 1
        data = fact.data
        loaded = history.at(fact.time)
        outbound = data.get("direction") == "outbound" and data.get("channel")
        if loaded is not None and outbound and data.get("purpose"):
            person = graph.person(fact.subject)
            members = [m for m in person.members if m in states or m in slots]
            composed = combine(person.id, {m: states[m] for m in members if m in states})
            own = states.get(fact.subject)
            if composed is not own and own is not None and kind_of(fact.subject) in PERSONAL_KINDS:
                assert composed is not None
                composed.state["consent"].update(own.state["consent"])
            together = sorted(s for m in members for s in slots.get(m, ()))
            decision = decide(
                loaded,
                Context(composed or profile.Profile(fact.subject), together),
                customer=fact.subject,
                channel=data["channel"],
                purpose=data["purpose"],
                at=fact.time,
            )
            if not decision.allowed:
                yield Violation(
                    fact.id,
                    fact.subject,
                    fact.time,
                    data["channel"],
                    data["purpose"],
                    data.get("campaign") or (sources or {}).get(fact.id),
                    decision.reasons,
                    loaded.version,
                )
        state = states.get(fact.subject) or profile.Profile(fact.subject)
        profile.apply(state, fact)
        states[fact.subject] = state
        key = frequency.contact_key(fact)
        if key is not None:
            slots.setdefault(fact.subject, []).append(
                (fact.micros // SLOT_MICROS, key[1], key[2], key[3], 1)
            )
