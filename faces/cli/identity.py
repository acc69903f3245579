"""The identity commands: ``ledger identity``, ``link``, ``unlink``, ``merge``, ``unmerge``.

Each parses, calls one function of :mod:`application.people`, and renders a few lines
for people or ``--json`` for machines (identifiers in clear while their key exists,
``[erased]`` after ``ledger erase``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import click
import orjson
from pydantic import TypeAdapter, ValidationError

from application import identity, people
from faces.cli.options import json_option, settings_of
from ledger.errors import LedgerError
from ledger.identifiers import EMAIL, EXTERNAL, PHONE
from ledger.log import Appended
from ledger.payloads import Moment

F = TypeVar("F", bound=Callable[..., Any])
_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)


def _time(value: str | None, option: str, *, end_of_day: bool = False) -> datetime | None:
    """RFC 3339 with a zone, or a bare YYYY-MM-DD: the start of that UTC day (when a link
    or merge became true), or with ``end_of_day`` its last microsecond (``--as-of``)."""
    if value is None:
        return None
    try:
        if len(value) == 10:
            day = datetime.fromisoformat(value).replace(tzinfo=UTC)
            return day + timedelta(days=1) - timedelta(microseconds=1) if end_of_day else day
        return _MOMENT.validate_python(value)
    except (ValueError, ValidationError) as exc:
        raise click.BadParameter(str(exc).splitlines()[0], param_hint=option) from None


def _identifier_options(function: F) -> F:
    for name, kind, text in (
        ("--external", EXTERNAL, "An id in another system, SYSTEM:ID (e.g. shop:88412)."),
        ("--email", EMAIL, "An e-mail address (its domain is lower-cased)."),
        ("--phone", PHONE, "A phone number (written in any usual way; kept in E.164)."),
    ):
        function = click.option(name, kind, metavar="VALUE", help=text)(function)
    return function


def _one_identifier(phone: str | None, email: str | None, external: str | None) -> str:
    given = [(k, v) for k, v in ((PHONE, phone), (EMAIL, email), (EXTERNAL, external)) if v]
    if len(given) != 1:
        raise click.UsageError("give exactly one of --phone, --email, --external")
    kind, value = given[0]
    return identity.identifier_of(kind, value)


def _appended(document: dict[str, Any], outcome: object, as_json: bool) -> None:
    where = str(outcome.position) if isinstance(outcome, Appended) else None
    if as_json:
        click.echo(orjson.dumps({"event": document, "position": where}))
        return
    data = document["data"]
    what = data.get("identifier") or f"survivor {data.get('survivor')}"
    click.echo(f"{document['type']}: {document['subject']} ({what}) at {where or 'duplicate'}")


class IdentityGroup(click.Group):
    """``ledger identity CUSTOMER`` and ``ledger identity suspicious``: any other name is a
    customer id or an identifier."""

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        return command if command is not None else _show(cmd_name)


@click.group("identity", cls=IdentityGroup)
def identity_group() -> None:
    """One person across every system: `identity KEY` shows the graph, `identity
    suspicious` the identifiers shared by too many customers.

    \b
    Example:
      ledger identity C0000042
      ledger identity phone:+905551112233 --as-of 2025-06-30 --json
      ledger identity suspicious
    """


def _show(key: str) -> click.Command:
    @click.command(name=key, help=f"The identity graph of {key}.")
    @click.option("--as-of", "as_of", metavar="TIME", help="The graph as it stood at TIME.")
    @json_option
    @click.pass_context
    def show(ctx: click.Context, as_of: str | None, as_json: bool) -> None:
        settings = settings_of(ctx)
        try:
            asked = identity.identifier_of(*_split(key))
        except LedgerError as exc:
            raise click.BadParameter(str(exc), param_hint="KEY") from None
        at = _time(as_of, "--as-of", end_of_day=True)
        found = people.show(settings, asked, at=at)
        if as_json:
            click.echo(orjson.dumps(found))
            return
        _render(found)

    return show


def _split(key: str) -> tuple[str, str]:
    kind, colon, rest = key.partition(":")
    if colon and kind in (PHONE, EMAIL, EXTERNAL):
        return kind, rest
    return "customer", key


def _render(found: dict[str, Any]) -> None:
    when = f" as of {found['as_of']}" if found["as_of"] else ""
    click.echo(f"person {found['person']}{when}")
    click.echo(f"  customers    {', '.join(found['customers']) or '-'}")
    click.echo(f"  identifiers  {', '.join(found['identifiers']) or '-'}")
    for link in found["links"]:
        evidence = f" ({link['evidence']})" if link["evidence"] else ""
        click.echo(
            f"  link         {link['identifier']} -> {link['customer']} since "
            f"{link['since']}{evidence}"
        )
    for merge in found["merges"]:
        click.echo(
            f"  merge        {merge['customer']} -> {merge['survivor']} since "
            f"{merge['since']} ({merge['reason']})"
        )
    for identifier in found["suspicious"]:
        click.echo(f"  SUSPICIOUS   {identifier}: linked to too many customers, joins nobody")
    for refused in found["refused"]:
        click.echo(f"  refused      {refused['type']} {refused['event_id']}: {refused['reason']}")


@identity_group.command("suspicious")
@json_option
@click.pass_context
def identity_suspicious(ctx: click.Context, as_json: bool) -> None:
    """Identifiers linked to more customers than LEDGER_IDENTITY_MAX_CUSTOMERS (reported,
    never merged blindly), and identity events the graph refused.

    \b
    Example:
      ledger identity suspicious --json
    """
    found = people.suspicious(settings_of(ctx))
    if as_json:
        click.echo(orjson.dumps(found))
        return
    click.echo(
        f"{len(found['suspicious'])} identifiers linked to more than "
        f"{found['max_customers']} customers"
    )
    for entry in found["suspicious"]:
        click.echo(f"  {entry['identifier']}: {', '.join(entry['customers'])}")
    for refused in found["refused"]:
        click.echo(f"  refused {refused['type']} {refused['event_id']}: {refused['reason']}")


@click.command("link")
@click.argument("customer")
@_identifier_options
@click.option("--evidence", help="Why the link holds (a verified login, an order form, ...).")
@click.option("--at", "at", metavar="TIME", help="When it became true (default: now).")
@json_option
@click.pass_context
def link(
    ctx: click.Context,
    customer: str,
    phone: str | None,
    email: str | None,
    external: str | None,
    evidence: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Link an identifier to a customer: touchpoints sent to it count as the customer's.

    \b
    Example:
      ledger link C0000042 --phone "+90 555 111 22 33" --evidence "verified by SMS code"
      ledger link C0000042 --external shop:88412
    """
    identifier = _one_identifier(phone, email, external)
    document, outcome = people.link(
        settings_of(ctx), customer, identifier, evidence=evidence, at=_time(at, "--at")
    )
    _appended(document, outcome, as_json)


@click.command("unlink")
@click.argument("customer")
@_identifier_options
@click.option("--reason", help="Why the link no longer holds.")
@click.option("--at", "at", metavar="TIME", help="When it stopped being true (default: now).")
@json_option
@click.pass_context
def unlink(
    ctx: click.Context,
    customer: str,
    phone: str | None,
    email: str | None,
    external: str | None,
    reason: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Undo a link (refused if the identifier is not linked to the customer).

    \b
    Example:
      ledger unlink C0000042 --email old@example.com --reason "address given up"
    """
    identifier = _one_identifier(phone, email, external)
    document, outcome = people.unlink(
        settings_of(ctx), customer, identifier, reason=reason, at=_time(at, "--at")
    )
    _appended(document, outcome, as_json)


@click.command("merge")
@click.argument("first")
@click.argument("second")
@click.option("--reason", required=True, help="Why they are one person (kept with the merge).")
@click.option(
    "--into",
    "survivor",
    metavar="CUSTOMER",
    help="Merge FIRST into this customer, as asked (default: the two people's ids, the "
    "younger into the oldest customer).",
)
@click.option("--at", "at", metavar="TIME", help="When it became true (default: now).")
@json_option
@click.pass_context
def merge(
    ctx: click.Context,
    first: str,
    second: str,
    reason: str,
    survivor: str | None,
    at: str | None,
    as_json: bool,
) -> None:
    """Merge two customers into one person (one event; undone by `ledger unmerge`).

    The survivor is the oldest customer (earliest first touchpoint). Refused with a clear
    error if they are one person already, or if the merge would close a cycle.

    \b
    Example:
      ledger merge C0000042 C0001234 --reason "same national id (call centre check)"
    """
    document, outcome = people.merge(
        settings_of(ctx), first, second, reason=reason, survivor=survivor, at=_time(at, "--at")
    )
    _appended(document, outcome, as_json)


@click.command("unmerge")
@click.argument("customer")
@click.option("--reason", required=True, help="Why the merge was wrong.")
@click.option("--at", "at", metavar="TIME", help="When it stopped being true (default: now).")
@json_option
@click.pass_context
def unmerge(ctx: click.Context, customer: str, reason: str, at: str | None, as_json: bool) -> None:
    """Undo the standing merge of a customer (one event; the log is never rewritten).

    \b
    Example:
      ledger unmerge C0001234 --reason "different people: same name, other birth date"
    """
    document, outcome = people.unmerge(
        settings_of(ctx), customer, reason=reason, at=_time(at, "--at")
    )
    _appended(document, outcome, as_json)


COMMANDS = (identity_group, link, unlink, merge, unmerge)
"""Registered by ``cli.py`` (``main.add_command``)."""
