"""Commands over the log itself: append, import, replay, history, generate, schema."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import orjson

from application import reading, recording
from application.service import Repeat
from faces.cli.options import json_option, parse_time, progress_bar, settings_of
from faces.cli.render import (
    EXIT_REJECTED,
    echo_json,
    render_import,
    table_line,
    warn_repeat,
)
from ledger import strict
from ledger.asyncapi import asyncapi_document
from ledger.codec import from_text_cells
from ledger.describe import describe
from ledger.events import EVENT_CLASSES, SHORT_NAMES, resolve_type
from ledger.importer import Format, detect_format
from ledger.log import Position, ReadFilter
from ledger.schema import contract, dump, write_schemas
from ledger.stopping import exit_code, signal_name, stop_on_signals

# -- append -----------------------------------------------------------------------------


def _document_from_options(
    document: str | None,
    event_type: str | None,
    customer: str | None,
    source: str,
    when: str | None,
    event_id: str | None,
    fields: tuple[str, ...],
) -> dict[str, Any]:
    if document is not None:
        return _document(sys.stdin.buffer.read() if document == "-" else document)
    if event_type is None or customer is None:
        raise click.UsageError("give a JSON DOCUMENT, or --type and --customer")
    full_type = resolve_type(event_type)
    if full_type is None:
        names = ", ".join(SHORT_NAMES)
        raise click.BadParameter(f"{event_type!r} is not a type ({names})", param_hint="--type")
    moment = parse_time(when, "--time", date_ok=False) or datetime.now(UTC)
    # --set values are text: integer and boolean fields are converted by the type's schema.
    return from_text_cells(
        {
            "id": event_id or str(uuid.uuid4()),
            "source": source,
            "type": full_type,
            "subject": customer,
            "time": moment.isoformat(),
            "data": _data_from_fields(fields),
        }
    )


def _document(text: str | bytes) -> dict[str, Any]:
    """A JSON document given on the command line, '-' (stdin) or as @FILE, read strictly."""
    if isinstance(text, str) and text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_bytes()
        except OSError as exc:
            raise click.BadParameter(
                f"cannot read {str(path)!r}: {exc.strerror}", param_hint="DOCUMENT"
            ) from None
    if isinstance(text, bytes):
        text = text.removeprefix(b"\xef\xbb\xbf")  # a BOM, as in imported files
    try:
        parsed = strict.loads(text)
    except strict.StrictJSONError as exc:
        raise click.BadParameter(f"not valid JSON: {exc}", param_hint="DOCUMENT") from None
    if not isinstance(parsed, dict):
        raise click.BadParameter("must be a JSON object", param_hint="DOCUMENT")
    return parsed


def _data_from_fields(fields: tuple[str, ...]) -> dict[str, Any]:
    """``data`` from ``--set KEY=VALUE`` options; each key once, and no key both a value and
    a parent of others (``compensation=5`` with ``compensation.amount=3``)."""
    data: dict[str, Any] = {}
    for item in fields:
        key, eq, value = item.partition("=")
        parts = key.split(".")
        if not eq or not all(parts):
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--set")
        node = data
        for depth, part in enumerate(parts[:-1]):
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                parent = ".".join(parts[: depth + 1])
                raise click.BadParameter(
                    f"{key} clashes with {parent}={child}: {parent} cannot be both a value "
                    "and a group of fields",
                    param_hint="--set",
                )
            node = child
        leaf = parts[-1]
        if leaf in node:
            kind = "a group of fields" if isinstance(node[leaf], dict) else "given twice"
            raise click.BadParameter(f"{key} is {kind}", param_hint="--set")
        node[leaf] = value
    return data


@click.command()
@click.argument("document", required=False)
@click.option(
    "--type", "event_type", help="Touchpoint type, short or full (purchase, touchpoint.call)."
)
@click.option("--customer", help="The customer id (CloudEvents subject).")
@click.option("--source", default="cli", show_default=True, help="The publishing service.")
@click.option("--time", "when", help="Event time, RFC 3339 with a zone (default: now).")
@click.option("--id", "event_id", help="Event id, the idempotency key (default: a new UUID).")
@click.option(
    "--set",
    "fields",
    multiple=True,
    metavar="KEY=VALUE",
    help="A data field; dots nest (compensation.amount=10). Repeatable.",
)
@json_option
@click.pass_context
def append(
    ctx: click.Context,
    document: str | None,
    event_type: str | None,
    customer: str | None,
    source: str,
    when: str | None,
    event_id: str | None,
    fields: tuple[str, ...],
    as_json: bool,
) -> None:
    """Append one touchpoint, from options or a JSON DOCUMENT ('-' for stdin, @FILE).

    Prints the event id and its position. Appending the same id again is reported
    as a duplicate and changes nothing.

    \b
    Example:
      ledger append --type purchase --customer C42 --set channel=web \\
          --set order_id=ORD-1 --set amount=19.90 --set currency=GBP --set item_count=1
      ledger append @event.json --json
    """
    doc = _document_from_options(document, event_type, customer, source, when, event_id, fields)
    answer = recording.append(settings_of(ctx), doc)
    if as_json:
        echo_json(answer.to_dict())
    elif answer.status == "appended":
        click.echo(f"appended {answer.event_id} at position {answer.position}")
    else:
        click.echo(f"duplicate {answer.event_id}: already in the log at {answer.position}")


# -- import -----------------------------------------------------------------------------


@click.command("import")
@click.argument(
    "file", type=click.Path(exists=True, allow_dash=True, dir_okay=False, path_type=str)
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["auto", "jsonl", "csv"]),
    default="auto",
    show_default=True,
    help="Input format; auto picks csv for *.csv, else jsonl.",
)
@click.option(
    "--rejects",
    "rejects_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Where rejected lines go (default: DATA_DIR/rejects/NAME-TIME.jsonl).",
)
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1_000_000),
    help="Events per append batch (env LEDGER_BATCH_SIZE, default 20000).",
)
@json_option
@click.pass_context
def import_(
    ctx: click.Context,
    file: str,
    fmt: str,
    rejects_path: Path | None,
    batch_size: int | None,
    as_json: bool,
) -> None:
    """Import touchpoints from JSON Lines or CSV (FILE, or '-' for stdin).

    Valid lines are appended in batches; every rejected line goes to a rejects file
    with its line number and reasons. Running the same import twice appends nothing
    new (ids are idempotency keys). Exit code 0: all accepted; 3: some rejected;
    1: the log failed; 130/143: stopped by SIGINT/SIGTERM (every line read so far was
    appended or rejected and is counted in the summary; run it again to finish).

    \b
    Example:
      ledger generate --customers 1000 --out history.jsonl
      ledger import history.jsonl
      ledger import touchpoints.csv --rejects bad.jsonl --json
    """
    settings = settings_of(ctx)
    chosen: Format = detect_format(file) if fmt == "auto" else ("csv" if fmt == "csv" else "jsonl")
    size = None if file == "-" else Path(file).stat().st_size
    with (
        click.open_file(file, "rb") as source,
        stop_on_signals() as stop,
        progress_bar("importing", size, unit_bytes=True) as advance,
    ):
        summary = recording.import_file(
            settings,
            source,
            chosen,
            rejects_path,
            name=file,
            batch_size=batch_size,
            on_progress=advance if not as_json else lambda _: None,
            stop=stop,
        )
        interrupted = exit_code(stop)
    render_import(summary, as_json)
    if summary.failed:
        ctx.exit(1)
    if summary.interrupted:
        click.echo(
            f"interrupted by {signal_name(interrupted)} after line {summary.read}: "
            "run the same import again to finish (what is in the log is skipped)",
            err=True,
        )
        ctx.exit(interrupted)
    if summary.rejected:
        ctx.exit(EXIT_REJECTED)


# -- replay -----------------------------------------------------------------------------


def _types(values: tuple[str, ...]) -> frozenset[str]:
    chosen = set()
    for value in values:
        full = resolve_type(value)
        if full is None:
            names = ", ".join(sorted(EVENT_CLASSES))
            raise click.BadParameter(f"{value!r} is not a type ({names})", param_hint="--type")
        chosen.add(full)
    return frozenset(chosen)


def _positions(value: str | None) -> dict[int, int] | None:
    if value is None:
        return None
    try:
        positions = [Position.parse(part.strip()) for part in value.split(",")]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--from-position") from None
    return {p.partition: p.offset for p in positions}


@click.command()
@click.option("--customer", help="Only this customer's touchpoints.")
@click.option("--type", "types", multiple=True, help="Only these types (repeatable).")
@click.option(
    "--since", help="Event time at or after (RFC 3339, or YYYY-MM-DD: from its start, UTC)."
)
@click.option(
    "--until",
    help="Event time before (RFC 3339, or YYYY-MM-DD: that whole UTC day included).",
)
@click.option(
    "--from-position",
    metavar="P[,P...]",
    help="Start at OFFSET or PARTITION:OFFSET (comma-separated per partition).",
)
@click.option("--limit", type=click.IntRange(min=0), help="At most this many records.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "jsonl"]),
    help="Default: table on a terminal, jsonl when piped.",
)
@click.option("--json", "as_json", is_flag=True, help="Same as --format jsonl.")
@click.option(
    "--with-position",
    is_flag=True,
    help="jsonl: wrap each event as {position, recorded_at, event}.",
)
@click.pass_context
def replay(
    ctx: click.Context,
    customer: str | None,
    types: tuple[str, ...],
    since: str | None,
    until: str | None,
    from_position: str | None,
    limit: int | None,
    fmt: str | None,
    as_json: bool,
    with_position: bool,
) -> None:
    """The history in log order, filtered; JSON Lines (the contract) or a table.

    The JSON Lines output can be imported into another ledger unchanged. Records
    the ledger cannot decode are reported on stderr with their position, and the
    exit code is then 3. Each id is shown once, as the views count it: a later
    identical copy (a re-publish on Kafka) is skipped, one with other content is
    reported on stderr with both positions (exit code 3; see ledger project errors).

    \b
    Example:
      ledger replay --customer C0000042
      ledger replay --type purchase --type refund --since 2025-03-01 --json | jq .data.amount
    """
    where = ReadFilter(
        customer=customer,
        types=_types(types),
        since=parse_time(since, "--since"),
        until=parse_time(until, "--until", day="next"),
    )
    fmt = "jsonl" if as_json else fmt or ("table" if sys.stdout.isatty() else "jsonl")
    undecodable = conflicts = 0
    out = sys.stdout.buffer
    revealer = reading.revealer(settings_of(ctx))
    for found in reading.replay(settings_of(ctx), _positions(from_position), where, limit):
        if isinstance(found, Repeat):
            warn_repeat(found)  # an identical re-publish: counted once, shown once
            conflicts += 1 if found.conflict else 0
            continue
        if found.event is None:
            undecodable += 1
            click.echo(
                f"warning: cannot decode the record at {found.position}: {found.error}",
                err=True,
            )
        elif fmt == "jsonl":
            out.write(orjson.dumps(reading.record_dict(found, with_position, revealer)) + b"\n")
        else:
            click.echo(table_line(found))
    if undecodable or conflicts:
        ctx.exit(EXIT_REJECTED)


@click.command()
@click.argument("customer")
@click.option(
    "--until",
    metavar="TIME",
    help="Only events that happened by TIME (inclusive; a bare YYYY-MM-DD: to the end of that "
    "UTC day).",
)
@click.option(
    "--as-recorded-by",
    "recorded_by",
    metavar="TIME",
    help="Only events the ledger had recorded by TIME: what it knew then.",
)
@json_option
@click.pass_context
def history(
    ctx: click.Context,
    customer: str,
    until: str | None,
    recorded_by: str | None,
    as_json: bool,
) -> None:
    """One customer's touchpoints in event-time order, readable.

    Each line shows when it happened, what it was, and where it sits in the log and
    when the ledger recorded it. With --json: one {position, recorded_at, event} per line.

    \b
    Example:
      ledger history C0000042
      ledger history C0000042 --until 2025-06-30 --json
    """
    found = reading.history(
        settings_of(ctx),
        customer,
        parse_time(until, "--until", day="end"),
        parse_time(recorded_by, "--as-recorded-by", day="end"),
    )
    if as_json:
        out = sys.stdout.buffer
        revealer = reading.revealer(settings_of(ctx))
        for record in found.records:
            out.write(orjson.dumps(reading.record_dict(record, True, revealer)) + b"\n")
        return
    if not found.records:
        click.echo(f"no touchpoints of customer {customer} in this range")
    for record in found.records:
        event = record.event
        assert event is not None
        click.echo(
            f"{event.time.isoformat():25}  {event.type:20}  {describe(event)}"
            f"  [{record.position}, recorded {record.recorded_at:%Y-%m-%d %H:%M:%S}]"
        )
    if found.undecodable:
        ctx.exit(EXIT_REJECTED)


# -- generate ---------------------------------------------------------------------------


@click.command()
@click.option("--customers", type=click.IntRange(1, 10_000_000), default=1000, show_default=True)
@click.option("--days", type=click.IntRange(1, 36_500), default=365, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True, help="Same seed, same history.")
@click.option("--start", default="2025-01-01", show_default=True, help="First day (UTC).")
@click.option(
    "--out",
    type=click.Path(allow_dash=True, dir_okay=False, path_type=str),
    help="Write JSON Lines here ('-' for stdout) instead of appending to the log.",
)
@click.option(
    "--identities",
    type=click.FloatRange(0, 1),
    default=0.0,
    show_default=True,
    help="Share of customers known to several systems: SMS to their phone number, e-mails "
    "to their address, purchases under a shop id, linked to them (a few wrong merges undone).",
)
@json_option
@click.pass_context
def generate(
    ctx: click.Context,
    customers: int,
    days: int,
    seed: int,
    start: str,
    out: str | None,
    identities: float,
    as_json: bool,
) -> None:
    """Generate a deterministic synthetic CRM history (seeded).

    Repeat and one-time buyers, complaints resolved late or never, call-centre
    waits and abandoned calls, and marketing that over-contacts some customers.
    Appends to the log unless --out is given.

    \b
    Example:
      ledger generate --customers 500 --days 180 --seed 7
      ledger generate --customers 100000 --days 160 --out history.jsonl
      ledger generate --customers 2000 --identities 0.1
    """
    first_day = parse_time(start, "--start")
    if out is not None:
        with click.open_file(out, "wb") as stream:
            count = recording.write_generated(
                stream,
                customers=customers,
                days=days,
                seed=seed,
                start=first_day,
                identities=identities,
            )
        message = {"events": count, "out": out}
        click.echo(
            orjson.dumps(message) if as_json else f"wrote {count} events to {out}", err=out == "-"
        )
        return
    with progress_bar("generating", None, False) as advance:
        summary = recording.generate(
            settings_of(ctx),
            customers=customers,
            days=days,
            seed=seed,
            start=first_day,
            on_progress=advance,
            identities=identities,
        )
    render_import(summary, as_json)
    if summary.failed:
        ctx.exit(1)


# -- schema -----------------------------------------------------------------------------


@click.command()
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Write one <type>.schema.json per type, contract.json and asyncapi.json into this folder.",
)
@click.option(
    "--asyncapi",
    "as_asyncapi",
    is_flag=True,
    help="Print the Kafka contract as an AsyncAPI 3.0 document instead of the index.",
)
def schema(out: Path | None, as_asyncapi: bool) -> None:
    """The event contract as JSON Schema and AsyncAPI 3.0, for publishers in any language.

    Without --out, prints the contract index (types, versions, Kafka binding); with
    --asyncapi, the AsyncAPI 3.0 document of the topic (key, headers, partitioner, one
    message per type and mode with its payload schema).

    \b
    Example:
      ledger schema --out docs/schema
      ledger schema | jq .kafka
      ledger schema --asyncapi > asyncapi.json
    """
    if as_asyncapi:
        sys.stdout.buffer.write(dump(asyncapi_document()))
        return
    if out is None:
        sys.stdout.buffer.write(dump(contract()))
        return
    for path in write_schemas(out):
        click.echo(str(path))
