"""CLI commands of personal data: erase, erasures, subject-access, keys, copy, doctor.

Each parses its options, calls one function of :mod:`application.privacy`, and renders
(a line for people, ``--json`` for machines). Registered by ``cli.py``.
"""

from __future__ import annotations

import re
import time
from contextlib import closing
from datetime import datetime
from pathlib import Path
from typing import Any

import click
import orjson
from pydantic import TypeAdapter, ValidationError

from application import privacy
from application.api import policy_history
from application.wiring import open_keys, open_log, open_store
from faces.cli.options import json_option, settings_of
from ledger.errors import ConfigurationError, LedgerError
from ledger.payloads import Moment
from ledger.settings import Settings
from projections.policy import parse_duration

_MOMENT: TypeAdapter[datetime] = TypeAdapter(Moment)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _since(value: str | None) -> datetime | None:
    """RFC 3339 with a zone, by the contract's rules and range, or a date (its UTC start)."""
    if value is None:
        return None
    text = f"{value}T00:00:00Z" if _DATE.fullmatch(value) else value
    try:
        return _MOMENT.validate_python(text)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        raise click.BadParameter(problem, param_hint="--since") from None


@click.command()
@click.argument("customer", required=False)
@click.option("--reason", help="The legal basis or reason (recorded; no personal data).")
@click.option("--request-id", help="The request or ticket id (recorded).")
@click.option("--requested-by", help="Who asked or approved it (recorded).")
@click.option("--due", is_flag=True, help="Every customer the policy's [retention] rule makes due.")
@click.option("--dry-run", is_flag=True, help="With --due: list who is due, erase nobody.")
@click.option(
    "--only-this-id",
    is_flag=True,
    help="Erase CUSTOMER alone, not the other customer ids merged with it (a doubtful merge).",
)
@json_option
@click.pass_context
def erase(
    ctx: click.Context,
    customer: str | None,
    reason: str | None,
    request_id: str | None,
    requested_by: str | None,
    due: bool,
    dry_run: bool,
    only_this_id: bool,
    as_json: bool,
) -> None:
    """Erase a customer's personal data by destroying their data key (crypto-shredding).

    Every personal field of their events (name, e-mail, phone, consent recipient) then
    reads as [erased] everywhere; counts, spend and history stay, and every audit seal
    still verifies. A customer.erased event (no personal data) records it. Idempotent.
    The person is erased: every customer id merged with CUSTOMER (ledger identity shows
    them; customers who only share a phone number or address are not), each id with its own
    customer.erased (--only-this-id: CUSTOMER alone), and every phone number or address
    ever linked to them that no one else holds. With --due, erases everyone the
    retention rule of the policy makes due (run it from cron or a systemd timer, at least
    every six months).

    \b
    Example:
      ledger erase C0000042 --reason "KVKK Art. 7 request" --request-id REQ-17
      ledger erase --due --dry-run
    """
    if due == (customer is not None):
        raise click.UsageError("give a CUSTOMER or --due (not both)")
    if dry_run and not due:
        raise click.UsageError("--dry-run goes with --due")
    settings = settings_of(ctx)
    if due:
        _erase_due(settings, reason, request_id, requested_by, dry_run=dry_run, as_json=as_json)
        return
    assert customer is not None
    if not reason:
        raise click.UsageError("--reason is required: the legal basis is part of the record")
    request = privacy.ErasureRequest(reason, request_id, requested_by)
    started = time.perf_counter()
    stored = privacy.stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    keys = open_keys(settings)
    try:
        with open_log(settings) as log, closing(open_store(settings)) as store:
            done = privacy.erase(
                log,
                keys,
                stored,
                request,
                rejects_dir=settings.data_dir / "rejects",
                named=customer,
                store=store,
                whole_person=not only_this_id,
                max_customers=settings.identity_max_customers,
            )
    finally:
        keys.close()
    elapsed = time.perf_counter() - started
    if as_json:
        click.echo(orjson.dumps({**done.to_dict(), "seconds": round(elapsed, 4)}))
    elif done.already:
        click.echo(f"customer {customer}: already erased (no key held); nothing new recorded")
    else:
        for one in [done, *done.together]:
            name = customer if one is done else one.customer
            if one.already:
                click.echo(f"customer {name}: already erased; nothing new recorded")
                continue
            click.echo(
                f"customer {name}: {one.keys_destroyed} data key(s) destroyed; "
                f"customer.erased recorded at {one.position} ({one.event_id})"
                + (
                    f"; {one.rejects_redacted} rejects line(s) redacted"
                    if one.rejects_redacted
                    else ""
                )
                + ("" if one is done else f" (merged with {customer})")
            )


def _erase_due(
    settings: Settings,
    reason: str | None,
    request_id: str | None,
    requested_by: str | None,
    *,
    dry_run: bool,
    as_json: bool,
) -> None:
    policy = policy_history(settings).current()
    rule = policy.policy.retention.erase_personal_data_after
    if rule is None:
        raise ConfigurationError(
            f"{policy.source}: no [retention] erase_personal_data_after: nobody is due"
        )
    cutoff = privacy.retention_cutoff(parse_duration(rule))
    keys = open_keys(settings)
    started = time.perf_counter()
    try:
        with closing(open_store(settings)) as store:
            customers = privacy.due(store, keys, cutoff, settings.identity_max_customers)
        done: list[privacy.Erasure] = []
        if customers and not dry_run:
            request = privacy.ErasureRequest(
                reason or f"retention: no touchpoint for {rule}",
                request_id,
                requested_by,
                retention_rule=f"erase_personal_data_after={rule}",
            )
            with open_log(settings) as log:
                done = privacy.erase_many(
                    log,
                    keys,
                    customers,
                    request,
                    batch_size=settings.batch_size,
                    rejects_dir=settings.data_dir / "rejects",
                )
    finally:
        keys.close()
    elapsed = time.perf_counter() - started
    if as_json:
        document: dict[str, Any] = {
            "rule": rule,
            "cutoff": cutoff.isoformat(),
            "due": customers if dry_run else len(customers),
            "erased": len(done),
            "dry_run": dry_run,
            "seconds": round(elapsed, 3),
        }
        click.echo(orjson.dumps(document))
        return
    if dry_run:
        for customer in customers:
            click.echo(customer)
        click.echo(f"{len(customers)} customer(s) due (no touchpoint since {cutoff:%Y-%m-%d})")
    else:
        click.echo(f"{len(done)} customer(s) erased (no touchpoint since {cutoff:%Y-%m-%d})")


@click.command()
@click.option("--since", help="Only erasures at or after this date or time (event time).")
@json_option
@click.pass_context
def erasures(ctx: click.Context, since: str | None, as_json: bool) -> None:
    """The register of erasures, from the customer.erased events (keep them at least
    three years: KVKK's record of destruction).

    \b
    Example:
      ledger erasures --since 2026-01-01 --json
    """
    with open_log(settings_of(ctx), create=False) as log:
        found = privacy.erasures(log, _since(since))
    if as_json:
        for record in found:
            click.echo(orjson.dumps(record.to_dict()))
        return
    if not found:
        click.echo("no erasures recorded")
    for record in found:
        data = record.data
        click.echo(
            f"{record.time:%Y-%m-%d %H:%M:%S}  {record.customer:14}  {data['reason']}"
            f"  request={data.get('request_id', '-')}  by={data.get('requested_by', '-')}"
            f"  keys={data.get('keys_destroyed', 0)}  [{record.position}]"
        )


@click.command("subject-access")
@click.argument("customer")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="JSON file.")
@click.pass_context
def subject_access(ctx: click.Context, customer: str, out: Path) -> None:
    """Write everything the ledger holds about a customer, decrypted, as JSON (KVKK
    Art. 11, GDPR Art. 15 and 20): every event, the profile, the keys held.

    \b
    Example:
      ledger subject-access C0000042 --out C0000042.json
    """
    settings = settings_of(ctx)
    keys = open_keys(settings)
    stored = privacy.stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    try:
        with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
            document = privacy.subject_access(
                log, store, keys, stored, settings.identity_max_customers
            )
    finally:
        keys.close()
    if not document["events"]:
        raise LedgerError(f"the ledger holds nothing about customer {customer!r}")
    out.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))
    others = len(document["members"]) - 1
    person = f" and the {others} other id(s) of their person" if others else ""
    click.echo(
        f"{len(document['events'])} event(s) of customer {customer}{person} written to {out}"
    )


@click.group()
def keys() -> None:
    """The key store of customers' data keys (LEDGER_KEYS).

    \b
    Example:
      ledger keys backup --out /secure/keys-2026-06.json
    """


@keys.command("backup")
@click.option("--out", required=True, type=click.Path(path_type=Path), help="A new file.")
@click.pass_context
def keys_backup(ctx: click.Context, out: Path) -> None:
    """Copy every data key, still wrapped by the master key, to a new file (mode 0600).

    Losing the key store loses every customer's personal data; a backup keeps keys that
    are destroyed after it was made, so keep backups only as long as docs/privacy.md says.

    \b
    Example:
      ledger keys backup --out /secure/keys-2026-06.json
    """
    store = open_keys(settings_of(ctx))
    try:
        count = privacy.keys_backup(store, out)
    finally:
        store.close()
    click.echo(f"{count} data key(s) written to {out} (wrapped by the master key)")


@keys.command("restore")
@click.argument("backup", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_context
def keys_restore(ctx: click.Context, backup: Path) -> None:
    """Put back the keys of a backup, except those of customers erased since it was made.

    \b
    Example:
      ledger keys restore /secure/keys-2026-06.json
    """
    settings = settings_of(ctx)
    store = open_keys(settings)
    try:
        with open_log(settings, create=False) as log:
            restored, skipped = privacy.keys_restore(log, store, backup)
    finally:
        store.close()
    click.echo(f"{restored} key(s) restored; {skipped} skipped (customers erased since)")


@click.command()
@json_option
@click.pass_context
def doctor(ctx: click.Context, as_json: bool) -> None:
    """Check the log for personal data stored in clear (a log written before encryption,
    or a Kafka publisher that does not encrypt) and count values already erased.

    Exit code 3 when some event holds personal data in clear.

    \b
    Example:
      ledger doctor --json
    """
    settings = settings_of(ctx)
    store = open_keys(settings)
    try:
        with open_log(settings, create=False) as log:
            found = privacy.check_personal_data(log, store)
    finally:
        store.close()
    if as_json:
        click.echo(orjson.dumps(found.to_dict()))
    else:
        click.echo(
            f"{found.events} event(s); {found.cleartext_events} with personal data in clear"
            + (f" (first at {', '.join(found.examples)})" if found.examples else "")
            + f"; {found.sealed} encrypted value(s), {found.erased_values} of them erased"
        )
        if found.cleartext_events:
            click.echo(
                "fix: publish through ledger append/import or the library (they encrypt), "
                "and copy an old log with: ledger copy --to URL"
            )
    if found.cleartext_events:
        ctx.exit(3)


PRIVACY_COMMANDS = [erase, erasures, subject_access, keys, doctor]
"""(``ledger copy``, which also encrypts an old log, is in :mod:`faces.cli.scale`.)"""
