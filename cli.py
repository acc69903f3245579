"""The ``ledger`` command: parse options, call one application function, render.

Tables for people, ``--json`` for machines. A :class:`LedgerError` becomes a one-line
``error: ...`` on stderr and exit code 1; no traceback for a user's mistake.
"""

from __future__ import annotations

import logging
import os
import re
import signal
import sys
import traceback
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal, TypeVar

import click
import orjson
from pydantic import TypeAdapter, ValidationError
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)
from rich.table import Table

from application import identity, service
from application.api import Ledger, policy_history
from application.fresh import CustomerNow, customer_fresh, customer_in_views
from application.policy_files import load_policies, parse_requests
from application.pressure import PressureReport, pressure
from application.report import RelationshipReport
from application.service import Conflict
from application.wiring import fresh_by_default, known_partitions, log_name, open_log, open_store
from consumers.folding import PROJECTOR_BATCH
from consumers.kafka_group import GroupProjector, follow_group
from consumers.projector import Projector, rebuild
from consumers.store import DeadLetter, encode_headers
from faces.cli import identity as identity_commands
from ledger import audit as ledger_audit
from ledger import strict
from ledger.asyncapi import asyncapi_document
from ledger.codec import event_to_dict, from_text_cells
from ledger.describe import describe
from ledger.errors import ConfigurationError, LedgerError
from ledger.events import EVENT_CLASSES, SHORT_NAMES, EventTime, resolve_type
from ledger.importer import Format, ImportSummary, check_rejects_target, detect_format
from ledger.kafka_log import KafkaLog
from ledger.log import Appended, LogRecord, Position, ReadFilter
from ledger.redact import redact, redact_url
from ledger.schema import contract, dump, write_schemas
from ledger.settings import Settings
from ledger.stopping import exit_code, stop_on_signals, stoppable
from ledger.timeutil import MICROSECOND, check_range
from ledger.vocabulary import Channel, Purpose
from projections import frequency
from projections.frequency import Window
from projections.policy import Freshness, parse_duration

EXIT_REJECTED = 3
EXIT_DENIED = 5
"""Exit code when the command finished but refused some input (see the rejects file)."""

F = TypeVar("F", bound=Callable[..., Any])


EXIT_INTERNAL = 70
"""Exit code of a bug (an exception the ledger did not expect), as ``EX_SOFTWARE``."""


class LedgerGroup(click.Group):
    """Turns every error into one line on stderr and a non-zero exit code: a
    :class:`LedgerError` or an operating-system error (a file that cannot be read) is the
    user's to fix (exit 1); anything else is a bug (exit 70; ``LEDGER_DEBUG=1`` shows its
    traceback). Ctrl-C that reaches a command
    without a stop handler is one line and exit code 130."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except LedgerError as exc:
            # Messages name URLs; a library's own text may quote one with its password.
            # One line, even when a driver's message spans several.
            click.echo(f"error: {' '.join(redact(str(exc)).split())}", err=True)
            ctx.exit(1)
        except click.exceptions.NoArgsIsHelpError:
            raise  # a group called alone: its help, as click shows it
        except click.UsageError as exc:
            # One line, like every other error (click's own form takes three).
            path = exc.ctx.command_path if exc.ctx else ctx.command_path
            click.echo(f"error: {exc.format_message()} (try '{path} --help')", err=True)
            ctx.exit(exc.exit_code)
        except (click.ClickException, click.exceptions.Exit, click.Abort, BrokenPipeError):
            raise  # click's own, and a closed pipe, which click ends quietly
        except OSError as exc:
            where = f": {exc.filename}" if exc.filename else ""
            click.echo(f"error: {exc.strerror or exc}{where}", err=True)
            ctx.exit(1)
        except Exception as exc:
            if os.environ.get("LEDGER_DEBUG"):
                traceback.print_exc()
            summary = " ".join(str(exc).split())[:300]
            click.echo(
                f"error: internal error (a bug; please report it): {type(exc).__name__}: "
                f"{summary} (LEDGER_DEBUG=1 shows the details)",
                err=True,
            )
            ctx.exit(EXIT_INTERNAL)
        except KeyboardInterrupt:
            click.echo("interrupted by SIGINT: what was not committed is rolled back", err=True)
            ctx.exit(128 + signal.SIGINT)


def json_option(function: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")(
        function
    )


def stderr_console() -> Console:
    return Console(stderr=True)


@contextmanager
def progress_bar(
    label: str, total: int | None, unit_bytes: bool
) -> Iterator[Callable[[int], None]]:
    """A progress bar on a terminal; nothing when stderr is piped."""
    console = stderr_console()
    if not console.is_terminal:
        yield lambda _: None
        return
    columns: list[Any] = [TextColumn(label), BarColumn(), TaskProgressColumn()]
    columns += [TransferSpeedColumn()] if unit_bytes else [MofNCompleteColumn()]
    columns.append(TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as bar:
        task = bar.add_task(label, total=total)
        yield lambda step: bar.advance(task, step)


_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", re.ASCII)
_TIME: TypeAdapter[datetime] = TypeAdapter(EventTime)
DayBound = Literal["start", "end", "next"]


def parse_time(
    value: str | None, option: str, *, date_ok: bool = True, day: DayBound = "start"
) -> datetime | None:
    """An RFC 3339 timestamp with a zone, read by the contract's own rules (and range), or,
    when ``date_ok``, a bare date ``YYYY-MM-DD`` (a UTC day), which means:

    * ``day="start"``: the start of that day (``--since``: everything on it is included);
    * ``day="end"``: its last microsecond (inclusive bounds such as ``--as-of``);
    * ``day="next"``: the start of the next day (exclusive bounds such as ``--until`` "before").

    So every command that takes a bare date as an upper bound includes the whole of that day.
    """
    if value is None:
        return None
    if date_ok and _DATE.fullmatch(value):
        try:
            start = datetime.fromisoformat(value).replace(tzinfo=UTC)
            check_range(start)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint=option) from None
        if day == "end":
            return start + timedelta(days=1) - MICROSECOND
        return start + timedelta(days=1) if day == "next" else start
    try:
        return _TIME.validate_python(value)
    except ValidationError as exc:
        problem = exc.errors(include_url=False)[0]["msg"].removeprefix("Value error, ")
        if _DATE.fullmatch(value) and not date_ok:
            problem = f"{value!r} has no time and no time zone; give e.g. {value}T09:30:00Z"
        raise click.BadParameter(problem, param_hint=option) from None


def settings_of(ctx: click.Context) -> Settings:
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


def _warnings_to_stderr() -> None:
    """Show the ledger's warnings (logger ``ledger``: a Kafka topic that forgets events,
    ...) as ``warning: ...`` lines on stderr, once each."""
    logger = logging.getLogger("ledger")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):
        logger.addHandler(_StderrWarnings(logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


class _StderrWarnings(logging.Handler):
    """Writes to whatever stderr is now (click's test runner swaps it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


@click.group(cls=LedgerGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--log",
    "log_url",
    metavar="URL",
    help="sqlite:///PATH or kafka://HOST:PORT[,HOST:PORT]/TOPIC (env LEDGER_LOG).",
)
@click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    help="Folder for the embedded log, views and rejects (env LEDGER_DATA_DIR).",
)
@click.version_option(package_name="touchpoint-ledger")
@click.pass_context
def main(ctx: click.Context, log_url: str | None, data_dir: Path | None) -> None:
    """touchpoint-ledger: every interaction with every customer, as an immutable log.

    \b
    Example:
      ledger demo
      ledger replay --customer C0000042
    """
    _warnings_to_stderr()
    overrides: dict[str, Any] = {}
    if log_url:
        overrides["log"] = log_url
    if data_dir:
        overrides["data_dir"] = data_dir
    try:
        ctx.obj = Settings(**overrides)
    except ValueError as exc:
        raise ConfigurationError(f"settings: {redact(str(exc))}") from exc


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


@main.command()
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
    with open_log(settings_of(ctx)) as log:
        outcome = service.append_one(log, doc)
    status = "appended" if isinstance(outcome, Appended) else "duplicate"
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "id": outcome.event_id,
                    "status": status,
                    "position": str(outcome.position) if outcome.position else None,
                }
            )
        )
    elif status == "appended":
        click.echo(f"appended {outcome.event_id} at position {outcome.position}")
    else:
        click.echo(f"duplicate {outcome.event_id}: already in the log at {outcome.position}")


# -- import -----------------------------------------------------------------------------


@main.command("import")
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
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = "stdin" if file == "-" else Path(file).name
    rejects = rejects_path or settings.data_dir / "rejects" / f"{name}-{stamp}.jsonl"
    size = None if file == "-" else Path(file).stat().st_size
    with click.open_file(file, "rb") as source:
        check_rejects_target(source, rejects)  # before the log is even opened
        summary, interrupted = _import(settings, source, chosen, rejects, size, batch_size, as_json)
    _render_import(summary, as_json)
    if summary.failed:
        ctx.exit(1)
    if summary.interrupted:
        click.echo(
            f"interrupted by {_signal_name(interrupted)} after line {summary.read}: "
            "run the same import again to finish (what is in the log is skipped)",
            err=True,
        )
        ctx.exit(interrupted)
    if summary.rejected:
        ctx.exit(EXIT_REJECTED)


def _import(
    settings: Settings,
    source: IO[bytes],
    chosen: Format,
    rejects: Path,
    size: int | None,
    batch_size: int | None,
    as_json: bool,
) -> tuple[ImportSummary, int]:
    """The import's summary, and the exit code of the signal that stopped it (0: none)."""
    with (
        stop_on_signals() as stop,
        open_log(settings) as log,
        progress_bar("importing", size, unit_bytes=True) as advance,
    ):
        summary = service.import_file(
            log,
            stoppable(source, stop),
            chosen,
            rejects,
            batch_size=batch_size or settings.batch_size,
            on_progress=advance if not as_json else lambda _: None,
            stop=stop,
        )
        return summary, exit_code(stop)


def _render_import(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        click.echo(orjson.dumps(summary.as_dict()))
        return
    click.echo(
        f"read {summary.read}: {summary.accepted} accepted, {summary.duplicates} duplicates, "
        f"{summary.rejected} rejected"
    )
    if summary.first_position is not None:
        click.echo(f"appended at positions {summary.first_position} .. {summary.last_position}")
    if summary.rejects_path is not None:
        click.echo(f"rejected lines and reasons: {summary.rejects_path}")
    if summary.failed:
        click.echo(f"error: stopped early: {summary.failed}", err=True)


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


@main.command()
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
    with open_log(settings_of(ctx), create=False) as log:
        out = sys.stdout.buffer
        for found in service.replay_once(log, _positions(from_position), where, limit):
            if isinstance(found, service.Repeat):
                if found.conflict:  # the projector parks it: shown there, not here
                    conflicts += 1
                    click.echo(
                        f"warning: the record at {found.record.position} repeats the id of the "
                        f"record at {found.first} with other content: not shown (see: ledger "
                        "project errors)",
                        err=True,
                    )
                continue  # an identical re-publish: counted once, shown once
            record = found
            if record.event is None:
                undecodable += 1
                click.echo(
                    f"warning: cannot decode the record at {record.position}: {record.error}",
                    err=True,
                )
                continue
            if fmt == "jsonl":
                out.write(_jsonl(record, with_position))
            else:
                click.echo(_table_line(record))
    if undecodable or conflicts:
        ctx.exit(EXIT_REJECTED)


def _jsonl(record: LogRecord, with_position: bool) -> bytes:
    assert record.event is not None
    if with_position:
        return (
            orjson.dumps(
                {
                    "position": str(record.position),
                    "recorded_at": record.recorded_at.isoformat(),
                    "event": event_to_dict(record.event),
                }
            )
            + b"\n"
        )
    return orjson.dumps(event_to_dict(record.event)) + b"\n"


def _table_line(record: LogRecord) -> str:
    event = record.event
    assert event is not None
    return (
        f"{record.position!s:>10}  {event.time.isoformat():25}  {event.subject:12}  "
        f"{event.type:20}  {describe(event)}"
    )


@main.command()
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
    found = _history(
        ctx,
        customer,
        parse_time(until, "--until", day="end"),
        parse_time(recorded_by, "--as-recorded-by", day="end"),
    )
    if as_json:
        out = sys.stdout.buffer
        for record in found.records:
            out.write(_jsonl(record, with_position=True))
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


@main.command()
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
    settings = settings_of(ctx)
    first_day = parse_time(start, "--start")
    if out is not None:
        with click.open_file(out, "wb") as stream:
            count = service.write_generated(
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
    rejects = settings.data_dir / "rejects" / f"generate-{seed}.jsonl"
    with open_log(settings) as log, progress_bar("generating", None, False) as advance:
        summary = service.generate_into(
            log,
            customers=customers,
            days=days,
            seed=seed,
            start=first_day,
            rejects_path=rejects,
            batch_size=settings.batch_size,
            on_progress=advance,
            identities=identities,
        )
    _render_import(summary, as_json)
    if summary.failed:
        ctx.exit(1)


# -- demo -------------------------------------------------------------------------------


@main.command()
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
    rejects = settings.data_dir / "rejects" / f"demo-{seed}.jsonl"
    with (
        open_log(settings) as log,
        closing(open_store(settings)) as store,
        progress_bar("generating", None, False) as advance,
    ):
        report = service.demo(
            log,
            store,
            customers=customers,
            days=days,
            seed=seed,
            rejects_path=rejects,
            batch_size=settings.batch_size,
            policies=policy_history(settings),
            on_progress=advance,
            identities=identities,
        )
    if as_json:
        click.echo(orjson.dumps(_demo_json(report, settings)))
        return
    _render_demo(report, settings)


def _demo_json(report: service.DemoReport, settings: Settings) -> dict[str, Any]:
    seen = report.overview
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
        "sample": [event_to_dict(r.event) for r in report.sample if r.event is not None],
        "relationship": _relationship_json(report.relationship),
        "violations": dict(
            Counter(rule for v in report.violations for rule in {r.rule for r in v.reasons})
        ),
        "over_caps": dict(report.pressure.over_caps) if report.pressure else {},
        "over_contact_sources": dict(report.pressure.sources) if report.pressure else {},
    }


def _render_demo(report: service.DemoReport, settings: Settings) -> None:
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
        _render_relationship(console, report.relationship)
    if report.pressure is not None:
        by_rule = Counter(rule for v in report.violations for rule in {r.rule for r in v.reasons})
        console.print(
            f"[bold]Contact policy[/bold]: {len(report.violations)} outbound contacts broke it "
            "when they happened ("
            + (", ".join(f"{n} {rule}" for rule, n in by_rule.most_common()) or "none")
            + ")"
        )
        _render_pressure(console, report.pressure, "30d")
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


# -- read models ----------------------------------------------------------------------


def parse_window(value: str) -> timedelta:
    """``90m``, ``24h``, ``7d`` or ``2w`` (at most about 100 years)."""
    try:
        return parse_duration(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--window") from None


def window_option(default: str | None) -> Callable[[F], F]:
    return click.option(
        "--window",
        default=default,
        metavar="24h|7d|2w",
        help="Rolling window ending at --at (default now).",
    )


def at_option(function: F) -> F:
    return click.option(
        "--at",
        "at",
        metavar="TIME",
        help="Evaluate at this time instead of now (RFC 3339 or date).",
    )(function)


def batch_size_option(function: F) -> F:
    return click.option(
        "--batch-size",
        type=click.IntRange(1, 1_000_000),
        default=PROJECTOR_BATCH,
        show_default=True,
        help="Records per transaction (at most).",
    )(function)


def workers_option(function: F) -> F:
    return click.option(
        "--workers",
        type=click.IntRange(0, 64),
        default=None,
        help="Processes to fold a large backlog with (env LEDGER_WORKERS; 0, the default: "
        "one per CPU core; 1: fold in this process only).",
    )(function)


def validate_option(function: F) -> F:
    return click.option(
        "--validate",
        is_flag=True,
        help="Validate every embedded-log record against the contract again (slower); by "
        "default the ones the ledger validated at append time are trusted.",
    )(function)


@main.group()
def project() -> None:
    """Run and inspect the projectors that build the read models.

    \b
    Example:
      ledger project run
      ledger project run --follow
      ledger project errors
    """


@project.command("run")
@click.option(
    "--follow", is_flag=True, help="Keep running until SIGINT/SIGTERM (then exit code 0)."
)
@batch_size_option
@click.option(
    "--on-error",
    type=click.Choice(["park", "stop"]),
    default="park",
    show_default=True,
    help="park: dead-letter a poison record and go on.",
)
@click.option("--group", "group_id", help="Kafka consumer group (env LEDGER_GROUP_ID).")
@workers_option
@validate_option
@json_option
@click.pass_context
def project_run(
    ctx: click.Context,
    follow: bool,
    batch_size: int,
    on_error: str,
    group_id: str | None,
    workers: int | None,
    validate: bool,
    as_json: bool,
) -> None:
    """Bring the profile and contact-frequency views up to date with the log.

    Resumes from the positions stored with the views; an event already applied (same
    id) is never applied twice. On a Kafka log, every process started with the same
    --group shares the partitions, and a stopped one's partitions move to the others.
    With --follow, keeps applying new events until SIGINT or SIGTERM.

    On SIGINT/SIGTERM (once or several times, to the process or its group) it stops
    within about a second, idle or busy: the batch in hand is committed (one process) or
    rolled back (worker processes: nothing of it reaches the views), so every event
    counts once when it runs again. Exit code with --follow: 0 (a signal is the normal
    way to stop a follower); without it, a catch-up cut short exits 130 (SIGINT) or
    143 (SIGTERM) after printing what it committed.
    On Kafka it waits (and says so) while the broker is down. It stops with exit 1,
    applying nothing, if the stored positions no longer fit the log (a recreated topic, a
    replaced file): then `ledger project rebuild` or `project reset`.

    \b
    Example:
      ledger project run
      ledger project run --follow --batch-size 1000
    """
    settings = settings_of(ctx)
    with (
        stop_on_signals() as stop,
        open_log(settings, create=False) as log,
        closing(open_store(settings)) as store,
    ):
        if isinstance(log, KafkaLog):
            kafka_log = log

            def join() -> GroupProjector:
                return GroupProjector(
                    kafka_log,
                    store,
                    group_id=group_id or settings.group_id,
                    batch_size=batch_size,
                    session_timeout_ms=settings.kafka_session_timeout_ms,
                    on_error=on_error,
                    workers=settings.workers if workers is None else workers,
                )

            report = follow_group(join, stop) if follow else join().run(stop, until_caught_up=True)
        else:
            projector = Projector(
                log,
                store,
                batch_size=batch_size,
                on_error="stop" if on_error == "stop" else "park",
                validate=validate,
                workers=settings.workers if workers is None else workers,
            )
            report = projector.follow(stop) if follow else projector.catch_up(stop)
        interrupted = 0 if follow else exit_code(stop)
    summary = {
        "records": report.records,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "parked": report.parked,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.rate),
        "workers": report.workers,
        "positions": {str(p): o for p, o in sorted(report.positions.items())},
        "interrupted": _signal_name(interrupted),
    }
    if as_json:
        click.echo(orjson.dumps(summary))
    else:
        click.echo(
            f"{report.records} records: {report.applied} applied, {report.duplicates} "
            f"duplicates skipped, {report.parked} parked ({report.rate:,.0f} records/s"
            + (f", {report.workers} worker processes)" if report.workers > 1 else ")")
        )
        if report.parked:
            click.echo("parked records: ledger project errors")
    if interrupted:
        click.echo(
            f"interrupted by {_signal_name(interrupted)}: the views hold every batch "
            "committed before it; run `ledger project run` again to go on",
            err=True,
        )
        ctx.exit(interrupted)


def _signal_name(code: int) -> str | None:
    """The name of the signal behind exit code ``code`` (128 + its number), if any."""
    return signal.Signals(code - 128).name if code > 128 else None


@project.command("rebuild")
@click.argument(
    "name", required=False, default="views", type=click.Choice(["views", "profile", "frequency"])
)
@batch_size_option
@workers_option
@validate_option
@json_option
@click.pass_context
def project_rebuild(
    ctx: click.Context,
    name: str,
    batch_size: int,
    workers: int | None,
    validate: bool,
    as_json: bool,
) -> None:
    """Rebuild the views from the start of the log, then swap them in.

    The profile and frequency views share one store and are rebuilt together (NAME is
    accepted for either). The live views stay readable until the swap, which is one
    transaction; a projector running with --follow picks up from the rebuilt positions.
    On SIGINT/SIGTERM it stops within seconds without swapping anything in (exit code
    130/143).

    \b
    Example:
      ledger project rebuild
      ledger project rebuild profile --json
    """
    settings = settings_of(ctx)
    with (
        stop_on_signals() as stop,
        open_log(settings, create=False) as log,
        closing(open_store(settings)) as store,
    ):
        report = rebuild(
            log,
            store,
            batch_size=batch_size,
            validate=validate,
            workers=settings.workers if workers is None else workers,
            stop=stop,
        )
        interrupted = exit_code(stop)
    if interrupted:
        click.echo(
            f"interrupted by {_signal_name(interrupted)}: nothing swapped in, the live views "
            "are unchanged; run `ledger project rebuild` again",
            err=True,
        )
        ctx.exit(interrupted)
    summary = {
        "rebuilt": name,
        "records": report.records,
        "applied": report.applied,
        "parked": report.parked,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.rate),
        "workers": report.workers,
    }
    if as_json:
        click.echo(orjson.dumps(summary))
        return
    click.echo(
        f"rebuilt from {report.records} records ({report.applied} applied, "
        f"{report.parked} parked) at {report.rate:,.0f} records/s, and swapped in"
    )


@project.command("status")
@json_option
@click.pass_context
def project_status(ctx: click.Context, as_json: bool) -> None:
    """Where the views stand: per log partition the position, lag in events and in event
    time, the speed of the last batch; rows per table; the last parked record.

    \b
    Example:
      ledger project status
      ledger project status --json | jq '.partitions[].lag_events'
    """
    settings = settings_of(ctx)
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        status = service.projection_status(log, store)
    error = status.last_error
    problems = [p.error for p in status.partitions if p.error is not None]
    if status.replaced is not None:
        problems.insert(0, status.replaced)
    data = {
        "log": redact_url(settings.log_url),
        "store": redact_url(settings.store_url),
        "partitions": [
            {
                "partition": p.partition,
                "position": p.position,
                "end": p.end,
                "lag_events": p.lag_events,
                "lag_seconds": None if p.lag_seconds in (None, float("inf")) else p.lag_seconds,
                "started": p.lag_seconds != float("inf"),
                "records_per_second": round(p.rate) if p.rate else None,
                "newest_applied": p.newest_applied.isoformat() if p.newest_applied else None,
                "committed_at": p.committed_at.isoformat() if p.committed_at else None,
                "error": p.error,
            }
            for p in status.partitions
        ],
        "errors": problems,
        "rows": status.rows,
        "decisions": {
            "unprojected_records": status.unprojected,
            "oldest_unprojected_age_seconds": _age(status.oldest_unprojected),
        },
        "last_error": None
        if error is None
        else {
            "position": f"{error.partition}:{error.offset}",
            "reason": error.reason,
            "parked_at": error.parked_at.isoformat(),
        },
        "misplaced": {
            "records": status.misplaced_records,
            "partitions": [
                {
                    "partition": m.partition,
                    "records": m.count,
                    "last_offset": m.offset,
                    "last_customer": m.customer,
                    "murmur2_partition": m.home,
                }
                for m in status.misplaced.values()
            ],
            "explanation": service.MISPLACED_EXPLANATION if status.misplaced else None,
            "fix": service.MISPLACED_FIX if status.misplaced else None,
        },
    }
    if as_json:
        click.echo(orjson.dumps(data))
        ctx.exit(1 if problems else 0)
    table = Table(
        "partition",
        "position",
        "end",
        "lag (events)",
        "lag (event time)",
        "records/s",
        "last commit",
        title=f"{data['log']} -> {data['store']}",
    )
    for p in status.partitions:
        lag = (
            "ERROR (below)"
            if p.error is not None
            else "-"
            if p.lag_seconds is None
            else "not started"
            if p.lag_seconds == float("inf")
            else f"{p.lag_seconds:,.0f}s"
        )
        table.add_row(
            str(p.partition),
            str(p.position),
            str(p.end),
            str(p.lag_events),
            lag,
            f"{p.rate:,.0f}" if p.rate else "-",
            f"{p.committed_at:%Y-%m-%d %H:%M:%S}" if p.committed_at else "never",
        )
    Console().print(table)
    click.echo("rows: " + ", ".join(f"{name} {n}" for name, n in status.rows.items()))
    age = _age(status.oldest_unprojected)
    click.echo(
        f"decisions fold {status.unprojected} unprojected record(s) themselves"
        + (f"; the oldest was recorded {age:,.0f}s ago" if age is not None else "")
    )
    if error is not None:
        click.echo(f"last error: {error.partition}:{error.offset} {error.reason}")
    if status.misplaced:
        click.echo(
            f"misplaced: {status.misplaced_records} {service.MISPLACED_EXPLANATION}",
        )
        for m in status.misplaced.values():
            click.echo(
                f"  partition {m.partition}: {m.count} record(s), the last at "
                f"{m.partition}:{m.offset} (customer {m.customer}, whose partition is {m.home})"
            )
        click.echo(f"  fix the producer: {service.MISPLACED_FIX}")
    for problem in problems:
        click.echo(f"error: {problem}", err=True)
    if problems:
        ctx.exit(1)


@project.command("reset")
@click.option("--yes", is_flag=True, help="Confirm: drop the views and their positions.")
@json_option
@click.pass_context
def project_reset(ctx: click.Context, yes: bool, as_json: bool) -> None:
    """Drop the views, their positions and parked records, so that the next `ledger project
    run` projects the log from its beginning (one transaction; the log is not touched).

    For views whose positions no longer fit the log (a Kafka topic deleted and recreated,
    a broker that lost its data, an embedded log file replaced): `ledger project status`
    names them. `ledger project rebuild` does the same and projects at once.

    \b
    Example:
      ledger project reset --yes && ledger project run
    """
    if not yes:
        raise LedgerError(
            "project reset drops every view row and position of this store: "
            "run it again with --yes to confirm"
        )
    settings = settings_of(ctx)
    with closing(open_store(settings)) as store:
        store.reset()
    if as_json:
        click.echo(orjson.dumps({"reset": True}))
        return
    click.echo("views, positions and parked records dropped: ledger project run starts over")


def _age(moment: datetime | None) -> float | None:
    return None if moment is None else max((datetime.now(UTC) - moment).total_seconds(), 0.0)


@project.command("retry")
@json_option
@click.pass_context
def project_retry(ctx: click.Context, as_json: bool) -> None:
    """Apply the parked records again, after a fix (`ledger project errors` lists them).

    Each record is read afresh from the log and decoded by the current code; records that
    still fail stay parked with the new reason.

    \b
    Example:
      ledger project retry
    """
    settings = settings_of(ctx)
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        report = Projector(log, store).retry()
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "retried": report.records,
                    "applied": report.applied,
                    "duplicates": report.duplicates,
                    "still_parked": report.parked,
                }
            )
        )
        return
    click.echo(
        f"retried {report.records}: {report.applied} applied, {report.duplicates} "
        f"already applied, {report.parked} still parked"
    )


@project.command("errors")
@json_option
@click.pass_context
def project_errors(ctx: click.Context, as_json: bool) -> None:
    """The records the projector parked (dead letters), with position and reason.

    \b
    Example:
      ledger project errors --json
    """
    settings = settings_of(ctx)
    with closing(open_store(settings)) as store:
        letters = store.dead_letters()
    conflicts = _conflicts(settings, letters)
    if as_json:
        for letter in letters:
            click.echo(orjson.dumps(_letter_dict(letter, conflicts.get(letter))))
        return
    if not letters:
        click.echo("no parked records")
    for letter in letters:
        click.echo(f"{letter.partition}:{letter.offset}  {letter.reason}")
        extras = [f"key {letter.key!r}"] if letter.key is not None else []
        if letter.timestamp is not None:
            extras.append(f"recorded {letter.timestamp.isoformat()}")
        if letter.headers:
            extras.append("headers " + ", ".join(f"{n}={v!r}" for n, v in letter.headers))
        if extras:
            click.echo("    " + "; ".join(extras))
        conflict = conflicts.get(letter)
        if conflict is not None:
            click.echo(f"    differs: {', '.join(conflict.differs) or 'unknown'}")
            for label, record in (("applied", conflict.applied), ("parked", conflict.parked)):
                shown = (
                    orjson.dumps(event_to_dict(record.event)).decode()
                    if record is not None and record.event is not None
                    else "(not readable in the log)"
                )
                where = record.position if record is not None else "?"
                click.echo(f"    {label} copy at {where}: {shown}")


def _conflicts(settings: Settings, letters: list[DeadLetter]) -> dict[DeadLetter, Conflict]:
    """Both versions of each conflicting duplicate among ``letters``, from the log (if it
    cannot be read, a warning, and the letters alone)."""
    wanted = [letter for letter in letters if letter.first is not None]
    if not wanted:
        return {}
    try:
        with open_log(settings, create=False) as log:
            found = {letter: service.conflict_of(log, letter) for letter in wanted}
    except LedgerError as exc:
        click.echo(f"warning: the conflicting copies cannot be read from the log: {exc}", err=True)
        return {}
    return {letter: conflict for letter, conflict in found.items() if conflict is not None}


def _letter_dict(letter: DeadLetter, conflict: Conflict | None) -> dict[str, Any]:
    found: dict[str, Any] = {
        "position": f"{letter.partition}:{letter.offset}",
        "reason": letter.reason,
        "parked_at": letter.parked_at.isoformat(),
        "raw": letter.raw.decode(errors="replace"),
        "key": None if letter.key is None else letter.key.decode(errors="replace"),
        "headers": orjson.loads(encode_headers(letter.headers) or "[]"),
        "timestamp": None if letter.timestamp is None else letter.timestamp.isoformat(),
    }
    if letter.first is not None:
        found["conflict"] = {
            "applied_position": f"{letter.first[0]}:{letter.first[1]}",
            "differs": None if conflict is None else conflict.differs,
            "applied": _version(conflict.applied if conflict else None),
            "parked": _version(conflict.parked if conflict else None),
        }
    return found


def _version(record: LogRecord | None) -> dict[str, Any] | None:
    if record is None or record.event is None:
        return None
    return {"position": str(record.position), "event": event_to_dict(record.event)}


def _now(at: str | None) -> datetime:
    return parse_time(at, "--at") or datetime.now(UTC)


def as_of_options(function: F) -> F:
    function = click.option(
        "--as-recorded-by",
        "recorded_by",
        metavar="TIME",
        help="As the ledger knew it then: only events recorded (appended) by TIME (a bare "
        "YYYY-MM-DD: to the end of that UTC day).",
    )(function)
    return click.option(
        "--as-of",
        "as_of",
        metavar="TIME",
        help="As it stood at TIME: only events that happened by then (event time), "
        "folded from the log by the projection's own code. A bare YYYY-MM-DD means the end "
        "of that UTC day (everything on it included).",
    )(function)


def _as_of(as_of: str | None, recorded_by: str | None) -> tuple[datetime | None, datetime | None]:
    return (
        parse_time(as_of, "--as-of", day="end"),
        parse_time(recorded_by, "--as-recorded-by", day="end"),
    )


def _history(
    ctx: click.Context, customer: str, until: datetime | None, recorded_by: datetime | None
) -> service.History:
    settings = settings_of(ctx)
    with open_log(settings, create=False) as log:
        found = service.history(
            log,
            customer,
            until=until,
            recorded_by=recorded_by,
            max_customers=settings.identity_max_customers,
        )
    for record in found.undecodable:
        click.echo(
            f"warning: cannot decode the record at {record.position}: {record.error}", err=True
        )
    return found


def fresh_option(function: F) -> F:
    return click.option(
        "--fresh/--no-fresh",
        default=None,
        help="Fold the customer's records the views do not hold yet (default: yes on the "
        "embedded log, no on Kafka, where it costs a fetch of every partition past the "
        "views' positions).",
    )(function)


def _fresh_customer(
    ctx: click.Context, customer: str, fresh: bool | None, window: Window
) -> CustomerNow:
    """The customer's profile and contact slots in ``window``: the views, plus (``fresh``)
    the customer's records past their positions."""
    settings = settings_of(ctx)
    with closing(open_store(settings)) as store:
        if fresh is None:
            fresh = fresh_by_default(settings)
        if not fresh:
            return customer_in_views(
                store,
                known_partitions(settings),
                customer,
                window,
                max_customers=settings.identity_max_customers,
            )
        with open_log(settings, create=False) as log:
            known = known_partitions(settings)
            return customer_fresh(
                log,
                store,
                customer,
                window,
                known_partitions=known,
                max_customers=settings.identity_max_customers,
            )


@main.command()
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
    until, known_by = _as_of(as_of, recorded_by)
    freshness: Freshness | None = None
    if until or known_by:
        found = _history(ctx, customer, until, known_by).profile()
        if found is None:
            raise LedgerError(f"no touchpoints of customer {customer!r} by then")
    else:
        current = _fresh_customer(ctx, customer, fresh, Window(0, 0))
        found, freshness = current.profile, current.freshness
        if found is None:
            raise LedgerError(f"no profile for customer {customer!r} (try: ledger project run)")
    now = parse_time(at, "--at") or until or known_by or datetime.now(UTC)
    derived = {
        "status": str(found.lifecycle(now)),
        "at_risk": found.at_risk(now),
        "net_spend": {c: str(v) for c, v in found.net_spend().items()},
        "average_order_value": {c: str(v) for c, v in found.average_order_value().items()},
        "open_complaints": {c: t.isoformat() for c, t in found.open_complaints().items()},
    }
    if as_json:
        seen = {"freshness": freshness.to_dict()} if freshness else {}
        click.echo(orjson.dumps({**found.to_dict(), **derived, **seen}))
        return
    if freshness is not None:
        click.echo(_freshness_line(freshness))
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


def _totals(
    slots: list[tuple[int, str, str, str, int]], window: Window
) -> dict[tuple[str, str, str], int]:
    """Contacts per (channel, direction, purpose) among ``slots`` in ``window``."""
    found: dict[tuple[str, str, str], int] = {}
    for slot, channel, direction, purpose, n in slots:
        if window.start <= slot < window.end:
            key = (channel, direction, purpose)
            found[key] = found.get(key, 0) + n
    return found


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
        until, known_by = _as_of(as_of, recorded_by)
        now = parse_time(at, "--at") or until or known_by or datetime.now(UTC)
        lengths = [window] if window else ["24h", "7d", "30d", "90d"]
        windows = {w: Window.rolling(now, parse_window(w)) for w in lengths}
        freshness: Freshness | None = None
        if until or known_by:
            counts = _history(ctx, customer, until, known_by).contacts()
            per_window = {w: frequency.totals(counts, customer, win) for w, win in windows.items()}
        else:
            widest = Window(
                min(w.start for w in windows.values()), max(w.end for w in windows.values())
            )
            current = _fresh_customer(ctx, customer, fresh, widest)
            per_window = {w: _totals(current.slots, win) for w, win in windows.items()}
            freshness = current.freshness
        keys = sorted({k for counts in per_window.values() for k in counts})
        if as_json:
            click.echo(
                orjson.dumps(
                    {
                        "customer": customer,
                        "at": now.isoformat(),
                        "contacts": [
                            {
                                "channel": ch,
                                "direction": d,
                                "purpose": p,
                                **{w: per_window[w].get((ch, d, p), 0) for w in lengths},
                            }
                            for ch, d, p in keys
                        ],
                        **({"freshness": freshness.to_dict()} if freshness else {}),
                    }
                )
            )
            return
        if freshness is not None:
            click.echo(_freshness_line(freshness))
        table = Table(
            "channel",
            "direction",
            "purpose",
            *lengths,
            title=f"Contacts of {customer} up to {now:%Y-%m-%d %H:%M %Z}",
        )
        for key in keys:
            table.add_row(*key, *(str(per_window[w].get(key, 0)) for w in lengths))
        Console().print(table)

    return show


@main.group(cls=ContactsGroup)
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
    now = _now(at)
    with closing(open_store(settings_of(ctx))) as store:
        rows = identity.most_contacted(
            store,
            Window.rolling(now, parse_window(window)),
            channel=channel,
            direction=direction,
            purpose=purpose,
            limit=limit,
            max_customers=settings_of(ctx).identity_max_customers,
        )
    if as_json:
        click.echo(orjson.dumps([{"customer": c, "contacts": n} for c, n in rows]))
        return
    table = Table("customer", f"contacts in {window}", title=f"Most contacted up to {now:%Y-%m-%d}")
    for customer, n in rows:
        table.add_row(customer, str(n))
    Console().print(table)


@main.command()
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
    with closing(open_store(settings_of(ctx))) as store:
        found = identity.customers(
            store,
            _now(at),
            status=status,
            at_risk=risk,
            limit=limit,
            max_customers=settings_of(ctx).identity_max_customers,
        )
    if as_json:
        click.echo(orjson.dumps(found))
        return
    for customer in found:
        click.echo(customer)


def _render_relationship(console: Console, rel: RelationshipReport) -> None:
    console.print(
        f"[bold]The relationship on {rel.now:%Y-%m-%d}[/bold] "
        f"({rel.projected} touchpoints projected)"
    )
    console.print("  status: " + ", ".join(f"{n} {s}" for s, n in rel.statuses.items()))
    console.print(
        "  top spenders (net of refunds): "
        + ", ".join(f"{c} {amount} {currency}" for c, currency, amount in rel.top_spenders)
    )
    console.print(
        "  complaints open more than 7 days: "
        + (", ".join(f"{c} (since {since:%Y-%m-%d})" for c, since in rel.at_risk) or "none")
    )
    console.print(
        "  most contacted, outbound, last 30 days: "
        + ", ".join(f"{c} ({n})" for c, n in rel.most_contacted)
    )


def _relationship_json(rel: RelationshipReport | None) -> dict[str, Any] | None:
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


# -- schema -----------------------------------------------------------------------------


@main.command()
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


# -- contact policy ---------------------------------------------------------------------


@main.group()
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
    history = policy_history(settings_of(ctx))
    loaded = history.current()
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "source": loaded.source,
                    "sha256": loaded.sha256,
                    **loaded.policy.model_dump(),
                    "history": [
                        {"version": v.version, "effective_from": v.policy.effective_from}
                        for v in history.versions
                    ],
                }
            )
        )
        return
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


@main.command("may-contact")
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
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))
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
    with Ledger(settings, policy=policy_file) as ledger:
        moment = _now(at)
        if batch is not None:
            rejected = _decide_batch(ledger, batch, moment, record, requested_by)
            if rejected:
                ctx.exit(EXIT_REJECTED)
            return
        if customer is None or channel is None or purpose is None:
            raise click.UsageError("give CUSTOMER, --channel and --purpose (or --batch FILE)")
        decision = ledger.may_contact(
            customer, channel, purpose, moment, record=record, requested_by=requested_by
        )
    if as_json:
        click.echo(orjson.dumps(decision.to_dict()))
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
            click.echo(f"  {_freshness_line(decision.freshness)}")
    if not decision.allowed:
        ctx.exit(EXIT_DENIED)


@main.command()
@click.option(
    "--since", help="Contacts at or after (RFC 3339, or YYYY-MM-DD: from its start, UTC)."
)
@click.option(
    "--until", help="Contacts before (RFC 3339, or YYYY-MM-DD: that whole UTC day included)."
)
@click.option("--channel", type=click.Choice([c.value for c in Channel]))
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))
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
    settings = settings_of(ctx)
    history = load_policies(policy_file) if policy_file else policy_history(settings)
    with open_log(settings, create=False) as log:
        found = service.find_violations(
            log,
            history,
            since=parse_time(since, "--since"),
            until=parse_time(until, "--until", day="next"),
            channel=channel,
            max_customers=settings.identity_max_customers,
        )
    if as_json:
        out = sys.stdout.buffer
        for violation in found:
            out.write(orjson.dumps(violation.to_dict()) + b"\n")
        return
    by_rule = Counter(rule for v in found for rule in {r.rule for r in v.reasons})
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


@main.command("pressure")
@window_option("30d")
@at_option
@click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))
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
    settings = settings_of(ctx)
    history = load_policies(policy_file) if policy_file else policy_history(settings)
    moment = _now(at)
    length = parse_window(window)
    loaded = history.at(moment) or history.current()
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        found = service.find_violations(
            log,
            history,
            since=moment - length,
            until=moment,
            max_customers=settings.identity_max_customers,
        )
        report = pressure(
            store, loaded, moment, length, found, max_customers=settings.identity_max_customers
        )
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "at": moment.isoformat(),
                    "window": window,
                    "policy": loaded.version,
                    "channels": [asdict(s) for s in report.spreads],
                    "over_caps": [{"cap": c, "customers": n} for c, n in report.over_caps],
                    "over_contact_sources": [
                        {"source": s, "contacts": n} for s, n in report.sources
                    ],
                }
            )
        )
        return
    _render_pressure(Console(), report, window)


def _render_pressure(console: Console, report: PressureReport, window: str) -> None:
    spread = Table(
        "channel",
        "customers",
        "contacts",
        "p50",
        "p90",
        "p99",
        "max",
        title=f"Outbound contacts per customer, {window} to {report.at:%Y-%m-%d}",
        title_justify="left",
    )
    for s in report.spreads:
        spread.add_row(
            s.channel, *(str(v) for v in (s.customers, s.contacts, s.p50, s.p90, s.p99, s.max))
        )
    console.print(spread)
    caps = Table("cap", "customers over it", title="Over the caps", title_justify="left")
    for cap, n in report.over_caps:
        caps.add_row(cap, str(n))
    console.print(caps)
    sources = Table(
        "source", "contacts over a cap", title="Who over-contacted", title_justify="left"
    )
    for source, n in report.sources:
        sources.add_row(source, str(n))
    console.print(sources)


def _freshness_line(freshness: Freshness) -> str:
    """What a decision saw, in one line: log and view positions, records folded."""

    def positions(found: dict[int, int]) -> str:
        return ", ".join(f"{p}:{o}" for p, o in sorted(found.items())) or "-"

    line = (
        f"as of log {positions(freshness.log_positions)}, views "
        f"{positions(freshness.view_positions)}, {freshness.folded} record(s) folded beyond "
        "the views"
    )
    return line + (f"; WARNING: {freshness.warning}" if freshness.warning else "")


def _decide_batch(
    ledger: Ledger, batch: IO[bytes], moment: datetime, record: bool, requested_by: str | None
) -> int:
    """Decisions for a campaign list, as JSON Lines on stdout; unreadable lines are reported
    on stderr with their number and reason. Returns how many were unreadable."""
    rejected = 0

    def requests() -> Iterator[tuple[str, str, str]]:
        nonlocal rejected
        for number, request in parse_requests(batch):
            if isinstance(request, str):
                rejected += 1
                click.echo(f"warning: line {number}: {request}", err=True)
                continue
            yield request

    out = sys.stdout.buffer
    recorded = 0
    for decision in ledger.may_contact_many(
        requests(), moment, record=record, requested_by=requested_by
    ):
        out.write(orjson.dumps(decision.to_dict()) + b"\n")
        recorded += 1
    if record:
        click.echo(f"recorded {recorded} decisions in the log", err=True)
    return rejected


# -- audit ------------------------------------------------------------------------------

EXIT_TAMPERED = 4


@main.group()
def audit() -> None:
    """Tamper evidence for auditors: seal the log, verify it, export the seals.

    \b
    Example:
      ledger audit keygen keys/seal.pem
      ledger audit seal --key keys/seal.pem
      ledger audit verify --public-key keys/seal.pem.pub
      ledger audit export --out bundle/
    """


@audit.command("keygen")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def audit_keygen(path: Path) -> None:
    """Create an Ed25519 signing key (PATH, PEM, mode 600) and its public key (PATH.pub).

    Keep the private key away from the people who run the ledger; give auditors the .pub.

    \b
    Example:
      ledger audit keygen keys/seal.pem
    """
    public = ledger_audit.generate_key(path)
    click.echo(f"wrote {path} and {path}.pub (public key {public})")


@audit.command("seal")
@click.option(
    "--key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Sign each checkpoint with this Ed25519 private key (PEM).",
)
@json_option
@click.pass_context
def audit_seal(ctx: click.Context, key: Path | None, as_json: bool) -> None:
    """Extend each partition's hash chain to the end of the log and checkpoint it.

    Incremental: sealing again continues from the last checkpoint. Checkpoints and the
    digest of every sealed record go to the audit store (LEDGER_AUDIT_STORE), not the log.
    On SIGINT/SIGTERM it checkpoints what it has chained so far (a valid, shorter seal),
    prints it and exits 130/143; sealing again goes on from there.

    \b
    Example:
      ledger audit seal --key keys/seal.pem
    """
    settings = settings_of(ctx)
    signer = ledger_audit.Signer(key) if key else None
    with (
        stop_on_signals() as stop,
        open_log(settings, create=False) as log,
        closing(ledger_audit.AuditStore(settings.audit_path)) as store,
    ):
        report = ledger_audit.seal(log, log_name(settings), store, signer, stop=stop)
        interrupted = exit_code(stop)
    rate = report.records / report.seconds if report.seconds else 0.0
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "records": report.records,
                    "seconds": round(report.seconds, 3),
                    "records_per_second": round(rate),
                    "checkpoints": [c.to_dict() for c in report.checkpoints],
                    "interrupted": _signal_name(interrupted),
                }
            )
        )
    else:
        click.echo(
            f"sealed {report.records} new records in {len(report.checkpoints)} partition(s) "
            f"({rate:,.0f} records/s){', signed' if signer else ''}"
        )
        for checkpoint in report.checkpoints:
            click.echo(
                f"  checkpoint {checkpoint.id}: partition {checkpoint.partition} up to position "
                f"{checkpoint.position}, {checkpoint.count} records, "
                f"chain {checkpoint.chain[:16]}..."
            )
    if interrupted:
        click.echo(
            f"interrupted by {_signal_name(interrupted)}: sealed as far as the checkpoints "
            "say; run `ledger audit seal` again to seal the rest",
            err=True,
        )
        ctx.exit(interrupted)


@audit.command("verify")
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Require every checkpoint to be signed by this key (PEM or hex). Without it, "
    "signatures are checked against the key each checkpoint names.",
)
@click.option(
    "--from-checkpoint",
    type=int,
    metavar="ID",
    help="Trust each partition up to its last checkpoint with this id or lower.",
)
@json_option
@click.pass_context
def audit_verify(
    ctx: click.Context, public_key: Path | None, from_checkpoint: int | None, as_json: bool
) -> None:
    """Re-read the log and check it against the seals; exit 4 if anything differs.

    Reports per partition the first divergence, its position and kind: modified,
    deleted, truncated, reordered, inserted (before a sealed position). Records added
    since the last seal are counted, not judged. Streams: memory does not grow with the log.

    \b
    Example:
      ledger audit verify --public-key keys/seal.pem.pub
      ledger audit verify --json | jq '.partitions[].divergence'
    """
    settings = settings_of(ctx)
    key = ledger_audit.load_public_key(public_key) if public_key else None
    with (
        open_log(settings, create=False) as log,
        closing(ledger_audit.require_seals(log, log_name(settings), settings.audit_path)) as store,
    ):
        reports = ledger_audit.verify(
            log, log_name(settings), store, public_key=key, from_checkpoint=from_checkpoint
        )
    ok = all(r.ok for r in reports)
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "ok": ok,
                    "partitions": [
                        {
                            "partition": r.partition,
                            "ok": r.ok,
                            "records": r.records,
                            "sealed": r.sealed,
                            "unsealed": r.unsealed,
                            "checkpoints": r.checkpoints,
                            "signatures_verified": r.signatures,
                            "divergence": asdict(r.divergence) if r.divergence else None,
                            "problems": r.problems,
                            "layout_1_until": r.layout_1_until,
                        }
                        for r in reports
                    ],
                }
            )
        )
    else:
        for r in reports:
            line = (
                f"partition {r.partition}: {r.sealed} sealed records, {r.checkpoints} "
                f"checkpoint(s), {r.signatures} signature(s) verified, {r.unsealed} unsealed"
            )
            click.echo(("ok       " if r.ok else "TAMPERED ") + line)
            if r.divergence:
                d = r.divergence
                click.echo(f"  first divergence at position {d.position}: {d.kind}: {d.detail}")
            for problem in r.problems[:5]:
                click.echo(f"  {problem}")
            if len(r.problems) > 5:
                click.echo(f"  ... and {len(r.problems) - 5} more")
            if r.layout_1_until:
                click.echo(
                    f"  note: records up to position {r.layout_1_until} were sealed in layout 1, "
                    "which does not cover the version column nor the columns' types "
                    "(docs/audit.md)"
                )
    if not ok:
        ctx.exit(EXIT_TAMPERED)


@audit.command("export")
@click.option(
    "--out", required=True, type=click.Path(file_okay=False, path_type=Path), help="Folder."
)
@click.pass_context
def audit_export(ctx: click.Context, out: Path) -> None:
    """Write the checkpoints and public key(s) as a small JSON bundle (seals.json).

    With the algorithm in docs/audit.md, an auditor checks the log against it with their
    own code; the ledger is not needed.

    \b
    Example:
      ledger audit export --out bundle/
    """
    settings = settings_of(ctx)
    store = ledger_audit.AuditStore.existing(settings.audit_path)
    if store is None:
        raise ledger_audit.SealsMissing(
            f"no audit store at {settings.audit_path}: nothing to export"
        )
    with closing(store):
        path = ledger_audit.export(store, log_name(settings), out)
    click.echo(str(path))


# -- identity (issue 12): faces/cli/identity.py ------------------------------------------
for _command in identity_commands.COMMANDS:
    main.add_command(_command)


if __name__ == "__main__":
    main()
