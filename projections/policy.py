"""The contact policy: consent, frequency caps, quiet hours and complaint cool-down, and the
decision "may we contact this customer now, on this channel, for this purpose?".

A policy is a versioned TOML file (``application/default_policy.toml`` documents every key); its
version and content hash go with every decision. A decision reads only the read models —
the customer's profile (consent, time zone, complaints) and their contact slots over the
longest window the policy looks at — and never rescans history.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Annotated, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    field_validator,
    model_validator,
)

from ledger.errors import LedgerError
from ledger.timeutil import LONGEST_SPAN, check_range
from ledger.vocabulary import Channel, Purpose
from projections.frequency import Window, slot_of, slot_start
from projections.profile import Profile
from projections.service_rules import CalendarRules, ServiceRules

CONSENT_CHANNELS = frozenset({"phone", "sms", "email"})
"""Channels that consent records are about (İYS: call, SMS, e-mail)."""

DAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
"""Day names by ``datetime.weekday()``."""
_DURATION = re.compile(r"(?P<n>[1-9][0-9]*)(?P<unit>[mhdw])", re.ASCII)
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class PolicyError(LedgerError):
    """A policy file that cannot be used; ``problems`` name the line and the problem."""

    def __init__(self, source: str, problems: Sequence[str]) -> None:
        self.problems = list(problems)
        super().__init__(f"{source}: " + "; ".join(self.problems))


def parse_duration(text: str) -> timedelta:
    """``90m``, ``24h``, ``7d``, ``2w``: at most :data:`LONGEST_SPAN` (about 100 years)."""
    match = _DURATION.fullmatch(text) if len(text) <= 40 else None
    if match is None:
        raise ValueError(f"{text[:40]!r} is not a duration like 24h, 7d or 2w")
    seconds = int(match["n"]) * _UNITS[match["unit"]]
    if seconds > LONGEST_SPAN.total_seconds():
        raise ValueError(f"{text!r} is longer than {LONGEST_SPAN.days} days")
    return timedelta(seconds=seconds)


def _duration(text: str) -> str:
    parse_duration(text)
    return text


def _clock(text: str) -> str:
    try:
        time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a time of day like 21:00") from None
    return text


def _zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{name!r} is not an IANA time zone") from None
    return name


Day = Literal["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]
Duration = Annotated[str, AfterValidator(_duration)]
Clock = Annotated[str, AfterValidator(_clock)]
ChannelOrAll = Channel | Literal["*"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Cap(_Strict):
    """At most ``max`` outbound contacts of ``purpose`` on ``channel`` ("*": all channels
    together) per rolling ``per`` window, or per local calendar day/week/month."""

    channel: ChannelOrAll
    purpose: Purpose
    max: StrictInt = Field(ge=0, le=1_000_000)
    per: Duration | Literal["calendar-day", "calendar-week", "calendar-month"]

    def label(self) -> str:
        where = "all channels" if self.channel == "*" else self.channel
        per = self.per.replace("calendar-", "calendar ")
        return f"{self.purpose} {where}: at most {self.max} per {per}"


class Quiet(_Strict):
    """No contact of these purposes on these channels between ``start`` and ``end``
    (local time; may span midnight) and/or on ``days``."""

    channels: list[ChannelOrAll] = Field(min_length=1)
    purposes: list[Purpose] = Field(min_length=1)
    start: Clock | None = None
    end: Clock | None = None
    days: list[Day] = Field(default_factory=list)

    @model_validator(mode="after")
    def _something(self) -> Quiet:
        if (self.start is None) != (self.end is None):
            raise ValueError("start and end go together")
        if self.start is None and not self.days:
            raise ValueError("give start and end, or days, or both")
        if self.start is not None and self.start == self.end:
            raise ValueError("start and end are the same time")
        return self

    def covers(self, channel: str, purpose: str) -> bool:
        return ("*" in self.channels or channel in self.channels) and purpose in self.purposes


class Complaints(_Strict):
    no_marketing_while_open: StrictBool = True
    cool_down: Duration | None = None
    """Also no marketing for this long after the last complaint was resolved."""


Stale = Literal["deny", "allow-with-warning"]


class PurposeFreshness(_Strict):
    """How decisions of one purpose treat records the projector has not applied yet."""

    stale: Stale = "deny"
    """When the ledger cannot confirm the customer's latest records (the log cannot be
    read, or more than ``max_unprojected`` of them are not in the views yet): deny with a
    ``stale`` reason, or decide on the views alone and say so in a warning."""
    max_unprojected: int = Field(default=10_000, ge=0)
    """The most of one customer's unprojected records a decision folds itself."""
    reserve_for: Duration | None = None
    """How long a recorded ``contact.allowed`` decision holds a slot under the caps (until
    a matching contact arrives). Absent: recorded decisions never count."""


def _relaxed() -> PurposeFreshness:
    return PurposeFreshness(stale="allow-with-warning")


class FreshnessRules(_Strict):
    """Per purpose: the fail-closed mode and reservations (marketing fails closed)."""

    marketing: PurposeFreshness = PurposeFreshness()
    transactional: PurposeFreshness = Field(default_factory=_relaxed)
    service: PurposeFreshness = Field(default_factory=_relaxed)

    def of(self, purpose: str) -> PurposeFreshness:
        found: PurposeFreshness = getattr(self, purpose, self.marketing)
        return found


class ConsentRule(_Strict):
    required_for: list[Purpose] = Field(default_factory=lambda: [Purpose.MARKETING])


class Retention(_Strict):
    """How long personal data is kept (``ledger erase --due``)."""

    erase_personal_data_after: Duration | None = None
    """Erase the personal data of customers with no touchpoint for this long (``3650d``:
    about ten years). Absent: nobody is due."""


class Policy(_Strict):
    """A contact policy, as written in its TOML file."""

    version: str = Field(min_length=1)
    effective_from: datetime | None = None
    """When this version took effect (a TOML date-time with an offset, or a date: midnight
    UTC). Absent: from the beginning. A folder of policy files is the policy's history."""
    time_zone: Annotated[str, AfterValidator(_zone)] = "UTC"
    """Used for customers whose time zone the ledger does not know."""
    consent: ConsentRule = ConsentRule()
    caps: list[Cap] = Field(default_factory=list)
    quiet: list[Quiet] = Field(default_factory=list)
    complaints: Complaints = Complaints()
    freshness: FreshnessRules = FreshnessRules()
    calendar: CalendarRules = CalendarRules()
    """Business hours and holidays (service levels; issue 13)."""
    service: ServiceRules = ServiceRules()
    """Service-level targets and what counts as bad service (issue 13)."""
    retention: Retention = Retention()

    @field_validator("effective_from", mode="before")
    @classmethod
    def _instant(cls, value: object) -> object:
        if isinstance(value, date) and not isinstance(value, datetime):
            return check_range(datetime.combine(value, time(), UTC))
        if isinstance(value, datetime):
            if value.tzinfo is None:
                raise ValueError("give the offset, e.g. 2026-01-01T00:00:00Z")
            return check_range(value)
        # Only TOML's own date-times and dates: a number or a string would be a second
        # spelling of a moment (pydantic reads 0 as 1970-01-01).
        raise ValueError("must be a TOML date-time with an offset (2026-01-01T00:00:00Z) or date")

    @field_validator("caps")
    @classmethod
    def _unique(cls, caps: list[Cap]) -> list[Cap]:
        seen = set()
        for cap in caps:
            key = (cap.channel, cap.purpose, cap.per)
            if key in seen:
                raise ValueError(f"two caps for {cap.channel} {cap.purpose} per {cap.per}")
            seen.add(key)
        return caps

    def longest_window(self) -> timedelta:
        """How far back a decision must look: the longest rolling cap, a calendar month,
        and the complaint cool-down."""
        longest = timedelta(days=32)
        for cap in self.caps:
            if not cap.per.startswith("calendar"):
                longest = max(longest, parse_duration(cap.per))
        return longest


@dataclass(frozen=True)
class LoadedPolicy:
    """A policy with where it came from: its version and hash go with every decision."""

    policy: Policy
    source: str
    sha256: str

    @property
    def version(self) -> str:
        return self.policy.version


def parse_policy(text: str, source: str = "policy") -> LoadedPolicy:
    """Parse and validate a policy; ``PolicyError`` names each problem with its line."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(source, [str(exc)]) from None
    except RecursionError:
        raise PolicyError(source, ["not TOML: arrays or tables nested too deeply"]) from None
    except ValueError as exc:
        # tomllib converts numbers itself; an integer of thousands of digits trips Python's
        # int-to-string limit. Name its line.
        raise PolicyError(source, [f"{_huge_number_line(text)}a number too long: {exc}"]) from None
    try:
        policy = Policy.model_validate(raw)
    except ValidationError as exc:
        problems: list[str] = []
        seen: set[tuple[str | int, ...]] = set()
        for error in exc.errors(include_url=False):
            # Keep field names and indexes; drop pydantic's union-member tags.
            location = tuple(p for p in error["loc"] if isinstance(p, int) or str(p).isidentifier())
            if location in seen:
                continue  # one problem per place (a union reports one per member)
            seen.add(location)
            where = ".".join(str(p) for p in location) or "(policy)"
            line = _line_of(text, location)
            message = error["msg"].removeprefix("Value error, ")
            if error["type"] == "extra_forbidden":
                message = "unknown key"
            problems.append(f"line {line}: {where}: {message}" if line else f"{where}: {message}")
        raise PolicyError(source, problems) from None
    return LoadedPolicy(policy, source, hashlib.sha256(text.encode()).hexdigest())


def _huge_number_line(text: str) -> str:
    """``"line N: "`` of the first run of more than 4,000 digits, if any."""
    match = re.search(r"[0-9_]{4000}", text)
    return f"line {text.count(chr(10), 0, match.start()) + 1}: " if match else ""


@dataclass(frozen=True)
class PolicyHistory:
    """The versions of a policy over time: each contact is judged, and each decision made,
    by the version in force at its moment."""

    versions: list[LoadedPolicy]
    """Oldest first; the first may have no ``effective_from`` (from the beginning)."""

    def at(self, moment: datetime) -> LoadedPolicy | None:
        """The version in force at ``moment`` (``None`` before the first took effect)."""
        found = None
        for loaded in self.versions:
            start = loaded.policy.effective_from
            if start is None or start <= moment:
                found = loaded
        return found

    def current(self) -> LoadedPolicy:
        return self.at(datetime.now(UTC)) or self.versions[0]


def _line_of(text: str, location: Sequence[int | str]) -> int | None:
    """The line a validation error's location points at: the key's line inside the right
    ``[table]`` / ``[[array]]`` entry (a best effort: the table's line if the key is absent)."""
    lines = text.splitlines()
    table: list[str] = []
    wanted = [str(p) for p in location if isinstance(p, str)]
    index = next((p for p in location if isinstance(p, int)), None)
    header, key = wanted[:-1], wanted[-1] if wanted else None
    seen = -1
    found: int | None = None
    for number, line in enumerate(lines, 1):
        stripped = line.strip()
        if stripped.startswith("["):
            table = stripped.strip("[]").strip().split(".")
            if table == header[:1] and stripped.startswith("[["):
                seen += 1
            if table == header[: len(table)] and (index is None or seen == index):
                found = number
            continue
        name = stripped.split("=", 1)[0].strip()
        in_place = table == header[: len(table)] and (index is None or seen == index)
        if key and name == key and in_place and (table or not header):
            return number
    return found


# -- decisions ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Reason:
    rule: Literal["consent", "cap", "quiet", "complaint", "stale"]
    message: str
    until: datetime | None = None
    """When this rule would stop denying (``None``: not by waiting)."""


@dataclass(frozen=True)
class Freshness:
    """What a decision saw: how far the log and the views had got, and what it folded."""

    log_positions: dict[int, int]
    """Per partition it read, the end of the log it saw (the offset of the next record)."""
    view_positions: dict[int, int]
    """Per partition, the views' position (the next offset the projector will apply)."""
    folded: int
    """The customer's records past the views' positions that the decision folded itself."""
    reservations: int = 0
    """Recorded ``contact.allowed`` decisions of the customer it read (each holds a slot
    under the caps while its purpose's ``reserve_for`` lasts and no contact came)."""
    warning: str | None = None
    """Set when the decision could not confirm the customer's latest records."""

    def to_dict(self) -> dict[str, object]:
        return {
            "log_positions": {str(p): o for p, o in sorted(self.log_positions.items())},
            "view_positions": {str(p): o for p, o in sorted(self.view_positions.items())},
            "folded_beyond_views": self.folded,
            "reservations": self.reservations,
            "warning": self.warning,
        }


@dataclass(frozen=True)
class Decision:
    customer: str
    channel: str
    purpose: str
    at: datetime
    allowed: bool
    reasons: list[Reason]
    earliest: datetime | None
    """When denied only by caps, quiet hours or a cool-down: the earliest allowed time."""
    policy_version: str
    policy_sha256: str
    freshness: Freshness | None = None
    """What the decision saw (``None``: a pure decision over a given context)."""

    def to_dict(self) -> dict[str, object]:
        return {
            "customer": self.customer,
            "channel": self.channel,
            "purpose": self.purpose,
            "at": self.at.isoformat(),
            "allowed": self.allowed,
            "reasons": [
                {
                    "rule": r.rule,
                    "message": r.message,
                    "until": r.until.isoformat() if r.until else None,
                }
                for r in self.reasons
            ],
            "earliest": self.earliest.isoformat() if self.earliest else None,
            "policy": {"version": self.policy_version, "sha256": self.policy_sha256},
            "freshness": self.freshness.to_dict() if self.freshness else None,
        }


Slots = Sequence[tuple[int, str, str, str, int]]
"""``(slot, channel, direction, purpose, n)`` of one customer."""


Reservation = tuple[datetime, str, str]
"""A recorded ``contact.allowed`` decision: ``(time, channel, purpose)``."""


@dataclass
class Context:
    """What a decision reads: the profile (or None for an unknown customer), the
    customer's contact slots over the policy's longest window, and their recorded
    ``contact.allowed`` decisions (reservations, see :func:`held_reservations`)."""

    profile: Profile | None
    slots: Slots = field(default_factory=list)
    reservations: Sequence[Reservation] = ()


def decide(
    loaded: LoadedPolicy,
    context: Context,
    *,
    customer: str,
    channel: str,
    purpose: str,
    at: datetime,
) -> Decision:
    """Allow or deny one contact, with every reason, and the earliest allowed time when
    waiting would help. Pure: the same policy and context give the same decision."""
    policy = loaded.policy
    slots = [*context.slots, *held_reservations(policy, context, at)]
    asking = _Asking(policy, channel, purpose, zone_of(context.profile, policy), slots)
    reasons = [
        *_consent(policy, context.profile, channel, purpose, at),
        *_complaints(policy, context.profile, purpose, at),
        *asking.waiting(at),
    ]
    earliest: datetime | None = None
    if reasons and all(r.until is not None for r in reasons):
        cool_down = max((r.until for r in reasons if r.rule == "complaint" and r.until), default=at)
        earliest = asking.earliest(max(at, cool_down))
    return Decision(
        customer,
        channel,
        purpose,
        at,
        not reasons,
        reasons,
        earliest,
        loaded.version,
        loaded.sha256,
    )


def held_reservations(policy: Policy, context: Context, at: datetime) -> Slots:
    """The reservations that still hold a slot at ``at``, as outbound contact slots.

    A recorded ``contact.allowed`` of a purpose with ``reserve_for`` holds one slot from
    its time until ``reserve_for`` later, or until a matching contact (same channel and
    purpose, outbound) is counted in its quarter-hour or after: each such contact
    releases the oldest reservation of its kind, so a reservation and the contact it
    announced never count twice."""
    live: dict[tuple[str, str], list[datetime]] = {}
    for moment, channel, purpose in context.reservations:
        hold = policy.freshness.of(purpose).reserve_for
        if hold is not None and moment <= at < moment + parse_duration(hold):
            live.setdefault((channel, purpose), []).append(moment)
    held: list[tuple[int, str, str, str, int]] = []
    for (channel, purpose), moments in live.items():
        moments.sort()
        first = slot_of(moments[0])
        arrived = sum(
            n
            for slot, ch, direction, pu, n in context.slots
            if ch == channel and pu == purpose and direction == "outbound" and slot >= first
        )
        for moment in moments[min(arrived, len(moments)) :]:
            held.append((slot_of(moment), channel, "outbound", purpose, 1))
    return held


def stale_decision(
    loaded: LoadedPolicy,
    context: Context,
    freshness: Freshness,
    *,
    customer: str,
    channel: str,
    purpose: str,
    at: datetime,
) -> Decision:
    """A decision when the customer's latest records cannot be confirmed (``freshness``
    says why in its warning): per the purpose's ``stale`` rule, a denial with a ``stale``
    reason, or the decision over ``context`` (the views alone) with the warning."""
    why = freshness.warning or "unknown"
    if loaded.policy.freshness.of(purpose).stale == "deny":
        reason = Reason("stale", f"the ledger cannot confirm {customer}'s latest records ({why})")
        return Decision(
            customer,
            channel,
            purpose,
            at,
            False,
            [reason],
            None,
            loaded.version,
            loaded.sha256,
            freshness,
        )
    decision = decide(loaded, context, customer=customer, channel=channel, purpose=purpose, at=at)
    return dataclasses.replace(decision, freshness=freshness)


def zone_of(profile: Profile | None, policy: Policy) -> ZoneInfo:
    """The customer's own time zone (from their details), else the policy's."""
    if profile is not None:
        stated = profile.state["details"].get("time_zone")
        if stated:
            try:
                return ZoneInfo(stated[0])
            except (ZoneInfoNotFoundError, ValueError):
                pass
    return ZoneInfo(policy.time_zone)


def _consent(
    policy: Policy, profile: Profile | None, channel: str, purpose: str, at: datetime
) -> Iterable[Reason]:
    if purpose not in policy.consent.required_for or channel not in CONSENT_CHANNELS:
        return
    consent = profile.consent.get(channel) if profile is not None else None
    if consent is None:
        yield Reason("consent", f"no {channel} consent on record")
    elif consent.status != "granted":
        yield Reason(
            "consent", f"{channel} consent withdrawn on {consent.since:%Y-%m-%d %H:%M} UTC"
        )
    elif consent.since > at:
        yield Reason(
            "consent", f"{channel} consent only granted on {consent.since:%Y-%m-%d %H:%M} UTC"
        )


def _complaints(
    policy: Policy, profile: Profile | None, purpose: str, at: datetime
) -> Iterable[Reason]:
    rule = policy.complaints
    if purpose != Purpose.MARKETING or profile is None:
        return
    open_since = [t for t in profile.open_complaints().values() if t <= at]
    if rule.no_marketing_while_open and open_since:
        yield Reason("complaint", f"complaint open since {min(open_since):%Y-%m-%d %H:%M} UTC")
    if rule.cool_down is None:
        return
    resolved = [
        c.resolved_at
        for c in profile.complaints.values()
        if c.resolved_at is not None and c.resolved_at <= at
    ]
    if resolved:
        until = max(resolved) + parse_duration(rule.cool_down)
        if at < until:
            yield Reason(
                "complaint",
                f"complaint resolved on {max(resolved):%Y-%m-%d %H:%M} UTC: cool-down "
                f"{rule.cool_down}",
                until,
            )


@dataclass(frozen=True)
class _Asking:
    """One channel and purpose of one customer, for the rules that pass with time."""

    policy: Policy
    channel: str
    purpose: str
    zone: ZoneInfo
    slots: Slots

    def waiting(self, at: datetime) -> list[Reason]:
        """Reasons that pass with time: caps and quiet hours."""
        return [*self.caps(at), *self.quiet(at)]

    def caps(self, at: datetime) -> Iterable[Reason]:
        for cap in self.policy.caps:
            if cap.purpose != self.purpose or cap.channel not in ("*", self.channel):
                continue
            window, ends = cap_window(cap, self.zone, at)
            counted = sorted(
                (slot, n)
                for slot, ch, direction, purpose, n in self.slots
                if direction == "outbound"
                and purpose == self.purpose
                and (cap.channel == "*" or ch == self.channel)
                and window.start <= slot < window.end
            )
            total = sum(n for _, n in counted)
            if total < cap.max:
                continue
            if ends is None:  # rolling: enough of the counted contacts must leave the window
                leave = total - cap.max + 1
                for slot, n in counted:
                    leave -= n
                    if leave <= 0:
                        ends = slot_start(slot + 1) + parse_duration(cap.per)
                        break
            days = sorted({slot_start(s).astimezone(self.zone).date() for s, _ in counted})
            on = ", ".join(f"{d:%Y-%m-%d}" for d in days[:5]) + (" ..." if len(days) > 5 else "")
            yield Reason("cap", f'cap "{cap.label()}" reached ({total}) by contacts on {on}', ends)

    def quiet(self, at: datetime) -> Iterable[Reason]:
        local = at.astimezone(self.zone)
        for rule in self.policy.quiet:
            if not rule.covers(self.channel, self.purpose):
                continue
            ends = _quiet_until(rule, self.zone, local)
            if ends is not None:
                when = f"{rule.start}-{rule.end}" if rule.start else "on " + ", ".join(rule.days)
                yield Reason(
                    "quiet",
                    f"quiet time ({when} {self.zone.key}) until "
                    f"{ends.astimezone(self.zone):%Y-%m-%d %H:%M}",
                    ends.astimezone(UTC),
                )

    def earliest(self, start: datetime) -> datetime | None:
        """The first moment from ``start`` at which no cap or quiet rule denies: jump to
        the latest "until" of what denies there, and check again (a quiet night can end
        inside a capped window, and the reverse)."""
        moment = start
        for _ in range(64):
            denying = self.waiting(moment)
            if not denying:
                return moment
            until = [r.until for r in denying if r.until is not None]
            if len(until) != len(denying):
                return None
            moment = max(*until, moment + timedelta(minutes=1))
        return None


def cap_window(cap: Cap, zone: ZoneInfo, at: datetime) -> tuple[Window, datetime | None]:
    """The window a cap counts in at ``at``, and (for calendar caps) when it ends."""
    if not cap.per.startswith("calendar"):
        return Window.rolling(at, parse_duration(cap.per)), None
    local = at.astimezone(zone).date()
    if cap.per == "calendar-day":
        first, last = local, local
    elif cap.per == "calendar-week":
        first = local - timedelta(days=local.weekday())
        last = first + timedelta(days=6)
    else:
        first = local.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
        last = following - timedelta(days=1)
    window = Window.calendar_days(first, last, zone)
    return window, datetime.combine(last + timedelta(days=1), time(), zone).astimezone(UTC)


def _quiet_until(rule: Quiet, zone: ZoneInfo, local: datetime) -> datetime | None:
    """When the quiet time holding at ``local`` ends (``None``: not quiet then)."""
    moment = local
    for _ in range(16):  # quiet hours and days can chain (Saturday night into Sunday)
        quiet = False
        if rule.days and DAYS[moment.weekday()] in rule.days:
            moment = datetime.combine(moment.date() + timedelta(days=1), time(), zone)
            quiet = True
        if rule.start is not None and rule.end is not None:
            start, end = time.fromisoformat(rule.start), time.fromisoformat(rule.end)
            clock = moment.timetz().replace(tzinfo=None)
            inside = start <= clock < end if start < end else (clock >= start or clock < end)
            if inside:
                day = moment.date() if clock < end else moment.date() + timedelta(days=1)
                moment = _local(day, end, zone)
                quiet = True
        if not quiet:
            return None if moment == local else moment
    return moment


def _local(day: date, clock: time, zone: ZoneInfo) -> datetime:
    """``clock`` on ``day`` in ``zone``. A time a DST change skips is read with the offset
    before the change (02:30 on a spring-forward night in New York is 03:30 EDT); an
    ambiguous one, as its first occurrence."""
    naive = datetime.combine(day, clock)
    candidate = naive.replace(tzinfo=zone)
    if candidate.astimezone(UTC).astimezone(zone).replace(tzinfo=None) != naive:
        candidate = candidate.astimezone(UTC).astimezone(zone)
    return candidate
