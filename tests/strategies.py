"""Hypothesis strategies for valid touchpoints of every type, and for breaking them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from ledger.events import EVENT_CLASSES

PRINTABLE = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=40
)
WORDS = st.text(min_size=1, max_size=60).map(str.strip).filter(bool)
OFFSETS = st.integers(min_value=-14 * 60, max_value=14 * 60).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
TIMES = st.builds(
    lambda moment, zone: moment.replace(tzinfo=UTC).astimezone(zone),
    st.datetimes(min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1)),
    OFFSETS,
)
MONEY = st.decimals(min_value=0, max_value=Decimal("99999999.99"), places=2)
CURRENCIES = st.sampled_from(["GBP", "EUR", "TRY", "USD", "JPY"])
CHANNELS = st.sampled_from(["phone", "email", "sms", "chat", "store", "web", "social", "post"])
DIRECTIONS = st.sampled_from(["inbound", "outbound"])
PURPOSES = st.sampled_from(["service", "transactional", "marketing"])
OPTIONAL_REF = st.none() | PRINTABLE
CUSTOMER_IDS = PRINTABLE.filter(lambda s: not s.startswith(("phone:", "email:", "external:")))
IDENTIFIERS = st.one_of(
    st.integers(10**7, 10**14).map(lambda n: f"phone:+{n}"),
    st.from_regex(r"[a-zA-Z0-9._+]{1,20}@[a-z0-9]{1,20}\.[a-z]{2,6}", fullmatch=True).map(
        lambda a: f"email:{a}"
    ),
    st.tuples(st.sampled_from(["shop", "crm", "loyalty-card"]), PRINTABLE).map(
        lambda t: f"external:{t[0]}:{t[1]}"
    ),
)


def _contact(**fields: Any) -> st.SearchStrategy[dict[str, Any]]:
    base = {
        "direction": DIRECTIONS,
        "purpose": PURPOSES,
        "agent": OPTIONAL_REF,
        "campaign": OPTIONAL_REF,
    }
    return st.fixed_dictionaries({**base, **fields})


def _call() -> st.SearchStrategy[dict[str, Any]]:
    def shape(outcome: str, talk: int) -> dict[str, Any]:
        return {"outcome": outcome, "duration_seconds": talk if outcome == "answered" else 0}

    return st.tuples(
        _contact(wait_seconds=st.integers(0, 7200)),
        st.builds(
            shape,
            st.sampled_from(["answered", "abandoned", "missed", "voicemail"]),
            st.integers(0, 7200),
        ),
    ).map(lambda pair: {**pair[0], **pair[1]})


def _feedback() -> st.SearchStrategy[dict[str, Any]]:
    scales = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
    return st.sampled_from(sorted(scales)).flatmap(
        lambda scale: _contact(
            channel=CHANNELS,
            scale=st.just(scale),
            score=st.integers(*scales[scale]),
            comment=st.none() | WORDS,
            about=OPTIONAL_REF,
        )
    )


def _consent() -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(
        {
            "channel": st.sampled_from(["phone", "sms", "email"]),
            "recipient_type": st.sampled_from(["individual", "merchant"]),
            "evidence_source": st.sampled_from(["web", "call_centre", "wet_signature", "pre_2015"]),
            "evidence_ref": OPTIONAL_REF,
            "recipient": st.none() | st.sampled_from(["a@example.com", "+905321234567"]),
        }
    )


def _decision(blocked: bool) -> st.SearchStrategy[dict[str, Any]]:
    fields: dict[str, st.SearchStrategy[Any]] = {
        "channel": CHANNELS,
        "purpose": PURPOSES,
        "policy_version": PRINTABLE,
        "policy_sha256": st.text(alphabet="0123456789abcdef", min_size=64, max_size=64),
        "requested_by": OPTIONAL_REF,
    }
    if blocked:
        reason = st.fixed_dictionaries(
            {
                "rule": st.sampled_from(["consent", "cap", "quiet", "complaint"]),
                "message": WORDS,
                "until": st.none() | TIMES,
            }
        )
        fields |= {
            "reasons": st.lists(reason, min_size=1, max_size=4),
            "earliest": st.none() | TIMES,
        }
    return st.fixed_dictionaries(fields)


DATA: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "touchpoint.call": _call(),
    "touchpoint.email": _contact(
        template=OPTIONAL_REF, subject_line=st.none() | WORDS, bounced=st.booleans()
    ),
    "touchpoint.sms": _contact(template=OPTIONAL_REF, segments=st.integers(1, 10)),
    "touchpoint.chat": _contact(
        channel=st.sampled_from(["chat", "social", "web"]),
        wait_seconds=st.integers(0, 600),
        messages=st.integers(0, 90),
    ),
    "touchpoint.visit": _contact(
        channel=st.sampled_from(["store", "web"]),
        location=OPTIONAL_REF,
        duration_seconds=st.integers(0, 9999),
    ),
    "touchpoint.purchase": _contact(
        channel=CHANNELS,
        order_id=PRINTABLE,
        amount=MONEY,
        currency=CURRENCIES,
        item_count=st.integers(1, 500),
    ),
    "touchpoint.refund": _contact(
        channel=CHANNELS,
        kind=st.sampled_from(["refund", "return"]),
        order_id=PRINTABLE,
        amount=MONEY.filter(lambda amount: amount > 0),
        currency=CURRENCIES,
        item_count=st.integers(0, 50),
        reason=st.none() | WORDS,
    ),
    "complaint.opened": _contact(
        channel=CHANNELS,
        complaint_id=PRINTABLE,
        category=st.sampled_from(["product", "delivery", "privacy", "contact_frequency"]),
        severity=st.sampled_from(["low", "medium", "high", "critical"]),
        summary=st.none() | WORDS,
    ),
    "complaint.resolved": _contact(
        channel=CHANNELS,
        complaint_id=PRINTABLE,
        resolution=st.sampled_from(["fixed", "refunded", "compensated", "withdrawn"]),
        compensation=st.none() | st.fixed_dictionaries({"amount": MONEY, "currency": CURRENCIES}),
    ),
    "feedback.given": _feedback(),
    "consent.given": _consent(),
    "consent.withdrawn": _consent(),
    "customer.details": st.fixed_dictionaries(
        {
            "personal": st.fixed_dictionaries(
                {
                    "name": st.none() | WORDS,
                    "email": st.none() | st.just("x@example.org"),
                    "phone": st.none() | st.just("+441234567890"),
                }
            ),
            "country": st.none() | st.sampled_from(["GB", "TR", "US"]),
            "time_zone": st.none() | st.sampled_from(["Europe/Istanbul", "America/New_York"]),
            "locale": st.none() | st.sampled_from(["tr-TR", "en", "zh-Hant-TW"]),
        }
    ),
    "customer.erased": st.fixed_dictionaries(
        {
            "reason": WORDS,
            "request_id": OPTIONAL_REF,
            "requested_by": OPTIONAL_REF,
            "keys_destroyed": st.integers(0, 3),
        }
    ),
    "contact.allowed": _decision(blocked=False),
    "contact.blocked": _decision(blocked=True),
    "identity.linked": st.fixed_dictionaries(
        {"identifier": IDENTIFIERS, "evidence": st.none() | WORDS}
    ),
    "identity.unlinked": st.fixed_dictionaries(
        {"identifier": IDENTIFIERS, "reason": st.none() | WORDS}
    ),
    "customer.merged": st.fixed_dictionaries({"survivor": CUSTOMER_IDS, "reason": WORDS}),
    "customer.unmerged": st.fixed_dictionaries({"survivor": CUSTOMER_IDS, "reason": WORDS}),
}
assert set(DATA) == set(EVENT_CLASSES), "every event type needs a strategy"


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value


@st.composite
def event_documents(draw: st.DrawFn, types: list[str] | None = None) -> dict[str, Any]:
    """A valid structured-mode CloudEvent as a JSON-ready dict."""
    event_type = draw(st.sampled_from(types or sorted(EVENT_CLASSES)))
    data = _drop_none(draw(DATA[event_type]))
    for key, value in list(data.items()):
        if isinstance(value, Decimal):
            data[key] = str(value)
    if isinstance(data.get("compensation"), dict):
        data["compensation"]["amount"] = str(data["compensation"]["amount"])
    return {
        "specversion": "1.0",
        "id": draw(PRINTABLE),
        "source": draw(PRINTABLE),
        "type": event_type,
        "subject": draw(CUSTOMER_IDS),
        "time": draw(TIMES).isoformat(),
        "data": data,
    }
