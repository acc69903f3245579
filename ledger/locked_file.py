"""Files that one process rewrites whole (write a new one, rename it over) while others
append to them: both sides hold the file's lock, and check they hold the current one."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from typing import IO, Literal


def locked(path: Path, mode: Literal["rb", "ab"]) -> IO[bytes]:
    """``path`` opened and exclusively locked: the file the name points at once the lock
    is held. A file renamed over meanwhile (the one opened is no longer ``path``) is let
    go, and the new one opened. ``FileNotFoundError`` (``"rb"``): there is none."""
    while True:
        file = path.open(mode)
        try:
            lock(file)
            if is_current(file):
                return file
        except BaseException:
            file.close()
            raise
        file.close()


def is_current(file: IO[bytes]) -> bool:
    """Whether ``file`` still has a name: a file renamed over, or deleted, has none left
    (one ``fstat``, no lookup of the name)."""
    return os.fstat(file.fileno()).st_nlink > 0


def lock(file: IO[bytes]) -> None:
    fcntl.flock(file, fcntl.LOCK_EX)


def unlock(file: IO[bytes]) -> None:
    fcntl.flock(file, fcntl.LOCK_UN)
