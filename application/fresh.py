"""Read-your-writes: the views plus a customer's records the projector has not applied yet.

A decision (and a fresh ``profile`` or ``contacts`` answer) reads the views and their
positions, then the customer's records past those positions up to the end of the log,
and folds them with the projections' own ``apply`` into copies of the customer's profile
and contact slots (the views are never changed here). So it reflects every event of the
customer recorded before the question was asked, however far behind the projector is.

Part of the application layer: it composes a log, a view store and the projections.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from application.identity import people
from consumers.folding import item_of, item_of_stored
from consumers.store import ViewStore
from ledger.errors import LogUnavailable
from ledger.events import NOT_TOUCHPOINTS
from ledger.identifiers import PERSONAL_KINDS, kind_of
from ledger.log import CustomerTail, EventLog, LogRecord, StoredEvent
from projections import frequency, profile
from projections.fact import Fact, fact_from_stored
from projections.frequency import Window
from projections.identity import MAX_CUSTOMERS, Person
from projections.person import combine
from projections.policy import Freshness, Reservation
from projections.profile import Profile

RESERVATION_TYPES = frozenset({"contact.allowed"})


@dataclass
class ViewSnapshot:
    """Profiles and contact slots of some customers, and the positions they are as of
    (read so that no projector commit fell in between)."""

    positions: dict[int, int]
    profiles: dict[str, Profile]
    slots: dict[str, list[tuple[int, str, str, str, int]]]


def read_views(
    store: ViewStore, partitions: Sequence[int], customers: Sequence[str], window: Window
) -> ViewSnapshot:
    """The views of ``customers`` and the positions they are as of, read in one
    transaction (rows of one commit with positions of another would fold a record twice,
    or not at all)."""
    return ViewSnapshot(*store.snapshot(partitions, customers, window))


@dataclass
class CustomerNow:
    """One customer as of now: the views, and the views plus what the views lack."""

    customer: str
    view_profile: Profile | None
    view_slots: list[tuple[int, str, str, str, int]]
    profile: Profile | None = None
    slots: list[tuple[int, str, str, str, int]] = field(default_factory=list)
    reservations: list[Reservation] = field(default_factory=list)
    freshness: Freshness | None = None


def customers_now(
    log: EventLog,
    store: ViewStore,
    snapshot: ViewSnapshot,
    customers: Sequence[str],
    window: Window,
    *,
    limit: int,
    kept_since: datetime | None = None,
    deciding: bool = False,
) -> dict[str, CustomerNow]:
    """Each customer's views plus their records past the views' positions (at most
    ``limit``; beyond it, or if the log cannot be read, ``freshness.warning`` says so and
    the answer is the views alone). Recorded ``contact.allowed`` decisions become
    reservations, from the tail and (embedded log) since ``kept_since``."""
    try:
        tails = log.customers_tail(
            customers,
            snapshot.positions,
            limit=limit,
            kept_types=RESERVATION_TYPES if kept_since else frozenset(),
            kept_since=kept_since,
        )
    except LogUnavailable as exc:
        return {c: blind(snapshot, c, f"the log cannot be read: {exc}") for c in customers}
    dedupe = not log.refuses_duplicates_across_batches
    found = {}
    for customer, tail in tails.items():
        now = CustomerNow(
            customer, snapshot.profiles.get(customer), list(snapshot.slots.get(customer, []))
        )
        _fold(now, store, snapshot.positions, tail, window, dedupe=dedupe, deciding=deciding)
        if not tail.complete:
            now.profile, now.slots = now.view_profile, now.view_slots
            warning = f"more than {limit} of its records are not in the views yet"
            now.freshness = Freshness(tail.ends, snapshot.positions, 0, 0, warning)
        found[customer] = now
    return found


def blind(snapshot: ViewSnapshot, customer: str, warning: str) -> CustomerNow:
    """The customer as the views alone hold them, with why nothing more is known."""
    view_profile, view_slots = snapshot.profiles.get(customer), snapshot.slots.get(customer, [])
    return CustomerNow(
        customer,
        view_profile,
        list(view_slots),
        view_profile,
        list(view_slots),
        freshness=Freshness({}, snapshot.positions, 0, 0, warning),
    )


def _fact(record: StoredEvent | LogRecord) -> Fact | None:
    """The fact of a tail record (``None``: undecodable; the projector parks it)."""
    if isinstance(record, StoredEvent):
        try:
            return fact_from_stored(record)  # the fast path, as in the projector
        except Exception:  # whatever broke, the validating path says what
            return item_of_stored(record).fact
    return item_of(record).fact


DECIDING_TYPES = frozenset(
    {
        "consent.given",
        "consent.withdrawn",
        "complaint.opened",
        "complaint.resolved",
        "customer.details",
    }
)
"""The types whose part of the profile a decision reads (consent, complaints, time zone);
contacts count through their contact slots whatever their type."""


def _fold(
    now: CustomerNow,
    store: ViewStore,
    positions: dict[int, int],
    tail: CustomerTail,
    window: Window,
    *,
    dedupe: bool,
    deciding: bool,
) -> None:
    """Fold the tail into copies of the customer's profile and slots (``deciding``: only
    the parts of the profile a decision reads)."""
    decoded = [(record.position, _fact(record)) for record in tail.records]
    facts = [(position, fact) for position, fact in decoded if fact is not None]
    unprojected = [(p, f) for p, f in facts if p.offset >= positions.get(p.partition, -1)]
    seen: set[str] = store.applied([f.id for _, f in unprojected]) if dedupe else set()
    state = None if now.view_profile is None else Profile.from_json(now.view_profile.to_json())
    slots = list(now.view_slots)
    folded = 0
    for position, fact in facts:
        if fact.id in seen:
            continue  # a duplicate the views (or this tail) already hold
        seen.add(fact.id)
        if fact.type in RESERVATION_TYPES:
            data = fact.data
            now.reservations.append((fact.time, str(data["channel"]), str(data["purpose"])))
        if position.offset < positions.get(position.partition, -1):
            continue  # a reservation from before the views' position: nothing to fold
        folded += 1
        if fact.type in NOT_TOUCHPOINTS:
            continue  # a check or an identity fact: no profile, no contact (as the projector)
        if not deciding or fact.type in DECIDING_TYPES:
            state = state or Profile(customer=fact.subject)
            profile.apply(state, fact)
        key = frequency.contact_key(fact)
        if key is not None and window.start <= key[4] < window.end:
            slots.append((key[4], key[1], key[2], key[3], 1))
    now.profile, now.slots = state, slots
    reserved = len(now.reservations)
    now.freshness = Freshness(tail.ends, positions, folded, reserved)


FRESH_LIMIT = 1_000_000
"""The most unprojected records of one customer a fresh ``profile``/``contacts`` folds."""


def customer_fresh(
    log: EventLog,
    store: ViewStore,
    customer: str,
    window: Window,
    *,
    limit: int = FRESH_LIMIT,
    known_partitions: Sequence[int] = (0,),
    max_customers: int = MAX_CUSTOMERS,
) -> CustomerNow:
    """One person's profile and contact slots in ``window`` as of the end of the log
    (the views, plus what they lack), for ``customer`` or any identifier of theirs (every
    member of the identity graph's person, composed); if the log cannot be read, the
    views alone (as of their positions on ``known_partitions``), with a warning in
    ``freshness``."""
    try:
        partitions = log.partitions()
    except LogUnavailable as exc:
        person = people(store, [customer], max_customers=max_customers)[customer]
        snapshot = read_views(store, known_partitions, person.members, window)
        parts = {m: blind(snapshot, m, f"the log cannot be read: {exc}") for m in person.members}
        return compose(customer, person, parts)
    person = people(store, [customer], log, max_customers=max_customers)[customer]
    snapshot = read_views(store, partitions, person.members, window)
    parts = customers_now(log, store, snapshot, person.members, window, limit=limit)
    return compose(customer, person, parts)


def customer_in_views(
    store: ViewStore,
    partitions: Sequence[int],
    customer: str,
    window: Window,
    *,
    max_customers: int = MAX_CUSTOMERS,
) -> CustomerNow:
    """One person as the views alone hold them (``--no-fresh``)."""
    person = people(store, [customer], max_customers=max_customers)[customer]
    snapshot = read_views(store, partitions, person.members, window)
    warning = "not checked against the log (--no-fresh)"
    return compose(customer, person, {m: blind(snapshot, m, warning) for m in person.members})


def compose(asked: str, person: Person, parts: Mapping[str, CustomerNow]) -> CustomerNow:
    """The person of ``asked`` from their members' partial results: profiles composed
    (:func:`projections.person.combine`), contact slots and reservations together (caps
    count the contacts to every identifier), freshness summed. Consent stays with its
    recipient: asked by a phone number or address with its own consent record on a
    channel, that record decides the channel; otherwise the person's consent is derived
    from their recipients' records."""
    if len(parts) == 1:
        only = next(iter(parts.values()))
        return only if only.customer == asked else replace(only, customer=asked)
    members = sorted(parts)
    profiles = {m: p.profile for m in members if (p := parts[m]).profile is not None}
    views = {m: p.view_profile for m in members if (p := parts[m]).view_profile is not None}
    profile, view_profile = combine(person.id, profiles), combine(person.id, views)
    own = profiles.get(asked)
    if profile is not None and own is not None and kind_of(asked) in PERSONAL_KINDS:
        profile.state["consent"].update(own.state["consent"])
    freshness = [p.freshness for m in members if (p := parts[m]).freshness is not None]
    return CustomerNow(
        asked,
        view_profile,
        [slot for m in members for slot in parts[m].view_slots],
        profile,
        sorted(slot for m in members for slot in parts[m].slots),
        [r for m in members for r in parts[m].reservations],
        _sum_freshness(freshness) if freshness else None,
    )


def _sum_freshness(parts: Sequence[Freshness]) -> Freshness:
    ends: dict[int, int] = {}
    for part in parts:
        for partition, offset in part.log_positions.items():
            ends[partition] = max(offset, ends.get(partition, offset))
    warnings = [p.warning for p in parts if p.warning is not None]
    return Freshness(
        ends,
        parts[0].view_positions,
        sum(p.folded for p in parts),
        sum(p.reservations for p in parts),
        warnings[0] if warnings else None,
    )
