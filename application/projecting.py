"""The projector use cases: run, rebuild, reset, retry, and the parked records."""

from __future__ import annotations

import logging
from contextlib import closing
from dataclasses import dataclass
from typing import Any

import orjson

from application import service
from application.file_lock import beside_log, held
from application.service import Conflict
from application.wiring import open_log, open_store
from consumers.folding import RunReport
from consumers.kafka_group import GroupProjector, follow_group
from consumers.projector import Projector, rebuild
from consumers.store import DeadLetter, encode_headers
from ledger.codec import event_to_dict
from ledger.errors import LedgerError
from ledger.kafka_log import KafkaLog
from ledger.log import LogRecord
from ledger.settings import Settings
from ledger.stopping import Stop, signal_name

_warnings = logging.getLogger("ledger.projecting")


def run(
    settings: Settings,
    stop: Stop,
    *,
    follow: bool,
    batch_size: int,
    on_error: str,
    group_id: str | None,
    workers: int | None,
    validate: bool,
) -> RunReport:
    """Bring the views up to date with the log (``follow``: until ``stop``). On Kafka, as a
    member of the consumer group; on the embedded log, one projector (and its workers)."""
    workers = settings.workers if workers is None else workers
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
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
                    workers=workers,
                )

            return follow_group(join, stop) if follow else join().run(stop, until_caught_up=True)
        projector = Projector(
            log,
            store,
            batch_size=batch_size,
            on_error="stop" if on_error == "stop" else "park",
            validate=validate,
            workers=workers,
        )
        return projector.follow(stop) if follow else projector.catch_up(stop)


def run_dict(report: RunReport, interrupted: int) -> dict[str, Any]:
    """A run's answer for machines; ``interrupted``: the exit code of the signal that cut
    it short (0: none)."""
    return {
        "records": report.records,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "parked": report.parked,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.rate),
        "workers": report.workers,
        "positions": {str(p): o for p, o in sorted(report.positions.items())},
        "interrupted": signal_name(interrupted),
    }


REBUILDING = (
    "another rebuild of these views is running (on this host): wait for it to end; it swaps "
    "in views rebuilt from the whole log"
)


def rebuild_views(
    settings: Settings, stop: Stop, *, batch_size: int, workers: int | None, validate: bool
) -> RunReport:
    """Rebuild the views from the start of the log and swap them in (nothing is swapped in
    if ``stop`` is set before the end)."""
    with (
        open_log(settings, create=False) as log,
        closing(open_store(settings)) as store,
        # A second rebuild would drop the first one's tables under it.
        held(beside_log(settings, "rebuild"), wait=False, busy=REBUILDING),
    ):
        return rebuild(
            log,
            store,
            batch_size=batch_size,
            validate=validate,
            workers=settings.workers if workers is None else workers,
            stop=stop,
        )


def rebuild_dict(report: RunReport, name: str) -> dict[str, Any]:
    """A rebuild's answer for machines (``name``: the view asked for)."""
    return {
        "rebuilt": name,
        "records": report.records,
        "applied": report.applied,
        "parked": report.parked,
        "seconds": round(report.seconds, 3),
        "events_per_second": round(report.rate),
        "workers": report.workers,
    }


def reset(settings: Settings) -> None:
    """Drop the views, their positions and parked records (the log is not touched)."""
    with (
        closing(open_store(settings)) as store,
        held(beside_log(settings, "rebuild"), wait=False, busy=REBUILDING),
    ):
        store.reset()


def retry(settings: Settings) -> RunReport:
    """Apply the parked records again, each read afresh from the log."""
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        return Projector(log, store).retry()


def retry_dict(report: RunReport) -> dict[str, Any]:
    return {
        "retried": report.records,
        "applied": report.applied,
        "duplicates": report.duplicates,
        "still_parked": report.parked,
    }


@dataclass(frozen=True)
class Parked:
    """A parked record (dead letter) and, for a conflicting duplicate, both versions."""

    letter: DeadLetter
    conflict: Conflict | None

    def to_dict(self) -> dict[str, Any]:
        letter, conflict = self.letter, self.conflict
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


def parked(settings: Settings) -> list[Parked]:
    """The records the projector parked, with both versions of each conflicting duplicate
    read from the log (if it cannot be read: a warning, and the letters alone)."""
    with closing(open_store(settings)) as store:
        letters = store.dead_letters()
    conflicts = _conflicts(settings, letters)
    return [Parked(letter, conflicts.get(letter)) for letter in letters]


def _conflicts(settings: Settings, letters: list[DeadLetter]) -> dict[DeadLetter, Conflict]:
    wanted = [letter for letter in letters if letter.first is not None]
    if not wanted:
        return {}
    try:
        with open_log(settings, create=False) as log:
            found = {letter: service.conflict_of(log, letter) for letter in wanted}
    except LedgerError as exc:
        _warnings.warning("the conflicting copies cannot be read from the log: %s", exc)
        return {}
    return {letter: conflict for letter, conflict in found.items() if conflict is not None}


def _version(record: LogRecord | None) -> dict[str, Any] | None:
    if record is None or record.event is None:
        return None
    return {"position": str(record.position), "event": event_to_dict(record.event)}
