"""An independent check of per-person contact counts with the identity graph (issue 12).

A generated history of more than 50,000 events, a tenth of its customers known to several
systems (SMS to phone numbers, e-mails to addresses, purchases under shop ids, links made
late, wrong merges undone), goes into the embedded log and is projected (by worker
processes: the backlog is large). Every customer's contact counts, as the ledger answers
them for the person, must equal what an oracle computes from the JSON Lines of the same
history with plain Python: its own reading of links and merges, its own union of people,
its own counting. It shares no code with the ledger.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from application.fresh import customer_fresh
from application.service import generate_into, write_generated
from application.wiring import open_log, open_store
from consumers.projector import Projector
from ledger.settings import Settings
from projections.frequency import Window

CUSTOMERS, DAYS, SEED, SHARE = 2_400, 365, 12, 0.1
START = datetime(2025, 1, 1, tzinfo=UTC)
END = START + timedelta(days=DAYS + 30)
MAX_CUSTOMERS = 2


def oracle_people(events: list[dict[str, Any]]) -> dict[str, set[str]]:
    """Key -> every key of its person, from the identity events (standing at the end)."""
    links: dict[str, set[str]] = defaultdict(set)  # identifier -> customers
    merges: dict[str, str] = {}
    identity = [e for e in events if e["type"] in IDENTITY]
    identity.sort(key=lambda e: (e["time"], e["id"]))  # all in UTC "Z" form here
    for event in identity:
        who, data = event["subject"], event["data"]
        if event["type"] == "identity.linked":
            links[data["identifier"]].add(who)
        elif event["type"] == "identity.unlinked":
            links[data["identifier"]].discard(who)
        elif event["type"] == "customer.merged":
            assert who not in merges
            merges[who] = data["survivor"]
        elif merges.get(who) == data["survivor"]:
            del merges[who]
    parent: dict[str, str] = {}

    def find(key: str) -> str:
        while parent.get(key, key) != key:
            key = parent[key]
        return key

    def join(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[ra] = rb

    for merged, survivor in merges.items():
        join(merged, survivor)
    for identifier, customers in links.items():
        if 0 < len(customers) <= MAX_CUSTOMERS:
            for customer in customers:
                join(identifier, customer)
    groups: dict[str, set[str]] = defaultdict(set)
    everyone = {*parent, *links, *merges, *merges.values()}
    everyone |= {c for customers in links.values() for c in customers}
    for key in everyone:
        groups[find(key)].add(key)
    return {key: group for group in groups.values() for key in group}


IDENTITY = {"identity.linked", "identity.unlinked", "customer.merged", "customer.unmerged"}


# The contract's defaults, as docs/contract.md states them (events may leave them out).
CHANNEL = {"touchpoint.call": "phone", "touchpoint.email": "email", "touchpoint.sms": "sms"}
CHANNEL["touchpoint.chat"] = "chat"
DIRECTION = {
    "touchpoint.visit": "inbound",
    "touchpoint.purchase": "inbound",
    "touchpoint.refund": "inbound",
    "complaint.opened": "inbound",
    "complaint.resolved": "outbound",
    "feedback.given": "inbound",
}
PURPOSE = {"touchpoint.purchase": "transactional", "touchpoint.refund": "transactional"}
NOT_CONTACTS = {"consent.given", "consent.withdrawn", "customer.details", *IDENTITY}
NOT_CONTACTS |= {"contact.allowed", "contact.blocked"}


def oracle_counts(
    events: list[dict[str, Any]], since: datetime
) -> dict[str, Counter[tuple[str, str, str]]]:
    """Subject -> contacts since ``since`` per (channel, direction, purpose), each id once."""
    counts: dict[str, Counter[tuple[str, str, str]]] = defaultdict(Counter)
    seen: set[str] = set()
    for event in events:
        kind, data = event["type"], event["data"]
        if event["id"] in seen or kind in NOT_CONTACTS:
            continue
        seen.add(event["id"])
        when = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
        if when >= since:
            key = (
                data.get("channel") or CHANNEL[kind],
                data.get("direction") or DIRECTION[kind],
                data.get("purpose") or PURPOSE.get(kind, "service"),
            )
            counts[event["subject"]][key] += 1
    return counts


def test_person_contact_counts_equal_a_brute_force_count(tmp_path: Path) -> None:
    history = tmp_path / "history.jsonl"
    with history.open("wb") as out:
        count = write_generated(
            out, customers=CUSTOMERS, days=DAYS, seed=SEED, start=START, identities=SHARE
        )
    assert count >= 50_000
    events = [json.loads(line) for line in history.read_text().splitlines()]
    assert sum(e["type"] == "customer.unmerged" for e in events) >= 3  # wrong merges undone
    assert sum(":" in e["subject"] for e in events) >= 1_000  # touchpoints to identifiers

    settings = Settings(data_dir=tmp_path / "ledger", workers=2)
    with open_log(settings) as log:
        summary = generate_into(
            log,
            customers=CUSTOMERS,
            days=DAYS,
            seed=SEED,
            start=START,
            rejects_path=tmp_path / "rejects.jsonl",
            batch_size=20_000,
            identities=SHARE,
        )
        assert (summary.accepted, summary.rejected) == (count, 0)
        with closing(open_store(settings)) as store:
            report = Projector(log, store, workers=2).catch_up()
            assert report.workers == 2  # the identity rows went through staging files
            assert report.parked == 0

    people = oracle_people(events)
    multi = sorted({k for k, group in people.items() if len(group) > 1 and k.startswith("C")})
    assert len(multi) >= CUSTOMERS * SHARE * 0.7
    since = END - timedelta(days=120)
    counts = oracle_counts(events, since)
    window = Window.rolling(END, END - since)
    customers = [f"C{n:07d}" for n in range(1, CUSTOMERS + 1)]
    differences = []
    added_up = 0
    with open_log(settings) as log, closing(open_store(settings)) as store:
        for customer in customers:
            members = people.get(customer, {customer})
            expected: Counter[tuple[str, str, str]] = Counter()
            for member in members:
                expected.update(counts.get(member, Counter()))
            now = customer_fresh(log, store, customer, window)
            found: Counter[tuple[str, str, str]] = Counter()
            for slot, channel, direction, purpose, n in now.slots:
                if window.start <= slot < window.end:
                    found[(channel, direction, purpose)] += n
            if found != +expected:
                differences.append((customer, sorted(members), dict(found), dict(expected)))
            if len(members) > 1 and expected != counts.get(customer, Counter()):
                added_up += 1  # the graph changed this customer's count
    assert differences == []
    assert added_up >= 50  # many people's contacts only add up with the graph followed
