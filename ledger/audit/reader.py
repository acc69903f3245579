"""Reading a log's records as digests for sealing and verifying: in order from any log, and
from the embedded log's file directly, in parallel spans over several processes."""

from __future__ import annotations

import hashlib
import multiprocessing
import signal
import struct
import sys
from collections.abc import Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path

from ledger.audit.chain import I64, SEAL_CHUNK, record_digest
from ledger.log import EventLog
from ledger.sqlite_log import PARTITION, RECORD_TAG_2, USUAL_TYPES, SQLiteLog
from ledger.stopping import STOP_SIGNALS, Stop, signals_held


@dataclass
class ChainState:
    chain: bytes
    count: int
    position: int


def digests_to_seal(
    digests: Iterator[tuple[int, bytes]], state: ChainState, stop: Stop | None = None
) -> Iterator[tuple[list[int], list[bytes]]]:
    """Chain ``(position, digest)`` pairs, yielding them in chunks; ``state`` is the chain
    after the last chunk yielded. Ends after a chunk once ``stop`` is set."""
    sha256, pack = hashlib.sha256, I64.pack
    chain = state.chain
    positions: list[int] = []
    chunk: list[bytes] = []
    for position, digest in digests:
        chain = sha256(chain + pack(position) + digest).digest()
        positions.append(position)
        chunk.append(digest)
        if len(positions) >= SEAL_CHUNK:
            state.chain, state.count, state.position = chain, state.count + len(positions), position
            yield positions, chunk
            positions, chunk = [], []
            if stop is not None and stop.is_set():
                if isinstance(digests, Generator):
                    digests.close()  # ends the digesting processes now
                return
    if positions:
        state.chain, state.count, state.position = (
            chain,
            state.count + len(positions),
            positions[-1],
        )
        yield positions, chunk


def read_digests(
    log: EventLog, partition: int, start: int, workers: int, layout_1_until: int = 0
) -> Iterator[tuple[int, bytes]]:
    """``(position, digest)`` of every record of a partition from ``start``, in order;
    the embedded log's records up to ``layout_1_until`` in seal layout 1, later ones in
    layout 2."""
    if isinstance(log, SQLiteLog) and workers > 1:
        yield from _parallel_digests(log, start, workers, layout_1_until)
        return
    if isinstance(log, SQLiteLog):
        yield from embedded_digests(log, start, layout_1_until)
        return
    for record in log.read_raw(partition, start):
        yield record.position.offset, record_digest(record)


_LAYOUT_2_HEAD = struct.Struct(">qI14I")


def embedded_digests(
    log: SQLiteLog, start: int, layout_1_until: int = 0
) -> Iterator[tuple[int, bytes]]:
    """``(position, digest)`` of the embedded log's records from ``start``: what
    :func:`record_digest` gives for each record :meth:`SQLiteLog.read_raw` yields, with
    the usual rows of layout 2 digested straight from their columns (no record built;
    the field names' lengths are constants: 2 ``id``, 7 ``version``, 4 ``type``, 4
    ``time``, 11 ``recorded_at``, 5 ``types``)."""
    if start <= layout_1_until:
        for record in log.read_raw(PARTITION, start, layout_1_until=layout_1_until):
            if record.position.offset > layout_1_until:
                break
            yield record.position.offset, record_digest(record)
        start = layout_1_until + 1
    sha256, pack, join = hashlib.sha256, _LAYOUT_2_HEAD.pack, b"".join
    tag, types, types_length = RECORD_TAG_2, USUAL_TYPES, len(USUAL_TYPES)
    for rows in log.sealed_rows(start):
        for row in rows:
            position, usual, subject, event_id, version, kind, time, recorded, state = row
            if not usual:  # a column of another type (or NULL): the general way
                yield position, record_digest(log.raw_record_2(row))
                continue
            head = pack(
                0,
                6,
                len(subject),
                2,
                len(event_id),
                7,
                len(version),
                4,
                len(kind),
                4,
                len(time),
                11,
                len(recorded),
                5,
                types_length,
                len(state),
            )
            record_bytes_2 = join(
                (
                    tag,
                    head,
                    subject,
                    b"id",
                    event_id,
                    b"version",
                    version,
                    b"type",
                    kind,
                    b"time",
                    time,
                    b"recorded_at",
                    recorded,
                    b"types",
                    types,
                    state,
                )
            )
            yield position, sha256(record_bytes_2).digest()


_SPAN = 50_000
"""Positions per worker task when sealing the embedded log in parallel."""


def _digest_span(path: Path, first: int, last: int, layout_1_until: int) -> tuple[bytes, bytes]:
    """In a worker process: the positions (big-endian int64s) and digests of the embedded
    log's records ``first``..``last``."""
    positions: list[int] = []
    digests: list[bytes] = []
    log = SQLiteLog(path, create=False, cache_mib=8)
    with log:
        for position, digest in embedded_digests(log, first, layout_1_until):
            if position > last:
                break
            positions.append(position)
            digests.append(digest)
    return struct.pack(f">{len(positions)}q", *positions), b"".join(digests)


def _parallel_digests(
    log: SQLiteLog, start: int, workers: int, layout_1_until: int
) -> Iterator[tuple[int, bytes]]:
    """:func:`read_digests` of the embedded log, read and digested by ``workers`` processes,
    span by span, in order, up to the position that was last when it started (later
    appends are for the next seal). Reading the rows is most of the work and digests do
    not depend on each other; only the chain is sequential."""
    last = log.end_position()
    spans = [
        (log.path, lo, min(lo + _SPAN - 1, last), layout_1_until)
        for lo in range(start, last + 1, _SPAN)
    ]
    if not spans:
        return
    context = multiprocessing.get_context("spawn" if sys.platform == "darwin" else "fork")
    resource_tracker.ensure_running()  # starting it later would unblock the signals
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_ignore_stops) as pool:
        try:
            # The workers start with SIGINT/SIGTERM held back, then ignore them: a Ctrl-C
            # to the process group is the sealing process's to handle.
            with signals_held():
                digested = pool.map(_digest_span, *zip(*spans, strict=True))
            for packed, joined in digested:
                positions = struct.unpack(f">{len(packed) // 8}q", packed)
                for index, position in enumerate(positions):
                    yield position, joined[index * 32 : index * 32 + 32]
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # stopped early: drop the rest


def _ignore_stops() -> None:
    """In a digesting process: leave SIGINT and SIGTERM to the sealing process."""
    for number in STOP_SIGNALS:
        signal.signal(number, signal.SIG_IGN)
