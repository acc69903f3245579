"""The synthetic history is deterministic, valid, and as messy as a real CRM."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import timedelta

import pytest

from ledger.codec import ADDITIVE_TYPES, parse_event
from ledger.events import (
    DECISION_TYPES,
    EVENT_CLASSES,
    IDENTITY_TYPES,
    TouchpointEvent,
    schema_urn_of,
)
from ledger.generate import VERSION_2_FIELDS, generated


@pytest.fixture(scope="module")
def history() -> list[TouchpointEvent]:
    return [parse_event(document) for document in generated(1500, 365, seed=11)]


def test_same_seed_same_history_other_seed_other_history() -> None:
    assert list(generated(200, 60, seed=3)) == list(generated(200, 60, seed=3))
    assert list(generated(200, 60, seed=3)) != list(generated(200, 60, seed=4))


def test_every_type_occurs_and_ids_are_unique(history: list[TouchpointEvent]) -> None:
    # Every type of touchpoint; decision records are the ledger's own, not generated.
    # Nor are erasures (ledger erase), nor identity facts (unless --identities).
    generated_types = set(EVENT_CLASSES) - DECISION_TYPES - IDENTITY_TYPES - {"customer.erased"}
    assert {event.type for event in history} == generated_types
    assert len({event.id for event in history}) == len(history)


def test_buyers_are_repeat_one_time_or_never(history: list[TouchpointEvent]) -> None:
    purchases = Counter(e.subject for e in history if e.type == "touchpoint.purchase")
    customers = {e.subject for e in history}
    one_time = sum(1 for count in purchases.values() if count == 1)
    repeat = sum(1 for count in purchases.values() if count >= 4)
    never = len(customers) - len(purchases)
    assert min(one_time, repeat, never) > len(customers) * 0.1, (one_time, repeat, never)


def test_complaints_resolved_quickly_late_and_never(history: list[TouchpointEvent]) -> None:
    opened = {
        e.data.complaint_id: e.time
        for e in history  # type: ignore[union-attr]
        if e.type == "complaint.opened"
    }
    resolved = {
        e.data.complaint_id: e.time
        for e in history  # type: ignore[union-attr]
        if e.type == "complaint.resolved"
    }
    assert set(resolved) <= set(opened)
    delays = [resolved[c] - opened[c] for c in resolved]
    assert any(d < timedelta(days=2) for d in delays)
    assert any(d > timedelta(days=14) for d in delays)
    assert len(opened) - len(resolved) > len(opened) * 0.05  # never resolved


def test_call_centre_has_waits_and_abandoned_calls(history: list[TouchpointEvent]) -> None:
    calls = [e.data for e in history if e.type == "touchpoint.call"]
    outcomes = Counter(c.outcome for c in calls)  # type: ignore[union-attr]
    assert outcomes["answered"] > outcomes["abandoned"] > 0
    assert max(c.wait_seconds for c in calls) > 600  # type: ignore[union-attr]


def test_some_customers_are_over_contacted(history: list[TouchpointEvent]) -> None:
    sms_by_customer: dict[str, list[TouchpointEvent]] = defaultdict(list)
    for e in history:
        if e.type == "touchpoint.sms" and e.data.direction == "outbound":  # type: ignore[union-attr]
            sms_by_customer[e.subject].append(e)
    worst = max(
        max(
            sum(1 for other in sent if timedelta(0) <= other.time - first.time < timedelta(days=7))
            for first in sent
        )
        for sent in sms_by_customer.values()
    )
    assert worst >= 4  # several marketing SMS in one week
    sources = Counter(e.source for e in history if e.type == "touchpoint.sms")
    assert sources["marketing/partner-promotions"] > 0


def test_marketing_continues_after_some_withdrawals(history: list[TouchpointEvent]) -> None:
    withdrawn = {
        (e.subject, e.data.channel): e.time
        for e in history  # type: ignore[union-attr]
        if e.type == "consent.withdrawn"
    }
    after = [
        e
        for e in history
        if e.type == "touchpoint.sms"
        and (e.subject, "sms") in withdrawn
        and e.time > withdrawn[(e.subject, "sms")]
    ]
    assert after, "the generator must produce contacts the policy should flag"


def test_only_store_uploads_arrive_late(history: list[TouchpointEvent]) -> None:
    latest = history[0].time
    late_sources = Counter()
    for event in history:
        if event.time < latest:
            late_sources[event.source] += 1
        latest = max(latest, event.time)
    assert set(late_sources) == {"shop/pos"}
    assert 0 < sum(late_sources.values()) < len(history) * 0.02


def test_payloads_of_newer_versions_name_their_schema() -> None:
    """A v2 payload without ``dataschema`` would be read as version 1 (absent means v1):
    every payload that needs a newer version names it; payloads of types whose newer
    version only added optional fields, using none of them, stay version 1 as before."""
    raw = list(generated(customers=60, days=120, seed=3))
    newer = [
        e
        for e in raw
        if EVENT_CLASSES[e["type"]].schema_version != 1
        and (e["type"] not in ADDITIVE_TYPES or not VERSION_2_FIELDS.isdisjoint(e["data"]))
    ]
    assert newer, "the history holds no type of a version above 1"
    assert {e["type"] for e in newer} >= {"feedback.given", "touchpoint.call", "touchpoint.email"}
    for event in newer:
        assert event["dataschema"] == schema_urn_of(event["type"])
    assert all("dataschema" not in e for e in raw if e not in newer)


def test_identities_add_links_and_rewrite_subjects_and_leave_the_rest_alone() -> None:
    plain = list(generated(400, 200, seed=4))
    with_ids = list(generated(400, 200, seed=4, identities=0.1))
    assert list(generated(400, 200, seed=4, identities=0.1)) == with_ids  # deterministic
    by_id = {e["id"]: e for e in plain}
    added = [e for e in with_ids if e["id"] not in by_id]
    assert {e["type"] for e in added} <= IDENTITY_TYPES
    assert sum(e["type"] == "identity.linked" for e in added) >= 40
    kept = [e for e in with_ids if e["id"] in by_id]
    assert len(kept) == len(plain)
    changed = [e for e in kept if e != by_id[e["id"]]]
    assert changed
    for event in changed:  # only the subject moved: to an identifier of the same customer
        assert {**event, "subject": by_id[event["id"]]["subject"]} == by_id[event["id"]]
        assert event["subject"].split(":")[0] in ("phone", "email", "external")
    for document in with_ids:
        parse_event(document)
