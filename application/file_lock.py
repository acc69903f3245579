"""An exclusive lock on a file, across the threads and processes of one host."""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ledger.errors import ConfigurationError, LedgerError
from ledger.settings import Settings, SQLiteLogTarget, parse_log_url


class Busy(LedgerError):
    """Another holder has the lock, and this one was told not to wait."""


@contextmanager
def held(path: Path, *, wait: bool = True, busy: str = "") -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if need be): what is done under it is
    done one holder at a time (each ``open`` is its own lock, so threads take turns too).
    ``wait=False``: raise :class:`Busy` (``busy``, the message) if another holds it."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = path.open("a")
    except OSError as exc:
        reason = exc.strerror
        raise ConfigurationError(f"cannot make the lock file {str(path)!r}: {reason}") from None
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise Busy(busy or f"{path} is held by another process") from None
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def beside_log(settings: Settings, name: str) -> Path:
    """The lock file ``name`` of the log ``settings`` point at. Embedded: beside the log
    file (every process using it shares the lock). Kafka: in the data folder, so only
    processes sharing it (one host) take turns."""
    target = parse_log_url(settings.log_url)
    if isinstance(target, SQLiteLogTarget):
        return target.path.with_name(f"{target.path.name}.{name}.lock")
    return settings.data_dir / f"{name}.lock"
