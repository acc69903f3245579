"""Bulk import of touchpoints from JSON Lines or CSV: streaming, batched, idempotent.

Every input line either lands in the log (new or duplicate) or in the rejects file
with its line number and every reason; a bad line never holds back its neighbours.
Validation of the next batch overlaps with writing the previous one (sqlite3 and
the Kafka client's I/O thread release the GIL), so a batch costs roughly the
larger of the two, not their sum. Memory is bounded by two batches.
"""

from __future__ import annotations

import csv
import gc
import io
import os
import queue
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Literal

import orjson

from ledger.codec import event_from_json, from_text_cells, parse_event
from ledger.errors import ConfigurationError, InvalidEvent, LedgerError
from ledger.events import Touchpoint
from ledger.locked_file import is_current, lock, locked, unlock
from ledger.log import Appended, EventLog, Position
from ledger.stopping import Stop

Format = Literal["jsonl", "csv"]
_SURROGATE = re.compile("[\udc80-\udcff]")
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True, slots=True)
class Rejection:
    """One input line the ledger refused, and why."""

    line: int
    reasons: list[str]
    text: str


@dataclass
class ImportSummary:
    """What an import did. ``rejects_path`` is set when any line was rejected."""

    read: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    first_position: Position | None = None
    last_position: Position | None = None
    rejects_path: Path | None = None
    failed: str | None = None
    """Why the import stopped early (the log became unavailable), if it did."""
    interrupted: bool = False
    """Whether a stop request (SIGINT/SIGTERM) ended it before the end of the input:
    every line read was appended or rejected, the rest was not read."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "read": self.read,
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "first_position": str(self.first_position) if self.first_position else None,
            "last_position": str(self.last_position) if self.last_position else None,
            "rejects_file": str(self.rejects_path) if self.rejects_path else None,
            "failed": self.failed,
            "interrupted": self.interrupted,
        }


class RejectsFile:
    """JSON Lines file of rejections, created on the first one.

    ``ledger erase`` may redact lines of this file while an import writes it, by writing
    a new file and renaming it over this one. Each line is written at once, under the
    file's lock (:mod:`ledger.locked_file`), into the file the name points at then: none
    goes into a file already replaced, and none waits in memory where a redaction could
    not see it (~10 us a line; a buffered file took ~0.3)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._file: IO[bytes] | None = None
        self._used = False

    def write(self, rejection: Rejection) -> None:
        record = {"line": rejection.line, "reasons": rejection.reasons, "input": rejection.text}
        file = self._current()
        try:
            file.write(orjson.dumps(record) + b"\n")
            file.flush()
        finally:
            unlock(file)
        self._used = True

    def _current(self) -> IO[bytes]:
        """The file, locked; opened again if it was replaced since the last line."""
        if self._file is not None:
            lock(self._file)
            if is_current(self._file):
                return self._file
            self._file.close()
            self._file = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = locked(self.path, "ab")
        except OSError as exc:
            raise ConfigurationError(
                f"cannot write the rejects file {str(self.path)!r}: {exc.strerror}"
            ) from None
        return self._file

    @property
    def used(self) -> bool:
        return self._used

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


Line = tuple[int, Touchpoint | Rejection, int]
"""A line number, its validated event or its rejection, and the bytes it took."""


def jsonl_candidates(stream: IO[bytes]) -> Iterator[Line]:
    """Validate JSON Lines; yields ``(line number, event or rejection, bytes consumed)``."""
    for number, line in enumerate(stream, start=1):
        # A leading byte-order mark is accepted, as in CSV (editors on Windows write one).
        stripped = (line.removeprefix(_BOM) if number == 1 else line).strip()
        if not stripped:
            yield number, Rejection(number, ["(line): empty line"], ""), len(line)
            continue
        try:
            yield number, event_from_json(stripped), len(line)
        except InvalidEvent as exc:
            yield number, Rejection(number, exc.reasons, _text(stripped)), len(line)


def csv_candidates(stream: IO[bytes]) -> Iterator[Line]:
    """Validate CSV with a header row of attribute names; ``data.x.y`` columns nest.

    Empty cells are absent fields. Yields ``(line number, event or rejection, bytes)``.
    """
    # surrogateescape keeps one bad byte from poisoning the decoder for the whole file;
    # the row holding it is rejected on its own below.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig", errors="surrogateescape", newline="")
    try:
        yield from _csv_rows(csv.reader(text))
    finally:
        text.detach()  # the caller owns (and closes) the stream


def _csv_rows(reader: Any) -> Iterator[Line]:
    try:
        header = next(reader)
    except StopIteration:
        return
    except (csv.Error, UnicodeDecodeError) as exc:
        yield 1, Rejection(1, [f"(header): not a CSV header: {exc}"], ""), 0
        return
    problem = _header_problem(header)
    if problem is not None:
        # Without a usable header no row has a meaning: every row is rejected, none is lost.
        yield 1, Rejection(1, [f"(header): {problem}"], ",".join(header)), 0
        for row in _rows_left(reader):
            line = reader.line_num
            reason = f"(line): not read, because the header is unusable: {problem}"
            yield line, Rejection(line, [reason], ",".join(row)), sum(len(c) + 1 for c in row)
        return
    paths = [column.strip().split(".") for column in header]
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError) as exc:
            line = reader.line_num
            yield line, Rejection(line, [f"(line): not valid CSV: {exc}"], ""), 0
            continue
        line = reader.line_num
        yield line, _csv_event(line, paths, row), sum(len(cell) + 1 for cell in row)


def _header_problem(header: list[str]) -> str | None:
    names = [column.strip() for column in header]
    for index, name in enumerate(names):
        if name and name in names[:index]:
            first = names.index(name) + 1
            return f"column {name!r} appears twice (columns {first} and {index + 1})"
    return None


def _rows_left(reader: Any) -> Iterator[list[str]]:
    while True:
        try:
            yield next(reader)
        except StopIteration:
            return
        except (csv.Error, UnicodeDecodeError):
            yield []


def _csv_event(line: int, paths: list[list[str]], row: list[str]) -> Touchpoint | Rejection:
    text = ",".join(row)
    if _SURROGATE.search(text):
        readable = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        return Rejection(line, ["(line): not valid UTF-8"], readable)
    if len(row) != len(paths):
        return Rejection(line, [f"(line): {len(row)} cells for {len(paths)} columns"], text)
    document: dict[str, Any] = {}
    for path, cell in zip(paths, row, strict=True):
        if cell == "":
            continue
        node = document
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                return Rejection(line, [f"{'.'.join(path)}: clashes with column {part}"], text)
            node = child
        node[path[-1]] = cell
    try:
        return parse_event(from_text_cells(document))
    except InvalidEvent as exc:
        return Rejection(line, exc.reasons, text)


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")


def check_rejects_target(source: IO[bytes], rejects_path: Path) -> None:
    """Refuse a rejects file that is the input itself (the same path, a hard link or a
    symbolic link to it: the import would read its own rejections back, forever), or one
    whose folder cannot be made: both before anything is read."""
    try:
        rejects_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(
            f"cannot write the rejects file {str(rejects_path)!r}: {exc.strerror}"
        ) from None
    try:
        source_stat = os.fstat(source.fileno())
    except (OSError, AttributeError, io.UnsupportedOperation):
        return  # not a file (an in-memory stream): nothing to collide with
    try:
        rejects_stat = os.stat(rejects_path)
    except OSError:
        return  # does not exist yet, so it cannot be the input
    if os.path.samestat(source_stat, rejects_stat):
        raise ConfigurationError(
            f"the rejects file {str(rejects_path)!r} is the input file itself; "
            "give --rejects another path"
        )


def candidates(stream: IO[bytes], fmt: Format) -> Iterator[Line]:
    """The validated lines of ``stream`` in format ``fmt``."""
    return jsonl_candidates(stream) if fmt == "jsonl" else csv_candidates(stream)


def import_stream(
    log: EventLog,
    lines: Iterable[Line],
    rejects: RejectsFile,
    *,
    batch_size: int = 5000,
    on_progress: Callable[[int], None] = lambda consumed: None,
    stop: Stop | None = None,
) -> ImportSummary:
    """Append every valid line to ``log`` in batches; write the others to ``rejects``.

    Stops early when the log itself fails (``summary.failed``) or when ``stop`` is set
    (``summary.interrupted``): then the lines read so far are written (a last, short
    batch) and the rest is not read. What was appended stays appended, the summary
    counts exactly it, and running the import again is safe (ids are idempotency keys).
    """
    summary = ImportSummary()
    writer = _BatchWriter(log, summary)
    with cyclic_gc_paused():
        _pump(lines, writer, rejects, batch_size=batch_size, on_progress=on_progress, stop=stop)
    if rejects.used:
        summary.rejects_path = rejects.path
    if writer.error is not None:
        summary.failed = str(writer.error)
    return summary


def _pump(
    lines: Iterable[Line],
    writer: _BatchWriter,
    rejects: RejectsFile,
    *,
    batch_size: int,
    on_progress: Callable[[int], None],
    stop: Stop | None,
) -> None:
    summary = writer.summary
    batch: list[Touchpoint] = []
    try:
        for _, item, consumed in lines:
            summary.read += 1
            if isinstance(item, Rejection):
                summary.rejected += 1
                rejects.write(item)
            else:
                batch.append(item)
                if len(batch) >= batch_size:
                    writer.submit(batch)
                    batch = []
            on_progress(consumed)
            if writer.error is not None:
                break
            if stop is not None and stop.is_set():
                summary.interrupted = True
                break
        if batch and writer.error is None:
            writer.submit(batch)
        if stop is not None and stop.is_set():
            summary.interrupted = True  # also when it ended the input (a pipe: stoppable)
    finally:
        writer.finish()
        rejects.close()


@dataclass
class _BatchWriter:
    """Encodes batches on the caller's thread and writes them, on a background thread
    when the log's writes release the GIL (``EventLog.overlapped_writes``).

    At most one encoded batch waits behind the one in hand.
    """

    log: EventLog
    summary: ImportSummary
    error: LedgerError | None = None
    crash: BaseException | None = None
    _queue: queue.Queue[Any] = field(default_factory=lambda: queue.Queue(maxsize=1))
    _thread: threading.Thread | None = None

    def submit(self, batch: list[Touchpoint]) -> None:
        if not self.log.overlapped_writes:
            self._write(self.log.encode(batch))
            return
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="ledger-import-writer")
            self._thread.start()
        self._queue.put(self.log.encode(batch))

    def _run(self) -> None:
        while (encoded := self._queue.get()) is not None:
            self._write(encoded)

    def _write(self, encoded: Any) -> None:
        if self.error is not None:
            return  # drain: the reader stops at its next line
        try:
            outcomes = self.log.write(encoded)
        except LedgerError as exc:
            self.error = exc
            return
        except BaseException as exc:  # a bug: stop, re-raised by finish() on the caller's thread
            self.crash = exc
            self.error = LedgerError(f"writing a batch failed: {exc!r}")
            return
        for outcome in outcomes:
            if isinstance(outcome, Appended):
                self.summary.accepted += 1
                if self.summary.first_position is None:
                    self.summary.first_position = outcome.position
                self.summary.last_position = outcome.position
            else:
                self.summary.duplicates += 1

    def finish(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join()
        if self.crash is not None:
            raise self.crash


@contextmanager
def cyclic_gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector for a bulk job.

    Validated events form no reference cycles (reference counting frees them), but
    each collection pass walks every live object -- here, whole batches -- which cost
    a third of the import time. The collector is restored afterwards.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def detect_format(path: str) -> Format:
    """``csv`` for ``*.csv``, otherwise JSON Lines."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"
