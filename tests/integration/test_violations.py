"""``ledger violations`` against a brute-force checker written from the policy's words.

The checker shares no code with ``projections.policy``: for every outbound contact it scans
the customer's whole history for what had happened before it, and applies the rules of the
built-in policy (read from the file) with plain datetime arithmetic.
"""

from __future__ import annotations

import itertools
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from application import service
from application.policy_files import default_history, default_policy
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.sqlite_log import SQLiteLog
from projections.policy import PolicyHistory, parse_policy
from tests.builders import touchpoint

SLOT = 900  # seconds: contact counts are kept per quarter-hour
DAY_NAMES = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


def seconds(text: str) -> int:
    return int(text[:-1]) * {"m": 60, "h": 3600, "d": 86400, "w": 604800}[text[-1]]


def slot(moment: datetime) -> int:
    return int((moment - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) // SLOT


def local_days(per: str, day: date) -> tuple[date, date]:
    if per == "calendar-day":
        return day, day
    if per == "calendar-week":
        monday = day - timedelta(days=day.weekday())
        return monday, monday + timedelta(days=6)
    first = day.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1) - timedelta(days=1)


def brute_force(
    documents: list[dict[str, Any]], policy: dict[str, Any]
) -> set[tuple[str, frozenset[str]]]:
    by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in documents:
        d = {**d, "when": datetime.fromisoformat(d["time"]).astimezone(UTC)}
        by_customer[d["subject"]].append(d)
    found = set()
    for events in by_customer.values():
        events.sort(key=lambda d: (d["when"], d["id"]))
        for index, contact in enumerate(events):
            data, at = contact["data"], contact["when"]
            if data.get("direction") != "outbound" or "purpose" not in data:
                continue
            before = events[:index]
            channel, purpose = data["channel"], data["purpose"]
            zones = [d["data"]["time_zone"] for d in before if d["data"].get("time_zone")]
            local = at.astimezone(ZoneInfo(zones[-1] if zones else policy["time_zone"]))
            rules = set()
            if purpose in policy["consent"]["required_for"] and channel in (
                "phone",
                "sms",
                "email",
            ):
                said = [
                    d["type"]
                    for d in before
                    if d["type"].startswith("consent.") and d["data"]["channel"] == channel
                ]
                if not said or said[-1] != "consent.given":
                    rules.add("consent")
            if purpose == "marketing":
                opened = {
                    d["data"]["complaint_id"] for d in before if d["type"] == "complaint.opened"
                }
                resolved = {
                    d["data"]["complaint_id"]: d["when"]
                    for d in before
                    if d["type"] == "complaint.resolved"
                }
                if opened - set(resolved):
                    rules.add("complaint")
                cool = timedelta(seconds=seconds(policy["complaints"]["cool_down"]))
                if resolved and at < max(resolved.values()) + cool:
                    rules.add("complaint")
            for cap in policy["caps"]:
                if cap["purpose"] != purpose or cap["channel"] not in ("*", channel):
                    continue
                sent = [
                    d
                    for d in before
                    if d["data"].get("direction") == "outbound"
                    and d["data"].get("purpose") == purpose
                    and (cap["channel"] == "*" or d["data"].get("channel") == channel)
                ]
                if cap["per"].startswith("calendar"):
                    first, last = local_days(cap["per"], local.date())
                    count = sum(
                        first <= d["when"].astimezone(local.tzinfo).date() <= last for d in sent
                    )
                else:
                    oldest = slot(at - timedelta(seconds=seconds(cap["per"])))
                    count = sum(oldest <= slot(d["when"]) for d in sent)
                if count >= cap["max"]:
                    rules.add("cap")
            for quiet in policy["quiet"]:
                if purpose not in quiet["purposes"] or channel not in quiet["channels"]:
                    continue
                if DAY_NAMES[local.weekday()] in quiet.get("days", []):
                    rules.add("quiet")
                if "start" in quiet:
                    start, end, clock = quiet["start"], quiet["end"], f"{local:%H:%M:%S}"
                    if (start <= clock < end) if start < end else (clock >= start or clock < end):
                        rules.add("quiet")
            if rules:
                found.add((contact["id"], frozenset(rules)))
    return found


def test_violations_agree_with_a_brute_force_check_on_50000_events(tmp_path: Path) -> None:
    documents = list(itertools.islice(generated(3000, 365, seed=31), 60_000))
    assert len(documents) >= 50_000
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append([parse_event(d) for d in documents])
        loaded = default_policy()
        found = service.find_violations(log, default_history())
    # The checker reads the stored (canonical) events, as the ledger does.
    with SQLiteLog(tmp_path / "log.db", create=False) as log:
        stored = [r.event.model_dump(mode="json", exclude_none=True) for r in log.read() if r.event]
    expected = brute_force(stored, loaded.policy.model_dump(mode="json"))
    got = {(v.event_id, frozenset(r.rule for r in v.reasons)) for v in found}
    assert len(got) > 1000  # the generated history over-contacts on purpose
    assert {rule for _, rules in got for rule in rules} == {"consent", "cap", "quiet", "complaint"}
    assert got == expected


def test_a_later_withdrawal_does_not_make_an_earlier_contact_a_violation(tmp_path: Path) -> None:
    t = datetime(2026, 3, 2, 10, tzinfo=UTC)  # a Monday, 13:00 in Istanbul

    sms = {"direction": "outbound", "purpose": "marketing"}
    given = touchpoint(
        "consent.given", t - timedelta(days=30), {"channel": "sms", "evidence_source": "web"}
    )
    sent = touchpoint("touchpoint.sms", t, sms)
    withdrawn = touchpoint(
        "consent.withdrawn", t + timedelta(days=1), {"channel": "sms", "evidence_source": "sms"}
    )
    again = touchpoint("touchpoint.sms", t + timedelta(days=2), sms)
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append([again, withdrawn, sent, given])  # arrival order does not matter
        found = service.find_violations(log, default_history())
    assert [(v.event_id, [r.rule for r in v.reasons]) for v in found] == [(again.id, ["consent"])]


def test_a_contact_is_judged_by_the_policy_version_in_force_then(tmp_path: Path) -> None:
    """Version 1 allows two marketing SMS a week; version 2, from 4 March, one. An SMS on
    8 March with one in the week before: fine under version 1, a violation under version 2,
    which was in force then."""
    cap = '[[caps]]\nchannel = "sms"\npurpose = "marketing"\nmax = {}\nper = "7d"\n'
    v1 = parse_policy('version = "v1"\n' + cap.format(2))
    v2 = parse_policy('version = "v2"\neffective_from = 2026-03-04T00:00:00Z\n' + cap.format(1))
    history = PolicyHistory([v1, v2])

    sms = {"direction": "outbound", "purpose": "marketing"}
    events = [
        touchpoint(
            "consent.given", "2026-01-01T00:00:00Z", {"channel": "sms", "evidence_source": "web"}
        ),
        touchpoint("touchpoint.sms", "2026-03-01T10:00:00Z", sms),
        touchpoint("touchpoint.sms", "2026-03-02T10:00:00Z", sms),  # v1: 1 before, allowed
        touchpoint("touchpoint.sms", "2026-03-08T11:00:00Z", sms),  # 1 in the week before
    ]
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events)
        found = service.find_violations(log, history)
        under_v1 = service.find_violations(log, PolicyHistory([v1]))
    assert [(v.event_id, v.policy_version) for v in found] == [(events[3].id, "v2")]
    assert under_v1 == []


def test_kafka_and_the_embedded_log_give_the_same_violations(
    tmp_path: Path, kafka_settings: Any
) -> None:
    """The embedded log is read customer by customer, Kafka grouped in memory; both must
    judge the same contacts the same way (Kafka's re-published events counted once)."""
    from application.wiring import open_log

    events = [parse_event(d) for d in generated(300, 200, seed=9)]
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events)
        embedded = service.find_violations(log, default_history())
    with open_log(kafka_settings()) as log:
        log.append(events)
        log.append(events[:400])  # re-published
        from_kafka = service.find_violations(log, default_history())
    assert len(embedded) > 50
    assert [v.to_dict() for v in from_kafka] == [v.to_dict() for v in embedded]
    assert {v.source for v in embedded} != {None}


def test_pressure_counts_calendar_caps_in_each_customers_own_day(tmp_path: Path) -> None:
    """The default policy's "1 marketing e-mail per calendar day" in the pressure report:
    A (no zone: the policy's UTC) got two on one day; B got two on one UTC day, but in
    Auckland (UTC+13) they fall on two days; C's second one comes after the report's time."""
    from application.pressure import pressure
    from consumers.projector import Projector
    from consumers.store import SQLiteViewStore

    mail = {"direction": "outbound", "purpose": "marketing"}
    events = [
        touchpoint("touchpoint.email", "2026-03-03T09:00:00Z", mail, "A"),
        touchpoint("touchpoint.email", "2026-03-03T10:00:00Z", mail, "A"),
        touchpoint(
            "customer.details", "2026-01-01T00:00:00Z", {"time_zone": "Pacific/Auckland"}, "B"
        ),
        touchpoint("touchpoint.email", "2026-03-03T10:00:00Z", mail, "B"),
        touchpoint("touchpoint.email", "2026-03-03T12:00:00Z", mail, "B"),
        touchpoint("touchpoint.email", "2026-03-03T09:00:00Z", mail, "C"),
        touchpoint("touchpoint.email", "2026-03-03T20:00:00Z", mail, "C"),
    ]
    with SQLiteLog(tmp_path / "log.db") as log:
        log.append(events)
        store = SQLiteViewStore(tmp_path / "views.db", "embedded")
        Projector(log, store, workers=1).catch_up()
    at = datetime(2026, 3, 3, 12, 30, tzinfo=UTC)
    report = pressure(store, default_policy(), at, timedelta(days=7))
    store.close()
    over = dict(report.over_caps)
    assert over["marketing email: at most 1 per calendar day"] == 1  # A only
    assert over["marketing sms: at most 4 per 30d"] == 0  # rolling caps as before
