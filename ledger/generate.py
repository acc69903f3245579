"""A deterministic synthetic CRM history: the same seed gives the same events, byte for byte.

Customers are created over the first part of the period with a time zone, contact
details and consents, then live on an agenda of processes:

* buying: prospects never buy, one-time buyers buy once, repeat and loyal buyers
  keep buying at their own pace (so "active" and "lapsed" both occur); some orders
  are refunded or returned, some get a CSAT survey;
* service: calls to queues, more at busy hours of the day, with waits that grow with the
  load (callers hang up after about 11 minutes on average; a few within seconds), chats
  answered after their wait, e-mails and social messages answered in business hours: most
  the same or next business day, some late, some never (replies name what they answer);
  customers who had bad service (a long wait abandoned, an e-mail left unanswered, a
  complaint left open) stop buying more often;
* complaints: most are resolved within days, some late, some never;
* marketing: e-mail and SMS campaigns to consenting customers, plus an
  over-contacted minority hammered by a partner programme with SMS and calls at
  any hour, with or without consent;
* visits to stores and the web shop; store systems upload some records a day
  late, so the log holds out-of-order event times.

Events come out in the order the ledger would receive them. Memory is O(customers):
each customer keeps a short agenda, and a heap picks whoever is next.
"""

from __future__ import annotations

import heapq
import random
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ledger.codec import ADDITIVE_TYPES
from ledger.events import EVENT_CLASSES, schema_urn_of

DAY = 86_400.0
HOUR = 3_600.0

# (country, time zone, locale, currency, phone prefix, weight)
REGIONS = [
    ("GB", "Europe/London", "en-GB", "GBP", "+447", 40),
    ("TR", "Europe/Istanbul", "tr-TR", "TRY", "+905", 25),
    ("US", "America/New_York", "en-US", "USD", "+1212", 12),
    ("US", "America/Los_Angeles", "en-US", "USD", "+1415", 5),
    ("DE", "Europe/Berlin", "de-DE", "EUR", "+4915", 10),
    ("FR", "Europe/Paris", "fr-FR", "EUR", "+336", 8),
]
FIRST_NAMES = [
    "Ayşe",
    "Mehmet",
    "Olivia",
    "George",
    "Emma",
    "Lukas",
    "Chloé",
    "Noah",
    "Elif",
    "James",
    "Zeynep",
    "Hannah",
    "Can",
    "Amelia",
    "Leon",
    "Sophia",
]
LAST_NAMES = [
    "Yılmaz",
    "Smith",
    "Kaya",
    "Jones",
    "Müller",
    "Martin",
    "Demir",
    "Brown",
    "Schmidt",
    "Bernard",
    "Öztürk",
    "Taylor",
    "Garcia",
    "Weber",
]
# segment -> (weight, mean days between purchases; 0 = never, -1 = exactly once)
SEGMENTS = {
    "prospect": (30, 0.0),
    "one_time": (30, -1.0),
    "repeat": (30, 75.0),
    "loyal": (10, 21.0),
}
COMPLAINT_CATEGORIES = ["product", "delivery", "billing", "service", "staff", "other"]
QUEUES = (["orders", "billing", "technical", "general"], [40, 25, 20, 15])
# Contacts per local hour (08:00-21:59) of the service desk, relative: the load.
LOAD = {8: 0.6, 9: 1.2, 10: 1.8, 11: 2.0, 12: 1.5, 13: 1.4, 14: 1.7, 15: 1.6, 16: 1.3}
LOAD |= {17: 1.0, 18: 0.8, 19: 0.7, 20: 0.5, 21: 0.4}
DESK = ZoneInfo("Europe/Istanbul")
"""The service desk's zone: e-mails are answered 09:00-18:00 on its weekdays."""
LAPSE_AFTER_BAD_SERVICE = 0.4
"""The chance that a customer who had bad service never buys again."""


VERSION_2_FIELDS = frozenset({"queue", "in_reply_to"})
"""Fields added by version 2 of calls, e-mails, SMS and chats."""

Emitted = tuple[float, dict[str, Any]]
"""An event and when the ledger receives it (its time, plus any upload delay)."""


@dataclass(slots=True)
class _Customer:
    id: str
    region: tuple[str, str, str, str, str, int]
    zone: ZoneInfo
    segment: str
    over_contacted: bool
    consent: dict[str, bool]
    agenda: list[tuple[float, int, str, Any]] = field(default_factory=list)
    orders: list[tuple[str, Decimal, int]] = field(default_factory=list)
    bad_service: bool = False
    lapsed: bool = False


class HistoryGenerator:
    """Iterate over a synthetic history as CloudEvents dicts (the JSON contract)."""

    def __init__(
        self,
        customers: int,
        days: int,
        seed: int = 1,
        start: datetime | None = None,
        *,
        identities: float = 0.0,
    ) -> None:
        if customers < 1 or days < 1:
            raise ValueError("customers and days must be at least 1")
        if not 0.0 <= identities <= 1.0:
            raise ValueError("identities must be a share between 0 and 1")
        self.customers = customers
        self.days = days
        self.seed = seed
        self.start = (start or datetime(2025, 1, 1, tzinfo=UTC)).timestamp()
        self.end = self.start + days * DAY
        self._rng = random.Random(seed)
        # Service-level details draw from their own stream, so the other kinds of events
        # stay as they were before service levels were generated.
        self._desk = random.Random(f"service-desk-{seed}")
        self._seq = 0
        self._counters = {"order": 0, "complaint": 0}
        self._identities = (
            _Identities(identities, seed, customers, self.end) if identities > 0 else None
        )

    # -- scheduling -------------------------------------------------------------------

    def _plan(self, customer: _Customer, at: float, kind: str, arg: Any = None) -> None:
        if at < self.end:
            self._seq += 1
            heapq.heappush(customer.agenda, (at, self._seq, kind, arg))

    def _after(self, now: float, mean_days: float) -> float:
        return now + self._rng.expovariate(1.0 / (mean_days * DAY))

    def __iter__(self) -> Iterator[dict[str, Any]]:
        rng = self._rng
        ready: list[tuple[float, int, int]] = []
        people: list[_Customer] = []
        for index in range(self.customers):
            customer = self._new_customer(index)
            people.append(customer)
            joined = self.start + rng.random() * 0.3 * (self.end - self.start)
            self._plan(customer, joined, "join")
            ready.append((customer.agenda[0][0], index, index))
        heapq.heapify(ready)
        # Everything produced waits here until its arrival time comes up, so the
        # stream is in arrival order; only late uploads have out-of-order event times.
        pending: list[tuple[float, int, dict[str, Any]]] = []
        while ready:
            at, _, index = heapq.heappop(ready)
            while pending and pending[0][0] <= at:
                yield heapq.heappop(pending)[2]
            customer = people[index]
            _, _, kind, arg = heapq.heappop(customer.agenda)
            emitted = self._happen(customer, at, kind, arg)
            if self._identities is not None:  # issue 12: several identifiers per person
                emitted = self._identities.after(customer.id, at, kind, emitted)
            for arrival, event in emitted:
                self._seq += 1
                heapq.heappush(pending, (max(arrival, at), self._seq, event))
            if customer.agenda:
                heapq.heappush(ready, (customer.agenda[0][0], self._seq, index))
        while pending:
            yield heapq.heappop(pending)[2]

    def _new_customer(self, index: int) -> _Customer:
        rng = self._rng
        region = rng.choices(REGIONS, weights=[r[5] for r in REGIONS])[0]
        segment = rng.choices(list(SEGMENTS), weights=[s[0] for s in SEGMENTS.values()])[0]
        return _Customer(
            id=f"C{index + 1:07d}",
            region=region,
            zone=ZoneInfo(region[1]),
            segment=segment,
            over_contacted=rng.random() < 0.04,
            consent={"email": False, "sms": False, "phone": False},
        )

    # -- what happens -----------------------------------------------------------------

    def _happen(self, c: _Customer, now: float, kind: str, arg: Any) -> list[Emitted]:
        handler = getattr(self, f"_on_{kind}")
        result: list[Emitted] = handler(c, now, arg)
        return result

    def _on_join(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        rng = self._rng
        country, zone, locale, _, prefix, _ = c.region
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        phone = prefix + "".join(rng.choice("0123456789") for _ in range(13 - len(prefix)))
        email = f"{c.id.lower()}@example.com"
        events = [
            self._event(
                c,
                now,
                "customer.details",
                "crm/profile",
                {
                    "personal": {"name": f"{first} {last}", "email": email, "phone": phone},
                    "country": country,
                    "time_zone": zone,
                    "locale": locale,
                },
            )
        ]
        for channel, chance, recipient in (
            ("email", 0.6, email),
            ("sms", 0.45, phone),
            ("phone", 0.3, phone),
        ):
            if rng.random() < chance:
                c.consent[channel] = True
                events.append(
                    self._event(
                        c,
                        now + 60,
                        "consent.given",
                        "crm/consent-portal",
                        {
                            "channel": channel,
                            "recipient_type": "individual",
                            "evidence_source": rng.choice(
                                ["web", "mobile_app", "call_centre", "wet_signature"]
                            ),
                            "recipient": recipient,
                        },
                    )
                )
        mean = SEGMENTS[c.segment][1]
        if mean == -1.0:
            self._plan(c, now + rng.random() * (self.end - now), "purchase")
        elif mean > 0:
            self._plan(c, self._after(now, mean / 2), "purchase")
        self._plan(c, self._after(now, 110), "service")
        self._plan(c, self._after(now, 500), "complaint")
        self._plan(c, self._after(now, 40), "marketing", "email")
        self._plan(c, self._after(now, 70), "marketing", "sms")
        if c.segment != "prospect":
            self._plan(c, self._after(now, 45), "visit")
        if c.over_contacted:
            self._plan(c, self._after(now, 60), "blast", 0)
        if rng.random() < 0.08:
            self._plan(c, self._after(now, 120), "moved")
        return events

    def _on_purchase(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        if c.lapsed:
            return []  # gone after bad service
        rng = self._rng
        self._counters["order"] += 1
        order = f"ORD-{self._counters['order']:09d}"
        items = rng.choice([1, 1, 1, 2, 2, 3, 4, 6])
        scale = 20 if c.region[3] != "TRY" else 400
        amount = Decimal(rng.randint(5 * scale, 60 * scale) * items) / Decimal(10)
        amount = amount.quantize(Decimal("0.01"))
        c.orders = [*c.orders[-4:], (order, amount, items)]
        in_store = rng.random() < 0.35
        data = {
            "channel": "store" if in_store else "web",
            "order_id": order,
            "amount": str(amount),
            "currency": c.region[3],
            "item_count": items,
        }
        # Store tills upload some sales overnight: recorded late, out of order.
        delay = rng.uniform(2, 30) * HOUR if in_store and rng.random() < 0.05 else 0.0
        event = self._event(
            c,
            now,
            "touchpoint.purchase",
            "shop/pos" if in_store else "shop/web",
            data,
            local=in_store,
            delay=delay,
        )
        mean = SEGMENTS[c.segment][1]
        if mean > 0:
            self._plan(c, self._after(now, mean), "purchase")
        if rng.random() < 0.06:
            self._plan(c, now + rng.uniform(3, 25) * DAY, "refund", order)
        if rng.random() < 0.12:
            self._plan(c, now + rng.uniform(1, 4) * DAY, "survey", order)
        return [event]

    def _on_refund(self, c: _Customer, now: float, order: str) -> list[Emitted]:
        rng = self._rng
        found = next((o for o in c.orders if o[0] == order), None)
        if found is None:
            return []
        _, amount, items = found
        partial = rng.random() < 0.3 and items > 1
        back = (amount / items).quantize(Decimal("0.01")) if partial else amount
        data = {
            "channel": rng.choice(["web", "store", "phone"]),
            "kind": rng.choice(["refund", "return"]),
            "order_id": order,
            "amount": str(back),
            "currency": c.region[3],
            "item_count": 1 if partial else items,
            "reason": rng.choice(["damaged", "wrong size", "late delivery", "changed mind"]),
        }
        return [self._event(c, now, "touchpoint.refund", "shop/returns", data)]

    def _on_survey(self, c: _Customer, now: float, about: str) -> list[Emitted]:
        rng = self._rng
        data = {
            "channel": "email",
            "scale": "csat",
            "score": rng.choices([1, 2, 3, 4, 5], weights=[5, 7, 15, 35, 38])[0],
            "about": about,
        }
        return [self._event(c, now, "feedback.given", "loyalty/survey", data)]

    def _on_service(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        self._plan(c, self._after(now, 110), "service")
        return self._contact(c, self._busy_time(now), purpose="service")

    def _busy_time(self, now: float) -> float:
        """A moment on ``now``'s day (or the next) at an hour drawn by the desk's load."""
        desk = self._desk
        hour = desk.choices(list(LOAD), weights=list(LOAD.values()))[0]
        local = datetime.fromtimestamp(now, DESK).replace(
            hour=hour, minute=desk.randint(0, 59), second=desk.randint(0, 59)
        )
        moment = local.timestamp()
        return moment if moment >= now else moment + DAY

    def _contact(self, c: _Customer, now: float, purpose: str) -> list[Emitted]:
        rng, desk = self._rng, self._desk
        how = rng.choices(["call", "chat", "email"], weights=[55, 30, 15])[0]
        if how == "call":
            return [self._call(c, now, purpose)]
        if how == "chat":
            social = desk.random() < 0.15
            data: dict[str, Any] = {
                "channel": "social" if social else "chat",
                "direction": "inbound",
                "purpose": purpose,
                "wait_seconds": rng.randint(0, 300),
                "duration_seconds": rng.randint(60, 1800),
                "messages": rng.randint(2, 40),
            }
            if social:  # a direct message: answered like an e-mail, not live
                data = {k: data[k] for k in ("channel", "direction", "purpose")}
            inbound = self._event(c, now, "touchpoint.chat", "crm/chat", data)
            if social:
                return [inbound, *self._reply(c, now, inbound[1], "touchpoint.chat")]
            agent = f"agent-{desk.randint(1, 40):03d}"
            reply = {
                "channel": "chat",
                "direction": "outbound",
                "purpose": purpose,
                "agent": agent,
                "in_reply_to": inbound[1]["id"],
            }
            at = now + data["wait_seconds"]
            return [inbound, self._event(c, at, "touchpoint.chat", "crm/chat", reply, ids=desk)]
        inbound = self._event(
            c,
            now,
            "touchpoint.email",
            "crm/email-desk",
            {"direction": "inbound", "purpose": purpose},
        )
        return [inbound, *self._reply(c, now, inbound[1], "touchpoint.email")]

    def _call(self, c: _Customer, now: float, purpose: str) -> Emitted:
        rng, desk = self._rng, self._desk
        base = rng.lognormvariate(4.2, 1.0)  # median ~67 s, long tail
        rng.uniform(60, 900)  # (the old patience draw: keeps the main stream as it was)
        hour = datetime.fromtimestamp(now, DESK).hour
        wait = int(base * LOAD.get(hour, 0.5) ** 2 / 5)  # queues grow with the load
        patience = desk.expovariate(1 / 660)  # hang up after 11 minutes on average
        if desk.random() < 0.03:
            patience = desk.uniform(0, 4)  # misdials and changed minds: short abandons
        answered = wait <= patience
        data: dict[str, Any] = {
            "direction": "inbound",
            "purpose": purpose,
            "outcome": "answered" if answered else "abandoned",
            "wait_seconds": min(wait, 7200) if answered else int(patience),
            "duration_seconds": int(rng.uniform(60, 1200)) if answered else 0,
            "queue": desk.choices(*QUEUES)[0],
        }
        if answered:
            data["agent"] = f"agent-{rng.randint(1, 40):03d}"
        elif patience >= 300:
            self._bad_service(c)
        return self._event(c, now, "touchpoint.call", "crm/call-centre", data)

    def _reply(self, c: _Customer, now: float, inbound: dict[str, Any], kind: str) -> list[Emitted]:
        """The desk's reply to an inbound message: in business hours, mostly the same or next
        business day, some days late, some never."""
        desk = self._desk
        fate = desk.random()
        if fate < 0.08:
            self._bad_service(c)
            return []  # never answered
        delay = desk.uniform(0.2, 6) * HOUR if fate < 0.75 else desk.uniform(1, 6) * DAY
        if fate >= 0.75:
            self._bad_service(c)
        at = self._desk_hours(now + delay)
        data = {
            "channel": inbound["data"].get("channel", "email"),
            "direction": "outbound",
            "purpose": "service",
            "agent": f"agent-{desk.randint(1, 40):03d}",
            "in_reply_to": inbound["id"],
        }
        if kind == "touchpoint.email":
            del data["channel"]
        return [self._event(c, at, kind, inbound["source"], data, ids=desk)]

    def _bad_service(self, c: _Customer) -> None:
        """A bad experience: the first one decides whether the customer walks away."""
        if not c.bad_service:
            c.bad_service = True
            c.lapsed = self._desk.random() < LAPSE_AFTER_BAD_SERVICE

    def _desk_hours(self, moment: float) -> float:
        """``moment`` if the desk is open then (09:00-18:00 on weekdays, its zone), else the
        next opening plus a few minutes."""
        local = datetime.fromtimestamp(moment, DESK)
        if local.weekday() < 5 and 9 <= local.hour < 18:
            return moment
        while local.weekday() >= 5 or local.hour >= 18:
            local = (local + timedelta(days=1)).replace(hour=9, minute=0, second=0)
        if local.hour < 9:
            local = local.replace(hour=9, minute=0, second=0)
        return max(moment, local.timestamp() + self._desk.randint(60, 3600))

    def _on_complaint(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        rng = self._rng
        self._counters["complaint"] += 1
        complaint = f"CMP-{self._counters['complaint']:08d}"
        category = rng.choice(COMPLAINT_CATEGORIES)
        if c.over_contacted and rng.random() < 0.5:
            category = "contact_frequency"
        data = {
            "channel": rng.choice(["phone", "email", "chat", "store"]),
            "complaint_id": complaint,
            "category": category,
            "severity": rng.choices(["low", "medium", "high", "critical"], weights=[30, 45, 20, 5])[
                0
            ],
        }
        fate = rng.random()
        if fate >= 0.6:  # resolved late or never
            self._bad_service(c)
        if fate < 0.6:
            self._plan(c, now + rng.uniform(0.1, 5) * DAY, "resolve", complaint)
        elif fate < 0.85:
            self._plan(c, now + rng.uniform(8, 60) * DAY, "resolve", complaint)
        # else: never resolved -- the customer is at risk
        self._plan(c, self._after(now, 500), "complaint")
        return [self._event(c, now, "complaint.opened", "crm/call-centre", data)]

    def _on_resolve(self, c: _Customer, now: float, complaint: str) -> list[Emitted]:
        rng = self._rng
        resolution = rng.choice(["fixed", "refunded", "replaced", "compensated", "explained"])
        data: dict[str, Any] = {
            "channel": rng.choice(["phone", "email"]),
            "complaint_id": complaint,
            "resolution": resolution,
        }
        if resolution == "compensated":
            data["compensation"] = {
                "amount": str(rng.choice([5, 10, 20, 50])),
                "currency": c.region[3],
            }
        events = [self._event(c, now, "complaint.resolved", "crm/call-centre", data)]
        if rng.random() < 0.3:
            events.append(
                self._event(
                    c,
                    now + 2 * HOUR,
                    "feedback.given",
                    "loyalty/survey",
                    {
                        "channel": "sms",
                        "scale": "nps",
                        "score": rng.randint(0, 10),
                        "about": complaint,
                    },
                )
            )
        return events

    def _on_marketing(self, c: _Customer, now: float, channel: str) -> list[Emitted]:
        self._plan(c, self._after(now, 40 if channel == "email" else 70), "marketing", channel)
        if not c.consent[channel] and self._rng.random() > 0.02:
            return []  # the automation honours consent, almost always
        at = self._local_hour(c, now, 10, 19)
        events = [
            self._outbound(c, at, channel, "marketing/automation", self._campaign(at, channel))
        ]
        if c.consent[channel] and self._rng.random() < 0.015:
            events.append(self._withdrawal(c, at + 3 * HOUR, channel))
        return events

    def _on_blast(self, c: _Customer, now: float, sent: int) -> list[Emitted]:
        """The partner programme: SMS every day or two and weekly calls, at any hour."""
        rng = self._rng
        if sent < 30:
            self._plan(c, now + rng.uniform(0.3, 2.5) * DAY, "blast", sent + 1)
        channel = "phone" if sent % 6 == 5 else "sms"
        at = self._local_hour(c, now, 7, 23)
        campaign = f"partner-{datetime.fromtimestamp(at, UTC):%Y-%m}"
        events = [self._outbound(c, at, channel, "marketing/partner-promotions", campaign)]
        if sent == 8 and c.consent["sms"] and rng.random() < 0.5:
            events.append(self._withdrawal(c, at + HOUR, "sms"))
        return events

    def _withdrawal(self, c: _Customer, at: float, channel: str) -> Emitted:
        # The programme keeps sending afterwards: exactly what the policy must catch.
        c.consent[channel] = False
        return self._event(
            c,
            at,
            "consent.withdrawn",
            "crm/consent-portal",
            {
                "channel": channel,
                "recipient_type": "individual",
                "evidence_source": "sms" if channel == "sms" else "web",
            },
        )

    def _on_visit(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        rng = self._rng
        self._plan(c, self._after(now, 45), "visit")
        in_store = rng.random() < 0.4
        data = {
            "channel": "store" if in_store else "web",
            "location": f"store-{rng.randint(1, 60):02d}" if in_store else "/catalogue",
            "duration_seconds": rng.randint(60, 3600),
        }
        delay = rng.uniform(2, 30) * HOUR if in_store and rng.random() < 0.05 else 0.0
        return [
            self._event(
                c,
                now,
                "touchpoint.visit",
                "shop/pos" if in_store else "shop/web",
                data,
                local=in_store,
                delay=delay,
            )
        ]

    def _on_moved(self, c: _Customer, now: float, _: Any) -> list[Emitted]:
        c.region = self._rng.choices(REGIONS, weights=[r[5] for r in REGIONS])[0]
        c.zone = ZoneInfo(c.region[1])
        return [
            self._event(
                c,
                now,
                "customer.details",
                "crm/profile",
                {"country": c.region[0], "time_zone": c.region[1], "locale": c.region[2]},
            )
        ]

    # -- helpers ----------------------------------------------------------------------

    def _outbound(
        self, c: _Customer, at: float, channel: str, source: str, campaign: str
    ) -> Emitted:
        common = {"direction": "outbound", "purpose": "marketing", "campaign": campaign}
        if channel == "phone":
            answered = self._rng.random() < 0.4
            return self._event(
                c,
                at,
                "touchpoint.call",
                source,
                {
                    **common,
                    "outcome": "answered" if answered else "missed",
                    "duration_seconds": self._rng.randint(20, 300) if answered else 0,
                },
            )
        if channel == "sms":
            return self._event(c, at, "touchpoint.sms", source, {**common, "template": "promo"})
        return self._event(c, at, "touchpoint.email", source, {**common, "template": "newsletter"})

    def _campaign(self, at: float, channel: str) -> str:
        year, week, _ = datetime.fromtimestamp(at, UTC).isocalendar()
        return f"{year}-w{week:02d}-{channel}"

    def _local_hour(self, c: _Customer, now: float, first: int, last: int) -> float:
        """The next time at or after ``now`` between ``first``:00 and ``last``:00, customer time."""
        local = datetime.fromtimestamp(now, c.zone)
        moment = local.replace(
            hour=self._rng.randint(first, last - 1), minute=self._rng.randint(0, 59), second=0
        ).timestamp()
        return moment if moment >= now else moment + DAY

    def _event(
        self,
        c: _Customer,
        at: float,
        kind: str,
        source: str,
        data: dict[str, Any],
        *,
        local: bool = False,
        delay: float = 0.0,
        ids: random.Random | None = None,
    ) -> Emitted:
        event_id = str(uuid.UUID(int=(ids or self._rng).getrandbits(128), version=4))
        if local:  # store systems stamp local time with its offset
            stamp = datetime.fromtimestamp(int(at), c.zone).isoformat()
        else:
            stamp = datetime.fromtimestamp(int(at), UTC).isoformat().replace("+00:00", "Z")
        event: dict[str, Any] = {
            "specversion": "1.0",
            "id": event_id,
            "source": source,
            "type": kind,
            "subject": c.id,
            "time": stamp,
            "datacontenttype": "application/json",
        }
        if EVENT_CLASSES[kind].schema_version != 1 and (
            kind not in ADDITIVE_TYPES or not VERSION_2_FIELDS.isdisjoint(data)
        ):
            # Absent means version 1: a payload that needs a newer version must say so (one
            # that fits version 1 unchanged stays as it was, byte for byte).
            event["dataschema"] = schema_urn_of(kind)
        event["data"] = data
        return at + delay, event


def generated(
    customers: int,
    days: int,
    seed: int = 1,
    start: datetime | None = None,
    *,
    identities: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """The synthetic history as CloudEvents dicts, in arrival order; with ``identities``,
    that share of the customers is known to several systems (see :class:`_Identities`)."""
    return iter(HistoryGenerator(customers, days, seed, start, identities=identities))


# -- identities (issue 12): one person known to several systems -------------------------


class _Identities:
    """Multi-identifier histories for a share of the customers: the SMS gateway knows their
    phone number, the e-mail platform their address, the shop its own customer number.

    At joining, each such customer gets one to three identifiers, linked at once or some
    days later (contacts before a link belong to the identifier alone until then); from
    then on some of their marketing SMS go to the phone number, some e-mails to the
    address and some purchases come under the shop id. A few get a wrong merge with
    another customer, undone days later. Everything is drawn from a random generator of
    its own, so the rest of the history (event ids included) is the same with or without
    identities; each customer takes part in at most one merge (no cycles).
    """

    def __init__(self, share: float, seed: int, customers: int, end: float) -> None:
        self.rng = random.Random(f"identities-{seed}")
        self.share = share
        self.customers = customers
        self.end = end
        self.known: dict[str, dict[str, str]] = {}
        """Customer -> the subject each kind of touchpoint goes to, when rewritten."""
        self.merged: set[str] = set()

    def after(self, customer: str, now: float, kind: str, emitted: list[Emitted]) -> list[Emitted]:
        """What happened, with subjects rewritten and identity events added."""
        if kind == "join":
            return emitted + self._join(customer, now, emitted)
        subjects = self.known.get(customer)
        if not subjects:
            return emitted
        for _, event in emitted:
            subject = subjects.get(event["type"])
            if subject is not None and self.rng.random() < 0.6:
                event["subject"] = subject
        return emitted

    def _join(self, customer: str, now: float, emitted: list[Emitted]) -> list[Emitted]:
        rng = self.rng
        if rng.random() >= self.share:
            return []
        personal = emitted[0][1]["data"]["personal"]
        number = int(customer[1:])
        candidates = {
            "touchpoint.sms": f"phone:{personal['phone']}",
            "touchpoint.email": f"email:{personal['email']}",
            "touchpoint.purchase": f"external:shop:{88_000 + number * 7}",
        }
        chosen = rng.sample(sorted(candidates), rng.randint(1, 3))
        self.known[customer] = {kind: candidates[kind] for kind in chosen}
        events = []
        for kind in chosen:
            at = now + 120 if rng.random() < 0.6 else now + rng.uniform(1, 30) * DAY
            if at < self.end:
                data = {"identifier": candidates[kind], "evidence": "verified at sign-up"}
                events.append(self._event(at, "identity.linked", customer, data))
        if rng.random() < 0.05 and customer not in self.merged:
            other = f"C{rng.randint(1, self.customers):07d}"
            merged_at = now + rng.uniform(5, 60) * DAY
            undone_at = merged_at + rng.uniform(1, 10) * DAY
            if other not in self.merged and other != customer and undone_at < self.end:
                self.merged |= {customer, other}
                reason = "same name and birth date (bulk match)"
                data = {"survivor": other, "reason": reason}
                events.append(self._event(merged_at, "customer.merged", customer, data))
                data = {"survivor": other, "reason": "different people: wrong merge"}
                events.append(self._event(undone_at, "customer.unmerged", customer, data))
        return events

    def _event(self, at: float, kind: str, customer: str, data: dict[str, Any]) -> Emitted:
        stamp = datetime.fromtimestamp(int(at), UTC).isoformat().replace("+00:00", "Z")
        return at, {
            "specversion": "1.0",
            "id": str(uuid.UUID(int=self.rng.getrandbits(128), version=4)),
            "source": "crm/identity-resolution",
            "type": kind,
            "subject": customer,
            "time": stamp,
            "datacontenttype": "application/json",
            "data": data,
        }
