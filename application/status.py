"""The ``project status`` use case: where the views stand against the log."""

from __future__ import annotations

from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from application import service
from application.scale import GroupStatus, group_status
from application.service import ProjectionStatus
from application.wiring import open_log, open_store
from ledger.kafka_log import KafkaLog
from ledger.redact import redact_url
from ledger.settings import Settings


def age(moment: datetime | None) -> float | None:
    """Seconds since ``moment`` (never negative), or None."""
    return None if moment is None else max((datetime.now(UTC) - moment).total_seconds(), 0.0)


@dataclass(frozen=True)
class StatusReport:
    """The projection status with the log and store it is about (passwords redacted) and
    the problems that make it a failure (a replaced log, a partition in error)."""

    status: ProjectionStatus
    log: str
    store: str
    problems: list[str]
    group: GroupStatus | None = None
    """On Kafka: the projector group's members, with warnings (more members than
    partitions, a member holding none)."""

    def to_dict(self) -> dict[str, Any]:
        """The answer for machines (``ledger project status --json``)."""
        status, error = self.status, self.status.last_error
        return {
            "log": self.log,
            "store": self.store,
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
            "errors": self.problems,
            "rows": status.rows,
            "decisions": {
                "unprojected_records": status.unprojected,
                "oldest_unprojected_age_seconds": age(status.oldest_unprojected),
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
            "cleartext_personal_data": {
                "records": status.cleartext_records,
                "partitions": [
                    {"partition": c.partition, "records": c.count, "last_offset": c.offset}
                    for c in status.cleartext.values()
                ],
                "explanation": service.CLEARTEXT_EXPLANATION if status.cleartext else None,
            },
            **({"group": self.group.as_dict()} if self.group is not None else {}),
        }


def projection_status(settings: Settings) -> StatusReport:
    """Per log partition the views' position, lag and speed; rows per table; the last
    parked record; records placed on the wrong partition."""
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        status = service.projection_status(log, store)
        group = group_status(log, settings.group_id) if isinstance(log, KafkaLog) else None
    problems = [p.error for p in status.partitions if p.error is not None]
    if status.replaced is not None:
        problems.insert(0, status.replaced)
    return StatusReport(
        status, redact_url(settings.log_url), redact_url(settings.store_url), problems, group
    )
