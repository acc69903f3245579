"""Service levels from real logs and real view stores (issue 13).

* an independent brute-force computation over more than 50,000 generated events, sharing
  no code with the fold, the store or the calendar, gives the figures the views give;
* "as of" a moment equals a rebuild of the log cut at that moment;
* Kafka and the embedded log, SQLite and PostgreSQL, give the same rows and figures.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from application import service_levels as use_cases
from application.policy_files import default_policy
from application.wiring import open_log, open_store
from consumers.projector import Projector
from ledger.codec import parse_event
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import StoreUrlFactory

IST = ZoneInfo("Europe/Istanbul")
FAR = datetime(2030, 1, 1, tzinfo=UTC)
POLICY = default_policy().policy


def project(settings: Settings, events: list[Any] | None = None) -> None:
    with open_log(settings) as log:
        if events is not None:
            log.append(events)
        store = open_store(settings)
        try:
            Projector(log, store, batch_size=2000).catch_up()
        finally:
            store.close()


def figures(settings: Settings, **options: Any) -> dict[str, Any]:
    store = open_store(settings)
    try:
        report = use_cases.service_levels(store, POLICY, **options)
    finally:
        store.close()
    return {g.group: g.to_dict() for g in report.groups}


# -- the brute force: plain Python over the generated JSON, nothing of the ledger's -------

TURKEY = {(1, 1), (4, 23), (5, 1), (5, 19), (7, 15), (8, 30), (10, 29)}


def open_day(day: date) -> bool:
    return day.weekday() < 5 and (day.month, day.day) not in TURKEY


def deadline(received: datetime, days: int) -> datetime:
    """Closing time (18:00 Istanbul) of the business day ``days`` after the one the
    message counts on (Istanbul has had no DST since 2016: plain wall-clock arithmetic)."""
    local = received.astimezone(IST)
    day = local.date()
    if not (open_day(day) and local.time() < time(18)):
        day += timedelta(days=1)
        while not open_day(day):
            day += timedelta(days=1)
    for _ in range(days):
        day += timedelta(days=1)
        while not open_day(day):
            day += timedelta(days=1)
    return datetime.combine(day, time(18), IST)


def when(document: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(document["time"].replace("Z", "+00:00"))


def brute_force(documents: list[dict[str, Any]]) -> dict[str, Counter[str]]:
    days: dict[str, Counter[str]] = defaultdict(Counter)
    replies: dict[tuple[str, str], datetime] = {}
    for d in documents:
        data = d["data"]
        if data.get("in_reply_to") and data["direction"] == "outbound":
            key = (d["subject"], data["in_reply_to"])
            replies[key] = min(when(d), replies.get(key, FAR))
    openings: dict[tuple[str, str], datetime] = {}
    resolutions: dict[tuple[str, str], datetime] = {}
    for d in documents:
        data, t = d["data"], when(d)
        day = t.astimezone(IST).date().isoformat()
        if d["type"] == "touchpoint.call" and data["direction"] == "inbound":
            wait = data.get("wait_seconds", 0)
            if data["outcome"] == "abandoned" and wait < 5:
                days[day]["short"] += 1
                continue
            days[day]["offered"] += 1
            if data["outcome"] == "answered":
                days[day]["answered"] += 1
                days[day]["in_time"] += wait <= 20
            elif data["outcome"] in ("abandoned", "missed"):
                days[day]["abandoned"] += 1
        elif (
            d["type"] in ("touchpoint.email", "touchpoint.sms", "touchpoint.chat")
            and data["direction"] == "inbound"
            and data.get("purpose", "service") == "service"
        ):
            days[day]["messages"] += 1
            reply = replies.get((d["subject"], d["id"]))
            if reply is not None:
                days[day]["replied"] += 1
                days[day]["replied_in_time"] += max(reply, t) < deadline(t, 1)
        elif d["type"] == "complaint.opened":
            key = (d["subject"], data["complaint_id"])
            openings[key] = min(t, openings.get(key, FAR))
        elif d["type"] == "complaint.resolved":
            key = (d["subject"], data["complaint_id"])
            resolutions[key] = min(t, resolutions.get(key, FAR))
    for key, opened in openings.items():
        day = opened.astimezone(IST).date().isoformat()
        days[day]["complaints"] += 1
        resolved = resolutions.get(key)
        if resolved is not None:
            days[day]["resolved"] += 1
            days[day]["resolved_in_time"] += max(resolved, opened) < deadline(opened, 5)
    return days


def ledger_counts(found: dict[str, Any]) -> dict[str, Counter[str]]:
    days: dict[str, Counter[str]] = defaultdict(Counter)
    for day, f in found.items():
        calls, messages, complaints = f["calls"], f["messages"], f["complaints"]
        days[day].update(
            {
                "short": calls["short_abandons"],
                "offered": calls["offered"],
                "answered": calls["answered"],
                "in_time": calls["answered_in_time"],
                "abandoned": calls["abandoned"],
                "messages": messages["received"],
                "replied": messages["replied"],
                "replied_in_time": messages["replied_in_time"],
                "complaints": complaints["opened"],
                "resolved": complaints["resolved"],
                "resolved_in_time": complaints["resolved_in_time"],
            }
        )
        days[day] += Counter()  # drop zeros, as the brute force never writes them
    return {day: counts for day, counts in days.items() if counts}


def test_figures_equal_an_independent_brute_force_over_50000_events(tmp_path: Path) -> None:
    documents = list(generated(2500, 365, seed=13))
    assert len(documents) > 50_000
    settings = Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")
    project(settings, [parse_event(d) for d in documents])
    expected = {day: c + Counter() for day, c in brute_force(documents).items()}
    found = ledger_counts(figures(settings, as_of=FAR))
    assert found == expected
    totals = sum(expected.values(), Counter())
    # The history is as messy as a real desk: every kind of figure occurs.
    assert min(totals.values()) > 50, totals
    assert totals["replied"] < totals["messages"]  # some never answered
    assert totals["replied_in_time"] < totals["replied"]  # some answered late


# -- as of, rebuilds, stores and logs ---------------------------------------------------


def test_as_of_equals_a_rebuild_of_the_log_cut_then(
    tmp_path: Path, store_url: StoreUrlFactory
) -> None:
    events = [parse_event(d) for d in generated(400, 200, seed=5)]
    cut = datetime(2025, 4, 15, 12, tzinfo=UTC)
    whole = Settings(log=f"sqlite:///{tmp_path / 'a.db'}", store=store_url("whole"))
    part = Settings(log=f"sqlite:///{tmp_path / 'b.db'}", store=store_url("part"))
    project(whole, events)
    project(part, [e for e in events if e.time <= cut])
    for by in ("day", "agent", "queue"):
        as_of = figures(whole, as_of=cut, by=by)
        assert as_of == figures(part, as_of=cut, by=by)
        assert as_of != figures(whole, as_of=FAR, by=by)
    # The same from the log itself, folded by the projection's code.
    with open_log(whole) as log:
        rows = use_cases.rows_from_log(log, until=cut)
    scope = use_cases.scope_of(None, None, None, cut)
    from_log = use_cases.report(rows, scope, POLICY, "day")
    assert {g.group: g.to_dict() for g in from_log.groups} == figures(whole, as_of=cut)
    store = open_store(whole)
    try:
        breaches, _ = use_cases.sla_breaches(store, POLICY, open_only=True, as_of=cut)
        churn = use_cases.churn(store, POLICY, as_of=FAR)
    finally:
        store.close()
    assert breaches
    assert all(b.answered is None and b.deadline <= cut for b in breaches)
    assert churn.bad_customers > 0
    assert churn.good_customers > 0


def test_kafka_figures_equal_embedded_figures(
    kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    events = [parse_event(d) for d in generated(150, 150, seed=8)]
    embedded = Settings(log=f"sqlite:///{tmp_path / 'e.db'}", store=f"sqlite:///{tmp_path}/e-v.db")
    kafka = kafka_settings().model_copy(update={"store": f"sqlite:///{tmp_path}/k-v.db"})
    project(embedded, events)
    project(kafka, events)
    project(kafka, events)  # published twice: every event still counts once
    with open_log(kafka) as log:
        log.append(events[:500])
    project(kafka)
    for settings in (embedded, kafka):
        store = open_store(settings)
        try:
            rows = store.dump()["service_facts"]
        finally:
            store.close()
        assert len(rows) > 400
        if settings is embedded:
            first = rows
    assert rows == first
    for by in ("day", "week", "agent"):
        assert figures(kafka, as_of=FAR, by=by) == figures(embedded, as_of=FAR, by=by)


def test_churn_is_higher_after_bad_service_in_the_generated_history(tmp_path: Path) -> None:
    documents = generated(3000, 365, seed=21)
    settings = Settings(log=f"sqlite:///{tmp_path / 'log.db'}", store=f"sqlite:///{tmp_path}/v.db")
    project(settings, [parse_event(d) for d in documents])
    store = open_store(settings)
    try:
        report = use_cases.churn(store, POLICY, as_of=datetime(2026, 1, 1, tzinfo=UTC))
    finally:
        store.close()
    bad, good = report.to_dict()["bad_service"], report.to_dict()["no_bad_service"]
    assert bad["customers"] > 100, report.to_dict()
    assert good["customers"] > 100, report.to_dict()
    assert bad["rate"] > good["rate"], report.to_dict()


def test_churn_and_sla_breaches_follow_the_person(tmp_path: Path) -> None:
    """Issue 13 under issue 12: a customer buys under their shop id and calls and texts
    from a phone number. Until the number is linked to them, the abandoned call and the
    unanswered text are a stranger's (who never bought: left out of churn); once linked,
    they are the customer's bad service, and the late text is the customer's breach."""
    from contextlib import closing

    from application import identity
    from tests.builders import touchpoint

    settings = Settings(data_dir=tmp_path, store=f"sqlite:///{tmp_path / 'views.db'}")
    t0 = datetime(2025, 1, 6, 10, tzinfo=IST)
    day = timedelta(days=1)
    phone = "phone:+905321234567"
    order = {"channel": "web", "order_id": "O-1", "amount": "10", "currency": "TRY"}
    call = {"direction": "inbound", "outcome": "abandoned", "wait_seconds": 600}
    project(
        settings,
        [
            touchpoint("touchpoint.purchase", t0, {**order, "item_count": 1}, "C1"),
            touchpoint("touchpoint.call", t0 + day, call, phone),
            touchpoint("touchpoint.sms", t0 + day, {"direction": "inbound"}, phone),
        ],
    )
    as_of = t0 + 200 * day

    def answers() -> tuple[dict[str, Any], list[str]]:
        with closing(open_store(settings)) as store:
            churn = use_cases.churn(store, POLICY, as_of=as_of).to_dict()
            late, _ = use_cases.sla_breaches(store, POLICY, as_of=as_of)
        return churn, [b.customer for b in late]

    churn, late = answers()
    assert churn["bad_service"]["customers"] == 0
    assert churn["left_out"]["no_purchase_before"] == 1  # the number: no purchase of its own
    assert len(late) == 1
    assert late[0].startswith("h:")  # the number's key, stored hashed (issue 10)
    with open_log(settings) as log:
        identity.link(log, "C1", phone, evidence="sms code", at=t0)
    project(settings)
    churn, late = answers()
    assert churn["bad_service"] == {
        "customers": 1,
        "stopped_buying": 1,
        "rate": 1.0,
        "first_bad_experience": {"long_wait_abandoned": 1},
    }
    assert churn["left_out"]["no_purchase_before"] == 0
    assert late == ["C1"]
