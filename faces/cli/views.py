"""Commands over the read models of customers: profile, contacts, contacts top, customers."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from application import views
from application.as_of import customer_contacts, customer_profile
from faces.cli.options import (
    as_of_options,
    at_option,
    fresh_option,
    json_option,
    now_or,
    parse_as_of,
    parse_time,
    parse_window,
    settings_of,
    window_option,
)
from faces.cli.render import echo_json, freshness_line
from projections.frequency import Window


@click.command()
@click.argument("customer")
@at_option
@as_of_options
@fresh_option
@json_option
@click.pass_context
def profile(
    ctx: click.Context,
    customer: str,
    at: str | None,
    as_of: str | None,
    recorded_by: str | None,
    fresh: bool | None,
    as_json: bool,
) -> None:
    """A customer's profile: details, purchases, complaints, feedback, consent, status.

    Reads the views plus the customer's records not projected yet (--fresh, the default
    on the embedded log) and says which log and view positions it saw; or, with --as-of /
    --as-recorded-by, folds the customer's history up to that moment.

    \b
    Example:
      ledger profile C0000042
      ledger profile C0000042 --json | jq .net_spend
      ledger profile C0000042 --as-of 2025-06-30
    """
    until, known_by = parse_as_of(as_of, recorded_by)
    answer = customer_profile(
        settings_of(ctx),
        customer,
        at=parse_time(at, "--at"),
        until=until,
        recorded_by=known_by,
        fresh=fresh,
    )
    if as_json:
        echo_json(answer.to_dict())
        return
    found, freshness, derived = answer.profile, answer.freshness, answer.derived()
    if freshness is not None:
        click.echo(freshness_line(freshness))
    click.echo(
        f"customer {found.customer}: {derived['status']}"
        f"{'  AT RISK (complaint open too long)' if derived['at_risk'] else ''}"
    )
    for name, stamped in found.details.items():
        click.echo(f"  {name:12} {stamped.value}")
    click.echo(
        f"  touchpoints  {sum(found.by_type.values())} "
        f"({found.first_touch:%Y-%m-%d} .. {found.last_touch:%Y-%m-%d})"
        if found.first_touch and found.last_touch
        else "  touchpoints  0"
    )
    click.echo(
        f"  purchases    {found.purchases}, net spend "
        f"{', '.join(f'{v} {c}' for c, v in found.net_spend().items()) or '-'}"
    )
    times = found.resolution_times()
    click.echo(
        f"  complaints   {len(found.complaints)} ({len(found.open_complaints())} open)"
        + (f", worst resolution {max(times)}" if times else "")
    )
    for channel, consent in sorted(found.consent.items()):
        click.echo(
            f"  consent      {channel}: {consent.status} since "
            f"{consent.since:%Y-%m-%d} ({consent.evidence_source})"
        )


class ContactsGroup(click.Group):
    """``ledger contacts CUSTOMER`` and ``ledger contacts top``: any unknown name is a customer."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return command if command is not None else _customer_contacts(cmd_name)


def _customer_contacts(customer: str) -> click.Command:
    @click.command(name=customer, help=f"Contacts of customer {customer} per channel.")
    @window_option(None)
    @at_option
    @as_of_options
    @fresh_option
    @json_option
    @click.pass_context
    def show(
        ctx: click.Context,
        window: str | None,
        at: str | None,
        as_of: str | None,
        recorded_by: str | None,
        fresh: bool | None,
        as_json: bool,
    ) -> None:
        until, known_by = parse_as_of(as_of, recorded_by)
        at_time = parse_time(at, "--at")
        lengths = [window] if window else ["24h", "7d", "30d", "90d"]
        answer = customer_contacts(
            settings_of(ctx),
            customer,
            {w: parse_window(w) for w in lengths},
            at=at_time,
            until=until,
            recorded_by=known_by,
            fresh=fresh,
        )
        if as_json:
            echo_json(answer.to_dict())
            return
        now, freshness, per_window = answer.now, answer.freshness, answer.per_window
        if freshness is not None:
            click.echo(freshness_line(freshness))
        table = Table(
            "channel",
            "direction",
            "purpose",
            *lengths,
            title=f"Contacts of {customer} up to {now:%Y-%m-%d %H:%M %Z}",
        )
        for key in answer.keys:
            table.add_row(*key, *(str(per_window[w].get(key, 0)) for w in lengths))
        Console().print(table)

    return show


@click.group(cls=ContactsGroup)
def contacts() -> None:
    """Contact frequency: `contacts CUSTOMER` per channel, `contacts top` across customers.

    \b
    Example:
      ledger contacts C0000042 --window 7d
      ledger contacts top --window 7d --channel sms --direction outbound --purpose marketing
    """


@contacts.command("top")
@window_option("7d")
@click.option("--channel", help="Only this channel (sms, email, phone, ...).")
@click.option("--direction", type=click.Choice(["inbound", "outbound"]))
@click.option("--purpose", type=click.Choice(["service", "transactional", "marketing"]))
@click.option("--limit", type=click.IntRange(1, 100_000), default=20, show_default=True)
@at_option
@json_option
@click.pass_context
def contacts_top(
    ctx: click.Context,
    window: str,
    channel: str | None,
    direction: str | None,
    purpose: str | None,
    limit: int,
    at: str | None,
    as_json: bool,
) -> None:
    """The most-contacted customers in a window: the harassment report.

    \b
    Example:
      ledger contacts top --window 7d --direction outbound --purpose marketing
    """
    now = now_or(at)
    rows = views.most_contacted(
        settings_of(ctx),
        Window.rolling(now, parse_window(window)),
        channel=channel,
        direction=direction,
        purpose=purpose,
        limit=limit,
    )
    if as_json:
        echo_json(views.most_contacted_dicts(rows))
        return
    table = Table("customer", f"contacts in {window}", title=f"Most contacted up to {now:%Y-%m-%d}")
    for customer, n in rows:
        table.add_row(customer, str(n))
    Console().print(table)


@click.command()
@click.option("--status", type=click.Choice(["active", "passive", "lapsed", "prospect"]))
@click.option("--risk", is_flag=True, help="Only customers with a complaint open over 7 days.")
@click.option("--limit", type=click.IntRange(1), help="At most this many.")
@at_option
@json_option
@click.pass_context
def customers(
    ctx: click.Context,
    status: str | None,
    risk: bool,
    limit: int | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Customers by lifecycle status (active, passive, lapsed, prospect) and risk.

    \b
    Example:
      ledger customers --status lapsed
      ledger customers --risk --json
    """
    found = views.customers(settings_of(ctx), now_or(at), status=status, at_risk=risk, limit=limit)
    if as_json:
        echo_json(found)
        return
    for customer in found:
        click.echo(customer)
