"""Use cases that write touchpoints: append one, import a file, generate a history.

Each takes the :class:`Settings` of the ledger, opens what it needs and returns plain data
(a face renders it: the CLI as text or ``--json``, HTTP as JSON).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from application import service
from application.service import Progress
from application.wiring import open_log
from ledger import importer
from ledger.importer import Format, ImportSummary
from ledger.log import Appended
from ledger.settings import Settings
from ledger.stopping import Stop, stoppable


@dataclass(frozen=True)
class AppendAnswer:
    """What appending one event did: ``appended``, or ``duplicate`` of an event in the log."""

    event_id: str
    status: str
    position: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.event_id, "status": self.status, "position": self.position}


def append(settings: Settings, document: dict[str, Any]) -> AppendAnswer:
    """Validate one event document and append it (an id already in the log: a duplicate)."""
    with open_log(settings) as log:
        outcome = service.append_one(log, document)
    status = "appended" if isinstance(outcome, Appended) else "duplicate"
    position = str(outcome.position) if outcome.position else None
    return AppendAnswer(outcome.event_id, status, position)


def default_rejects(settings: Settings, file: str) -> Path:
    """Where an import of ``file`` ('-': stdin) puts its rejected lines by default."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    name = "stdin" if file == "-" else Path(file).name
    return settings.data_dir / "rejects" / f"{name}-{stamp}.jsonl"


def import_file(
    settings: Settings,
    source: IO[bytes],
    fmt: Format,
    rejects: Path | None,
    *,
    name: str,
    batch_size: int | None,
    on_progress: Progress,
    stop: Stop | None,
) -> ImportSummary:
    """Import JSON Lines or CSV from ``source`` (the file ``name``, '-': stdin) into the
    log, in batches; rejected lines go to ``rejects`` (default: see :func:`default_rejects`;
    refused before the log is even opened if it is ``source`` itself). With
    ``stop``, ends early (at the line in hand) once it is set, even while waiting for a
    pipe's input."""
    rejects = rejects or default_rejects(settings, name)
    importer.check_rejects_target(source, rejects)
    with open_log(settings) as log:
        return service.import_file(
            log,
            source if stop is None else stoppable(source, stop),
            fmt,
            rejects,
            batch_size=batch_size or settings.batch_size,
            on_progress=on_progress,
            stop=stop,
        )


def generate(
    settings: Settings,
    *,
    customers: int,
    days: int,
    seed: int,
    start: datetime | None,
    on_progress: Progress,
    identities: float = 0.0,
) -> ImportSummary:
    """Generate a synthetic history (seeded, deterministic ids) into the log;
    ``identities``: the share of customers known to several systems (issue 12)."""
    rejects = settings.data_dir / "rejects" / f"generate-{seed}.jsonl"
    with open_log(settings) as log:
        return service.generate_into(
            log,
            customers=customers,
            days=days,
            seed=seed,
            start=start,
            rejects_path=rejects,
            batch_size=settings.batch_size,
            on_progress=on_progress,
            identities=identities,
        )


def write_generated(
    out: IO[bytes],
    *,
    customers: int,
    days: int,
    seed: int,
    start: datetime | None,
    identities: float = 0.0,
) -> int:
    """Write a synthetic history as JSON Lines to ``out``; returns the number of events."""
    return service.write_generated(
        out, customers=customers, days=days, seed=seed, start=start, identities=identities
    )
