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

from projections import frequency, profile
from projections.fact import Fact
from projections.frequency import SLOT_MICROS
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
