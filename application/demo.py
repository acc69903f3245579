"""The demo use case: generate a history, project it, and summarise what the ledger holds."""

from __future__ import annotations

from contextlib import closing
from typing import Any

from application import service
from application.api import policy_history
from application.decisions import rules_broken
from application.reading import revealer as revealer_of
from application.report import RelationshipReport
from application.service import DemoReport, Progress
from application.wiring import open_log, open_store
from ledger.redact import redact_url
from ledger.settings import Settings


def run_demo(
    settings: Settings,
    *,
    customers: int,
    days: int,
    seed: int,
    on_progress: Progress,
    identities: float = 0.0,
) -> DemoReport:
    """Generate ``customers`` over ``days`` (seeded) into the log, project it, and report
    the log, the relationship, the policy's violations and the contact pressure."""
    rejects = settings.data_dir / "rejects" / f"demo-{seed}.jsonl"
    with open_log(settings) as log, closing(open_store(settings)) as store:
        return service.demo(
            log,
            store,
            customers=customers,
            days=days,
            seed=seed,
            rejects_path=rejects,
            batch_size=settings.batch_size,
            policies=policy_history(settings),
            on_progress=on_progress,
            identities=identities,
        )


def demo_dict(report: DemoReport, settings: Settings) -> dict[str, Any]:
    """The demo's answer for machines (``ledger demo --json``)."""
    seen = report.overview
    revealer = revealer_of(settings)
    return {
        "log": redact_url(settings.log_url),
        "this_run": report.generated.as_dict(),
        "events": seen.events,
        "customers": seen.customers,
        "first_time": seen.first_time.isoformat() if seen.first_time else None,
        "last_time": seen.last_time.isoformat() if seen.last_time else None,
        "late_events": seen.late,
        "by_type": dict(seen.by_type.most_common()),
        "outbound_by_channel": dict(seen.outbound_by_channel.most_common()),
        "undecodable": len(seen.undecodable),
        "sample_customer": seen.busiest_customer,
        "sample": [revealer.event(r.event) for r in report.sample if r.event is not None],
        "relationship": relationship_dict(report.relationship),
        "violations": dict(rules_broken(report.violations)),
        "over_caps": dict(report.pressure.over_caps) if report.pressure else {},
        "over_contact_sources": dict(report.pressure.sources) if report.pressure else {},
    }


def relationship_dict(rel: RelationshipReport | None) -> dict[str, Any] | None:
    """The relationship report for machines."""
    if rel is None:
        return None
    return {
        "at": rel.now.isoformat(),
        "projected": rel.projected,
        "statuses": rel.statuses,
        "top_spenders": [
            {"customer": c, "currency": cur, "net_spend": str(amount)}
            for c, cur, amount in rel.top_spenders
        ],
        "complaints_open_too_long": [
            {"customer": c, "since": since.isoformat()} for c, since in rel.at_risk
        ],
        "most_contacted": [{"customer": c, "outbound_30d": n} for c, n in rel.most_contacted],
    }
