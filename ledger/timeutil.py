"""Small, exact conversions between aware datetimes and integer microseconds, and the range
of instants the ledger accepts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)

EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
"""The earliest instant the ledger accepts (inclusive)."""
LATEST = datetime(3000, 1, 1, tzinfo=UTC) - MICROSECOND
"""The latest instant the ledger accepts (inclusive): the last microsecond of 2999 UTC."""
LONGEST_SPAN = timedelta(days=36_600)
"""The longest window, cap or cool-down the ledger computes with (about 100 years).

With :data:`EARLIEST`..:data:`LATEST` this keeps every computed moment (a window's start,
an earliest allowed time, a local calendar day in any zone) far inside what ``datetime``
can represent (years 1..9999), so no accepted input can overflow a computation."""

_EARLIEST_NAIVE = EARLIEST.replace(tzinfo=None)
_LATEST_NAIVE = LATEST.replace(tzinfo=None)
RANGE_TEXT = "1900-01-01T00:00:00Z..2999-12-31T23:59:59.999999Z"


def check_range(moment: datetime) -> datetime:
    """``moment`` itself if its UTC instant lies in the accepted range, else ``ValueError``.

    Checked without converting to UTC first: a time such as 9999-12-31T23:59:59-12:00 is
    valid RFC 3339 but its UTC instant is not representable at all.
    """
    if 1901 <= moment.year <= 2998:
        return moment  # an offset is under a day: inside the range whatever it is
    offset = moment.utcoffset() or timedelta(0)
    naive = moment.replace(tzinfo=None)
    # Compare the local wall time against the bounds shifted by the offset: no overflow,
    # because the bounds are centuries away from datetime's own limits.
    if not _EARLIEST_NAIVE + offset <= naive <= _LATEST_NAIVE + offset:
        raise ValueError(f"{moment.isoformat()} is outside the accepted range {RANGE_TEXT}")
    return moment


def to_micros(moment: datetime) -> int:
    """Microseconds since the Unix epoch of an aware datetime (exact, no float)."""
    return (moment - EPOCH) // MICROSECOND


def from_micros(micros: int) -> datetime:
    """The UTC datetime ``micros`` microseconds after the Unix epoch."""
    return EPOCH + timedelta(microseconds=micros)


def utc_now() -> datetime:
    return datetime.now(UTC)
