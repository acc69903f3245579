"""An independent check of read-your-writes decisions (issue 18).

A generated history of more than 50,000 events (plus a burst of recent withdrawals,
complaints and marketing contacts) goes into the embedded log; views are cut at random
positions; every sampled decision made over those views plus the log's tail must equal
the decision an oracle makes over the full log. The oracle shares no code with the
ledger: it reads the SQLite file with ``sqlite3`` and ``json`` and applies the (small)
test policy itself.
"""

from __future__ import annotations

import json
import random
import sqlite3
import uuid
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from application.api import Ledger
from application.service import generate_into
from application.wiring import open_log, open_store
from consumers.folding import RunReport, item_of_stored
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.settings import Settings
from projections.policy import parse_policy

POLICY = """
version = "oracle"
time_zone = "UTC"
[consent]
required_for = ["marketing"]
[complaints]
no_marketing_while_open = true
[[caps]]
channel = "sms"
purpose = "marketing"
max = 2
per = "7d"
[[caps]]
channel = "*"
purpose = "marketing"
max = 3
per = "30d"
"""
CAPS = [("sms", 2, timedelta(days=7)), ("*", 3, timedelta(days=30))]
ASKS = [("sms", "marketing"), ("email", "marketing"), ("phone", "marketing"), ("sms", "service")]


def oracle(rows: list[tuple[int, str, int, bytes]], channel: str, purpose: str, at: int) -> Any:
    """(allowed, rules) for one customer's rows ``(position, type, micros, state)``."""
    rules: set[str] = set()
    if purpose == "marketing":
        consent = None
        for _, kind, _micros, state in sorted(rows, key=lambda r: (r[2], r[0])):
            data = json.loads(state)["data"]
            if kind in ("consent.given", "consent.withdrawn") and data["channel"] == channel:
                consent = kind
        if channel in ("sms", "email", "phone") and consent != "consent.given":
            rules.add("consent")
        opened, resolved = set(), set()
        for _, kind, _, state in rows:
            data = json.loads(state)["data"]
            if kind == "complaint.opened":
                opened.add(data["complaint_id"])
            elif kind == "complaint.resolved":
                resolved.add(data["complaint_id"])
        if opened - resolved:
            rules.add("complaint")
        for cap_channel, most, per in CAPS:
            if cap_channel not in ("*", channel):
                continue
            since = at - int(per.total_seconds() * 1_000_000)
            sent = 0
            for _, _, micros, state in rows:
                data = json.loads(state)["data"]
                if (
                    data.get("direction") == "outbound"
                    and data.get("purpose") == purpose
                    and (cap_channel == "*" or data.get("channel") == channel)
                    and since <= micros <= at
                ):
                    sent += 1
            if sent >= most:
                rules.add("cap")
    return not rules, sorted(rules)


def recent_burst(customers: list[str], end: datetime, rng: random.Random) -> list[dict[str, Any]]:
    """Withdrawals, re-grants, complaints and marketing contacts in the last days."""
    kinds = [
        ("consent.withdrawn", {"channel": "sms", "evidence_source": "web"}),
        ("consent.given", {"channel": "email", "evidence_source": "web"}),
        ("consent.given", {"channel": "sms", "evidence_source": "web"}),
        ("complaint.opened", {"channel": "phone", "complaint_id": "K-X", "category": "billing"}),
        ("complaint.resolved", {"channel": "phone", "complaint_id": "K-X", "resolution": "fixed"}),
        ("touchpoint.sms", {"direction": "outbound", "purpose": "marketing"}),
        ("touchpoint.email", {"direction": "outbound", "purpose": "marketing"}),
        (
            "touchpoint.call",
            {"direction": "outbound", "purpose": "marketing", "outcome": "answered"},
        ),
    ]
    documents = []
    for number in range(3000):
        kind, data = rng.choice(kinds)
        moment = end - timedelta(days=9) + timedelta(seconds=number * 250 + 1)
        documents.append(
            {
                "specversion": "1.0",
                "id": str(uuid.UUID(int=rng.getrandbits(128))),
                "source": "oracle",
                "type": kind,
                "subject": rng.choice(customers),
                "time": moment.isoformat().replace("+00:00", "Z"),
                "data": data,
            }
        )
    return documents


def test_decisions_over_cut_views_equal_decisions_over_the_full_log(tmp_path: Path) -> None:
    rng = random.Random(18)
    settings = Settings(data_dir=tmp_path, store=f"sqlite:///{tmp_path / 'unused.db'}")
    start = datetime(2025, 1, 1, tzinfo=UTC)
    with open_log(settings) as log:
        summary = generate_into(
            log,
            customers=1800,
            days=480,
            seed=18,
            start=start,
            rejects_path=tmp_path / "rejects.jsonl",
            batch_size=5000,
        )
        assert summary.accepted >= 50_000
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        last = db.execute("SELECT max(event_time) FROM touchpoints").fetchone()[0]
        customers = [r[0] for r in db.execute("SELECT DISTINCT subject FROM touchpoints")]
    end = datetime.fromtimestamp(last // 1_000_000, UTC).replace(minute=0, second=0)
    end += timedelta(hours=2)
    burst = recent_burst(customers[:120], end - timedelta(hours=1), rng)
    with open_log(settings) as log:
        log.append([parse_event(d) for d in burst])
    with sqlite3.connect(tmp_path / "ledger.db") as db:
        rows = db.execute(
            "SELECT rowid, subject, topic, event_time, state FROM touchpoints"
        ).fetchall()
    by_customer: dict[str, list[tuple[int, str, int, bytes]]] = defaultdict(list)
    for position, subject, kind, micros, state in rows:
        by_customer[subject].append((position, kind, micros, state))
    at_micros = int(end.timestamp()) * 1_000_000
    sample = rng.sample(customers[:120], 40) + rng.sample(customers[120:], 40)
    asks = [(c, ch, p) for c in sample for ch, p in ASKS]
    expected = [oracle(by_customer[c], ch, p, at_micros) for c, ch, p in asks]
    assert any(allowed for allowed, _ in expected)
    assert {"consent", "complaint", "cap"} <= {r for _, rules in expected for r in rules}

    # Anywhere, inside the recent burst, and the views caught up.
    cuts = [rng.randrange(1, len(rows)), len(rows) - rng.randrange(1, len(burst)), len(rows)]
    for cut in cuts:
        views = Settings(data_dir=tmp_path, store=f"sqlite:///{tmp_path / f'views-{cut}.db'}")
        with open_log(views) as log:
            store = open_store(views)
            items = [item_of_stored(s) for s in log.read_stored() if s.position.offset <= cut]
            Projector(log, store, workers=1).apply(items, report=RunReport())
            store.close()
        with Ledger(views, policy=parse_policy(POLICY)) as ledger:
            decisions = list(ledger.may_contact_many(asks, end))
        got = [(d.allowed, sorted({r.rule for r in d.reasons})) for d in decisions]
        assert got == expected, f"views cut at {cut}"
        folded = sum(d.freshness.folded for d in decisions if d.freshness)
        assert (folded > 0) == (cut < len(rows))
