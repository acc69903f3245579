"""``ledger demo``: generate a history and show what the ledger holds."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from application.decisions import rules_broken
from application.demo import demo_dict, run_demo
from application.service import DemoReport
from faces.cli.options import json_option, progress_bar, settings_of
from faces.cli.render import echo_json, render_pressure, render_relationship
from ledger.describe import describe
from ledger.redact import redact_url
from ledger.settings import Settings


@click.command()
@click.option("--customers", type=click.IntRange(1, 1_000_000), default=2000, show_default=True)
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--seed", type=int, default=42, show_default=True)
@click.option(
    "--identities",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of customers known to several systems (see `ledger generate`).",
)
@json_option
@click.pass_context
def demo(
    ctx: click.Context, customers: int, days: int, seed: int, identities: float, as_json: bool
) -> None:
    """Generate a history into the log (embedded by default) and show what it holds.

    Running it again appends nothing: the generated ids are deterministic, so every
    event is recognised as a duplicate.

    \b
    Example:
      ledger demo
      ledger --data-dir /tmp/crm demo --customers 10000 --json
      ledger --data-dir /tmp/people demo --identities 0.1
    """
    settings = settings_of(ctx)
    with progress_bar("generating", None, False) as advance:
        report = run_demo(
            settings,
            customers=customers,
            days=days,
            seed=seed,
            on_progress=advance,
            identities=identities,
        )
    if as_json:
        echo_json(demo_dict(report, settings))
        return
    _render_demo(report, settings)


def _render_demo(report: DemoReport, settings: Settings) -> None:
    console = Console()
    run, seen = report.generated, report.overview
    console.print(f"[bold]touchpoint-ledger demo[/bold]  log: {redact_url(settings.log_url)}")
    console.print(
        f"this run: {run.accepted} appended, {run.duplicates} already there "
        f"(duplicates), {run.rejected} rejected"
    )
    span = (
        f"{seen.first_time:%Y-%m-%d} .. {seen.last_time:%Y-%m-%d}"
        if seen.first_time and seen.last_time
        else "-"
    )
    console.print(
        f"the log holds {seen.events} touchpoints of {seen.customers} customers, "
        f"{span}; {seen.late} arrived after later ones (late uploads)"
    )
    types = Table("type", "events", title="Touchpoints by type", title_justify="left")
    for name, count in seen.by_type.most_common():
        types.add_row(name, str(count))
    console.print(types)
    channels = Table(
        "channel", "outbound contacts", title="Outbound contacts by channel", title_justify="left"
    )
    for name, count in seen.outbound_by_channel.most_common():
        channels.add_row(name, str(count))
    console.print(channels)
    if report.sample:
        history = Table(
            "position",
            "time",
            "type",
            "what",
            title_justify="left",
            title=f"The busiest customer, {seen.busiest_customer} (first 15)",
        )
        for record in report.sample:
            assert record.event is not None
            history.add_row(
                str(record.position),
                f"{record.event.time:%Y-%m-%d %H:%M%z}",
                record.event.type,
                describe(record.event),
            )
        console.print(history)
    if report.relationship is not None:
        render_relationship(console, report.relationship)
    if report.pressure is not None:
        by_rule = rules_broken(report.violations)
        console.print(
            f"[bold]Contact policy[/bold]: {len(report.violations)} outbound contacts broke it "
            "when they happened ("
            + (", ".join(f"{n} {rule}" for rule, n in by_rule.most_common()) or "none")
            + ")"
        )
        render_pressure(console, report.pressure, "30d")
    if seen.undecodable:
        console.print(f"[red]{len(seen.undecodable)} records could not be decoded[/red]")
    at = f" --at {report.relationship.now:%Y-%m-%d}" if report.relationship else ""
    console.print("next:")
    for hint in (
        f"ledger replay --customer {seen.busiest_customer}",
        f"ledger profile {seen.busiest_customer}{at}",
        f"ledger contacts top --window 30d --direction outbound{at}",
        f"ledger customers --risk{at}",
        "ledger violations --channel sms",
        f"ledger pressure --window 30d{at}",
    ):
        console.print(f"  {hint}")
