"""Application functions over an open log (and view store): append, import, replay,
history, violations, generate, demo, projection status, conflicting duplicates.

The use-case modules by area (:mod:`application.recording`, ``reading``, ``as_of``,
``decisions``, ``projecting``, ``status``, ``demo``, ``audit``, ``views``) open the log and
store from :class:`Settings` and call these; a face (CLI, HTTP) calls those. With
:mod:`application.wiring` they compose the write side (the rest of ``ledger``), the read
models (``projections``) and their runners (``consumers``).
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
from collections import ChainMap, Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from application.identity import facts_in_log, graph_of
from application.pressure import PressureReport, pressure
from application.report import RelationshipReport, relationship_report
from consumers.folding import item_of_stored
from consumers.projector import Projector
from consumers.store import Cleartext, DeadLetter, Misplaced, ViewStore
from ledger.codec import event_to_dict, parse_event
from ledger.errors import InvalidEvent, LogReplaced
from ledger.generate import generated
from ledger.importer import (
    Format,
    ImportSummary,
    Line,
    Rejection,
    RejectsFile,
    candidates,
    check_rejects_target,
    import_stream,
)
from ledger.log import (
    EVERYTHING,
    AppendOutcome,
    EventLog,
    LogRecord,
    Position,
    Positions,
    ReadFilter,
    position_problem,
)
from ledger.sqlite_log import SQLiteLog
from ledger.stopping import Stop
from ledger.timeutil import MICROSECOND
from projections import frequency, profile
from projections.fact import Fact, content_digest, fact_of
from projections.identity import MAX_CUSTOMERS, IdentityFact, Person
from projections.person import combine
from projections.policy import PolicyHistory
from projections.profile import Profile
from projections.violations import Violation, person_violations, violations

Progress = Callable[[int], None]


def _ignore(_: int) -> None:
    return None


def append_one(log: EventLog, document: dict[str, Any]) -> AppendOutcome:
    """Validate one event document and append it."""
    return log.append([parse_event(document)])[0]


def import_file(
    log: EventLog,
    source: IO[bytes],
    fmt: Format,
    rejects_path: Path,
    *,
    batch_size: int,
    on_progress: Progress = _ignore,
    stop: Stop | None = None,
) -> ImportSummary:
    """Import JSON Lines or CSV from ``source``; rejects go to ``rejects_path`` (refused
    before anything is read if it is ``source`` itself). With ``stop``, ends early (at the
    line in hand) once it is set."""
    check_rejects_target(source, rejects_path)
    return import_stream(
        log,
        candidates(source, fmt),
        RejectsFile(rejects_path),
        batch_size=batch_size,
        on_progress=on_progress,
        stop=stop,
    )


def replay(
    log: EventLog,
    start: Positions | None = None,
    where: ReadFilter = EVERYTHING,
    limit: int | None = None,
) -> Iterator[LogRecord]:
    """The history in log order, filtered; at most ``limit`` records. A customer filter
    follows the identity graph: the records of every identifier of the person."""
    records = _read_person(log, start, where)
    return itertools.islice(records, limit) if limit is not None else records


def person_members(
    log: EventLog,
    customer: str,
    *,
    until: datetime | None = None,
    recorded_by: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> Person:
    """The person ``customer`` belonged to at ``until`` (event time; ``None``: now), by the
    identity facts in the log (recorded by ``recorded_by``)."""
    facts = facts_in_log(log, until=until, recorded_by=recorded_by)
    return graph_of(facts, at=until, max_customers=max_customers).person(customer)


def _read_person(log: EventLog, start: Positions | None, where: ReadFilter) -> Iterator[LogRecord]:
    """``log.read`` with a customer filter widened to every member of the person, in log
    order (per partition, by offset)."""
    if where.customer is None:
        return log.read(start, where)
    members = person_members(log, where.customer).members
    if len(members) == 1:
        return log.read(start, replace(where, customer=members[0]))
    reads = [log.read(start, replace(where, customer=m)) for m in members]
    return heapq.merge(*reads, key=lambda r: (r.position.partition, r.position.offset))


@dataclass(frozen=True, slots=True)
class Repeat:
    """A later copy of an id already given: the same content (``conflict`` False: a
    re-publish), or other content (a conflict the projector parks)."""

    record: LogRecord
    first: Position
    conflict: bool


def replay_once(
    log: EventLog,
    start: Positions | None = None,
    where: ReadFilter = EVERYTHING,
    limit: int | None = None,
) -> Iterator[LogRecord | Repeat]:
    """:func:`replay`, each id once as the projections count it: on a log that may repeat
    ids (Kafka), a later copy comes as a :class:`Repeat` instead (not counted in
    ``limit``). Holds each id given so far (~150 bytes each) for the comparison."""
    records = _read_person(log, start, where)
    if log.refuses_duplicates_across_batches:
        yield from itertools.islice(records, limit) if limit is not None else records
        return
    given: dict[str, tuple[int, Position]] = {}
    count = 0
    for record in records:
        if limit is not None and count >= limit:
            return
        if record.event is None:
            count += 1
            yield record
            continue
        digest = content_digest(fact_of(record.event))
        first = given.get(record.event.id)
        if first is not None:
            yield Repeat(record, first[1], conflict=first[0] != digest)
            continue
        given[record.event.id] = (digest, record.position)
        count += 1
        yield record


@dataclass
class History:
    """One person's records up to a moment, in event-time order."""

    customer: str
    records: list[LogRecord]
    """Decoded records (each once, by event id), oldest event first."""
    undecodable: list[LogRecord]
    """The person's records that cannot be decoded (reported, never hidden)."""
    person: str | None = None
    """The person's id in the identity graph as it stood then (``None``: no graph)."""
    members: tuple[str, ...] = ()
    """Every customer id and identifier of the person then (their records are here)."""

    def facts(self) -> list[Fact]:
        return [fact_of(r.event) for r in self.records if r.event is not None]

    def profile(self) -> Profile | None:
        """The profile as it stood: the projection's own code over this history, per
        member, composed as the live answer composes the views."""
        if not self.records:
            return None
        if len(self.members) <= 1:
            return profile.replay(self.customer, self.facts())
        by_member: dict[str, list[Fact]] = {}
        for fact in self.facts():
            by_member.setdefault(fact.subject, []).append(fact)
        parts = {m: profile.replay(m, facts) for m, facts in by_member.items()}
        return combine(self.person or self.customer, parts)

    def contacts(self) -> frequency.ContactCounts:
        """Contact counts, every member's counted under the asked customer."""
        facts = self.facts()
        if len(self.members) > 1:
            facts = [dataclasses.replace(f, subject=self.customer) for f in facts]
        return frequency.replay(facts)


def history(
    log: EventLog,
    customer: str,
    *,
    until: datetime | None = None,
    recorded_by: datetime | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> History:
    """A person's history as it stood: events that *happened* by ``until`` (event time,
    inclusive) and that the ledger had *recorded* by ``recorded_by`` (append time,
    inclusive), of every identifier the identity graph gave the person then. Either may
    be left open. An event re-published with the same id counts once, as in the
    projections."""
    person = person_members(
        log, customer, until=until, recorded_by=recorded_by, max_customers=max_customers
    )
    seen: set[str] = set()
    records, undecodable = [], []
    for record in _read_members(log, person.members, until):
        if recorded_by is not None and record.recorded_at > recorded_by:
            continue
        if record.event is None:
            undecodable.append(record)
        elif record.event.id not in seen:
            seen.add(record.event.id)
            records.append(record)
    records.sort(key=lambda r: r.event.time if r.event else r.recorded_at)
    return History(customer, records, undecodable, person.id, person.members)


def _read_members(
    log: EventLog, members: Sequence[str], until: datetime | None
) -> Iterator[LogRecord]:
    for member in members:
        yield from log.read(
            None, ReadFilter(customer=member, until=until + MICROSECOND if until else None)
        )


def find_violations(
    log: EventLog,
    history: PolicyHistory,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    channel: str | None = None,
    max_customers: int = MAX_CUSTOMERS,
) -> list[Violation]:
    """Every outbound contact in ``[since, until)`` (event time) that broke the policy when
    it happened, oldest first. Each customer's whole history is read (what happened before
    ``since`` still counts toward caps and consent); an event re-published with the same
    id counts once. The embedded log is read customer by customer (memory: one customer's
    history); other logs are grouped by customer in memory first."""
    found = [
        v
        for v in _all_violations(log, history, max_customers)
        if (since is None or v.time >= since)
        and (until is None or v.time < until)
        and (channel is None or v.channel == channel)
    ]
    found.sort(key=lambda v: (v.time, v.customer, v.event_id))
    return found


def _all_violations(
    log: EventLog, history: PolicyHistory, max_customers: int
) -> Iterator[Violation]:
    """Each customer's violations; the subjects the identity graph ever joins are judged
    together, each contact with the graph as it stood when it happened (their histories
    are held until every subject of the group has been read)."""
    identity_facts = facts_in_log(log)
    group_of = _ever_joined(identity_facts)
    groups: dict[str, list[CustomerHistory]] = {}
    for customer, facts, sources in _customer_histories(log):
        group = group_of.get(customer)
        if group is None:
            yield from violations(history, customer, facts, sources)
        else:
            groups.setdefault(group, []).append((customer, facts, sources))
    by_group: dict[str, list[IdentityFact]] = {}
    for fact in identity_facts:
        by_group.setdefault(group_of[fact.customer], []).append(fact)
    for group, members in sorted(groups.items()):
        yield from person_violations(
            history,
            [f for _, facts, _ in members for f in facts],
            by_group.get(group, []),
            ChainMap(*(dict(sources) for _, _, sources in members)),
            max_customers=max_customers,
        )


def _ever_joined(facts: Sequence[IdentityFact]) -> dict[str, str]:
    """Every key an identity fact ever names -> a name of the group of keys that facts
    ever joined (union-find over every link and merge, whatever their time)."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for fact in facts:
        a, b = root(fact.customer), root(fact.other)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {key: root(key) for key in list(parent)}


class _Sources(Mapping[str, str]):
    """Event id -> the event's ``source``, read from its stored bytes when asked (only a
    violation's source is ever asked for)."""

    def __init__(self, documents: dict[str, bytes]) -> None:
        self.documents = documents

    def __getitem__(self, event_id: str) -> str:
        source: str = orjson.loads(self.documents[event_id])["source"]
        return source

    def __iter__(self) -> Iterator[str]:
        return iter(self.documents)

    def __len__(self) -> int:
        return len(self.documents)


CustomerHistory = tuple[str, list[Fact], Mapping[str, str]]


def _customer_histories(log: EventLog) -> Iterator[CustomerHistory]:
    """Each customer's facts (each id once) and the sources of their events."""
    if isinstance(log, SQLiteLog):
        # One customer at a time, in the customer index's order; the stored bytes were
        # validated at append time (anything else is validated now; undecodable: skipped,
        # as on the other path).
        for customer, stored in itertools.groupby(
            log.read_stored_by_customer(), key=lambda s: s.subject
        ):
            facts, documents = [], {}
            for row in stored:
                item = item_of_stored(row)
                if item.fact is not None:
                    facts.append(item.fact)
                    documents[item.fact.id] = row.document
            yield customer, facts, _Sources(documents)
        return
    by_customer: dict[str, dict[str, Fact]] = {}
    sources: dict[str, str] = {}
    for record in log.read():
        event = record.event
        if event is None:
            continue
        known = by_customer.setdefault(event.subject, {})
        if event.id not in known:
            known[event.id] = fact_of(event)
            sources[event.id] = event.source
    for customer, by_id in by_customer.items():
        yield customer, list(by_id.values()), sources


def _generated_candidates(
    customers: int, days: int, seed: int, start: datetime | None, identities: float = 0.0
) -> Iterator[Line]:
    history = generated(customers, days, seed, start, identities=identities)
    for number, document in enumerate(history, start=1):
        try:
            yield number, parse_event(document), 1
        except InvalidEvent as exc:  # a generator bug; keep it visible, never drop it
            yield number, Rejection(number, exc.reasons, orjson.dumps(document).decode()), 1


def generate_into(
    log: EventLog,
    *,
    customers: int,
    days: int,
    seed: int,
    start: datetime | None,
    rejects_path: Path,
    batch_size: int,
    on_progress: Progress = _ignore,
    identities: float = 0.0,
) -> ImportSummary:
    """Generate a synthetic history straight into ``log`` (validated like an import);
    ``identities``: the share of customers known to several systems (issue 12)."""
    return import_stream(
        log,
        _generated_candidates(customers, days, seed, start, identities),
        RejectsFile(rejects_path),
        batch_size=batch_size,
        on_progress=on_progress,
    )


def write_generated(
    out: IO[bytes],
    *,
    customers: int,
    days: int,
    seed: int,
    start: datetime | None,
    on_progress: Progress = _ignore,
    identities: float = 0.0,
) -> int:
    """Write a synthetic history as JSON Lines; returns the number of events."""
    count = 0
    for document in generated(customers, days, seed, start, identities=identities):
        out.write(orjson.dumps(document))
        out.write(b"\n")
        count += 1
        on_progress(1)
    return count


@dataclass
class LogOverview:
    """What is in a log: counts, span, and the undecodable records, if any."""

    events: int = 0
    customers: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    outbound_by_channel: Counter[str] = field(default_factory=Counter)
    first_time: datetime | None = None
    last_time: datetime | None = None
    late: int = 0
    """Events whose time is earlier than that of an event before them in the log."""
    undecodable: list[LogRecord] = field(default_factory=list)
    busiest_customer: str | None = None


def overview(log: EventLog) -> LogOverview:
    """Scan the log once and summarise it (the demo's report until the projections land)."""
    result = LogOverview()
    per_customer: Counter[str] = Counter()
    latest: datetime | None = None
    for record in log.read():
        event = record.event
        if event is None:
            result.undecodable.append(record)
            continue
        result.events += 1
        per_customer[event.subject] += 1
        result.by_type[event.type] += 1
        channel = getattr(event.data, "channel", None)
        if getattr(event.data, "direction", None) == "outbound" and channel is not None:
            result.outbound_by_channel[str(channel)] += 1
        if result.first_time is None or event.time < result.first_time:
            result.first_time = event.time
        if result.last_time is None or event.time > result.last_time:
            result.last_time = event.time
        if latest is not None and event.time < latest:
            result.late += 1
        latest = event.time if latest is None or event.time > latest else latest
    result.customers = len(per_customer)
    if per_customer:
        result.busiest_customer = per_customer.most_common(1)[0][0]
    return result


@dataclass
class DemoReport:
    generated: ImportSummary
    overview: LogOverview
    sample: list[LogRecord]
    relationship: RelationshipReport | None = None
    violations: list[Violation] = field(default_factory=list)
    pressure: PressureReport | None = None


def demo(
    log: EventLog,
    store: ViewStore,
    *,
    customers: int,
    days: int,
    seed: int,
    rejects_path: Path,
    batch_size: int,
    policies: PolicyHistory,
    on_progress: Progress = _ignore,
    identities: float = 0.0,
) -> DemoReport:
    """Generate a history into ``log``, project it into ``store``, and summarise both, with
    the contact policy's violations and the contact pressure of the last 30 days."""
    summary = generate_into(
        log,
        customers=customers,
        days=days,
        seed=seed,
        start=None,
        rejects_path=rejects_path,
        batch_size=batch_size,
        on_progress=on_progress,
        identities=identities,
    )
    seen = overview(log)
    sample: list[LogRecord] = []
    if seen.busiest_customer is not None:
        sample = list(replay(log, where=ReadFilter(customer=seen.busiest_customer), limit=15))
    Projector(log, store).catch_up()
    if seen.last_time is None:
        return DemoReport(summary, seen, sample)
    relationship = relationship_report(store, seen.last_time)
    found = find_violations(log, policies)
    loaded = policies.at(seen.last_time) or policies.current()
    load = pressure(store, loaded, seen.last_time, timedelta(days=30), found)
    return DemoReport(summary, seen, sample, relationship, found, load)


@dataclass
class PartitionStatus:
    """Where the views stand on one log partition."""

    partition: int
    position: int
    """The next offset the views will read."""
    end: int
    """The offset the next appended record will get."""
    newest_applied: datetime | None
    newest_in_log: datetime | None
    rate: float | None
    """Records per second of the last committed batch."""
    committed_at: datetime | None
    oldest_unprojected: datetime | None = None
    """When the first record the views have not applied was recorded (None: none)."""
    error: str | None = None
    """Why the views cannot go on from ``position`` (past the end of the partition, or
    records deleted before it: :func:`ledger.log.position_problem`), if they cannot."""

    @property
    def lag_events(self) -> int:
        return max(self.end - self.position, 0)

    @property
    def lag_seconds(self) -> float | None:
        """Event time between the newest event in the log and the newest applied one."""
        if self.newest_in_log is None:
            return None
        if self.newest_applied is None:
            return None if self.lag_events == 0 else float("inf")
        return max((self.newest_in_log - self.newest_applied).total_seconds(), 0.0)


@dataclass
class ProjectionStatus:
    partitions: list[PartitionStatus]
    rows: dict[str, int]
    last_error: DeadLetter | None
    replaced: str | None = None
    """Why the views cannot go on with this log at all (it is not the one they were built
    from: :class:`~ledger.errors.LogReplaced`), if so."""
    misplaced: dict[int, Misplaced] = field(default_factory=dict)
    """Per partition, applied records outside their key's murmur2 partition (Kafka)."""

    cleartext: dict[int, Cleartext] = field(default_factory=dict)
    """Per partition, applied records holding personal data in clear (issue 10)."""

    @property
    def cleartext_records(self) -> int:
        return sum(c.count for c in self.cleartext.values())

    @property
    def misplaced_records(self) -> int:
        return sum(m.count for m in self.misplaced.values())

    @property
    def unprojected(self) -> int:
        """Records a decision may have to fold itself (see :mod:`application.fresh`)."""
        return sum(p.lag_events for p in self.partitions)

    @property
    def oldest_unprojected(self) -> datetime | None:
        found = [p.oldest_unprojected for p in self.partitions if p.oldest_unprojected]
        return min(found, default=None)


def _oldest_unprojected(log: EventLog, partition: int, position: int, end: int) -> datetime | None:
    """When the first record past the views' position was recorded."""
    if position >= end:
        return None
    record = log.record_at(Position(partition, position))
    return None if record is None else record.recorded_at


def projection_status(log: EventLog, store: ViewStore) -> ProjectionStatus:
    """Position, lag in events and in event time, speed and last error of the views."""
    numbers = log.partitions()
    bounds = log.bounds(numbers)
    ends = {p: end for p, (_, end) in bounds.items()}
    positions = store.positions(numbers)
    first = log.first_offset
    problems = {
        p: problem
        for p, position in positions.items()
        if (problem := position_problem(log.name, p, position, *bounds[p])) is not None
    }
    newest_in_log: dict[int, datetime] = {}
    tail = {p: max(end - 1, bounds[p][0]) for p, end in ends.items() if end > bounds[p][0]}
    for record in log.read(tail):
        if record.event is not None:
            newest_in_log[record.position.partition] = record.event.time
    progress = store.progress()
    partitions = [
        PartitionStatus(
            partition=p,
            position=positions.get(p, first),
            end=end,
            newest_applied=progress[p][0] if p in progress else None,
            newest_in_log=newest_in_log.get(p),
            rate=progress[p][2] if p in progress else None,
            committed_at=progress[p][1] if p in progress else None,
            oldest_unprojected=_oldest_unprojected(log, p, positions.get(p, first), end),
            error=str(problems[p]) if p in problems else None,
        )
        for p, end in sorted(ends.items())
    ]
    current, recorded = log.identity(), store.log_identity()
    replaced = (
        str(LogReplaced(log=log.name, recorded=recorded, current=current))
        if current is not None and recorded is not None and current != recorded
        else None
    )
    return ProjectionStatus(
        partitions,
        store.counts(),
        store.last_error(),
        replaced,
        store.misplaced(),
        store.cleartext(),
    )


@dataclass(frozen=True, slots=True)
class Conflict:
    """Both copies of a conflicting id, as the log holds them (``None``: not found)."""

    applied: LogRecord | None
    """The copy the views applied (the first one read)."""
    parked: LogRecord | None
    differs: list[str]
    """The attributes whose values differ (``subject``: another customer; ``data``...)."""


def conflict_of(log: EventLog, letter: DeadLetter) -> Conflict | None:
    """Both versions of a parked conflicting duplicate, read from the log at their
    positions (the log keeps every record), and what differs between them."""
    if letter.first is None:
        return None
    applied = log.record_at(Position(*letter.first))
    parked = log.record_at(Position(letter.partition, letter.offset))
    differs: list[str] = []
    if applied is not None and parked is not None and applied.event and parked.event:
        a, b = event_to_dict(applied.event), event_to_dict(parked.event)
        differs = [k for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)]
    return Conflict(applied, parked, differs)


MISPLACED_EXPLANATION = (
    "records sit outside the partition Kafka's default partitioner (murmur2 of the key, the "
    "customer id) gives their key: a producer with another partitioner wrote them. They are "
    "applied, and per-customer reads (replay --customer, history, --as-of, decisions) look in "
    "every partition, so answers stay right; but one customer's records no longer keep one "
    "order across partitions."
)
CLEARTEXT_EXPLANATION = (
    "records hold personal data (name, e-mail, phone, consent recipient) in clear: a "
    "publisher that does not encrypt, or a log written before encryption. The log keeps them "
    "for ever and erasure cannot reach them; fix the publisher (publish through ledger "
    "append/import or the library), and copy an old log (ledger copy): docs/privacy.md"
)
MISPLACED_FIX = (
    "partition by murmur2 of the key: librdkafka clients (confluent-kafka, "
    "node-rdkafka, ...) partitioner=murmur2_random; Java: the default partitioner; Go: "
    "franz-go's default (kgo.StickyKeyPartitioner(nil)), sarama needs "
    "sarama.NewCustomHashPartitioner(murmur2) (its default is FNV-1a)"
)
