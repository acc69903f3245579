"""One person's figures, composed at read time from the partial results of their members.

The views keep one profile and one set of contact slots per subject (a customer id or an
identifier); a person is several of them (:mod:`projections.identity`). Their profile is
composed here from the members' profiles, exactly as one profile folded from all their
events would be (sums, earliest and latest times, the latest value of each detail), except
consent: consent stays attached to the recipient it was given for (İYS keeps it per phone
number or address), and the person's consent on a channel is *derived* from their
recipients' records, never silently combined (:func:`derive_consent`).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from projections.profile import Profile, new_state

_EARLIEST = ("first_touch", "first_purchase")
_LATEST = ("last_touch", "last_inbound", "last_outbound", "last_purchase")
_COUNTS = ("by_type", "by_channel", "orders_by_currency")
_AMOUNTS = ("spend", "refunded")


def _earliest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else min(a, b)


def _latest(a: int | None, b: int | None) -> int | None:
    return b if a is None else a if b is None else max(a, b)


def combine(person: str, profiles: Mapping[str, Profile]) -> Profile | None:
    """The profile of ``person`` from their members' profiles (member key -> profile);
    ``None`` if no member has one. One member: its own profile, unchanged (a person the
    graph does not join answers exactly as before)."""
    if not profiles:
        return None
    if len(profiles) == 1:
        return next(iter(profiles.values()))
    state = new_state(person)
    for member in sorted(profiles):
        _add(state, profiles[member].state)
    state["consent"] = derive_consent(
        {member: p.state["consent"] for member, p in profiles.items()}
    )
    state["members"] = sorted(profiles)
    return Profile(state=state)


def _add(state: dict[str, Any], other: dict[str, Any]) -> None:
    for name in _EARLIEST:
        state[name] = _earliest(state[name], other[name])
    for name in _LATEST:
        state[name] = _latest(state[name], other[name])
    for name in _COUNTS:
        totals = state[name]
        for key, n in other[name].items():
            totals[key] = totals.get(key, 0) + n
    for name in _AMOUNTS:
        totals = state[name]
        for currency, amount in other[name].items():
            current = totals.get(currency)
            totals[currency] = (
                amount if current is None else str(Decimal(current) + Decimal(amount))
            )
    state["purchases"] += other["purchases"]
    state["refunds"] += other["refunds"]
    details = state["details"]
    for name, (value, at) in other["details"].items():
        current = details.get(name)
        if current is None or at > current[1] or (at == current[1] and value > current[0]):
            details[name] = [value, at]
    complaints = state["complaints"]
    for cid, complaint in other["complaints"].items():
        mine = complaints.get(cid)
        if mine is None:
            complaints[cid] = dict(complaint)
            continue
        mine["opened_at"] = _earliest(mine["opened_at"], complaint["opened_at"])
        if mine["category"] is None:
            mine["category"], mine["severity"] = complaint["category"], complaint["severity"]
        if complaint["resolved_at"] is not None and (
            mine["resolved_at"] is None or complaint["resolved_at"] > mine["resolved_at"]
        ):
            mine["resolved_at"], mine["resolution"] = (
                complaint["resolved_at"],
                complaint["resolution"],
            )
    feedback = state["feedback"]
    for scale, given in other["feedback"].items():
        mine = feedback.get(scale)
        if mine is None:
            feedback[scale] = dict(given)
            continue
        if given["latest_at"] > mine["latest_at"]:
            mine["latest_score"], mine["latest_at"] = given["latest_score"], given["latest_at"]
        mine["total"] += given["total"]
        mine["count"] += given["count"]


def derive_consent(by_member: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The person's consent per channel from each member's (recipient's) records.

    A channel is ``granted`` only if every recipient with a record on it has granted it:
    one recipient's withdrawal stands for the person (the latest withdrawal is shown),
    since a contact "to the person" does not say which recipient it reaches. Each derived
    record names the recipient it came from (``recipient``) and lists every recipient's
    status (``by_recipient``), so nothing is combined out of sight.
    """
    channels = sorted({channel for records in by_member.values() for channel in records})
    derived: dict[str, Any] = {}
    for channel in channels:
        records = {
            member: records[channel]
            for member, records in sorted(by_member.items())
            if channel in records
        }
        refusing = {m: r for m, r in records.items() if r["status"] != "granted"}
        pool = refusing or records
        member = max(pool, key=lambda m: (pool[m]["since"], m))
        derived[channel] = {
            **pool[member],
            "recipient": member,
            "by_recipient": {m: r["status"] for m, r in records.items()},
        }
    return derived
