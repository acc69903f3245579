"""``ledger project``: run and inspect the projectors that build the read models."""

from __future__ import annotations

import click
import orjson
from rich.console import Console
from rich.table import Table

from application import projecting
from application.service import CLEARTEXT_EXPLANATION, MISPLACED_EXPLANATION, MISPLACED_FIX
from application.status import age, projection_status
from faces.cli.options import (
    batch_size_option,
    json_option,
    settings_of,
    validate_option,
    workers_option,
)
from faces.cli.render import echo_json
from faces.http.metrics import serve_projector_metrics
from ledger.codec import event_to_dict
from ledger.errors import LedgerError
from ledger.stopping import exit_code, signal_name, stop_on_signals


@click.group()
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
@click.option(
    "--metrics-port",
    type=click.IntRange(1, 65535),
    help="Serve Prometheus metrics (positions, lag, parked records) on this port.",
)
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
    metrics_port: int | None,
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
      ledger project run --follow --metrics-port 9108
    """
    if metrics_port is not None:
        serve_projector_metrics(settings_of(ctx), metrics_port)
    with stop_on_signals() as stop:
        report = projecting.run(
            settings_of(ctx),
            stop,
            follow=follow,
            batch_size=batch_size,
            on_error=on_error,
            group_id=group_id,
            workers=workers,
            validate=validate,
        )
        interrupted = 0 if follow else exit_code(stop)
    if as_json:
        echo_json(projecting.run_dict(report, interrupted))
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
            f"interrupted by {signal_name(interrupted)}: the views hold every batch "
            "committed before it; run `ledger project run` again to go on",
            err=True,
        )
        ctx.exit(interrupted)


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
    with stop_on_signals() as stop:
        report = projecting.rebuild_views(
            settings_of(ctx), stop, batch_size=batch_size, workers=workers, validate=validate
        )
        interrupted = exit_code(stop)
    if interrupted:
        click.echo(
            f"interrupted by {signal_name(interrupted)}: nothing swapped in, the live views "
            "are unchanged; run `ledger project rebuild` again",
            err=True,
        )
        ctx.exit(interrupted)
    if as_json:
        echo_json(projecting.rebuild_dict(report, name))
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
    answer = projection_status(settings_of(ctx))
    status, error, problems = answer.status, answer.status.last_error, answer.problems
    if as_json:
        echo_json(answer.to_dict())
        ctx.exit(1 if problems else 0)
    table = Table(
        "partition",
        "position",
        "end",
        "lag (events)",
        "lag (event time)",
        "records/s",
        "last commit",
        title=f"{answer.log} -> {answer.store}",
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
    oldest = age(status.oldest_unprojected)
    click.echo(
        f"decisions fold {status.unprojected} unprojected record(s) themselves"
        + (f"; the oldest was recorded {oldest:,.0f}s ago" if oldest is not None else "")
    )
    if error is not None:
        click.echo(f"last error: {error.partition}:{error.offset} {error.reason}")
    if status.misplaced:
        click.echo(f"misplaced: {status.misplaced_records} {MISPLACED_EXPLANATION}")
        for m in status.misplaced.values():
            click.echo(
                f"  partition {m.partition}: {m.count} record(s), the last at "
                f"{m.partition}:{m.offset} (customer {m.customer}, whose partition is {m.home})"
            )
        click.echo(f"  fix the producer: {MISPLACED_FIX}")
    if status.cleartext:
        click.echo(f"personal data in clear: {status.cleartext_records} {CLEARTEXT_EXPLANATION}")
        for c in status.cleartext.values():
            last = f"{c.partition}:{c.offset}"
            click.echo(f"  partition {c.partition}: {c.count} record(s), the last at {last}")
    if answer.group is not None:
        group = answer.group
        click.echo(f"group {group.group_id}: {len(group.members)} member(s), {group.state}")
        for warning in group.warnings:
            click.echo(f"warning: {warning}", err=True)
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
    projecting.reset(settings_of(ctx))
    if as_json:
        echo_json({"reset": True})
        return
    click.echo("views, positions and parked records dropped: ledger project run starts over")


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
    report = projecting.retry(settings_of(ctx))
    if as_json:
        echo_json(projecting.retry_dict(report))
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
    found = projecting.parked(settings_of(ctx))
    if as_json:
        for parked in found:
            echo_json(parked.to_dict())
        return
    if not found:
        click.echo("no parked records")
    for letter, conflict in ((p.letter, p.conflict) for p in found):
        click.echo(f"{letter.partition}:{letter.offset}  {letter.reason}")
        extras = [f"key {letter.key!r}"] if letter.key is not None else []
        if letter.timestamp is not None:
            extras.append(f"recorded {letter.timestamp.isoformat()}")
        if letter.headers:
            extras.append("headers " + ", ".join(f"{n}={v!r}" for n, v in letter.headers))
        if extras:
            click.echo("    " + "; ".join(extras))
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
