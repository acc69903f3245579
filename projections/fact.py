"""A touchpoint as the projections read it: the envelope they need and the data as JSON.

Projections fold millions of events, so they do not work on the validated pydantic
models (building one costs ~8 µs; a projection needs a dozen fields of it). A
:class:`Fact` is made either from a validated model (:func:`fact_of`: Kafka records,
tests, "as of" answers) or straight from the canonical bytes the embedded log stored
after validating them at append time (:func:`fact_from_stored`, ~2 µs). Both give the
same fact for the same event: the data is the canonical JSON form either way (enums as
their values, amounts as exact decimal strings, defaults filled in, nulls left out).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from hashlib import blake2b
from typing import Any

import orjson

from ledger.codec import upcast
from ledger.events import TouchpointEvent, schema_urn_of
from ledger.log import StoredEvent
from ledger.timeutil import from_micros, to_micros


@dataclass(frozen=True, slots=True)
class Fact:
    """One touchpoint, as the projections see it."""

    id: str
    type: str
    subject: str
    micros: int
    """Event time, microseconds since the epoch."""
    data: Mapping[str, Any]
    """The event's ``data`` in its canonical JSON form."""

    @property
    def time(self) -> datetime:
        """Event time, in UTC."""
        return from_micros(self.micros)


def fact_of(event: TouchpointEvent) -> Fact:
    """The fact of a validated event."""
    data = event.data.__pydantic_serializer__.to_python(event.data, mode="json", exclude_none=True)
    return Fact(event.id, event.type, event.subject, to_micros(event.time), data)


def fact_from_stored(stored: StoredEvent) -> Fact:
    """The fact of a record the ledger validated before storing it.

    Raises (``KeyError``, ``ValueError``, ``InvalidEvent``, ...) if the bytes are not
    what the ledger writes; the caller then takes the validating path, which names the
    problem.
    """
    if not stored.intact():
        raise ValueError(stored.damage())
    document = orjson.loads(stored.document)
    if document.get("dataschema") != schema_urn_of(stored.type):
        document = upcast(document)  # another schema version: bring it up to date
    data = document["data"]
    if not isinstance(data, dict):
        raise ValueError("data: not an object")
    return Fact(stored.id, stored.type, stored.subject, stored.micros, data)


def content_digest(fact: Fact) -> int:
    """A 64-bit digest of what an event says (type, customer, time, data in canonical
    JSON), not how it was written: two copies of one id with the same digest are the same
    event re-published; with different digests, a conflict."""
    canonical = orjson.dumps(
        (fact.type, fact.subject, fact.micros, fact.data), option=orjson.OPT_SORT_KEYS
    )
    return int.from_bytes(blake2b(canonical, digest_size=8).digest(), "big", signed=True)
