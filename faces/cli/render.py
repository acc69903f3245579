"""What the commands share on the way out: exit codes, errors as one line, warnings on
stderr, JSON for machines and the renderings several commands print."""

from __future__ import annotations

import logging
import os
import signal
import sys
import traceback
from typing import Any

import click
import orjson
from rich.console import Console
from rich.table import Table

from application.pressure import PressureReport
from application.report import RelationshipReport
from application.service import Repeat
from ledger.describe import describe
from ledger.errors import LedgerError
from ledger.importer import ImportSummary
from ledger.log import LogRecord
from ledger.redact import redact
from projections.policy import Freshness

EXIT_REJECTED = 3
"""Exit code when the command finished but refused some input (see the rejects file)."""
EXIT_TAMPERED = 4
"""Exit code of ``audit verify`` when the log differs from its seals."""
EXIT_DENIED = 5
"""Exit code of ``may-contact`` when the contact is denied."""
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


def warnings_to_stderr() -> None:
    """Show the ledger's warnings (logger ``ledger``: a Kafka topic that forgets events,
    a record that cannot be decoded, ...) as ``warning: ...`` lines on stderr."""
    logger = logging.getLogger("ledger")
    if not any(isinstance(h, _StderrWarnings) for h in logger.handlers):
        logger.addHandler(_StderrWarnings(logging.WARNING))
        logger.setLevel(logging.WARNING)
        logger.propagate = False


class _StderrWarnings(logging.Handler):
    """Writes to whatever stderr is now (click's test runner swaps it per command)."""

    def emit(self, record: logging.LogRecord) -> None:
        click.echo(f"warning: {record.getMessage()}", err=True)


def echo_json(value: Any) -> None:
    """One JSON document on stdout."""
    click.echo(orjson.dumps(value))


def write_jsonl(value: Any) -> None:
    """One JSON Lines line on stdout."""
    sys.stdout.buffer.write(orjson.dumps(value) + b"\n")


def warn_repeat(found: Repeat) -> None:
    """A record repeating an earlier id: shown only if its content differs (the projector
    parks it)."""
    if found.conflict:
        click.echo(
            f"warning: the record at {found.record.position} repeats the id of the "
            f"record at {found.first} with other content: not shown (see: ledger "
            "project errors)",
            err=True,
        )


def table_line(record: LogRecord) -> str:
    """A decoded record as one line of ``ledger replay``'s table."""
    event = record.event
    assert event is not None
    return (
        f"{record.position!s:>10}  {event.time.isoformat():25}  {event.subject:12}  "
        f"{event.type:20}  {describe(event)}"
    )


def render_import(summary: ImportSummary, as_json: bool) -> None:
    if as_json:
        echo_json(summary.as_dict())
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


def freshness_line(freshness: Freshness) -> str:
    """What a decision saw, in one line: log and view positions, records folded."""

    def positions(found: dict[int, int]) -> str:
        return ", ".join(f"{p}:{o}" for p, o in sorted(found.items())) or "-"

    line = (
        f"as of log {positions(freshness.log_positions)}, views "
        f"{positions(freshness.view_positions)}, {freshness.folded} record(s) folded beyond "
        "the views"
    )
    return line + (f"; WARNING: {freshness.warning}" if freshness.warning else "")


def render_relationship(console: Console, rel: RelationshipReport) -> None:
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


def render_pressure(console: Console, report: PressureReport, window: str) -> None:
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
