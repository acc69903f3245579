"""Use cases of personal data: erasure (one customer, or those due by the retention rule),
the register of erasures, subject access, key backups, encrypted copies and the check of
a log for personal data in clear. See ``docs/privacy.md``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import stat
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO, Any

import orjson

from application import identity
from application.wiring import open_keys
from consumers.store import ViewStore
from ledger.codec import event_to_dict
from ledger.errors import ConfigurationError, InvalidEvent, KeyStoreUnavailable, LedgerError
from ledger.events import CustomerErased, Touchpoint
from ledger.identifiers import HASHED_PREFIX, InvalidIdentifier, is_hashed, normal_subject
from ledger.locked_file import locked
from ledger.log import Appended, AppendOutcome, EventLog, ReadFilter
from ledger.payloads import ERASED, CustomerErasedData
from ledger.privacy.crypto import (
    HASHED_FIELDS,
    PERSONAL_FIELDS,
    UNREADABLE,
    DataKey,
    cleartext_paths,
    hashed_subject,
    is_envelope,
    is_personal_subject,
    open_value,
    reveal_document,
    subject_aad,
)
from ledger.privacy.keystore import KeyStore, SQLiteKeyStore, WrappedKey
from ledger.settings import Settings
from ledger.timeutil import to_micros, utc_now
from projections.identity import MAX_CUSTOMERS, IdentityGraph
from projections.profile import Profile

ERASED_TYPE = "customer.erased"
ERASURE_SOURCE = "ledger/erase"
BACKUP_FORMAT = "touchpoint-ledger-keys/v1"


class Revealer:
    """Opens sealed personal values for the reads that show them (replay, history,
    profile, subject access). Keys are looked up once per key id for the life of this
    object (one command); a destroyed key reads as ``[erased]``."""

    def __init__(self, keys: KeyStore | None) -> None:
        self.keys = keys
        self._cache: dict[str, DataKey | None] = {}
        self._subjects: dict[str, str | None] = {}

    def key(self, kid: str) -> DataKey | None:
        if kid not in self._cache:
            if self.keys is None:
                raise KeyStoreUnavailable(
                    "this record holds encrypted personal data and no key store is configured"
                )
            if isinstance(self.keys, SQLiteKeyStore) and not self.keys.path.exists():
                raise KeyStoreUnavailable(
                    f"the key store {str(self.keys.path)!r} does not exist: the personal data "
                    "in this log cannot be opened (LEDGER_KEYS points at the wrong file?)"
                )
            self._cache[kid] = self.keys.keys_by_id([kid]).get(kid)
        return self._cache[kid]

    def subject(self, stored: str) -> str:
        """The customer id as given: a hashed personal id (``h:...``) opened while its
        customer's key exists, else the id as stored."""
        if not stored.startswith(HASHED_PREFIX) or self.keys is None:
            return stored
        if stored not in self._subjects:
            sealed = self.keys.sealed_subjects([stored]).get(stored)
            opened = None
            if sealed is not None:
                envelope = orjson.loads(sealed)
                key = self.key(str(envelope["kid"]))
                opened = key.open(envelope, subject_aad(stored)) if key is not None else None
            self._subjects[stored] = opened if opened not in (None, UNREADABLE) else stored
        return self._subjects[stored] or stored

    def identifier(self, stored: str) -> str:
        """An identifier or customer id for display: a keyed hash opened to the phone
        number or e-mail address it stands for, or ``[erased]`` once its key is destroyed
        (a hash is never shown as if it were the identifier)."""
        if not is_hashed(stored):
            return stored
        opened = self.subject(stored) if self.keys is not None else stored
        return ERASED if opened == stored else opened

    def document(self, document: dict[str, Any]) -> dict[str, Any]:
        """A structured CloudEvent (JSON dict) with its personal values opened (and a
        hashed personal customer id or linked identifier given back as it was appended)."""
        opened = reveal_document(document, self.key)
        subject = document.get("subject")
        if isinstance(subject, str) and subject.startswith(HASHED_PREFIX):
            opened = {**opened, "subject": self.subject(subject)}
        field_name = HASHED_FIELDS.get(str(document.get("type")))
        data = opened.get("data")
        if field_name is not None and isinstance(data, dict):
            value = data.get(field_name)
            if isinstance(value, str) and is_hashed(value):
                opened = {**opened, "data": {**data, field_name: self.identifier(value)}}
        return opened

    def event(self, event: Touchpoint) -> dict[str, Any]:
        return self.document(event_to_dict(event))

    def profile(self, profile: Profile) -> Profile:
        """A copy of ``profile`` whose personal details are opened (or ``[erased]``)."""
        details = profile.state["details"]
        customer = self.subject(profile.customer)
        members = profile.state.get("members")
        hashed_members = isinstance(members, list) and any(is_hashed(m) for m in members)
        if (
            customer == profile.customer
            and not hashed_members
            and not any(is_envelope(value) for value, _ in details.values())
        ):
            return profile
        opened = {}
        for name, (value, at) in details.items():
            if is_envelope(value):
                # A person's profile (issue 12) holds details of several customer ids, each
                # sealed for its own customer: open each with its key's customer.
                key = self.key(str(value.get("kid")))
                owner = profile.customer if key is None else key.customer
                path = f"personal.{name}"
                value = open_value(value, str(value.get("event")), owner, path, self.key)
            opened[name] = [value, at]
        state = {**profile.state, "customer": customer, "details": opened}
        if hashed_members:
            state["members"] = sorted(self.identifier(m) for m in members or [])
        return Profile(state=state)


def _normal(customer: str) -> str:
    try:
        return normal_subject(customer)
    except InvalidIdentifier as exc:
        raise LedgerError(str(exc)) from exc


def stored_customer_ids(settings: Settings) -> Callable[[str], str]:
    """:func:`stored_customer_id` for many customers (a campaign list): the key store is
    opened once, on the first phone number or e-mail address."""
    pepper: bytes | None = None

    def stored(customer: str) -> str:
        nonlocal pepper
        customer = _normal(customer)
        if not settings.encrypt or not is_personal_subject(customer):
            return customer
        if pepper is None:
            keys = open_keys(settings)
            try:
                pepper = keys.master().pepper()
            finally:
                keys.close()
        return hashed_subject(customer, pepper)

    return stored


def stored_customer_id(settings: Settings, customer: str) -> str:
    """The id the ledger stores for ``customer``: the keyed hash of a phone number or
    e-mail address, bare or as ``phone:``/``email:`` (when encryption is on), else
    ``customer`` itself; an identifier with a known prefix is normalised first
    (``phone:+90 555 111 22 33``), so every read looks it up as appends stored it."""
    customer = _normal(customer)
    if not settings.encrypt or not is_personal_subject(customer):
        return customer
    keys = open_keys(settings)
    try:
        return hashed_subject(customer, keys.master().pepper())
    finally:
        keys.close()


# -- erasure ------------------------------------------------------------------------------


@dataclass
class Erasure:
    """What ``ledger erase`` did for one customer."""

    customer: str
    keys_destroyed: int
    event_id: str | None
    """The ``customer.erased`` event appended (``None``: already erased, nothing new)."""
    position: str | None = None
    rejects_redacted: int = 0
    """Lines of rejects files that held the customer's data, now redacted."""
    identifiers: list[str] = field(default_factory=list)
    """The hashed phone numbers and e-mail addresses ever linked to the customer (issue
    12), erased with them: the keys that seal their cleartext destroyed (their keyed
    hashes stay, as a hashed customer id does; the customer's ``customer.erased`` is the
    record)."""
    together: list[Erasure] = field(default_factory=list)
    """The person's other customer ids (merged with ``customer``), erased with it."""

    @property
    def already(self) -> bool:
        return self.event_id is None and all(e.already for e in self.together)

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "keys_destroyed": self.keys_destroyed,
            "event_id": self.event_id,
            "position": self.position,
            "already_erased": self.already,
            "rejects_redacted": self.rejects_redacted,
            "identifiers_erased": len(self.identifiers),
            "erased_with_it": [e.to_dict() for e in self.together],
        }


@dataclass(frozen=True)
class ErasureRequest:
    reason: str
    request_id: str | None = None
    requested_by: str | None = None
    retention_rule: str | None = None


def _erased_event(customer: str, request: ErasureRequest, destroyed: int) -> CustomerErased:
    return CustomerErased(
        id=f"erasure-{uuid.uuid4()}",
        source=ERASURE_SOURCE,
        subject=customer,
        time=datetime.now(UTC),
        data=CustomerErasedData(
            reason=request.reason,
            request_id=request.request_id,
            requested_by=request.requested_by,
            keys_destroyed=destroyed,
            retention_rule=request.retention_rule,
        ),
    )


def _check_request(request: ErasureRequest) -> None:
    # Validated before any key is destroyed: a bad reason must not leave a key destroyed
    # without its record.
    try:
        _erased_event("check", request, 0)
    except ValueError as exc:
        raise InvalidEvent([str(exc)]) from None


def _already_erased(log: EventLog, customer: str) -> bool:
    where = ReadFilter(customer=customer, types=frozenset({ERASED_TYPE}))
    return any(record.event is not None for record in log.read(None, where))


def linked_identifiers(log: EventLog, customers: list[str] | None = None) -> dict[str, set[str]]:
    """Per customer (of ``customers``; ``None``: all), the hashed phone numbers and e-mail
    addresses ``identity.linked`` ever gave them (unlinked since or not)."""
    wanted = None if customers is None else set(customers)
    where = ReadFilter(
        customer=customers[0] if customers is not None and len(customers) == 1 else None,
        types=frozenset({"identity.linked"}),
    )
    found: dict[str, set[str]] = {}
    for record in log.read(None, where):
        event = record.event
        if event is None or (wanted is not None and event.subject not in wanted):
            continue
        value = getattr(event.data, HASHED_FIELDS[event.type], None)
        if isinstance(value, str) and is_hashed(value):
            found.setdefault(event.subject, set()).add(value)
    return found


def personal_values(log: EventLog, customer: str, revealer: Revealer) -> set[str]:
    """Every personal value the log holds of ``customer``, opened (what rejects files are
    searched for before the key is destroyed)."""
    values: set[str] = set()
    where = ReadFilter(customer=customer, types=frozenset(PERSONAL_FIELDS))
    for record in log.read(None, where):
        if record.event is None:
            continue
        document = revealer.event(record.event)
        data = document.get("data") or {}
        for path in PERSONAL_FIELDS[record.event.type]:
            value: Any = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, str) and value != ERASED:
                values.add(value)
    return values


def identity_graph(
    log: EventLog, store: ViewStore | None, customer: str, max_customers: int = MAX_CUSTOMERS
) -> IdentityGraph:
    """The identity graph around ``customer`` now (issue 12), as every answer reads it: the
    views plus the log past them (``store``), or the log alone."""
    facts = (
        identity.current_facts(store, [customer], log)
        if store is not None
        else identity.facts_in_log(log)
    )
    return identity.graph_of(facts, max_customers=max_customers)


def person_customers(graph: IdentityGraph, customer: str) -> list[str]:
    """``customer`` and the customer ids merged with it, ``customer`` first. Only merges
    count here, not identifiers two customers share (a household's landline): an erasure
    cannot be undone, and a subject access must not hand over someone else's data."""
    return [customer, *sorted(graph.merged_with(customer) - {customer})]


def _only_theirs(graph: IdentityGraph, identifiers: set[str], customers: set[str]) -> list[str]:
    """Of ``identifiers``, those no customer outside ``customers`` holds a standing link to
    (a number reused by someone else, a shared call-centre number, stays theirs)."""
    return sorted(i for i in identifiers if set(graph.links.get(i, {})) <= customers)


def erase(
    log: EventLog,
    keys: KeyStore,
    customer: str,
    request: ErasureRequest,
    *,
    rejects_dir: Path | None = None,
    named: str | None = None,
    store: ViewStore | None = None,
    whole_person: bool = True,
    max_customers: int = MAX_CUSTOMERS,
) -> Erasure:
    """Erase ``customer``'s personal data: destroy their data keys (every copy the key
    store keeps), then append a ``customer.erased`` event (no personal data). Idempotent:
    a customer without a key whose erasure is recorded gets nothing new. Lines of the
    ledger's rejects files that hold the customer's id (or ``named``, the id as given when
    it is stored hashed) or personal values are redacted.

    ``whole_person`` (the default): the person is erased, not one of their ids -- every
    customer id merged with ``customer`` now, each with its own ``customer.erased`` (listed
    in :attr:`Erasure.together`), and the phone numbers and addresses ever linked to any of
    them that no one else holds a standing link to. The identity graph is read from the
    views plus the log past them (``store``), or from the log alone."""
    _check_request(request)
    graph = identity_graph(log, store, customer, max_customers)
    customers = person_customers(graph, customer) if whole_person else [customer]
    erased = set(customers)
    linked = {
        c: _only_theirs(graph, linked_identifiers(log, [c]).get(c, set()), erased)
        for c in customers
    }
    every_identifier = sorted({i for found in linked.values() for i in found} - erased)
    if every_identifier:  # the phone numbers and addresses linked to them go with them
        keys.destroy(every_identifier)
    held = keys.holders(customers)
    to_erase = [c for c in customers if c in held or not _already_erased(log, c)]
    needles: set[str] = set()
    if rejects_dir is not None and _rejects_files(rejects_dir):
        revealer = Revealer(keys)
        for member in to_erase:
            if member in held:
                needles |= personal_values(log, member, revealer)
    holding = [c for c in to_erase if c in held]
    destroyed = keys.destroy(holding) if holding else {}
    events = [_erased_event(c, request, destroyed.get(c, 0)) for c in to_erase]
    outcomes = dict(zip(to_erase, log.append(events), strict=True)) if events else {}
    if events:
        _destroy_late_keys(keys, to_erase)
    event_ids = {e.subject: e.id for e in events}
    redacted = 0
    if rejects_dir is not None and events:
        redacted = redact_rejects(rejects_dir, {*customers, named or customer}, needles)
    done = [
        Erasure(
            c,
            destroyed.get(c, 0),
            event_ids.get(c),
            _position(outcomes[c]) if c in outcomes else None,
            redacted if c == customer else 0,
            linked[c],
        )
        for c in customers
    ]
    return dataclasses.replace(done[0], together=done[1:])


def _destroy_late_keys(keys: KeyStore, erased: list[str]) -> None:
    """Called once the ``customer.erased`` events of ``erased`` are appended. Another
    process may have appended an event of theirs between the destroy of their keys and
    that append: its new key would keep it readable, before the erasure in the log. The
    keys made by now go too (not counted in the events, already written); one made later
    is a returning customer's. (Phone numbers and addresses are not destroyed again: one
    linked meanwhile may be another customer's now.)"""
    keys.destroy(erased, made_by=to_micros(utc_now()))


def _position(outcome: AppendOutcome) -> str | None:
    return str(outcome.position) if isinstance(outcome, Appended) else None


def due(
    store: ViewStore, keys: KeyStore, cutoff: datetime, max_customers: int = MAX_CUSTOMERS
) -> list[str]:
    """Customers with no touchpoint since ``cutoff`` -- nor any other id of their person --
    whose personal data is still held: in clear in the views, or sealed under a key that
    still exists."""
    limit = to_micros(cutoff)
    clear: list[str] = []
    sealed: list[str] = []
    for profile in store.iter_profiles():
        last = profile.state["last_touch"]
        if last is None or last >= limit:
            continue
        values = [v for name, (v, _) in profile.state["details"].items() if name in _PERSONAL_NAMES]
        if any(isinstance(v, str) and v != ERASED for v in values):
            clear.append(profile.customer)
        elif any(is_envelope(v) for v in values):
            sealed.append(profile.customer)
    held = sorted(clear + sorted(keys.holders(sealed)))
    return _idle_people(store, held, limit, max_customers)


def _idle_people(
    store: ViewStore, customers: list[str], limit: int, max_customers: int
) -> list[str]:
    """``customers`` less those whose person (issue 12: other customer ids merged with
    them, identifiers linked to them) has a touchpoint at or after ``limit``: an old id of
    a customer who is still active is not due."""
    person_of = identity.graph_of(store.all_identity_facts(), max_customers=max_customers).people()
    joined = [c for c in customers if c in person_of]
    if not joined:
        return customers
    members: dict[str, list[str]] = {}
    for key, person in person_of.items():
        members.setdefault(person, []).append(key)
    others = {c: [m for m in members[person_of[c]] if m != c] for c in joined}
    profiles = store.load_profiles(sorted({m for found in others.values() for m in found}))

    def active(key: str) -> bool:
        profile = profiles.get(key)
        last = None if profile is None else profile.state["last_touch"]
        return last is not None and last >= limit

    busy = {c for c in joined if any(active(m) for m in others[c])}
    return [c for c in customers if c not in busy]


_PERSONAL_NAMES = ("name", "email", "phone")


def erase_many(
    log: EventLog,
    keys: KeyStore,
    customers: list[str],
    request: ErasureRequest,
    *,
    batch_size: int,
    rejects_dir: Path | None = None,
) -> list[Erasure]:
    """:func:`erase` for many customers: their keys destroyed in one transaction, their
    ``customer.erased`` events appended in batches. The phone numbers and e-mail addresses
    linked to them (issue 12) are erased with them."""
    _check_request(request)
    linked = linked_identifiers(log, customers)
    identifiers = sorted({i for found in linked.values() for i in found} - set(customers))
    if identifiers:
        keys.destroy(identifiers)
    destroyed = keys.destroy(customers)
    done: list[Erasure] = []
    for start in range(0, len(customers), batch_size):
        chunk = customers[start : start + batch_size]
        events = [_erased_event(c, request, destroyed[c]) for c in chunk]
        outcomes = log.append(events)
        _destroy_late_keys(keys, chunk)
        done += [
            Erasure(e.subject, destroyed[e.subject], e.id, _position(o))
            for e, o in zip(events, outcomes, strict=True)
        ]
    if rejects_dir is not None and done:
        redact_rejects(rejects_dir, set(customers), set())
    return done


# -- rejects files ------------------------------------------------------------------------


def _rejects_files(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def redact_rejects(folder: Path, customers: set[str], values: set[str]) -> int:
    """Redact the lines of the rejects files in ``folder`` that name one of ``customers``
    as subject or hold one of ``values``: their input and reasons become ``[erased]``
    (the line number stays). Each changed file is replaced whole (write, fsync, rename)."""
    needles = [v.encode() for v in values if len(v) >= 3]
    redacted = 0
    for path in _rejects_files(folder):
        try:
            current = locked(path, "rb")  # an import writing it waits; so does an erasure
        except FileNotFoundError:
            continue
        with current:
            redacted += _redact_file(path, current, customers, needles)
    return redacted


def _redact_file(path: Path, current: IO[bytes], customers: set[str], needles: list[bytes]) -> int:
    """Redact the rejects file ``path``, open and locked as ``current``: a new file, synced,
    renamed over it before the lock is let go."""
    redacted = 0
    lines = current.read().splitlines(keepends=True)
    changed = False
    for index, line in enumerate(lines):
        if _names(line, customers, needles):
            try:
                number = orjson.loads(line).get("line")
            except (orjson.JSONDecodeError, AttributeError):
                number = None
            record = {"line": number, "reasons": [ERASED], "input": ERASED}
            lines[index] = orjson.dumps(record) + b"\n"
            changed = True
            redacted += 1
    if changed:
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
        try:
            with os.fdopen(descriptor, "wb") as file:
                file.writelines(lines)
                file.flush()
                os.fsync(file.fileno())
            os.chmod(temporary, stat.S_IMODE(os.fstat(current.fileno()).st_mode))
            os.replace(temporary, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
    return redacted


def _names(line: bytes, customers: set[str], needles: list[bytes]) -> bool:
    if any(needle in line for needle in needles):
        return True
    try:
        record = orjson.loads(line)
        document = orjson.loads(record["input"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        # Not JSON (a CSV row, a broken line): look for the id as a whole cell or string.
        return any(f'"{c}"'.encode() in line or f",{c},".encode() in line for c in customers)
    return isinstance(document, dict) and document.get("subject") in customers


# -- the register ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ErasureRecord:
    """One ``customer.erased`` event, as the register shows it."""

    customer: str
    event_id: str
    time: datetime
    recorded_at: datetime
    position: str
    data: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "customer": self.customer,
            "event_id": self.event_id,
            "time": self.time.isoformat(),
            "recorded_at": self.recorded_at.isoformat(),
            "position": self.position,
            **self.data,
        }


def erasures(log: EventLog, since: datetime | None = None) -> list[ErasureRecord]:
    """Every recorded erasure (``customer.erased`` events), oldest first."""
    where = ReadFilter(types=frozenset({ERASED_TYPE}), since=since)
    found = [
        ErasureRecord(
            r.event.subject,
            r.event.id,
            r.event.time,
            r.recorded_at,
            str(r.position),
            r.event.data.model_dump(mode="json", exclude_none=True),
        )
        for r in log.read(None, where)
        if r.event is not None
    ]
    found.sort(key=lambda e: (e.time, e.event_id))
    return found


# -- subject access ---------------------------------------------------------------------------


def subject_access(
    log: EventLog,
    store: ViewStore | None,
    keys: KeyStore,
    customer: str,
    max_customers: int = MAX_CUSTOMERS,
) -> dict[str, Any]:
    """Everything the ledger holds about ``customer``'s person, personal values opened:
    every event of every member (the customer ids merged with it, and the phone numbers and
    addresses linked to them that no one else holds, issue 12; log order per member, with
    position and recording time), the profile view of each customer id, the keys held."""
    revealer = Revealer(keys)
    graph = identity_graph(log, store, customer, max_customers)
    customers = person_customers(graph, customer)
    linked = {i for c in customers for i in graph.links_of(c)}
    members = [*customers, *_only_theirs(graph, linked - set(customers), set(customers))]
    events = [
        {
            "position": str(record.position),
            "recorded_at": record.recorded_at.isoformat(),
            "event": revealer.event(record.event),
        }
        for member in members
        for record in log.read(None, ReadFilter(customer=member))
        if record.event is not None
    ]
    views = {c: store.profile(c) if store is not None else None for c in customers}
    profiles = {revealer.subject(c): revealer.profile(v).to_dict() for c, v in views.items() if v}
    view = views[customer]
    return {
        "customer": revealer.subject(customer),
        "generated_at": datetime.now(UTC).isoformat(),
        "person": revealer.subject(graph.person(customer).id),
        "members": [revealer.subject(m) for m in members],
        "events": events,
        "profile": revealer.profile(view).to_dict() if view is not None else None,
        "profiles": profiles,
        "data_keys_held": len(keys.holders(members)),
    }


# -- keys -------------------------------------------------------------------------------------


def keys_backup(keys: KeyStore, out: Path) -> int:
    """Write every data key, still wrapped by the master key, to ``out`` (mode 0600).
    The backup is as sensitive as the key store and keeps keys destroyed after it was
    made: see docs/privacy.md for how long to keep it."""
    rows = [
        {"kid": r.kid, "customer": r.customer, "wrapped": r.wrapped.hex(), "created": r.created}
        for r in keys.export()
    ]
    document = {
        "format": BACKUP_FORMAT,
        "made_at": datetime.now(UTC).isoformat(),
        "check": keys.check_value(),
        "keys": rows,
    }
    try:
        descriptor = os.open(out, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise ConfigurationError(f"{str(out)!r} exists: give a new file") from None
    with os.fdopen(descriptor, "wb") as file:
        file.write(orjson.dumps(document))
        file.flush()
        os.fsync(file.fileno())
    return len(rows)


def keys_restore(log: EventLog, keys: KeyStore, backup: Path) -> tuple[int, int]:
    """Put the keys of a backup back, except those of customers erased since (their
    ``customer.erased`` event is recorded after the key was made). Returns (restored,
    skipped as erased)."""
    try:
        document = orjson.loads(backup.read_bytes())
        assert document["format"] == BACKUP_FORMAT
        rows = [
            WrappedKey(r["kid"], r["customer"], bytes.fromhex(r["wrapped"]), r["created"])
            for r in document["keys"]
        ]
    except (OSError, orjson.JSONDecodeError, AssertionError, KeyError, TypeError, ValueError):
        raise ConfigurationError(f"{str(backup)!r} is not a key backup of this ledger") from None
    erased_at: dict[str, int] = {}
    for record in erasures(log):
        micros = to_micros(record.recorded_at)
        erased_at[record.customer] = max(erased_at.get(record.customer, 0), micros)
    kept = [r for r in rows if erased_at.get(r.customer, -1) < r.created]
    keys.restore(kept)
    # A customer erased while this ran (after the erasures were read above, before the
    # keys went back) would have their key back: the erasures are read again, and the keys
    # made before a new one destroyed. (An erasure still being recorded destroys the keys
    # made by the time its event is appended: see :func:`erase`.)
    late: dict[str, int] = {}
    for record in erasures(log):
        micros = to_micros(record.recorded_at)
        if micros > erased_at.get(record.customer, -1):
            late[record.customer] = max(late.get(record.customer, 0), micros)
    destroyed = {
        customer
        for customer, micros in late.items()
        if keys.destroy([customer], made_by=micros)[customer]
    }
    restored = sum(1 for r in kept if r.customer not in destroyed)
    return restored, len(rows) - restored


# -- copies and checks ---------------------------------------------------------------------


@dataclass
class PersonalDataCheck:
    """What ``ledger doctor`` found: events with personal values in clear, per type."""

    events: int = 0
    cleartext: Counter[str] = field(default_factory=Counter)
    """Events holding at least one personal value in clear, per type."""
    sealed: int = 0
    """Personal values encrypted."""
    erased_values: int = 0
    """Sealed values whose key is destroyed (they read as ``[erased]``)."""
    examples: list[str] = field(default_factory=list)
    """Positions of the first few events in clear."""

    @property
    def cleartext_events(self) -> int:
        return sum(self.cleartext.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "cleartext_events": self.cleartext_events,
            "cleartext_by_type": dict(self.cleartext),
            "sealed_values": self.sealed,
            "erased_values": self.erased_values,
            "examples": self.examples,
        }


def check_personal_data(log: EventLog, keys: KeyStore | None) -> PersonalDataCheck:
    """Count the stored events whose personal fields hold a value in clear (a log written
    before encryption, or records of a Kafka publisher that does not encrypt), and the
    sealed values whose key is gone."""
    found = PersonalDataCheck()
    kids: Counter[str] = Counter()
    for record in log.read():
        found.events += 1
        event = record.event
        if event is None or event.type not in PERSONAL_FIELDS:
            continue
        data = event_to_dict(event)["data"]
        if cleartext_paths(event.type, data):
            found.cleartext[event.type] += 1
            if len(found.examples) < 5:
                found.examples.append(str(record.position))
        for path in PERSONAL_FIELDS[event.type]:
            value: Any = data
            for part in path.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if is_envelope(value):
                found.sealed += 1
                kids[value["kid"]] += 1
    if kids and keys is not None:
        held = keys.keys_by_id(list(kids))
        found.erased_values = sum(n for kid, n in kids.items() if kid not in held)
    return found


def retention_cutoff(after: timedelta, now: datetime | None = None) -> datetime:
    return (now or datetime.now(UTC)) - after
