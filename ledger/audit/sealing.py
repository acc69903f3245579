"""Sealing (extend each partition's chain to the end of the log and checkpoint it) and
verifying (re-read the log, recompute the chains, name the first divergence and its kind)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Literal

from ledger.audit.chain import GENESIS, I64, LAYOUT, MISMATCH_CAP, Checkpoint, Signer, signature_ok
from ledger.audit.reader import ChainState, digests_to_seal, read_digests
from ledger.audit.store import AuditStore
from ledger.log import EventLog
from ledger.stopping import Stop
from ledger.timeutil import utc_now


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
        state = ChainState(
            chain=bytes.fromhex(last.chain) if last else GENESIS,
            count=last.count if last else 0,
            position=last.position if last else -1,
        )
        before = state.count

        def checkpoint(
            state: ChainState = state, before: int = before, partition: int = partition
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

        digests = digests_to_seal(
            read_digests(log, partition, state.position + 1, workers), state, stop
        )
        made = store.add(log_name, partition, digests, checkpoint)
        if made is not None:
            report.records += made.count - before
            report.checkpoints.append(made)
    report.seconds = time.perf_counter() - started
    return report


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
        read_digests(log, partition, after + 1, workers, legacy),
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
        self.chain = hashlib.sha256(self.chain + I64.pack(position) + digest).digest()
        self.count += 1

    def _step_sealed(self, position: int, digest: bytes) -> None:
        self.sealed_chain = hashlib.sha256(self.sealed_chain + I64.pack(position) + digest).digest()
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
