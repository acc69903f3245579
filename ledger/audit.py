"""Tamper evidence: hash-chain seals over the log, verification, and an export for auditors.

The algorithm (``docs/audit.md`` is the reference, with an independent verifier):

* every record is reduced to its stored parts (:class:`~ledger.log.RawRecord`: key,
  headers, value, timestamp) and digested: ``digest = SHA-256(record_bytes(record))``;
* per partition, in log order: ``chain = SHA-256(previous chain || position || digest)``,
  starting from 32 zero bytes;
* a seal writes a **checkpoint** per partition (position of the last record sealed, how
  many records are sealed, the chain hash, when), optionally signed with Ed25519, plus
  the digest of every record it sealed (for naming *what* diverged, not for trust).

Checkpoints and digests live in an audit store apart from the log (a SQLite file; by
default ``audit.db`` in the data folder). Verification re-reads the log, recomputes the
chain and compares it with every checkpoint; the per-record digests let it name the first
divergence per partition and its kind: a modified record, deleted records (or a truncated
end), records in another order, or records inserted before a sealed position.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import signal
import sqlite3
import struct
import sys
import time
from collections.abc import Callable, Generator, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import datetime
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any, Literal, cast

import orjson

from ledger.errors import LedgerError
from ledger.log import EventLog, RawRecord
from ledger.sqlite_log import PARTITION, RECORD_TAG_2, USUAL_TYPES, SQLiteLog
from ledger.stopping import STOP_SIGNALS, Stop, signals_held
from ledger.timeutil import from_micros, to_micros, utc_now

LAYOUT = 2
"""The seal layout new checkpoints get (docs/audit.md): 1 sealed the embedded log's
customer, id, type, event time, state and append time; 2 seals every column of its table
with its SQLite type. Kafka records digest alike under both."""
ALGORITHMS = {1: "touchpoint-ledger-seal-v1", 2: "touchpoint-ledger-seal-v2"}
ALGORITHM = ALGORITHMS[LAYOUT]
GENESIS = bytes(32)
_ABSENT = 0xFFFFFFFF
_I64 = struct.Struct(">q")
_SEAL_CHUNK = 20_000
MISMATCH_CAP = 100_000
"""Diverging records remembered per partition to classify the first divergence; past
this, verification still counts them but keeps no more (memory stays bounded)."""


class AuditError(LedgerError):
    """The audit store or a key cannot be used."""


class SealsMissing(AuditError):
    """The audit store holds no seals for a log: nothing can be verified."""


_LAYOUTS: dict[int, struct.Struct] = {}
_NAMES: dict[str, bytes] = {}


def record_bytes(record: RawRecord) -> bytes:
    """The canonical bytes of one stored record (see docs/audit.md): the tag, the
    timestamp, the number of headers, the length of each field, then the fields (key, each
    header's name and value, value); an absent field has length FFFFFFFF and no bytes."""
    fields = [record.key]
    for name, value in record.headers:
        encoded = _NAMES.get(name)
        if encoded is None:
            encoded = _NAMES[name] = name.encode()
        fields += (encoded, value)
    fields.append(record.value)
    layout = _LAYOUTS.get(len(fields))
    if layout is None:
        layout = _LAYOUTS[len(fields)] = struct.Struct(f">qI{len(fields)}I")
    if None in fields:
        lengths = [_ABSENT if f is None else len(f) for f in fields]
        head = layout.pack(record.timestamp, len(record.headers), *lengths)
        return b"".join([record.tag, head, *[f for f in fields if f is not None]])
    present = cast(list[bytes], fields)  # no field is absent
    head = layout.pack(record.timestamp, len(record.headers), *map(len, present))
    return record.tag + head + b"".join(present)


def record_digest(record: RawRecord) -> bytes:
    return hashlib.sha256(record_bytes(record)).digest()


def chain_step(previous: bytes, position: int, digest: bytes) -> bytes:
    return hashlib.sha256(previous + _I64.pack(position) + digest).digest()


# -- checkpoints ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The state of one partition's chain after a seal."""

    id: int
    log: str
    partition: int
    position: int
    """Offset of the last record sealed."""
    count: int
    """Records sealed in this partition, in all, up to ``position``."""
    chain: str
    """The chain hash after that record, hex."""
    sealed_at: datetime
    public_key: str | None = None
    """Ed25519 public key (raw, hex) that signed it, if signed."""
    signature: str | None = None
    layout: int = 1
    """The seal layout of the records this checkpoint was the first to cover."""

    def message(self) -> bytes:
        """What the signature signs (docs/audit.md): its first line names the layout."""
        algorithm = ALGORITHMS.get(self.layout, f"touchpoint-ledger-seal-v{self.layout}")
        return (
            f"{algorithm}\nlog={self.log}\npartition={self.partition}\n"
            f"position={self.position}\ncount={self.count}\nchain={self.chain}\n"
            f"sealed_at={to_micros(self.sealed_at)}\n"
        ).encode()

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "log": self.log,
            "partition": self.partition,
            "position": self.position,
            "count": self.count,
            "chain": self.chain,
            "sealed_at": to_micros(self.sealed_at),
            "public_key": self.public_key,
            "signature": self.signature,
            "layout": self.layout,
        }


class AuditStore:
    """Checkpoints and sealed-record digests, in a SQLite file apart from the log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            self._db.execute("PRAGMA journal_mode = WAL")
            self._db.executescript(
                "CREATE TABLE IF NOT EXISTS checkpoints (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                "log TEXT NOT NULL, partition INTEGER NOT NULL, position INTEGER NOT NULL, "
                "count INTEGER NOT NULL, chain TEXT NOT NULL, sealed_at INTEGER NOT NULL, "
                "public_key TEXT, signature TEXT);"
                # The digests of a seal's records, a chunk of them per row: positions as
                # big-endian int64s, digests as 32 bytes each, in the same order.
                "CREATE TABLE IF NOT EXISTS sealed (log TEXT NOT NULL, partition INTEGER NOT "
                "NULL, first INTEGER NOT NULL, last INTEGER NOT NULL, positions BLOB NOT "
                "NULL, digests BLOB NOT NULL, PRIMARY KEY (log, partition, first)) WITHOUT ROWID;"
            )
            columns = [row[1] for row in self._db.execute("PRAGMA table_info(checkpoints)")]
            if "layout" not in columns:  # an audit store from before layout 2
                self._db.execute(
                    "ALTER TABLE checkpoints ADD COLUMN layout INTEGER NOT NULL DEFAULT 1"
                )
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open the audit store {path}: {exc}") from exc

    @classmethod
    def existing(cls, path: Path) -> AuditStore | None:
        """The audit store at ``path`` if the file is there (``None``: it is not; nothing
        is created, so that a check never turns a lost store into an empty one)."""
        return cls(path) if path.is_file() else None

    def close(self) -> None:
        self._db.close()

    def checkpoints(self, log: str, partition: int | None = None) -> list[Checkpoint]:
        query = (
            "SELECT id, log, partition, position, count, chain, sealed_at, public_key, "
            "signature, layout FROM checkpoints WHERE log = ?"
        )
        params: list[Any] = [log]
        if partition is not None:
            query += " AND partition = ?"
            params.append(partition)
        rows = self._db.execute(query + " ORDER BY partition, position, id", params).fetchall()
        return [
            Checkpoint(i, lg, p, pos, n, chain, from_micros(at), key, sig, layout)
            for i, lg, p, pos, n, chain, at, key, sig, layout in rows
        ]

    def last(self, log: str, partition: int) -> Checkpoint | None:
        found = self.checkpoints(log, partition)
        return found[-1] if found else None

    def sealed(self, log: str, partition: int, after: int) -> Iterator[tuple[int, bytes]]:
        """Sealed ``(position, digest)`` pairs after position ``after``, in order (a chunk
        in memory at a time)."""
        while rows := self._db.execute(
            "SELECT last, positions, digests FROM sealed WHERE log = ? AND partition = ? "
            "AND last > ? ORDER BY first LIMIT 10",
            (log, partition, after),
        ).fetchall():
            for _, positions, digests in rows:
                offsets = struct.unpack(f">{len(positions) // 8}q", positions)
                for index, position in enumerate(offsets):
                    if position > after:
                        yield position, digests[index * 32 : index * 32 + 32]
            after = rows[-1][0]

    def add(
        self,
        log: str,
        partition: int,
        digests: Iterator[tuple[list[int], list[bytes]]],
        checkpoint: Callable[[], Checkpoint | None],
    ) -> Checkpoint | None:
        """Write streamed sealed digests, then the checkpoint ``checkpoint()`` makes once
        they are all written (``None``: nothing new), in one transaction."""
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for positions, chunk in digests:
                    self._db.execute(
                        "INSERT INTO sealed VALUES (?, ?, ?, ?, ?, ?)",
                        (
                            log,
                            partition,
                            positions[0],
                            positions[-1],
                            struct.pack(f">{len(positions)}q", *positions),
                            b"".join(chunk),
                        ),
                    )
                made = checkpoint()
                if made is not None:
                    cursor = self._db.execute(
                        "INSERT INTO checkpoints (log, partition, position, count, chain, "
                        "sealed_at, public_key, signature, layout) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                        (
                            made.log,
                            made.partition,
                            made.position,
                            made.count,
                            made.chain,
                            to_micros(made.sealed_at),
                            made.public_key,
                            made.signature,
                            made.layout,
                        ),
                    )
                    made = replace(made, id=cursor.lastrowid or 0)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise AuditError(f"cannot write the audit store {self.path}: {exc}") from exc
        return made


# -- keys -----------------------------------------------------------------------------------


class Signer:
    """An Ed25519 private key from a PEM file (``ledger audit keygen`` writes one)."""

    def __init__(self, path: Path) -> None:
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from cryptography.hazmat.primitives.serialization import (
            Encoding,
            PublicFormat,
            load_pem_private_key,
        )

        try:
            key = load_pem_private_key(path.read_bytes(), password=None)
        except (OSError, ValueError, TypeError) as exc:
            raise AuditError(f"cannot read the signing key {path}: {exc}") from exc
        if not isinstance(key, Ed25519PrivateKey):
            raise AuditError(f"{path}: not an Ed25519 private key")
        self._key = key
        self.public_key = key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw).hex()

    def sign(self, message: bytes) -> str:
        return self._key.sign(message).hex()


def generate_key(path: Path) -> str:
    """Write a new Ed25519 private key (PEM, mode 600) and its public key beside it
    (``PATH.pub``, PEM); returns the public key, raw, hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        NoEncryption,
        PrivateFormat,
        PublicFormat,
    )

    if path.exists():
        raise AuditError(f"{path} exists: refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_bytes(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public = key.public_key()
    path.with_name(path.name + ".pub").write_bytes(
        public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    return public.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def load_public_key(path: Path) -> str:
    """A public key file (PEM, or raw hex) as raw hex."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_public_key,
    )

    try:
        text = path.read_bytes()
    except OSError as exc:
        raise AuditError(f"cannot read the public key {path}: {exc}") from exc
    if not text.startswith(b"-----"):
        return str(text.decode().strip())
    key = load_pem_public_key(text)
    if not isinstance(key, Ed25519PublicKey):
        raise AuditError(f"{path}: not an Ed25519 public key")
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw).hex()


def signature_ok(checkpoint: Checkpoint, public_key: str) -> bool:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    if checkpoint.signature is None:
        return False
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(public_key)).verify(
            bytes.fromhex(checkpoint.signature), checkpoint.message()
        )
    except (InvalidSignature, ValueError):
        return False
    return True


# -- sealing --------------------------------------------------------------------------------


@dataclass
class SealReport:
    records: int = 0
    checkpoints: list[Checkpoint] = field(default_factory=list)
    seconds: float = 0.0


def seal(
    log: EventLog,
    log_name: str,
    store: AuditStore,
    signer: Signer | None = None,
    *,
    workers: int | None = None,
    stop: Stop | None = None,
) -> SealReport:
    """Extend every partition's chain from its last checkpoint to the current end of the
    log, and write a checkpoint for each partition that had new records. If ``stop`` is
    set meanwhile, the partition in hand is checkpointed as far as it was chained (a
    valid, shorter seal: the next one goes on from there) and the rest is left.

    The embedded log is read and digested by ``workers`` processes (default: one per
    core) in spans of positions; this process only chains the digests in order and
    stores them. Reading the rows is most of the work, and digests do not depend on each
    other, so it parallelises; the chain does not, but costs one hash per record.
    """
    workers = workers or os.cpu_count() or 1
    report = SealReport()
    started = time.perf_counter()
    sealed_at = utc_now()
    for partition in log.partitions():
        if stop is not None and stop.is_set():
            break
        last = store.last(log_name, partition)
        state = _ChainState(
            chain=bytes.fromhex(last.chain) if last else GENESIS,
            count=last.count if last else 0,
            position=last.position if last else -1,
        )
        before = state.count

        def checkpoint(
            state: _ChainState = state, before: int = before, partition: int = partition
        ) -> Checkpoint | None:
            if state.count == before:
                return None
            made = Checkpoint(
                0,
                log_name,
                partition,
                state.position,
                state.count,
                state.chain.hex(),
                sealed_at,
                layout=LAYOUT,
            )
            if signer is None:
                return made
            signature = signer.sign(made.message())
            return replace(made, public_key=signer.public_key, signature=signature)

        digests = _sealing(_digests(log, partition, state.position + 1, workers), state, stop)
        made = store.add(log_name, partition, digests, checkpoint)
        if made is not None:
            report.records += made.count - before
            report.checkpoints.append(made)
    report.seconds = time.perf_counter() - started
    return report


@dataclass
class _ChainState:
    chain: bytes
    count: int
    position: int


def _sealing(
    digests: Iterator[tuple[int, bytes]], state: _ChainState, stop: Stop | None = None
) -> Iterator[tuple[list[int], list[bytes]]]:
    """Chain ``(position, digest)`` pairs, yielding them in chunks; ``state`` is the chain
    after the last chunk yielded. Ends after a chunk once ``stop`` is set."""
    sha256, pack = hashlib.sha256, _I64.pack
    chain = state.chain
    positions: list[int] = []
    chunk: list[bytes] = []
    for position, digest in digests:
        chain = sha256(chain + pack(position) + digest).digest()
        positions.append(position)
        chunk.append(digest)
        if len(positions) >= _SEAL_CHUNK:
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


def _digests(
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
    """:func:`_digests` of the embedded log, read and digested by ``workers`` processes,
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


# -- verification ---------------------------------------------------------------------------

Kind = Literal["modified", "deleted", "truncated", "reordered", "inserted", "checkpoint"]


@dataclass(frozen=True, slots=True)
class Divergence:
    """The first place a partition differs from what was sealed."""

    partition: int
    position: int
    kind: Kind
    detail: str


@dataclass
class PartitionReport:
    partition: int
    records: int = 0
    """Log records read."""
    sealed: int = 0
    """Records covered by the checkpoints checked."""
    unsealed: int = 0
    """Records after the last checkpoint (new since the last seal: not an error)."""
    checkpoints: int = 0
    signatures: int = 0
    divergence: Divergence | None = None
    problems: list[str] = field(default_factory=list)
    """Checkpoints that do not match, or whose signature does not verify."""
    layout_1_until: int = 0
    """Records up to this position were sealed in layout 1 (0: none): on the embedded log,
    an edit of their version column or of a column's type alone goes unseen."""

    @property
    def ok(self) -> bool:
        return self.divergence is None and not self.problems


def verify(
    log: EventLog,
    log_name: str,
    store: AuditStore,
    *,
    public_key: str | None = None,
    from_checkpoint: int | None = None,
    workers: int | None = None,
) -> list[PartitionReport]:
    """Re-read the log and check it against the seals, partition by partition.

    With ``public_key`` (hex), every checkpoint must carry a valid signature by it;
    without, signatures are checked against the key each checkpoint names (which only
    proves the audit store is self-consistent: pin the key for trust). With
    ``from_checkpoint``, each partition is trusted up to its last checkpoint with that id
    or lower, and verified from there.
    """
    workers = workers or os.cpu_count() or 1
    partitions = sorted(set(log.partitions()) | {c.partition for c in store.checkpoints(log_name)})
    return [
        _verify_partition(
            log,
            log_name,
            store,
            p,
            public_key=public_key,
            from_checkpoint=from_checkpoint,
            workers=workers,
        )
        for p in partitions
    ]


@dataclass
class _Diff:
    """Diverging records of one partition, remembered up to :data:`MISMATCH_CAP`."""

    log: dict[int, bytes] = field(default_factory=dict)
    sealed: dict[int, bytes] = field(default_factory=dict)
    total: int = 0

    def note(self, position: int, log: bytes | None, sealed: bytes | None) -> None:
        self.total += 1
        if len(self.log) + len(self.sealed) >= MISMATCH_CAP:
            return
        if log is not None:
            self.log[position] = log
        if sealed is not None:
            self.sealed[position] = sealed


def _verify_partition(
    log: EventLog,
    log_name: str,
    store: AuditStore,
    partition: int,
    *,
    public_key: str | None,
    from_checkpoint: int | None,
    workers: int,
) -> PartitionReport:
    checkpoints = store.checkpoints(log_name, partition)
    start: Checkpoint | None = None
    if from_checkpoint is not None:
        trusted = [c for c in checkpoints if c.id <= from_checkpoint]
        start = trusted[-1] if trusted else None
    after = start.position if start else -1
    check = _PartitionCheck(partition, start, [c for c in checkpoints if c.position > after])
    check.signatures(public_key)
    legacy = max((c.position for c in checkpoints if c.layout == 1), default=0)
    check.report.layout_1_until = legacy
    check.run(
        _digests(log, partition, after + 1, workers, legacy),
        store.sealed(log_name, partition, after),
    )
    return check.report


class _PartitionCheck:
    """One partition's verification: a merge of the log with the sealed digests, both in
    position order, recomputing the chain of each and comparing it with every checkpoint."""

    def __init__(self, partition: int, start: Checkpoint | None, due: list[Checkpoint]) -> None:
        self.report = PartitionReport(partition, checkpoints=len(due))
        self.start = start
        self.due = due
        self.chain = self.sealed_chain = bytes.fromhex(start.chain) if start else GENESIS
        self.count = self.sealed_count = start.count if start else 0
        self.after = start.position if start else -1
        self.last_sealed = due[-1].position if due else self.after
        self.last_log_position = self.after
        self.diff = _Diff()
        self._pending = iter(due)
        self._checkpoint = next(self._pending, None)

    def signatures(self, public_key: str | None) -> None:
        for checkpoint in self.due:
            key = public_key or checkpoint.public_key
            if key is None:
                continue
            if signature_ok(checkpoint, key):
                self.report.signatures += 1
                continue
            problem = "not signed" if checkpoint.signature is None else "bad signature"
            pinned = " (by the given public key)" if public_key else ""
            self.report.problems.append(
                f"checkpoint {checkpoint.id} (position {checkpoint.position}): {problem}{pinned}"
            )

    def run(
        self, records: Iterator[tuple[int, bytes]], sealed: Iterator[tuple[int, bytes]]
    ) -> None:
        record, entry = next(records, None), next(sealed, None)
        while record is not None or entry is not None:
            if entry is None or (record is not None and record[0] < entry[0]):
                assert record is not None
                self._log_only(*record)
                record = next(records, None)
            elif record is None or entry[0] < record[0]:
                self._sealed_only(*entry)
                entry = next(sealed, None)
            else:
                self._both(record[1], *entry)
                record, entry = next(records, None), next(sealed, None)
        self._passed(float("inf"))
        report = self.report
        report.sealed = self.sealed_count - (self.start.count if self.start else 0)
        report.divergence = _classify(report.partition, self.diff, self.last_log_position)
        if report.divergence is None and any("the log gives" in p for p in report.problems):
            # The log and the stored digests agree, yet not with a checkpoint: both altered.
            report.divergence = Divergence(
                report.partition,
                self.after + 1,
                "checkpoint",
                "the log and the audit store's record digests were altered alike; the "
                "checkpoint chain catches it, but cannot name the record",
            )

    def _step(self, position: int, digest: bytes) -> None:
        self.chain = hashlib.sha256(self.chain + _I64.pack(position) + digest).digest()
        self.count += 1

    def _step_sealed(self, position: int, digest: bytes) -> None:
        self.sealed_chain = hashlib.sha256(
            self.sealed_chain + _I64.pack(position) + digest
        ).digest()
        self.sealed_count += 1

    def _log_only(self, position: int, digest: bytes) -> None:
        self._passed(position)
        self.report.records += 1
        self.last_log_position = position
        if position > self.last_sealed:
            self.report.unsealed += 1  # new since the last seal
            return
        self._step(position, digest)  # in the sealed range, yet never sealed
        self.diff.note(position, digest, None)

    def _sealed_only(self, position: int, sealed: bytes) -> None:
        self._passed(position)
        self._step_sealed(position, sealed)
        self.diff.note(position, None, sealed)

    def _both(self, digest: bytes, position: int, sealed: bytes) -> None:
        self._passed(position)
        self._step(position, digest)
        self._step_sealed(position, sealed)
        self.report.records += 1
        self.last_log_position = position
        if digest != sealed:
            self.diff.note(position, digest, sealed)

    def _passed(self, position: float) -> None:
        """Compare with every checkpoint before ``position``."""
        while self._checkpoint is not None and self._checkpoint.position < position:
            checkpoint = self._checkpoint
            if (self.count, self.chain.hex()) != (checkpoint.count, checkpoint.chain):
                self.report.problems.append(
                    f"checkpoint {checkpoint.id} (position {checkpoint.position}): the log "
                    f"gives {self.count} records and chain {self.chain.hex()[:16]}..., "
                    f"sealed {checkpoint.count} and {checkpoint.chain[:16]}..."
                )
            if (self.sealed_count, self.sealed_chain.hex()) != (
                checkpoint.count,
                checkpoint.chain,
            ):
                self.report.problems.append(
                    f"checkpoint {checkpoint.id}: the audit store's record digests do not "
                    "give its chain (the audit store was altered)"
                )
            self._checkpoint = next(self._pending, None)


def _classify(partition: int, diff: _Diff, last_log_position: int) -> Divergence | None:
    positions = diff.log.keys() | diff.sealed.keys()
    if not positions:
        return None
    p = min(positions)
    in_log, in_sealed = p in diff.log, p in diff.sealed
    more = f" ({diff.total} diverging records in all)" if diff.total > 1 else ""
    if in_sealed and not in_log:
        run = [p]
        while run[-1] + 1 in diff.sealed and run[-1] + 1 not in diff.log:
            run.append(run[-1] + 1)
        if last_log_position < p:
            return Divergence(
                partition,
                p,
                "truncated",
                f"the log ends before position {p}: {len(run)} "
                f"sealed record(s) from {p} to {run[-1]} are gone{more}",
            )
        return Divergence(
            partition, p, "deleted", f"sealed record(s) {p}..{run[-1]} are missing{more}"
        )
    if in_log and not in_sealed:
        return Divergence(
            partition,
            p,
            "inserted",
            f"a record at position {p} was never sealed, yet lies before sealed records{more}",
        )
    now, then = diff.log[p], diff.sealed[p]
    sealed_at = {digest: q for q, digest in sorted(diff.sealed.items(), reverse=True)}
    logged_at = {digest: q for q, digest in sorted(diff.log.items(), reverse=True)}
    q = sealed_at.get(now)
    if q is not None and q != p:
        if diff.log.get(q) == then:
            return Divergence(
                partition, p, "reordered", f"the records sealed at {p} and {q} swapped places"
            )
        if q > p:
            return Divergence(
                partition,
                p,
                "deleted",
                f"{q - p} record(s) sealed from position {p} are "
                f"missing; the records after them moved down by {q - p}{more}",
            )
        return Divergence(
            partition, p, "reordered", f"the record sealed at {q} is now at {p}{more}"
        )
    r = logged_at.get(then)
    if r is not None and r > p:
        return Divergence(
            partition,
            p,
            "inserted",
            f"{r - p} record(s) were inserted before sealed "
            f"position {p}; the sealed records after them moved up by {r - p}{more}",
        )
    if r is not None:
        return Divergence(
            partition, p, "reordered", f"the record sealed at {p} is now at {r}{more}"
        )
    return Divergence(
        partition, p, "modified", f"the record at position {p} is not the one sealed{more}"
    )


def require_seals(log: EventLog, log_name: str, path: Path) -> AuditStore:
    """The audit store at ``path`` with seals for ``log_name``, or :class:`SealsMissing`.

    Neither the log nor the audit store can prove that a log was never sealed (whoever
    could delete the seals could edit the log too), so a missing store never means
    "seal now": that would bless whatever the log holds today.
    """
    store = AuditStore.existing(path)
    if store is not None and store.checkpoints(log_name):
        return store
    if store is not None:
        store.close()
    where = f"the audit store {path} " + ("holds none" if store else "does not exist")
    held = "the log is empty"
    for partition in log.partitions():
        first = next(iter(log.read_raw(partition)), None)
        if first is not None:
            where_first = f"partition {partition} from position {first.position.offset}"
            held = f"the log holds records ({where_first})"
            break
    raise SealsMissing(
        f"no seals for log {log_name!r} ({where}) and {held}: nothing can be verified. "
        "Either this log was never sealed, or its seals were lost or removed: if seals "
        "were ever made, their loss is itself an incident. Restore the audit store from a "
        "backup (or point LEDGER_AUDIT_STORE at it), or check the log against an exported "
        "seals.json (docs/audit.md); do not seal now, which would bless the log as it "
        "stands."
    )


def export(store: AuditStore, log: str, out: Path) -> Path:
    """Write ``seals.json``: the algorithm name, the log, every checkpoint and the public
    keys that signed them. Small: one entry per checkpoint, no record digests."""
    checkpoints = store.checkpoints(log)
    bundle = {
        "algorithm": ALGORITHM,
        "log": log,
        "exported_at": utc_now().isoformat(),
        "public_keys": sorted({c.public_key for c in checkpoints if c.public_key}),
        "checkpoints": [c.to_dict() for c in checkpoints],
    }
    out.mkdir(parents=True, exist_ok=True)
    path = out / "seals.json"
    path.write_bytes(orjson.dumps(bundle, option=orjson.OPT_INDENT_2) + b"\n")
    return path
