"""Stop requests that signal handlers can make without ever blocking.

A signal handler runs on the main thread between two bytecodes, possibly while that
thread holds a lock: a handler that takes a lock (``threading.Event.set`` does) can
deadlock the process in its own handler, and then only SIGKILL ends it (issue 15). The
handler here stores a number in an attribute and writes one byte to a non-blocking
pipe: nothing that can block. Waiting code polls :meth:`SignalStop.is_set`, or sleeps in
:meth:`SignalStop.wait`, which ``select``\\ s on the pipe, so a request wakes it at once.

Long-running commands stop at the next safe point (a batch boundary) and exit with the
codes of :func:`exit_code`.
"""

from __future__ import annotations

import contextlib
import io
import os
import select
import signal
import stat
from collections.abc import Iterator
from typing import IO, Protocol

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop(Protocol):
    """What long-running loops ask: has a stop been requested? (``threading.Event``
    fits too, for callers that stop a loop from another thread.)"""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float) -> bool: ...


class SignalStop:
    """A stop request: set by a signal handler (or any thread), never blocking."""

    def __init__(self) -> None:
        self.signum: int | None = None
        """The first signal that asked to stop (0: asked by code), ``None`` until then."""
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def set(self, signum: int = 0) -> None:
        """Request a stop. Safe in a signal handler: one attribute store and one
        non-blocking write (a full pipe already holds a wake-up, so it is dropped)."""
        if self.signum is None:
            self.signum = signum
        with contextlib.suppress(OSError):
            os.write(self._write, b"\0")

    def is_set(self) -> bool:
        return self.signum is not None

    def wait(self, timeout: float) -> bool:
        """Sleep until a stop is requested or ``timeout`` seconds pass; whether one was."""
        if self.signum is None:
            with contextlib.suppress(OSError, ValueError):
                select.select([self._read], [], [], timeout)
            with contextlib.suppress(OSError):
                os.read(self._read, 4096)
        return self.signum is not None

    def close(self) -> None:
        for fd in (self._read, self._write):
            with contextlib.suppress(OSError):
                os.close(fd)


@contextlib.contextmanager
def stop_on_signals() -> Iterator[SignalStop]:
    """Turn SIGINT and SIGTERM into a :class:`SignalStop` while the block runs (several
    signals, even in quick succession, make one request). Afterwards the previous
    handlers come back -- unless a stop was requested: then the command is on its way
    out (printing what it did), and the rest of a burst of signals is ignored rather
    than killing it half-way. Outside the main thread, no handlers are installed."""
    stop = SignalStop()
    previous: dict[int, object] = {}
    try:
        with contextlib.suppress(ValueError):  # not the main thread
            for signum in STOP_SIGNALS:
                previous[signum] = signal.signal(signum, lambda number, _: stop.set(number))
        yield stop
    finally:
        for number, handler in previous.items():
            signal.signal(number, signal.SIG_IGN if stop.is_set() else handler)  # type: ignore[arg-type]
        stop.close()


def exit_code(stop: SignalStop) -> int:
    """The exit code of a command a signal interrupted: 128 + the signal's number (130
    for SIGINT, 143 for SIGTERM), as shells report a process the signal ended; 0 when
    nothing interrupted it."""
    return 128 + stop.signum if stop.signum else 0


def signal_name(code: int) -> str | None:
    """The name of the signal behind exit code ``code`` (128 + its number), if any."""
    return signal.Signals(code - 128).name if code > 128 else None


@contextlib.contextmanager
def signals_held() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back from this thread while the block runs (they are
    delivered when it ends). Processes started meanwhile inherit the held mask, so a
    helper process (multiprocessing's fork server, the projector's workers) never dies
    of a Ctrl-C meant for the projector, which handles it for them. (Starting
    multiprocessing's resource tracker unblocks both: start it before.)"""
    held = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


POLL_SECONDS = 0.1
"""How often a read that waits for input looks whether a stop was requested."""


class _StoppableInput(io.RawIOBase):
    """A pipe or terminal read that ends (as at end of input) once a stop is requested:
    a blocking read would otherwise wait for input that may never come."""

    def __init__(self, stream: IO[bytes], stop: Stop) -> None:
        self._stream = stream
        self._fd = stream.fileno()
        self._stop = stop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        while not self._stop.is_set():
            ready, _, _ = select.select([self._fd], [], [], POLL_SECONDS)
            if ready:
                return os.readv(self._fd, [buffer])
        return 0


def stoppable(stream: IO[bytes], stop: Stop) -> IO[bytes]:
    """``stream``, reading from which ends once ``stop`` is set, if it is a pipe, socket
    or terminal (standard input); a regular file is returned as it is (its reads do not
    block, and the reader checks ``stop`` itself)."""
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError, io.UnsupportedOperation):
        return stream
    if stat.S_ISREG(mode):
        return stream
    return io.BufferedReader(_StoppableInput(stream, stop))
