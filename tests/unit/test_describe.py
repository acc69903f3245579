"""The one-line descriptions people read in tables."""

from __future__ import annotations

from typing import Any

import pytest

from ledger.codec import parse_event
from ledger.describe import describe
from ledger.events import EVENT_CLASSES
from ledger.generate import generated
from tests.builders import touchpoint

BASE = {"id": "e", "source": "s", "subject": "C1", "time": "2025-01-01T10:00:00Z"}


@pytest.mark.parametrize(
    ("event_type", "data", "text"),
    [
        (
            "touchpoint.call",
            {
                "direction": "inbound",
                "outcome": "answered",
                "wait_seconds": 75,
                "duration_seconds": 130,
            },
            "inbound service call answered, waited 75s, talked 2m10s",
        ),
        (
            "touchpoint.call",
            {
                "direction": "outbound",
                "purpose": "marketing",
                "outcome": "missed",
                "campaign": "spring",
            },
            "outbound marketing (spring) call missed",
        ),
        (
            "touchpoint.purchase",
            {
                "channel": "web",
                "order_id": "O1",
                "amount": "9.90",
                "currency": "TRY",
                "item_count": 2,
            },
            "order O1: 9.90 TRY, 2 items",
        ),
        (
            "complaint.resolved",
            {
                "channel": "phone",
                "complaint_id": "K1",
                "resolution": "compensated",
                "compensation": {"amount": "10", "currency": "GBP"},
            },
            "complaint K1 resolved: compensated (10 GBP)",
        ),
        (
            "feedback.given",
            {"channel": "sms", "scale": "nps", "score": 3, "about": "K1"},
            "NPS 3 about K1",
        ),
    ],
)
def test_descriptions(event_type: str, data: dict[str, Any], text: str) -> None:
    assert describe(parse_event({**BASE, "type": event_type, "data": data})) == text


DECISION = {
    "channel": "sms",
    "purpose": "marketing",
    "policy_version": "v1",
    "policy_sha256": "0" * 64,
}
BLOCKED = {
    "reasons": [
        {"rule": "cap", "message": "2 per 7d reached"},
        {"rule": "quiet", "message": "quiet time"},
        {"rule": "cap", "message": "3 per 30d reached"},
    ]
}


def test_every_type_has_its_own_description() -> None:
    seen = {}
    for document in generated(300, 365, seed=2):
        event = parse_event(document)
        seen.setdefault(event.type, describe(event))
    for kind, data in (("contact.allowed", {}), ("contact.blocked", BLOCKED)):
        decision = touchpoint(kind, "2026-03-04T10:00:00Z", {**DECISION, **data})
        seen[kind] = describe(decision)
    erased = touchpoint("customer.erased", "2026-03-04T10:00:00Z", {"reason": "KVKK request"})
    seen["customer.erased"] = describe(erased)
    assert seen["customer.erased"] == "personal data erased (KVKK request)"
    for kind, data in (
        ("identity.linked", {"identifier": "phone:+905551112233", "evidence": "sms code"}),
        ("identity.unlinked", {"identifier": "email:a@example.com"}),
        ("customer.merged", {"survivor": "C1", "reason": "same person"}),
        ("customer.unmerged", {"survivor": "C1", "reason": "wrong merge"}),
    ):
        seen[kind] = describe(touchpoint(kind, "2026-03-04T10:00:00Z", data))
    assert set(seen) == set(EVENT_CLASSES)
    assert all(text != name for name, text in seen.items())
    assert seen["contact.blocked"] == "may-contact check: marketing sms blocked by cap, quiet"
