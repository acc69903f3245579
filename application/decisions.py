"""The contact-policy use cases: may we contact (one customer, or a campaign's list), the
violations of the policy, the contact pressure, and the policy in force."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

from application import service
from application.api import Ledger, policy_history
from application.policy_files import load_policies, parse_requests
from application.pressure import PressureReport, pressure
from application.privacy import stored_customer_id, stored_customer_ids
from application.wiring import open_log, open_store
from ledger.settings import Settings
from projections.policy import Decision, LoadedPolicy, PolicyHistory
from projections.violations import Violation


def may_contact(
    settings: Settings,
    customer: str,
    channel: str,
    purpose: str,
    moment: datetime,
    *,
    policy_file: Path | None,
    record: bool,
    requested_by: str | None,
) -> Decision:
    """The decision for one contact (``record``: also appended to the log)."""
    customer = stored_customer_id(settings, customer)  # a phone or e-mail: hashed
    with Ledger(settings, policy=policy_file) as ledger:
        return ledger.may_contact(
            customer, channel, purpose, moment, record=record, requested_by=requested_by
        )


def may_contact_batch(
    settings: Settings,
    lines: IO[bytes],
    moment: datetime,
    *,
    policy_file: Path | None,
    record: bool,
    requested_by: str | None,
    on_unreadable: Callable[[int, str], None],
) -> Iterator[Decision]:
    """A decision per line of a CSV (customer,channel,purpose) or JSON Lines campaign
    list, in order; an unreadable line goes to ``on_unreadable(number, reason)``."""

    stored = stored_customer_ids(settings)  # phones and e-mail addresses: hashed

    def requests() -> Iterator[tuple[str, str, str]]:
        for number, request in parse_requests(lines):
            if isinstance(request, str):
                on_unreadable(number, request)
                continue
            customer, channel, purpose = request
            yield stored(customer), channel, purpose

    with Ledger(settings, policy=policy_file) as ledger:
        yield from ledger.may_contact_many(
            requests(), moment, record=record, requested_by=requested_by
        )


def policies(settings: Settings, policy_file: Path | None = None) -> PolicyHistory:
    """The policy versions of ``policy_file`` if given, else those in force (see
    :func:`application.api.policy_history`)."""
    return load_policies(policy_file) if policy_file else policy_history(settings)


def policy_dict(history: PolicyHistory) -> dict[str, Any]:
    """The policy in force and its versions, for machines (``ledger policy show --json``)."""
    loaded = history.current()
    return {
        "source": loaded.source,
        "sha256": loaded.sha256,
        **loaded.policy.model_dump(),
        "history": [
            {"version": v.version, "effective_from": v.policy.effective_from}
            for v in history.versions
        ],
    }


def rules_broken(found: Iterable[Violation]) -> Counter[str]:
    """How many violations broke each rule (a violation counts once per rule)."""
    return Counter(rule for v in found for rule in {r.rule for r in v.reasons})


@dataclass(frozen=True)
class ViolationsAnswer:
    """Every outbound contact that broke the policy (versions ``history``) when it happened."""

    history: PolicyHistory
    found: list[Violation]


def violations(
    settings: Settings,
    *,
    policy_file: Path | None,
    since: datetime | None,
    until: datetime | None,
    channel: str | None,
) -> ViolationsAnswer:
    history = policies(settings, policy_file)
    with open_log(settings, create=False) as log:
        found = service.find_violations(
            log,
            history,
            since=since,
            until=until,
            channel=channel,
            max_customers=settings.identity_max_customers,
        )
    return ViolationsAnswer(history, found)


@dataclass(frozen=True)
class PressureAnswer:
    """The contact pressure in the ``window`` (its name, e.g. ``30d``) up to ``at``."""

    at: datetime
    window: str
    policy: LoadedPolicy
    report: PressureReport

    def to_dict(self) -> dict[str, Any]:
        """The answer for machines (``ledger pressure --json``)."""
        report = self.report
        return {
            "at": self.at.isoformat(),
            "window": self.window,
            "policy": self.policy.version,
            "channels": [asdict(s) for s in report.spreads],
            "over_caps": [{"cap": c, "customers": n} for c, n in report.over_caps],
            "over_contact_sources": [{"source": s, "contacts": n} for s, n in report.sources],
        }


def contact_pressure(
    settings: Settings,
    moment: datetime,
    window: str,
    length: timedelta,
    *,
    policy_file: Path | None,
) -> PressureAnswer:
    """Outbound contacts per customer per channel, customers over each cap and the sources
    of the over-contact, in the ``length`` up to ``moment``."""
    history = policies(settings, policy_file)
    loaded = history.at(moment) or history.current()
    with open_log(settings, create=False) as log, closing(open_store(settings)) as store:
        found = service.find_violations(
            log,
            history,
            since=moment - length,
            until=moment,
            max_customers=settings.identity_max_customers,
        )
        report = pressure(
            store, loaded, moment, length, found, max_customers=settings.identity_max_customers
        )
    return PressureAnswer(moment, window, loaded, report)
