"""The audit store: checkpoints and per-record digests in a SQLite file apart from the log,
and the export bundle for auditors."""

from __future__ import annotations

import sqlite3
import struct
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from ledger.audit.chain import ALGORITHM, AuditError, Checkpoint, SealsMissing
from ledger.log import EventLog
from ledger.sqlite_wal import use_wal
from ledger.timeutil import from_micros, to_micros, utc_now


class AuditStore:
    """Checkpoints and sealed-record digests, in a SQLite file apart from the log."""

    def __init__(self, path: Path) -> None:
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
            try:
                self._create_tables()
            except BaseException:
                self._db.close()  # a transaction left open is rolled back
                raise
        except sqlite3.Error as exc:
            raise AuditError(f"cannot open the audit store {path}: {exc}") from exc

    def _create_tables(self) -> None:
        use_wal(self._db, 30)
        if self._complete():  # read only: a seal holding the write lock is not waited for
            return
        # One write transaction: stores opened together neither both add the column nor
        # see the tables half made.
        self._db.executescript(
            "BEGIN IMMEDIATE;"
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
        if not self._complete():  # an audit store from before layout 2
            self._db.execute("ALTER TABLE checkpoints ADD COLUMN layout INTEGER NOT NULL DEFAULT 1")
        self._db.execute("COMMIT")

    def _complete(self) -> bool:
        """Whether both tables are there, with the ``layout`` column of layout 2."""
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master")}
        columns = [row[1] for row in self._db.execute("PRAGMA table_info(checkpoints)")]
        return {"checkpoints", "sealed"} <= tables and "layout" in columns

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
