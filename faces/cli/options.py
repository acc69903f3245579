"""What the commands share on the way in: options as decorators, time and window parsing,
the settings built by ``main``, and the progress bar of long work."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, TypeVar

import click
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

from consumers.folding import PROJECTOR_BATCH
from ledger.events import EventTime
from ledger.settings import Settings
from ledger.timeutil import MICROSECOND, check_range
from projections.policy import parse_duration

F = TypeVar("F", bound=Callable[..., Any])


def settings_of(ctx: click.Context) -> Settings:
    """The settings ``main`` built from the global options and ``LEDGER_*`` variables."""
    settings = ctx.obj
    assert isinstance(settings, Settings)
    return settings


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


def now_or(at: str | None) -> datetime:
    """``--at`` if given, else now."""
    return parse_time(at, "--at") or datetime.now(UTC)


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


def parse_as_of(
    as_of: str | None, recorded_by: str | None
) -> tuple[datetime | None, datetime | None]:
    """``--as-of`` and ``--as-recorded-by``, each a bare date meaning the end of that day."""
    return (
        parse_time(as_of, "--as-of", day="end"),
        parse_time(recorded_by, "--as-recorded-by", day="end"),
    )


def fresh_option(function: F) -> F:
    return click.option(
        "--fresh/--no-fresh",
        default=None,
        help="Fold the customer's records the views do not hold yet (default: yes on the "
        "embedded log, no on Kafka, where it costs a fetch of every partition past the "
        "views' positions).",
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


def policy_option(function: F) -> F:
    return click.option("--policy", "policy_file", type=click.Path(dir_okay=False, path_type=Path))(
        function
    )
