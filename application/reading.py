"""Use cases that read the log: replay it filtered, one customer's history as it stood.

Records the ledger cannot decode are reported as warnings on the ``ledger`` logger (a face
shows them: the CLI on stderr) and are never hidden.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterator
from datetime import datetime
from typing import Any

from application import service
from application.privacy import Revealer, stored_customer_id
from application.wiring import open_keys, open_log
from ledger.log import LogRecord, Positions, ReadFilter
from ledger.settings import Settings

_warnings = logging.getLogger("ledger.reading")


def replay(
    settings: Settings, start: Positions | None, where: ReadFilter, limit: int | None
) -> Iterator[LogRecord | service.Repeat]:
    """The log in order, filtered, each id once (see :func:`service.replay_once`); the log
    is open while the iterator is. A customer given by phone number or e-mail address is
    looked up by the keyed hash the ledger stores for it."""
    if where.customer is not None:
        where = dataclasses.replace(where, customer=stored_customer_id(settings, where.customer))
    with open_log(settings, create=False) as log:
        yield from service.replay_once(log, start, where, limit)


def history(
    settings: Settings, customer: str, until: datetime | None, recorded_by: datetime | None
) -> service.History:
    """One customer's history as it stood (see :func:`service.history`)."""
    customer = stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    with open_log(settings, create=False) as log:
        found = service.history(
            log,
            customer,
            until=until,
            recorded_by=recorded_by,
            max_customers=settings.identity_max_customers,
        )
    for record in found.undecodable:
        _warnings.warning("cannot decode the record at %s: %s", record.position, record.error)
    return found


def revealer(settings: Settings) -> Revealer:
    """What opens the personal values of the records a face shows (``[erased]`` once their
    customer's key is destroyed; see docs/privacy.md)."""
    return Revealer(open_keys(settings))


def record_dict(record: LogRecord, with_position: bool, revealer: Revealer) -> dict[str, Any]:
    """A decoded record as the contract's event, or ``{position, recorded_at, event}``,
    its personal values opened by ``revealer``."""
    assert record.event is not None
    event = revealer.event(record.event)
    if with_position:
        return {
            "position": str(record.position),
            "recorded_at": record.recorded_at.isoformat(),
            "event": event,
        }
    return event
