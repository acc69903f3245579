"""The customer profile projection: scenarios, order independence, an independent check."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from ledger.codec import parse_event
from ledger.events import TouchpointEvent
from ledger.generate import generated
from projections.profile import Lifecycle, Profile, apply, replay
from tests.builders import touchpoint as ev

T0 = datetime(2025, 3, 1, 12, tzinfo=UTC)


def purchase(at: datetime, amount: str, currency: str = "GBP") -> Any:
    return ev(
        "touchpoint.purchase",
        at,
        {
            "channel": "web",
            "order_id": f"O{at:%j%H}",
            "amount": amount,
            "currency": currency,
            "item_count": 1,
        },
    )


def test_spend_is_exact_per_currency_and_refunds_are_netted() -> None:
    profile = replay(
        "C1",
        [
            purchase(T0, "19.99"),
            purchase(T0 + timedelta(days=1), "0.01"),
            purchase(T0 + timedelta(days=2), "100", "TRY"),
            ev(
                "touchpoint.refund",
                T0 + timedelta(days=3),
                {"channel": "web", "order_id": "O1", "amount": "5.00", "currency": "GBP"},
            ),
        ],
    )
    assert profile.spend == {"GBP": Decimal("20.00"), "TRY": Decimal("100")}
    assert profile.net_spend() == {"GBP": Decimal("15.00"), "TRY": Decimal("100")}
    assert profile.average_order_value() == {"GBP": Decimal("10.00"), "TRY": Decimal("100.00")}
    assert (profile.purchases, profile.refunds) == (3, 1)
    assert profile.first_purchase == T0
    assert profile.last_purchase == T0 + timedelta(days=2)


@pytest.mark.parametrize(
    ("days_since_purchase", "expected"),
    [
        (None, Lifecycle.PROSPECT),
        (0, Lifecycle.ACTIVE),
        (90, Lifecycle.ACTIVE),
        (91, Lifecycle.PASSIVE),
        (365, Lifecycle.PASSIVE),
        (366, Lifecycle.LAPSED),
    ],
)
def test_lifecycle_windows(days_since_purchase: int | None, expected: Lifecycle) -> None:
    now = T0 + timedelta(days=400)
    events = (
        []
        if days_since_purchase is None
        else [purchase(now - timedelta(days=days_since_purchase), "1")]
    )
    assert replay("C1", events).lifecycle(now) == expected


def test_a_one_time_buyer_is_not_active_forever() -> None:
    profile = replay("C1", [purchase(T0, "50")])
    assert profile.lifecycle(T0 + timedelta(days=30)) == Lifecycle.ACTIVE
    assert profile.lifecycle(T0 + timedelta(days=200)) == Lifecycle.PASSIVE
    assert profile.lifecycle(T0 + timedelta(days=400)) == Lifecycle.LAPSED
    assert profile.lifecycle(T0 + timedelta(days=30), active_days=7) == Lifecycle.PASSIVE


def complaint(kind: str, at: datetime, cid: str) -> Any:
    if kind == "open":
        return ev(
            "complaint.opened",
            at,
            {"channel": "phone", "complaint_id": cid, "category": "delivery", "severity": "high"},
        )
    return ev(
        "complaint.resolved", at, {"channel": "phone", "complaint_id": cid, "resolution": "fixed"}
    )


def test_complaints_open_resolved_and_the_risk_flag() -> None:
    profile = replay(
        "C1",
        [
            complaint("open", T0, "K1"),
            complaint("open", T0 + timedelta(days=1), "K2"),
            complaint("resolved", T0 + timedelta(days=3), "K1"),
        ],
    )
    assert profile.open_complaints() == {"K2": T0 + timedelta(days=1)}
    assert profile.resolution_times() == [timedelta(days=3)]
    assert not profile.at_risk(T0 + timedelta(days=8))
    assert profile.at_risk(T0 + timedelta(days=8, seconds=1))
    assert profile.at_risk(T0 + timedelta(days=3), threshold=timedelta(days=1))


def test_a_resolution_that_arrives_before_its_complaint_still_counts() -> None:
    resolved, opened = (
        complaint("resolved", T0 + timedelta(days=2), "K9"),
        complaint("open", T0, "K9"),
    )
    profile = replay("C1", [resolved, opened])
    assert profile.open_complaints() == {}
    assert profile.resolution_times() == [timedelta(days=2)]


def test_consent_is_decided_by_event_time_not_arrival() -> None:
    grant = ev("consent.given", T0, {"channel": "sms", "evidence_source": "web"})
    withdraw = ev(
        "consent.withdrawn", T0 + timedelta(days=5), {"channel": "sms", "evidence_source": "sms"}
    )
    in_order = replay("C1", [grant, withdraw])
    late_grant = replay("C1", [withdraw, grant])
    assert in_order.consent == late_grant.consent
    assert in_order.consent["sms"].status == "withdrawn"
    denied = replay(
        "C1", [ev("consent.withdrawn", T0, {"channel": "email", "evidence_source": "web"})]
    )
    assert denied.consent["email"].status == "withdrawn"  # no grant before: a denial


def test_details_keep_the_latest_value_of_each_field() -> None:
    profile = replay(
        "C1",
        [
            ev(
                "customer.details",
                T0,
                {
                    "personal": {"name": "Ayşe", "phone": "+905321234567"},
                    "time_zone": "Europe/Istanbul",
                },
            ),
            ev("customer.details", T0 + timedelta(days=9), {"time_zone": "Europe/London"}),
            ev("customer.details", T0 - timedelta(days=9), {"personal": {"name": "old name"}}),
        ],
    )
    assert {k: v.value for k, v in profile.details.items()} == {
        "name": "Ayşe",
        "phone": "+905321234567",
        "time_zone": "Europe/London",
    }


def test_contacts_touches_and_feedback() -> None:
    profile = replay(
        "C1",
        [
            ev("touchpoint.sms", T0, {"direction": "outbound", "purpose": "marketing"}),
            ev(
                "touchpoint.call",
                T0 + timedelta(hours=1),
                {"direction": "inbound", "outcome": "abandoned"},
            ),
            ev(
                "feedback.given",
                T0 + timedelta(hours=2),
                {"channel": "sms", "scale": "nps", "score": 9},
            ),
            ev(
                "feedback.given",
                T0 - timedelta(hours=2),
                {"channel": "sms", "scale": "nps", "score": 3},
            ),
        ],
    )
    assert profile.by_channel == {"sms": 3, "phone": 1}
    assert profile.last_outbound == T0
    assert profile.last_inbound == T0 + timedelta(hours=2)
    assert (profile.first_touch, profile.last_touch) == (
        T0 - timedelta(hours=2),
        T0 + timedelta(hours=2),
    )
    nps = profile.feedback["nps"]
    assert (nps.latest_score, nps.mean) == (9, 6.0)


def history_by_customer(customers: int = 300, seed: int = 21) -> dict[str, list[TouchpointEvent]]:
    by_customer: dict[str, list[TouchpointEvent]] = defaultdict(list)
    for document in generated(customers, 365, seed):
        event = parse_event(document)
        by_customer[event.subject].append(event)
    return by_customer


def test_the_profile_does_not_depend_on_arrival_order() -> None:
    rng = random.Random(5)
    for customer, events in list(history_by_customer(120).items()):
        shuffled = events[:]
        rng.shuffle(shuffled)
        assert replay(customer, shuffled) == replay(customer, events), customer


def test_an_independent_computation_agrees() -> None:
    """A few lines of plain Python over the raw documents, against the projection."""
    now = datetime(2026, 1, 1, tzinfo=UTC)
    documents: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for document in generated(300, 365, seed=21):
        documents[document["subject"]].append(document)
    statuses: dict[str, int] = defaultdict(int)
    for customer, docs in documents.items():
        profile = replay(customer, (parse_event(d) for d in docs))
        buys = [d for d in docs if d["type"] == "touchpoint.purchase"]
        spend: dict[str, Decimal] = defaultdict(Decimal)
        for d in buys:
            spend[d["data"]["currency"]] += Decimal(d["data"]["amount"])
        for d in docs:
            if d["type"] == "touchpoint.refund":
                spend[d["data"]["currency"]] -= Decimal(d["data"]["amount"])
        assert profile.net_spend() == dict(sorted(spend.items())), customer
        opened = {d["data"]["complaint_id"] for d in docs if d["type"] == "complaint.opened"}
        closed = {d["data"]["complaint_id"] for d in docs if d["type"] == "complaint.resolved"}
        assert set(profile.open_complaints()) == opened - closed
        consent_docs = sorted(
            (d for d in docs if d["type"].startswith("consent.")),
            key=lambda d: datetime.fromisoformat(d["time"]),
        )
        latest = {d["data"]["channel"]: d["type"] for d in consent_docs}
        assert {ch: c.status for ch, c in profile.consent.items()} == {
            ch: "granted" if t == "consent.given" else "withdrawn" for ch, t in latest.items()
        }
        last = max((datetime.fromisoformat(d["time"]) for d in buys), default=None)
        expected = (
            "prospect"
            if last is None
            else "active"
            if now - last <= timedelta(days=90)
            else "lapsed"
            if now - last > timedelta(days=365)
            else "passive"
        )
        assert profile.lifecycle(now) == expected
        statuses[expected] += 1
    assert all(statuses[s] > 0 for s in ("prospect", "active", "passive")), statuses


def test_profiles_serialise_and_read_back_exactly() -> None:
    for customer, events in list(history_by_customer(40).items()):
        profile = replay(customer, events)
        assert Profile.from_json(profile.to_json()) == profile


def test_apply_returns_the_profile_it_was_given() -> None:
    profile = Profile(customer="C1")
    assert apply(profile, purchase(T0, "1")) is profile


def test_records_of_may_contact_decisions_are_not_touchpoints() -> None:
    from projections import frequency
    from projections.fact import fact_of

    history = [e for e in map(parse_event, generated(5, 60, seed=4)) if e.subject == "C0000001"]
    decision = {"channel": "sms", "purpose": "marketing", "policy_version": "v1"}
    decision["policy_sha256"] = "a" * 64
    checks = [
        ev("contact.allowed", "2025-02-01T10:00:00Z", decision, "C0000001"),
        ev(
            "contact.blocked",
            "2025-02-02T10:00:00Z",
            {**decision, "reasons": [{"rule": "consent", "message": "no sms consent"}]},
            "C0000001",
        ),
    ]
    assert replay("C0000001", [*history, *checks]) == replay("C0000001", history)
    assert [frequency.contact_key(fact_of(e)) for e in checks] == [None, None]
