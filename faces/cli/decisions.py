"""Commands of the contact policy: may-contact, violations, pressure, policy show/check."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import IO

import click
from rich.console import Console

from application import decisions
from application.policy_files import load_policies
from faces.cli.options import (
    at_option,
    json_option,
    now_or,
    parse_time,
    parse_window,
    policy_option,
    settings_of,
    window_option,
)
from faces.cli.render import (
    EXIT_DENIED,
    EXIT_REJECTED,
    echo_json,
    freshness_line,
    render_pressure,
    write_jsonl,
)
from faces.cli.service_levels import service_rule_lines
from ledger.settings import Settings
from ledger.vocabulary import Channel, Purpose


@click.group()
def policy() -> None:
    """The contact policy: consent, caps, quiet hours, complaint cool-down.

    \b
    Example:
      ledger policy check my-policy.toml
      ledger policy show
    """


@policy.command("check")
@click.argument("file", type=click.Path(path_type=Path))
def policy_check(file: Path) -> None:
    """Validate a policy file, or a folder of its versions (each with effective_from):
    every problem with its line, exit 1 if any.

    \b
    Example:
      ledger policy check my-policy.toml
      ledger policy check policies/
    """
    history = load_policies(file)
    for loaded in history.versions:
        rules = loaded.policy
        since = rules.effective_from.isoformat() if rules.effective_from else "the beginning"
        click.echo(
            f"{loaded.source}: ok: version {loaded.version} from {since}, {len(rules.caps)} "
            f"caps, {len(rules.quiet)} quiet rules, sha256 {loaded.sha256[:16]}"
        )


@policy.command("show")
@json_option
@click.pass_context
def policy_show(ctx: click.Context, as_json: bool) -> None:
    """The policy in force (LEDGER_POLICY, else policy.toml in the data dir, else built in).

    \b
    Example:
      ledger policy show --json | jq .caps
    """
    history = decisions.policies(settings_of(ctx))
    if as_json:
        echo_json(decisions.policy_dict(history))
        return
    loaded = history.current()
    rules = loaded.policy
    click.echo(f"policy {loaded.version} from {loaded.source} (sha256 {loaded.sha256[:16]})")
    click.echo(f"  default time zone  {rules.time_zone}")
    click.echo(f"  consent needed for {', '.join(rules.consent.required_for) or '-'}")
    for cap in rules.caps:
        click.echo(f"  cap                {cap.label()}")
    for quiet in rules.quiet:
        hours = f"{quiet.start}-{quiet.end} " if quiet.start else ""
        days = f"on {', '.join(quiet.days)} " if quiet.days else ""
        click.echo(
            f"  quiet              {hours}{days}for {', '.join(quiet.purposes)} on "
            f"{', '.join(quiet.channels)}"
        )
    complaints = rules.complaints
    rule = ["no marketing while open"] if complaints.no_marketing_while_open else []
    rule += [f"cool-down {complaints.cool_down}"] if complaints.cool_down else []
    click.echo(f"  complaints         {', '.join(rule) or '-'}")
    for purpose in ("marketing", "transactional", "service"):
        fresh = rules.freshness.of(purpose)
        hold = f", reserve for {fresh.reserve_for}" if fresh.reserve_for else ""
        click.echo(
            f"  freshness          {purpose}: {fresh.stale} when stale "
            f"(max {fresh.max_unprojected} unprojected){hold}"
        )
    for line in service_rule_lines(rules):
        click.echo(line)


@click.command("may-contact")
@click.argument("customer", required=False)
@click.option("--channel", type=click.Choice([c.value for c in Channel]))
@click.option("--purpose", type=click.Choice([p.value for p in Purpose]))
@at_option
@click.option(
    "--batch",
    type=click.File("rb"),
    help="Decide for every line of a CSV (customer,channel,purpose) or JSON Lines file "
    "('-' = stdin); one JSON decision per line out.",
)
@policy_option
@click.option(
    "--record",
    is_flag=True,
    help="Also append each decision to the log (contact.allowed / contact.blocked, with "
    "its reasons and policy version), for auditors.",
)
@click.option("--requested-by", metavar="NAME", help="The service or campaign asking (--record).")
@json_option
@click.pass_context
def may_contact(
    ctx: click.Context,
    customer: str | None,
    channel: str | None,
    purpose: str | None,
    at: str | None,
    batch: IO[bytes] | None,
    policy_file: Path | None,
    record: bool,
    requested_by: str | None,
    as_json: bool,
) -> None:
    """May we contact this customer now, on this channel, for this purpose?

    Allows or denies with every reason (no consent; cap reached by contacts on ...; quiet
    hours until ...; open complaint since ...) and, when only waiting would help, the
    earliest allowed time. Reads the views plus the customer's records not projected yet,
    so a withdrawal appended a moment ago counts; every decision says the log and view
    positions it saw. With --record, decisions are appended under a lock and an allowed
    one holds a slot under the caps for the policy's reserve_for. Exit 0 when allowed, 5
    when denied (a batch: 0, or 3 if some lines were unreadable).

    \b
    Example:
      ledger may-contact C0000042 --channel sms --purpose marketing
      ledger may-contact --batch campaign.csv > decisions.jsonl
      ledger may-contact --batch campaign.csv --record --requested-by spring-sale
    """
    settings = settings_of(ctx)
    if requested_by is not None and not record:
        raise click.UsageError("--requested-by goes with --record")
    moment = now_or(at)
    if batch is not None:
        ctx.exit(_decide_batch(settings, batch, moment, policy_file, record, requested_by))
    if customer is None or channel is None or purpose is None:
        raise click.UsageError("give CUSTOMER, --channel and --purpose (or --batch FILE)")
    decision = decisions.may_contact(
        settings,
        customer,
        channel,
        purpose,
        moment,
        policy_file=policy_file,
        record=record,
        requested_by=requested_by,
    )
    if as_json:
        echo_json(decision.to_dict())
    else:
        verdict = "ALLOWED" if decision.allowed else "DENIED"
        click.echo(
            f"{verdict}: {purpose} {channel} to {customer} at {moment:%Y-%m-%d %H:%M %Z} "
            f"(policy {decision.policy_version})"
        )
        for reason in decision.reasons:
            click.echo(f"  - {reason.rule}: {reason.message}")
        if decision.earliest:
            click.echo(f"  earliest allowed: {decision.earliest.isoformat()}")
        if decision.freshness is not None:
            click.echo(f"  {freshness_line(decision.freshness)}")
    if not decision.allowed:
        ctx.exit(EXIT_DENIED)


def _decide_batch(
    settings: Settings,
    batch: IO[bytes],
    moment: datetime,
    policy_file: Path | None,
    record: bool,
    requested_by: str | None,
) -> int:
    """Decisions for a campaign list, as JSON Lines on stdout; unreadable lines are reported
    on stderr with their number and reason. Returns the exit code (3 if any were unreadable)."""
    rejected = 0

    def unreadable(number: int, reason: str) -> None:
        nonlocal rejected
        rejected += 1
        click.echo(f"warning: line {number}: {reason}", err=True)

    recorded = 0
    for decision in decisions.may_contact_batch(
        settings,
        batch,
        moment,
        policy_file=policy_file,
        record=record,
        requested_by=requested_by,
        on_unreadable=unreadable,
    ):
        write_jsonl(decision.to_dict())
        recorded += 1
    if record:
        click.echo(f"recorded {recorded} decisions in the log", err=True)
    return EXIT_REJECTED if rejected else 0


@click.command()
@click.option(
    "--since", help="Contacts at or after (RFC 3339, or YYYY-MM-DD: from its start, UTC)."
)
@click.option(
    "--until", help="Contacts before (RFC 3339, or YYYY-MM-DD: that whole UTC day included)."
)
@click.option("--channel", type=click.Choice([c.value for c in Channel]))
@policy_option
@click.option("--limit", type=click.IntRange(min=0), default=20, show_default=True)
@json_option
@click.pass_context
def violations(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    channel: str | None,
    policy_file: Path | None,
    limit: int,
    as_json: bool,
) -> None:
    """Every outbound contact that broke the contact policy when it happened.

    Each contact is judged with the customer's history as it stood at that moment (a
    consent withdrawn later does not make an earlier contact a violation) by the same
    rules as `ledger may-contact`. With --json: one violation per line, all of them.

    \b
    Example:
      ledger violations --since 2025-06-01 --channel sms
      ledger violations --json | jq -r .source | sort | uniq -c
    """
    answer = decisions.violations(
        settings_of(ctx),
        policy_file=policy_file,
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until", day="next"),
        channel=channel,
    )
    found, history = answer.found, answer.history
    if as_json:
        for violation in found:
            write_jsonl(violation.to_dict())
        return
    by_rule = decisions.rules_broken(found)
    click.echo(
        f"{len(found)} violations of policy "
        f"{', '.join(v.version for v in history.versions)}: "
        + (", ".join(f"{n} {rule}" for rule, n in by_rule.most_common()) or "none")
    )
    for violation in found[:limit]:
        click.echo(
            f"  {violation.time:%Y-%m-%d %H:%M}  {violation.customer}  {violation.purpose} "
            f"{violation.channel}  ({violation.source}): "
            + "; ".join(r.message for r in violation.reasons)
        )
    if len(found) > limit:
        click.echo(f"  ... and {len(found) - limit} more (--limit, or --json for all)")


@click.command("pressure")
@window_option("30d")
@at_option
@policy_option
@json_option
@click.pass_context
def pressure_command(
    ctx: click.Context,
    window: str,
    at: str | None,
    policy_file: Path | None,
    as_json: bool,
) -> None:
    """Contact pressure: contacts per customer per channel, customers over each cap, and who
    caused the over-contact.

    Counts every outbound contact in the window (transactional and service ones too),
    from the views; the sources come from the violations of the caps in the window.

    \b
    Example:
      ledger pressure --window 30d
      ledger pressure --window 7d --at 2025-06-30 --json
    """
    moment = now_or(at)
    answer = decisions.contact_pressure(
        settings_of(ctx), moment, window, parse_window(window), policy_file=policy_file
    )
    if as_json:
        echo_json(answer.to_dict())
        return
    render_pressure(Console(), answer.report, window)
