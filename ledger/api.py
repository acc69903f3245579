"""The ledger as a Python library for services: append touchpoints, and ask before contacting.

    from ledger.api import Ledger

    with Ledger() as ledger:                      # settings from LEDGER_* variables
        decision = ledger.may_contact("C0000042", "sms", "marketing")
        if decision.allowed:
            ...
        else:
            print([r.message for r in decision.reasons], decision.earliest)

Part of the application layer: it composes the log, the view store and the contact policy.
Decisions read the views (run a projector to keep them current); they never rescan history.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Any

from ledger.app import open_log, open_store
from ledger.codec import parse_event
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
    decide,
    default_history,
    load_policies,
)
from projections.store import ViewStore

DECISION_CHUNK = 500
"""Decisions whose profiles and contact slots are read together in a batch."""

DECISION_SOURCE = "touchpoint-ledger/may-contact"


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
    (projections/default_policy.toml)."""
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
        self, customer: str, channel: str, purpose: str, at: datetime | None = None
    ) -> Decision:
        """May ``customer`` be contacted on ``channel`` for ``purpose`` at ``at`` (now)?"""
        return next(self.may_contact_many([(customer, channel, purpose)], at))

    def may_contact_many(
        self, requests: Iterable[tuple[str, str, str]], at: datetime | None = None
    ) -> Iterator[Decision]:
        """Decisions for ``(customer, channel, purpose)`` requests, in order; profiles and
        contact slots are read :data:`DECISION_CHUNK` requests at a time."""
        moment = at or datetime.now(UTC)
        pending: list[tuple[str, str, str]] = []
        for request in requests:
            pending.append(request)
            if len(pending) >= DECISION_CHUNK:
                yield from self._decide(pending, moment)
                pending = []
        if pending:
            yield from self._decide(pending, moment)

    def _decide(self, requests: list[tuple[str, str, str]], at: datetime) -> list[Decision]:
        customers = sorted({customer for customer, _, _ in requests})
        loaded = self.policies.at(at)
        if loaded is None:
            raise PolicyError("policy", [f"no policy version in force at {at.isoformat()}"])
        longest = loaded.policy.longest_window()
        window = Window.rolling(at + timedelta(days=32), longest + timedelta(days=32))
        profiles = self.store.load_profiles(customers)
        slots = self.store.contact_slots(customers, window)
        return [
            decide(
                loaded,
                Context(profiles.get(customer), slots[customer]),
                customer=customer,
                channel=channel,
                purpose=purpose,
                at=at,
            )
            for customer, channel, purpose in requests
        ]

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
