"""Building single touchpoints for tests: a valid CloudEvent of one type, one customer."""

from __future__ import annotations

import itertools
from datetime import datetime
from typing import Any

from ledger.codec import parse_event
from ledger.events import TouchpointEvent

_ids = itertools.count()


def touchpoint(
    kind: str,
    at: datetime | str,
    data: dict[str, Any],
    customer: str = "C1",
    event_id: str | None = None,
) -> TouchpointEvent:
    """A validated event of type ``kind`` at ``at`` (a unique id unless given)."""
    return parse_event(
        {
            "id": event_id or f"t{next(_ids)}",
            "source": "t",
            "type": kind,
            "subject": customer,
            "time": at.isoformat() if isinstance(at, datetime) else at,
            "data": data,
        }
    )
