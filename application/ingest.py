"""Appending touchpoints that arrive one request at a time (the HTTP face's ingest).

The same validation and idempotency as ``ledger import`` (:func:`ledger.codec.event_from_json`
for JSON from outside, strict; the log's own duplicate check), answered per event: each is
``accepted`` (with its position), ``duplicate`` (its id is in the log already, or earlier in
the same batch) or ``rejected`` with every ``field: problem``. The valid events of a batch are
appended together; invalid ones never hold them back, and nothing is dropped silently. A log
that cannot be reached raises :class:`ledger.errors.LogUnavailable` before anything is
appended by this call.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from application.wiring import open_log
from ledger.codec import event_from_json, parse_event
from ledger.errors import InvalidEvent, LogUnavailable
from ledger.events import Touchpoint
from ledger.log import Appended, EventLog
from ledger.settings import Settings


@dataclass(frozen=True)
class EventResult:
    """What became of one event of a request."""

    index: int
    event_id: str | None
    event_type: str | None
    status: str
    """``accepted``, ``duplicate`` or ``rejected``."""
    position: str | None = None
    reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"index": self.index, "id": self.event_id, "status": self.status}
        if self.status == "rejected":
            found["reasons"] = self.reasons
        else:
            found["position"] = self.position
        return found


@dataclass(frozen=True)
class IngestAnswer:
    results: list[EventResult]

    def counts(self) -> Counter[str]:
        return Counter(r.status for r in self.results)

    def to_dict(self) -> dict[str, Any]:
        counts = self.counts()
        return {
            "accepted": counts["accepted"],
            "duplicates": counts["duplicate"],
            "rejected": counts["rejected"],
            "results": [r.to_dict() for r in self.results],
        }


Document = bytes | dict[str, Any]
"""One event as it came: a structured-mode JSON text, or an already decoded object (the
binary mode's attributes and data, or one member of a batch)."""


def _validated(document: Document) -> Touchpoint:
    return event_from_json(document) if isinstance(document, bytes) else parse_event(document)


def _attribute(document: Document, name: str) -> str | None:
    value = document.get(name) if isinstance(document, dict) else None
    return value if isinstance(value, str) else None


def append_to(log: EventLog, documents: list[Document]) -> IngestAnswer:
    """Validate each document and append the valid ones to ``log`` in one batch."""
    results: list[EventResult | None] = []
    valid: list[tuple[int, Touchpoint]] = []
    for index, document in enumerate(documents):
        try:
            event = _validated(document)
        except InvalidEvent as exc:
            results.append(
                EventResult(
                    index,
                    _attribute(document, "id"),
                    _attribute(document, "type"),
                    "rejected",
                    reasons=exc.reasons,
                )
            )
            continue
        results.append(None)
        valid.append((index, event))
    outcomes = log.append([event for _, event in valid]) if valid else []
    for (index, event), outcome in zip(valid, outcomes, strict=True):
        status = "accepted" if isinstance(outcome, Appended) else "duplicate"
        position = str(outcome.position) if outcome.position else None
        results[index] = EventResult(index, event.id, event.type, status, position)
    return IngestAnswer([r for r in results if r is not None])


OPEN_ATTEMPTS = 4
"""Opening the embedded log while other processes write to it can meet a busy file (SQLite
takes a lock to check its tables); it is tried again after 50, 100 and 200 ms."""


def append_documents(settings: Settings, documents: list[Document]) -> IngestAnswer:
    """Validate and append ``documents`` to the ledger's log (opened for this call)."""
    for attempt in range(OPEN_ATTEMPTS):
        try:
            log = open_log(settings)
        except LogUnavailable as exc:
            if "locked" not in str(exc) or attempt == OPEN_ATTEMPTS - 1:
                raise
            time.sleep(0.05 * 2**attempt)
            continue
        with log:
            return append_to(log, documents)
    raise AssertionError("unreachable")
