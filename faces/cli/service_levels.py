"""CLI: `ledger service-levels`, `ledger sla breaches`, `ledger churn after-bad-service`.

Thin commands: parse, call one function of :mod:`application.service_levels`, render (a
table for people, ``--json`` for machines, an SVG chart with ``--chart``).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from application import service_levels as use_cases
from faces.charts import service_level_chart
from faces.cli.options import settings_of
from projections.policy import Policy
from projections.service_levels import Figures

F = TypeVar("F", bound=Callable[..., Any])
CHANNELS = ["phone", "email", "sms", "chat", "social", "web", "store"]
OPTION = {"since": "--since", "until": "--until", "as_of": "--as-of", "by": "--by"}


@contextmanager
def _arguments() -> Iterator[None]:
    """A service-level argument that cannot be read, as click's usage error for its option."""
    try:
        yield
    except use_cases.BadArgument as exc:
        raise click.BadParameter(exc.problem, param_hint=OPTION[exc.name]) from None


def common_options(function: F) -> F:
    for option in reversed(
        [
            click.option(
                "--as-of",
                help="Judge as things stood then (RFC 3339, or YYYY-MM-DD: the end of that "
                "local day); default now.",
            ),
            click.option(
                "--policy",
                "policy_file",
                type=click.Path(dir_okay=False, path_type=Path),
                help="Calendar and targets from this policy file (default: the one in force).",
            ),
            click.option("--json", "as_json", is_flag=True, help="Print JSON for machines."),
        ]
    ):
        function = option(function)
    return function


def service_rule_lines(policy: Policy) -> list[str]:
    """The policy's calendar and service targets, for `ledger policy show`."""
    calendar, service = policy.calendar, policy.service
    hours = ", ".join(
        f"{day[:3]} {getattr(calendar.hours, day)}"
        for day in ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
    holidays = len(calendar.every_year) + len(calendar.holidays)
    return [
        f"  calendar           {calendar.time_zone}: {hours}; {holidays} holidays "
        f"({len(calendar.every_year)} every year)",
        f"  service levels     {service.target:.0%} answered within "
        f"{service.answer_within_seconds}s (short abandons under "
        f"{service.short_abandon_seconds}s left out); replies by business day "
        f"+{service.reply_within_business_days}, complaints by "
        f"+{service.resolve_within_business_days}",
    ]


def _percent(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _seconds(value: float | None) -> str:
    if value is None:
        return "-"
    if value < 120:
        return f"{value:.0f}s"
    if value < 7200:
        return f"{value / 60:.0f}m"
    if value < 172_800:
        return f"{value / 3600:.1f}h"
    return f"{value / 86_400:.1f}d"


@click.command("service-levels")
@click.option("--since", help="Openings at or after (RFC 3339, or YYYY-MM-DD: local day).")
@click.option("--until", help="Openings before (RFC 3339, or YYYY-MM-DD: that day included).")
@click.option("--channel", type=click.Choice(CHANNELS), help="Only this channel.")
@click.option(
    "--by",
    type=click.Choice(["day", "week", "agent", "queue"]),
    default="day",
    show_default=True,
    help="One row per local day or ISO week of the calendar's zone, agent or queue.",
)
@click.option(
    "--chart",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    help="Also write an SVG chart of service level and abandonment per row to this file.",
)
@common_options
@click.pass_context
def service_levels_command(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    channel: str | None,
    by: str,
    chart: Path | None,
    as_of: str | None,
    policy_file: Path | None,
    as_json: bool,
) -> None:
    """Service levels: calls answered in time, abandonment, waits, first-reply times in
    business hours, complaint resolution against SLA, CSAT; per day, week, agent or queue.

    Definitions (printed with the figures): short abandons are left out; service level is
    answered within the threshold / offered; reply and resolution SLAs count business days
    of the policy's [calendar]. Figures come from the views (`ledger project run`).

    \b
    Example:
      ledger service-levels --since 2025-06-01 --until 2025-06-30
      ledger service-levels --by agent --channel phone --json
      ledger service-levels --since 2025-01-01 --chart service.svg
    """
    with _arguments():
        report = use_cases.service_levels_of(
            settings_of(ctx),
            use_cases.Question(as_of, policy_file),
            since=since,
            until=until,
            channel=channel,
            by=by,
        )
    if chart is not None:
        title = f"Service level and abandonment per {by} ({report.zone})"
        chart.write_text(service_level_chart(report.groups, report.rules.target, title))
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(report.to_dict()) + b"\n")
        return
    _render(report)
    if chart is not None:
        click.echo(f"chart: {chart}")


def _render(report: use_cases.ServiceLevelReport) -> None:
    click.echo(
        f"{'group':<12} {'offered':>7} {'SL':>6} {'aband':>6} {'short':>5} {'ASA':>5} "
        f"{'p90':>5} | {'msgs':>5} {'in SLA':>6} {'unans':>5} {'reply50':>7} | "
        f"{'cmpl':>4} {'in SLA':>6} {'reop':>4} | {'CSAT':>4}"
    )
    for figures in [*report.groups, report.total]:
        click.echo(_line(figures))
    for name, text in report.to_dict()["definitions"].items():
        if name != "churn":
            click.echo(f"  {name}: {text}")


def _line(f: Figures) -> str:
    d = f.to_dict()
    calls, messages, complaints, feedback = (
        d["calls"],
        d["messages"],
        d["complaints"],
        d["feedback"],
    )
    csat = feedback["csat_average"]
    return (
        f"{f.group:<12} {calls['offered']:>7} {_percent(calls['service_level']):>6} "
        f"{_percent(calls['abandonment_rate']):>6} {calls['short_abandons']:>5} "
        f"{_seconds(calls['average_speed_of_answer']):>5} {_seconds(calls['wait_p90']):>5} | "
        f"{messages['received']:>5} {_percent(messages['within_sla']):>6} "
        f"{messages['unanswered']:>5} {_seconds(messages['first_reply_business_p50']):>7} | "
        f"{complaints['opened']:>4} {_percent(complaints['within_sla']):>6} "
        f"{complaints['reopened']:>4} | {'-' if csat is None else f'{csat:.2f}':>4}"
    )


@click.group("sla")
def sla() -> None:
    """Service-level agreements: what is late.

    \b
    Example:
      ledger sla breaches --open
    """


@sla.command("breaches")
@click.option("--open", "open_only", is_flag=True, help="Only those still unanswered.")
@click.option("--since", help="Received at or after (RFC 3339, or YYYY-MM-DD).")
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@common_options
@click.pass_context
def sla_breaches(
    ctx: click.Context,
    open_only: bool,
    since: str | None,
    limit: int,
    as_of: str | None,
    policy_file: Path | None,
    as_json: bool,
) -> None:
    """Messages not replied to and complaints not resolved by their SLA deadline, most
    overdue first: the operator's to-do list (--open), or every late answer too.

    \b
    Example:
      ledger sla breaches --open
      ledger sla breaches --since 2025-06-01 --json | jq -r .customer
    """
    with _arguments():
        answer = use_cases.sla_breaches_of(
            settings_of(ctx),
            use_cases.Question(as_of, policy_file),
            open_only=open_only,
            since=since,
        )
    found, now, policy = answer.breaches, answer.now, answer.policy
    if as_json:
        out = sys.stdout.buffer
        for line in answer.to_dicts():
            out.write(orjson.dumps(line) + b"\n")
        return
    still_open = sum(1 for b in found if b.answered is None)
    click.echo(
        f"{len(found)} SLA breaches as of {now:%Y-%m-%d %H:%M} UTC ({still_open} still open; "
        f"replies due by business day +{policy.service.reply_within_business_days}, "
        f"complaints by +{policy.service.resolve_within_business_days}, "
        f"calendar {policy.calendar.time_zone})"
    )
    for breach in found[:limit]:
        state = "OPEN" if breach.answered is None else f"answered {breach.answered:%Y-%m-%d %H:%M}"
        click.echo(
            f"  {breach.kind:<9} {breach.customer}  {breach.item}  {breach.channel or '-'}  "
            f"due {breach.deadline:%Y-%m-%d %H:%M %Z}  late {_seconds(breach.late_by(now))}  "
            f"{state}"
        )
    if len(found) > limit:
        click.echo(f"  ... and {len(found) - limit} more (--limit, or --json for all)")


@click.group("churn")
def churn() -> None:
    """Churn reports.

    \b
    Example:
      ledger churn after-bad-service
    """


@churn.command("after-bad-service")
@common_options
@click.pass_context
def churn_after_bad_service(
    ctx: click.Context, as_of: str | None, policy_file: Path | None, as_json: bool
) -> None:
    """Did bad service cost us the customer? Customers who stopped buying after a bad
    experience, against customers whose service was fine, with the counts, the window and
    the definition, so an analyst can check it.

    \b
    Example:
      ledger churn after-bad-service
      ledger churn after-bad-service --as-of 2025-12-31 --json
    """
    with _arguments():
        report, answer = use_cases.churn_of(
            settings_of(ctx), use_cases.Question(as_of, policy_file)
        )
    definition = answer["definition"]
    if as_json:
        sys.stdout.buffer.write(orjson.dumps(answer) + b"\n")
        return
    d = report.to_dict()
    bad, good = d["bad_service"], d["no_bad_service"]
    click.echo(f"As of {report.as_of:%Y-%m-%d %H:%M} UTC, window {report.lapse_days} days:")
    click.echo(
        f"  after bad service:    {bad['stopped_buying']:>6} of {bad['customers']:>6} stopped "
        f"buying ({_percent(bad['rate'])})"
    )
    click.echo(
        f"  without bad service:  {good['stopped_buying']:>6} of {good['customers']:>6} stopped "
        f"buying ({_percent(good['rate'])})"
    )
    if bad["rate"] is not None and good["rate"]:
        click.echo(f"  relative risk: {bad['rate'] / good['rate']:.2f}x")
    reasons = ", ".join(f"{n} {why}" for why, n in bad["first_bad_experience"].items())
    click.echo(f"  first bad experience: {reasons or 'none'}")
    left = d["left_out"]
    click.echo(
        f"  left out: {left['reference_too_recent']} too recent to judge, "
        f"{left['no_purchase_before']} had bought nothing before"
    )
    click.echo(f"Definition: {definition}")
