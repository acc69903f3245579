"""CLI commands of the at-scale path (issue 17): ``ledger copy``."""

from __future__ import annotations

import click
import orjson

from application.scale import copy_log
from application.wiring import open_log
from ledger.log import Position
from ledger.redact import redact_url
from ledger.settings import Settings
from ledger.stopping import exit_code, stop_on_signals


@click.command("copy")
@click.argument("target", required=False)
@click.option("--to", "to", metavar="URL", help="The target log (instead of TARGET).")
@click.option(
    "--partitions",
    type=click.IntRange(1, 10_000),
    help="Partitions of the target topic, if it is created (default: LEDGER_KAFKA_PARTITIONS).",
)
@click.option(
    "--from-position",
    metavar="P[,P...]",
    help="Start at PARTITION:OFFSET (comma-separated per partition): go on from a copy.",
)
@click.option("--batch-size", type=click.IntRange(1, 1_000_000), default=20_000, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON for machines.")
@click.pass_context
def copy(
    ctx: click.Context,
    target: str | None,
    to: str | None,
    partitions: int | None,
    from_position: str | None,
    batch_size: int,
    as_json: bool,
) -> None:
    """Copy the log's events into the log at TARGET (a URL, as --log takes), in order.

    Personal values are encrypted on the way (a log written before encryption: then seal
    the copy, rebuild its views and destroy the old file, docs/privacy.md). The way to a
    Kafka topic with more partitions: the target places every event by its
    key's murmur2 partition of its own count, so each customer's events stay together and
    in order; ids are kept, so copying again (or on from --from-position) appends nothing
    twice. Records that are no touchpoint are not copied: they are listed. Then build the
    views of the new topic beside the old ones (docs/kafka.md, "More partitions").

    \b
    Example:
      ledger --log kafka://k:9092/touchpoints copy kafka://k:9092/touchpoints-v2 --partitions 24
      ledger copy --to sqlite:///ledger-data/ledger-encrypted.db
    """
    if (target is None) == (to is None):
        raise click.UsageError("give the target log once: TARGET or --to URL")
    target = target if target is not None else to
    if not target:
        raise click.UsageError("the target log URL is empty")
    settings = ctx.obj
    assert isinstance(settings, Settings)
    update: dict[str, object] = {"log": target}
    if partitions is not None:
        update["kafka_partitions"] = partitions
    if target == settings.log_url:
        raise click.UsageError("TARGET is the log itself: give another log")
    start = None
    if from_position is not None:
        try:
            parsed = [Position.parse(part.strip()) for part in from_position.split(",")]
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--from-position") from None
        start = {p.partition: p.offset for p in parsed}
    with (
        stop_on_signals() as stop,
        open_log(settings, create=False) as source,
        open_log(settings.model_copy(update=update)) as destination,
    ):
        report = copy_log(source, destination, start, batch_size=batch_size, stop=stop)
        interrupted = exit_code(stop)
    positions = ",".join(f"{p}:{o}" for p, o in sorted(report.next_positions.items()))
    if as_json:
        click.echo(
            orjson.dumps(
                {
                    "target": redact_url(target),
                    "read": report.read,
                    "appended": report.appended,
                    "duplicates": report.duplicates,
                    "not_copied": [
                        {"position": f"{p}:{o}", "reason": reason}
                        for p, o, reason in report.unreadable
                    ],
                    "next_positions": positions,
                }
            )
        )
    else:
        click.echo(
            f"copied {report.read} records to {redact_url(target)}: {report.appended} "
            f"appended, {report.duplicates} already there, {len(report.unreadable)} not "
            f"copied (no touchpoint); go on with --from-position {positions or '0'}"
        )
        for p, o, reason in report.unreadable[:20]:
            click.echo(f"not copied: {p}:{o} {reason}", err=True)
    if interrupted:
        ctx.exit(interrupted)
