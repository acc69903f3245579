"""The ledger as a Python library for services: append touchpoints, and ask before contacting.

    from application.api import Ledger

    with Ledger() as ledger:                      # settings from LEDGER_* variables
        decision = ledger.may_contact("C0000042", "sms", "marketing")
        if decision.allowed:
            ...
        else:
            print([r.message for r in decision.reasons], decision.earliest)

Part of the application layer: it composes the log, the view store and the contact policy.
Decisions read the views plus the customer's records the views do not hold yet (see
:mod:`application.fresh`), so they see everything recorded before the question; they never
rescan history. Decisions recorded with ``record=True`` are made and appended one chunk
at a time under a lock (see :meth:`Ledger.may_contact_many`).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from application.file_lock import beside_log, held
from application.fresh import (
    CustomerNow,
    blind,
    compose,
    customers_now,
    read_views,
)
from application.identity import people
from application.policy_files import default_history, load_policies
from application.privacy import stored_customer_ids
from application.wiring import known_partitions, open_log, open_store
from consumers.store import ViewStore
from ledger.codec import parse_event
from ledger.errors import LogUnavailable
from ledger.events import Touchpoint
from ledger.log import AppendOutcome, EventLog
from ledger.settings import Settings
from projections.frequency import Window
from projections.policy import (
    Context,
    Decision,
    LoadedPolicy,
    PolicyError,
    PolicyHistory,
    Reservation,
    decide,
    parse_duration,
    stale_decision,
)

DECISION_CHUNK = 500
"""Decisions whose profiles and contact slots are read together in a batch."""

DECISION_SOURCE = "touchpoint-ledger/may-contact"

PURPOSES = ("marketing", "transactional", "service")


def decision_event(decision: Decision, *, requested_by: str | None = None) -> Touchpoint:
    """The record of a decision: ``contact.allowed`` or ``contact.blocked`` for its customer
    at its time, with the policy version and hash, and every reason of a denial."""
    data: dict[str, Any] = {
        "channel": decision.channel,
        "purpose": decision.purpose,
        "policy_version": decision.policy_version,
        "policy_sha256": decision.policy_sha256,
        "requested_by": requested_by,
    }
    if not decision.allowed:
        data["reasons"] = [
            {"rule": r.rule, "message": r.message, "until": r.until and r.until.isoformat()}
            for r in decision.reasons
        ]
        data["earliest"] = decision.earliest and decision.earliest.isoformat()
    return parse_event(
        {
            "id": str(uuid.uuid4()),
            "source": DECISION_SOURCE,
            "type": "contact.allowed" if decision.allowed else "contact.blocked",
            "subject": decision.customer,
            "time": decision.at.isoformat(),
            "data": {k: v for k, v in data.items() if v is not None},
        }
    )


def policy_history(settings: Settings) -> PolicyHistory:
    """``LEDGER_POLICY`` (a file, or a folder of versions with ``effective_from``) if set,
    else ``policy.toml`` in the data folder if present, else the built-in default
    (application/default_policy.toml)."""
    if settings.policy is not None:
        return load_policies(settings.policy)
    local = settings.data_dir / "policy.toml"
    return load_policies(local) if local.exists() else default_history()


class Ledger:
    """One ledger: its log, its views and the contact policy in force."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        policy: PolicyHistory | LoadedPolicy | Path | None = None,
    ) -> None:
        self.settings = settings or Settings()
        if isinstance(policy, Path):
            policy = load_policies(policy)
        elif isinstance(policy, LoadedPolicy):
            policy = PolicyHistory([policy])
        self.policies = policy or policy_history(self.settings)
        self._log: EventLog | None = None
        self._store: ViewStore | None = None
        self._stored_id = stored_customer_ids(self.settings)
        """The id the ledger stores for a customer or identifier (normalised; a phone
        number or e-mail address hashed when the ledger encrypts)."""
        self._partitions: list[int] = []
        """The log's partitions, read once (Kafka: a metadata request per decision cost
        more than the decision)."""

    @property
    def log(self) -> EventLog:
        if self._log is None:
            self._log = open_log(self.settings)
        return self._log

    @property
    def store(self) -> ViewStore:
        if self._store is None:
            self._store = open_store(self.settings)
        return self._store

    def append(self, events: Sequence[Touchpoint]) -> list[AppendOutcome]:
        """Append validated touchpoints (see :func:`ledger.parse_event`)."""
        return self.log.append(events)

    def record(
        self, decisions: Iterable[Decision], *, requested_by: str | None = None
    ) -> list[AppendOutcome]:
        """Append decisions to the log as ``contact.allowed`` / ``contact.blocked`` events,
        so that an auditor sees what was checked before a campaign, and why."""
        return self.log.append([decision_event(d, requested_by=requested_by) for d in decisions])

    def may_contact(
        self,
        customer: str,
        channel: str,
        purpose: str,
        at: datetime | None = None,
        *,
        record: bool = False,
        requested_by: str | None = None,
    ) -> Decision:
        """May ``customer`` be contacted on ``channel`` for ``purpose`` at ``at`` (now)?
        With ``record``, the decision is appended to the log too (see
        :meth:`may_contact_many`)."""
        requests = [(customer, channel, purpose)]
        return next(self.may_contact_many(requests, at, record=record, requested_by=requested_by))

    def may_contact_many(
        self,
        requests: Iterable[tuple[str, str, str]],
        at: datetime | None = None,
        *,
        record: bool = False,
        requested_by: str | None = None,
    ) -> Iterator[Decision]:
        """Decisions for ``(customer, channel, purpose)`` requests, in order, read
        :data:`DECISION_CHUNK` requests at a time. ``customer`` is a customer id or any
        identifier of the person (``phone:+90 555 …``: normalised); the caps count the
        contacts to every identifier of the person (the identity graph).

        With ``record``, each chunk is decided and appended to the log (``contact.allowed``
        / ``contact.blocked``) while holding the decision lock, so that concurrent askers
        see each other's recorded decisions: an allowed one holds a slot under the caps
        for its purpose's ``reserve_for`` (a reservation), and a burst of asks cannot all
        pass a cap only one of them fits."""
        moment = at or datetime.now(UTC)
        pending: list[tuple[str, str, str]] = []
        for customer, channel, purpose in requests:
            # Any identifier of the person may be asked about, written in any usual way,
            # looked up as appends store it (a phone number or e-mail address: hashed).
            pending.append((self._stored_id(customer), channel, purpose))
            if len(pending) >= DECISION_CHUNK:
                yield from self._chunk(pending, moment, record, requested_by)
                pending = []
        if pending:
            yield from self._chunk(pending, moment, record, requested_by)

    def _chunk(
        self,
        requests: list[tuple[str, str, str]],
        at: datetime,
        record: bool,
        requested_by: str | None,
    ) -> list[Decision]:
        if not record:
            return self._decide(requests, at, reserve=False)
        with held(self._lock_path()):  # decisions made and appended one asker at a time
            decisions = self._decide(requests, at, reserve=True)
            self.record(decisions, requested_by=requested_by)
        return decisions

    def _lock_path(self) -> Path:
        return beside_log(self.settings, "decisions")

    def _decide(
        self, requests: list[tuple[str, str, str]], at: datetime, *, reserve: bool
    ) -> list[Decision]:
        """Decide each request over the views plus the customer's unprojected records;
        with ``reserve``, an allowed decision reserves its slot for the requests after it."""
        customers = sorted({customer for customer, _, _ in requests})
        loaded = self.policies.at(at)
        if loaded is None:
            raise PolicyError("policy", [f"no policy version in force at {at.isoformat()}"])
        rules = loaded.policy.freshness
        longest = loaded.policy.longest_window()
        window = Window.rolling(at + timedelta(days=32), longest + timedelta(days=32))
        limit_people = self.settings.identity_max_customers
        try:
            log = self.log
            partitions = self._partitions or log.partitions()
            self._partitions = partitions
        except LogUnavailable as exc:
            # Every identifier of each person is asked about too: caps count them all.
            persons = people(self.store, customers, max_customers=limit_people)
            members = sorted({m for p in persons.values() for m in p.members})
            snapshot = read_views(self.store, known_partitions(self.settings), members, window)
            parts = {m: blind(snapshot, m, f"the log cannot be read: {exc}") for m in members}
        else:
            persons = people(self.store, customers, log, max_customers=limit_people)
            members = sorted({m for p in persons.values() for m in p.members})
            snapshot = read_views(self.store, partitions, members, window)
            limit = max(rules.of(p).max_unprojected for p in PURPOSES)
            hold = max(parse_duration(rules.of(p).reserve_for or "1m") for p in PURPOSES)
            parts = customers_now(
                log,
                self.store,
                snapshot,
                members,
                window,
                limit=limit,
                kept_since=at - hold,
                deciding=True,
            )
        now = {
            c: compose(c, persons[c], {m: parts[m] for m in persons[c].members}) for c in customers
        }
        held: dict[str, list[Reservation]] = {}
        for c in customers:  # one person asked by two identifiers: one set of reservations
            now[c].reservations = held.setdefault(persons[c].id, now[c].reservations)
        decisions = []
        for customer, channel, purpose in requests:
            decision = self._one(loaded, now[customer], channel, purpose, at)
            if reserve and decision.allowed:
                now[customer].reservations.append((at, channel, purpose))
            decisions.append(decision)
        return decisions

    @staticmethod
    def _one(
        loaded: LoadedPolicy, now: CustomerNow, channel: str, purpose: str, at: datetime
    ) -> Decision:
        freshness = now.freshness
        assert freshness is not None
        context = Context(now.profile, now.slots, now.reservations)
        rules = loaded.policy.freshness.of(purpose)
        if freshness.warning is None and freshness.folded > rules.max_unprojected:
            freshness = replace(
                freshness,
                warning=f"more than {rules.max_unprojected} of its records are not in the "
                "views yet",
            )
            context = Context(now.view_profile, now.view_slots, now.reservations)
        customer = now.customer
        if freshness.warning is not None:
            return stale_decision(
                loaded,
                context,
                freshness,
                customer=customer,
                channel=channel,
                purpose=purpose,
                at=at,
            )
        decision = decide(
            loaded, context, customer=customer, channel=channel, purpose=purpose, at=at
        )
        return replace(decision, freshness=freshness)

    def close(self) -> None:
        if self._log is not None:
            self._log.close()
        if self._store is not None:
            self._store.close()

    def __enter__(self) -> Ledger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
