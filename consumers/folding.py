"""Folding records into the views: the pieces every projector path shares.

Reading a log's records as items, folding them into profiles and contact counts, skipping
ids the views already applied and parking what cannot be applied (:class:`Folder`), and the
report of a run. The one-process :class:`consumers.projector.Projector` and the worker
processes of :mod:`consumers.shards` are both built on it, so neither imports the other's
internals."""

from __future__ import annotations

import gc
import itertools
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NamedTuple, Protocol

from consumers.store import Cleartext, DeadLetter, Misplaced, Seen, ViewBatch, ViewStore
from ledger.codec import event_from_stored
from ledger.errors import InvalidEvent, LedgerError, LogReplaced
from ledger.events import NOT_TOUCHPOINTS
from ledger.fast_decode import fast_fact_parts
from ledger.kafka_log import KafkaLog, decode_record
from ledger.log import (
    EventLog,
    LogRecord,
    Position,
    Positions,
    StoredEvent,
    as_bytes,
    check_positions,
)
from ledger.privacy.crypto import PERSONAL_FIELDS, cleartext_paths
from projections import frequency, identity, profile, service_levels
from projections.fact import Fact, content_digest, fact_from_stored, fact_of

if TYPE_CHECKING:
    pass

OnError = Literal["park", "stop"]

PROJECTOR_BATCH = 500_000
"""Records per transaction (at most: a catch-up commits whatever it holds at the end of the
log, so a follower's small batches commit at once). Every profile a transaction touches is
written once, so larger transactions write fewer profiles per event (1M events, 100k
customers, two worker processes: 95-101k events/s at 250,000, 109-111k at 500,000,
113-123k at 1,000,000). Records are folded as they are read; a transaction holds its
touched profiles (in the O(customers) cache anyway) and contact counts, not its records."""


READ_CHUNK = 5_000
"""Records read and folded at a time (dedupe lookups and profile loads per chunk)."""

PARALLEL_MIN = 50_000
"""Records behind on the embedded log before a catch-up starts worker processes (below
it, starting them costs more than they save: see :mod:`consumers.shards`)."""


def settle_garbage() -> None:
    """Collect the cyclic garbage of the records just folded, then take what survives
    (mostly the cached profiles: millions of long-lived dicts) out of the cycle
    collector's sight (``gc.freeze``). Otherwise its full collections walk the whole
    profile cache again and again: a third of a catch-up's time at 1M events. The
    collection only walks what was allocated since the last call, and frozen objects
    are still freed by reference counting when dropped; only a cycle that forms among
    them later would not be collected (profiles hold none). Called during bulk folding
    only (:class:`BulkGarbage`): by worker processes, one-process catch-ups and group
    members behind the log."""
    gc.collect()
    gc.freeze()


SETTLE_EVERY = 25_000
"""Records a bulk fold with the automatic collector off folds between settles."""


class BulkGarbage:
    """The cycle collector while a long-running process folds a backlog: automatic
    collections off, every :data:`SETTLE_EVERY` records what survives frozen out of the
    collector's sight (with ``collect``: after one collection, :func:`settle_garbage`),
    and the collector as it was, after one :func:`settle_garbage`, once the process is
    caught up (a follower's small polls) or leaves.

    Python's automatic collections do not know that a catch-up's objects are either freed
    at once by reference counting (records, facts) or live long (profiles, a batch's rows
    until it commits): they walk them again and again, and with the survivors frozen away
    every tenth young collection becomes a full one. Measured on a group member catching up
    100,000 events: 3,100 young, 280 middle and 21 full automatic collections, 0.55-0.65 s
    of a 6 s run.

    A group member freezes without collecting (``collect=False``): each collection of a
    300,000-event catch-up found 0 unreachable objects (12 of 12, with either Kafka client)
    and took 25-145 ms, walking the 60,000-220,000 objects made since the last freeze,
    0.8-1.2 s of a 15 s run, with the GIL held against the commit thread; folding makes no
    cyclic garbage (``tests/unit/test_bulk_garbage.py`` folds records of every type and
    checks). Cyclic garbage made during its bulk all the same (an exception kept with its
    traceback) is frozen with the rest and stays until the process ends: the cost of that
    mistake is memory, never a wrong view. Worker processes and one-process catch-ups,
    which have no commit thread to hold up, go on collecting."""

    def __init__(self, *, collect: bool = True) -> None:
        self.collect = collect
        self._disabled = False
        self._since = 0

    def folded(self, records: int, *, bulk: bool) -> None:
        """``records`` folded; ``bulk``: more are waiting (not caught up)."""
        if not bulk:
            self.end()
            return
        if not self._disabled and gc.isenabled():
            gc.disable()
            self._disabled = True
        self._since += records
        if self._since >= SETTLE_EVERY:
            self._since = 0
            if self.collect:
                settle_garbage()
            else:
                gc.freeze()

    def end(self) -> None:
        """Caught up, or leaving: what the bulk left since its last freeze collected, and
        the automatic collector back as it was."""
        if self._disabled:
            self._disabled = False
            self._since = 0
            gc.enable()
            settle_garbage()


@dataclass
class Pending:
    """A transaction being filled: its batch and what it has done so far."""

    batch: ViewBatch
    began: float
    records: int = 0
    applied: int = 0
    duplicates: int = 0

    def count_into(self, report: RunReport) -> None:
        """Add this (committed) transaction to ``report``."""
        report.batches += 1
        report.records += self.records
        report.applied += self.applied
        report.duplicates += self.duplicates
        report.parked += len(self.batch.dead_letters)
        report.positions.update(self.batch.positions)


def check_views_fit(log: EventLog, store: ViewStore, partitions: Iterable[int]) -> None:
    """Raise :class:`~ledger.errors.PositionLost` unless the views of ``store`` may go on
    from their positions in ``log``: each stored position lies within its partition
    (:func:`ledger.log.check_positions`), and the log is the one they were built from (its
    :meth:`~ledger.log.EventLog.identity`, recorded here the first time it is known)."""
    check_positions(log, store.positions(partitions))
    current = log.identity()
    if current is None:
        return
    recorded = store.log_identity()
    if recorded is None:
        store.record_log_identity(current)
    elif recorded != current:
        raise LogReplaced(log=log.name, recorded=recorded, current=current)


class PoisonEvent(LedgerError):
    """A record could not be decoded or applied, and ``--on-error stop`` was asked for."""


class Item(NamedTuple):
    """One log record as the projector handles it: its fact, or why there is none."""

    position: Position
    fact: Fact | None
    error: str | None
    raw: bytes
    key: bytes | None = None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp: datetime | None = None
    """When the log recorded it (what a parked record keeps, with key and headers)."""


def item_of(record: LogRecord) -> Item:
    """The item of a record a log decoded (and validated) itself."""
    event, key, headers, at = record.event, record.key, record.headers, record.recorded_at
    if event is None:
        error = record.error or "cannot be decoded"
        return Item(record.position, None, error, record.raw, key, headers, at)
    return Item(record.position, fact_of(event), None, record.raw, key, headers, at)


def item_of_record(partition: int, record: Any) -> Item:
    """The item of a record as the Kafka client gives it: a record in the ledger's own
    layout is validated straight to its fact (:func:`ledger.fast_decode.fast_fact_parts`,
    no model built); anything else takes the general path, which accepts or rejects it
    with its reasons (both accept the same records and give the same facts:
    ``tests/unit/test_fast_decode.py``)."""
    key, value, headers = record.key, record.value, record.headers
    parts = fast_fact_parts(key, value, headers)
    if parts is None:
        return item_of(decode_record(partition, record))
    return Item(
        Position(partition, record.offset),
        Fact(*parts),
        None,
        value,
        key,
        tuple(headers),
        datetime.fromtimestamp(record.timestamp / 1000, UTC),  # as ledger.kafka_log's
    )


def item_of_stored(stored: StoredEvent) -> Item:
    """The item of a record the log validated at append time: the fast path decodes only
    what projections use; anything unexpected takes the validating path, which names the
    problem (a record that fails it is parked, as from any log). A row whose columns
    are damaged (a type the ledger does not write, an impossible event time) is parked
    naming them, whatever its JSON says: the fast path cannot trust those columns, and the
    validating path (``--validate``) parks the same rows, so both give the same views."""
    try:
        return Item(stored.position, fact_from_stored(stored), None, stored.document)
    except Exception:  # whatever broke, the validating path below says what
        pass
    damage = stored.damage()
    if damage is not None:
        return Item(stored.position, None, damage, as_bytes(stored.document))
    try:
        event = event_from_stored(stored.document)
    except InvalidEvent as exc:
        return Item(stored.position, None, "; ".join(exc.reasons), stored.document)
    return Item(stored.position, fact_of(event), None, stored.document)


def read_items(log: EventLog, start: Positions, *, validate: bool = False) -> Iterator[Item]:
    """The records of ``log`` from ``start``, as items.

    Where the log vouches for its records (the embedded log validated each one at append
    time), the fast path decodes only what projections use; ``validate`` validates every
    record against the contract instead (~3x slower), for a log whose file may have been
    edited behind the ledger's back (``ledger audit verify`` tells).
    """
    if log.validated_at_append and not validate:
        return map(item_of_stored, log.read_stored(start))
    if isinstance(log, KafkaLog):  # validated record by record, straight to facts
        return itertools.starmap(item_of_record, log.consumer_records(start))
    return map(item_of, log.read(start))


@dataclass
class RunReport:
    """What a run did."""

    batches: int = 0
    records: int = 0
    applied: int = 0
    duplicates: int = 0
    parked: int = 0
    conflicts: int = 0
    """Batches rolled back because another projector committed first."""
    seconds: float = 0.0
    positions: dict[int, int] = field(default_factory=dict)
    workers: int = 1
    """Processes that folded records (more than one: see :mod:`consumers.shards`)."""
    worker_peak_rss_mb: float = 0.0
    """The largest peak memory of a worker process (MiB), if any folded."""

    def merge(self, other: RunReport) -> None:
        self.batches += other.batches
        self.records += other.records
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.parked += other.parked
        self.conflicts += other.conflicts
        self.seconds += other.seconds
        self.positions.update(other.positions)
        self.workers = max(self.workers, other.workers)
        self.worker_peak_rss_mb = max(self.worker_peak_rss_mb, other.worker_peak_rss_mb)

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


class Views(Protocol):
    """What folding reads from the views: stored profiles and applied event ids."""

    def load_profiles(self, customers: Sequence[str]) -> dict[str, profile.Profile]: ...

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]: ...

    def newest_times(self) -> dict[int, int]: ...


class Ahead(NamedTuple):
    """A dedupe lookup started before the records it is for were decoded
    (:meth:`Folder.look_ahead`)."""

    ids: frozenset[str]
    answer: Future[dict[str, Seen]]
    recent: dict[str, Seen]
    """The folder's recent ids when the lookup was asked."""


class Folder:
    """Folds records into a batch: applies each new event to its customer's profile and
    contact counts, skips events applied before (by id), parks what cannot be applied.

    Profiles stay in memory between batches (O(customers)): loading and parsing them
    again for every batch cost more than applying the events. Whoever drives a folder
    drops them (:meth:`forget`) whenever a commit fails or another projector may have
    moved the views on.
    """

    def __init__(
        self,
        views: Views,
        *,
        dedupe: bool,
        on_error: OnError = "park",
        partition_count: int | None = None,
        window: int | None = None,
    ) -> None:
        self.views = views
        self.dedupe = dedupe
        self.window = window if dedupe else None
        """The dedupe window (microseconds of event time; ``None``: every id is kept for
        ever). See :meth:`too_old`."""
        self.newest: dict[int, int] | None = None
        """Per partition, the newest event time applied (loaded from the views when the
        window is first needed, then kept up to date by folding)."""
        self.partition_count = partition_count if partition_count and partition_count > 1 else None
        """Kafka: the topic's partitions, to find records outside their key's murmur2
        partition (``None``: a log that does not place records by key)."""
        self.on_error = on_error
        self.profiles: dict[str, profile.Profile] = {}
        self.recent_ids: dict[str, Seen] = {}
        """Ids applied by a batch that may not be committed yet (a worker folds the next
        batch while the previous one commits): not in the views' dedupe records yet."""
        self._ahead: Ahead | None = None

    def forget(self) -> None:
        self.profiles.clear()
        self.recent_ids = {}  # (may be the batch in flight's own ids: not cleared in place)
        self.newest = None
        self._ahead = None

    def forget_look_ahead(self) -> None:
        self._ahead = None

    def look_ahead(self, ids: Sequence[str], lookups: Executor) -> None:
        """Start looking up ``ids`` (the ids the next :meth:`add` is expected to hold,
        read from the records' headers before they are decoded) in the views' dedupe
        records on ``lookups``, so that the store answers while the records are decoded
        instead of after. The next :meth:`already_applied` takes the answer, and looks up
        synchronously whatever ids it did not cover; it also looks in the recent ids of
        now, which a commit settled meanwhile would otherwise take away before the answer
        (asked before that commit) is read."""
        if self.dedupe and ids:
            self._ahead = Ahead(
                frozenset(ids), lookups.submit(self.views.seen, ids), self.recent_ids
            )

    def add(self, batch: ViewBatch, items: list[Item]) -> tuple[int, int]:
        """Fold a chunk of records into ``batch``; returns (applied, duplicates)."""
        decoded = []
        positions = batch.positions
        for item in items:
            positions[item.position.partition] = item.position.offset + 1
            if item.fact is None:
                self.park(batch, item, item.error or "cannot be decoded")
            else:
                decoded.append(item)
        return self.fold(decoded, batch)

    def inspect(self, items: list[Item], batch: ViewBatch) -> None:
        """Count what the records show about their publishers: records outside their key's
        partition, and personal data sent in clear."""
        if self.partition_count is not None:
            self.find_misplaced(items, batch)
        find_cleartext(items, batch)

    def fold(
        self, items: list[Item], batch: ViewBatch, *, resolve: bool = False
    ) -> tuple[int, int]:
        """Apply decoded records not applied before (by id) to the cached profiles and the
        batch's counts; a record whose apply fails is parked. Returns (applied, duplicates).
        With ``resolve`` (a retry), every record handled leaves the dead letters."""
        facts = [item.fact for item in items if item.fact is not None]
        if not resolve:
            self.inspect(items, batch)
        already = self.already_applied(facts, batch)
        profiles = self.profiles
        unseen = {f.subject for f in facts} - profiles.keys()
        profiles.update(self.views.load_profiles(sorted(unseen)))
        touched, contacts, newest = batch.profiles, batch.contacts, batch.newest
        apply_profile, contact_key = profile.apply, frequency.contact_key
        applied = duplicates = 0
        for item in items:
            fact = item.fact
            assert fact is not None
            if resolve:
                batch.resolved.append((item.position.partition, item.position.offset))
            seen: Seen | None = None
            if self.window is not None and self.parked_as_too_old(batch, item, already, resolve):
                continue
            if self.dedupe:
                seen, duplicate = self.first_copy(batch, item, already, resolve=resolve)
                if seen is None:
                    duplicates += duplicate
                    continue
            if fact.type in NOT_TOUCHPOINTS:  # a check, or a fact of the identity graph
                _add_identity(batch, fact)
                applied += 1
                if seen is not None:
                    batch.applied_ids[fact.id] = seen
                continue
            customer = profiles.get(fact.subject) or profile.Profile(customer=fact.subject)
            try:
                apply_profile(customer, fact)
                key = contact_key(fact)
            except Exception as exc:  # a bug in apply must not stop other customers' records
                if resolve:
                    batch.resolved.pop()
                self.park(batch, item, f"apply failed: {exc!r}")
                continue
            if key is not None:
                contacts[key] += 1
            if (row := service_levels.fact_row(fact)) is not None:
                batch.service.append(row)
            profiles[fact.subject] = touched[fact.subject] = customer
            partition = item.position.partition
            if fact.micros > newest.get(partition, -1 << 62):
                newest[partition] = fact.micros
            applied += 1
            if seen is not None:
                batch.applied_ids[fact.id] = seen
        return applied, duplicates

    def already_applied(self, facts: list[Fact], batch: ViewBatch) -> dict[str, Seen]:
        """Of ``facts``, the ids applied before (by the views, recently, or in ``batch``)."""
        if not self.dedupe:
            return {}
        ids = [f.id for f in facts]
        earlier = [self.recent_ids, batch.applied_ids]
        ahead, self._ahead = self._ahead, None
        if ahead is None:
            already = self.views.seen(ids)
        else:
            already = ahead.answer.result()
            rest = [i for i in ids if i not in ahead.ids]
            if rest:  # records whose headers did not name their id (the general path)
                already.update(self.views.seen(rest))
            if ahead.recent is not self.recent_ids:
                earlier.append(ahead.recent)
        for found in earlier:
            if found:
                already.update((i, found[i]) for i in ids if i in found)
        return already

    def parked_as_too_old(
        self, batch: ViewBatch, item: Item, already: dict[str, Seen], resolve: bool
    ) -> bool:
        """Park ``item`` if it is older than the dedupe window allows (:meth:`too_old`);
        whether it was. A retry (``resolve``) applies it: someone checked it."""
        assert item.fact is not None
        if resolve or item.fact.id in already:
            return False
        if self.newest is None:
            self.newest = self.views.newest_times()
        for partition, micros in batch.newest.items():  # what this batch applied so far
            if micros > self.newest.get(partition, -(1 << 62)):
                self.newest[partition] = micros
        reason = self.too_old(item)
        if reason is not None:
            self.park(batch, item, reason)
        return reason is not None

    def too_old(self, item: Item) -> str | None:
        """Why a record whose id the views do not hold is not applied, or ``None``.

        The dedupe window (``LEDGER_DEDUPE_WINDOW_DAYS``) bounds the applied ids the views
        keep: a partition's ids of events more than the window older than its newest
        applied event are forgotten. A record older than that whose id is not found may
        therefore be a copy of an event applied long ago, and counting it again would
        break exactly-once: it is parked instead, saying why (``ledger project retry``
        applies it, once someone has checked it is new, e.g. a backfill)."""
        fact = item.fact
        assert fact is not None
        assert self.window is not None
        partition = item.position.partition
        newest = (self.newest or {}).get(partition)
        if newest is None or fact.micros >= newest - self.window:
            return None
        days = self.window / 86_400_000_000
        return (
            f"older than the dedupe window: event time {fact.time.isoformat()} is more than "
            f"{days:g} days before the newest event applied from partition {partition}, "
            "whose ids are kept that long (LEDGER_DEDUPE_WINDOW_DAYS); it may be a copy of "
            "an event applied long ago, so it is not applied (if it is new, e.g. a backfill: "
            "ledger project retry)"
        )

    def find_misplaced(self, items: list[Item], batch: ViewBatch) -> None:
        """Count the records that sit outside the partition murmur2 gives their key (the
        customer): a producer with another partitioner wrote them. They are applied all
        the same (per-customer reads look in every partition); the count tells who to fix."""
        from ledger.kafka_log import partition_for  # Kafka only: no kafka import otherwise

        count = self.partition_count
        assert count is not None
        misplaced = batch.misplaced
        for item in items:
            fact = item.fact
            assert fact is not None
            home = partition_for(fact.subject, count)
            partition, offset = item.position.partition, item.position.offset
            if home != partition:
                found = Misplaced(partition, 1, offset, fact.subject, home)
                if partition in misplaced:
                    misplaced[partition].add(found)
                else:
                    misplaced[partition] = found

    def first_copy(
        self, batch: ViewBatch, item: Item, already: dict[str, Seen], *, resolve: bool
    ) -> tuple[Seen | None, bool]:
        """``(seen, False)`` for the first copy of an id (now in ``already``); ``(None,
        True)`` for a copy with the same content (a silent duplicate); ``(None, False)``
        for one with other content: a conflict, parked with the first copy's position."""
        fact = item.fact
        assert fact is not None
        digest = content_digest(fact)
        first = already.get(fact.id)
        position = item.position
        if first is None:
            seen = already[fact.id] = Seen(digest, position.partition, position.offset, fact.micros)
            return seen, False
        if first.digest in (None, digest) or first[1:3] == (position.partition, position.offset):
            return None, True
        if resolve:
            batch.resolved.pop()
        self.park_conflict(batch, item, first)
        return None, False

    def park_conflict(self, batch: ViewBatch, item: Item, first: Seen) -> None:
        """Park a copy of an applied id whose content differs from the applied copy's."""
        assert item.fact is not None
        assert first.partition is not None
        assert first.offset is not None
        where = Position(first.partition, first.offset)
        reason = (
            f"conflicting duplicate: id {item.fact.id!r} was applied from {where} with other "
            "content (another customer, type, time or data); this copy is not applied "
            "(both: ledger project errors)"
        )
        self.park(batch, item, reason, first=(where.partition, where.offset))

    def park(
        self, batch: ViewBatch, item: Item, reason: str, first: tuple[int, int] | None = None
    ) -> None:
        if self.on_error == "stop":
            raise PoisonEvent(f"record at {item.position}: {reason}")
        batch.dead_letters.append(
            DeadLetter(
                item.position.partition,
                item.position.offset,
                as_bytes(item.raw),
                reason,
                datetime.now(UTC),
                key=item.key,
                headers=item.headers,
                timestamp=item.timestamp,
                first=first,
            )
        )


def find_cleartext(items: list[Item], batch: ViewBatch) -> None:
    """Count the records whose personal fields hold a value in clear (issue 10): applied as
    usual, reported by ``project status`` so that the publisher can be fixed."""
    found = batch.cleartext
    for item in items:
        fact = item.fact
        if fact is None or fact.type not in PERSONAL_FIELDS:
            continue
        if cleartext_paths(fact.type, fact.data):
            position = item.position
            one = Cleartext(position.partition, 1, position.offset, fact.subject)
            if position.partition in found:
                found[position.partition].add(one)
            else:
                found[position.partition] = one


def _add_identity(batch: ViewBatch, fact: Fact) -> None:
    """An identity fact becomes a row of the identity view (the graph is folded from the
    rows when it is read: a merge or an unmerge re-folds nothing)."""
    found = identity.identity_fact(fact)
    if found is not None:
        batch.identity.append(found.row())


class CatchUpHost(Protocol):
    """What worker processes (:mod:`consumers.shards`) need of the projector they help:
    its log, store, folder and settings, and a way to resume it from new positions."""

    log: EventLog
    store: ViewStore
    folder: Folder
    validate: bool
    batch_size: int
    on_error: OnError

    def resume(self, positions: dict[int, int], partitions: Iterable[int]) -> None: ...
