"""The view tables: their DDL and indexes, the statements that write a batch, and staging
files (a worker's rows, bulk-copied into the transaction that commits them)."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from consumers.store import service_levels as service
from consumers.store.batch import ViewBatch, encode_headers
from ledger.timeutil import to_micros
from projections.profile import Profile

TABLES = (
    "profiles",
    "contact_slots",
    "applied_events",
    "dead_letters",
    "progress",
    "misplaced",
    "cleartext",
    service.TABLE,
    "identity_events",
)

# Statements are written once, for both dialects: "?" placeholders and {table} names,
# which each recorder turns into its own form.
PROFILE_CONFLICT = (
    " ON CONFLICT (customer) DO UPDATE "
    "SET state = excluded.state, last_purchase = excluded.last_purchase, "
    "oldest_open_complaint = excluded.oldest_open_complaint, purchases = excluded.purchases"
)
CONTACTS_CONFLICT = (
    " ON CONFLICT (customer, slot, channel, direction, purpose) DO UPDATE "
    "SET n = {contact_slots}.n + excluded.n"
)
UPSERT_PROFILE = "INSERT INTO {profiles} VALUES (?, ?, ?, ?, ?)" + PROFILE_CONFLICT
UPSERT_CONTACTS = "INSERT INTO {contact_slots} VALUES (?, ?, ?, ?, ?, ?)" + CONTACTS_CONFLICT
INSERT_APPLIED = "INSERT INTO {applied_events} VALUES (?, ?, ?, ?, ?)"
PRUNE_APPLIED = "DELETE FROM {applied_events} WHERE partition = ? AND micros < ?"
"""Forget the ids of a partition's events older than its dedupe horizon (issue 17)."""
INSERT_IDENTITY = "INSERT INTO {identity_events} VALUES (?, ?, ?, ?, ?, ?)"
IDENTITY_COLUMNS = "event_id, type, customer, other, micros, note"

INSERT_DEAD_LETTER = (
    "INSERT INTO {dead_letters} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
)
DEAD_LETTER_COLUMNS = (
    "partition, offset, raw, reason, parked_at, record_key, headers, record_timestamp, "
    "first_partition, first_offset"
)

# The same, from a staging file attached as {staged} ("WHERE true" tells SQLite's parser
# that ON CONFLICT belongs to the INSERT). Staging rows were inserted sorted by the views'
# keys into plain rowid tables, so a scan gives them in key order (B-tree locality in the
# views) with no sort in the committing process and no B-tree upkeep in the workers.
STAGED_PROFILES = (
    "INSERT INTO {profiles} SELECT * FROM {staged}.profiles WHERE true" + PROFILE_CONFLICT
)
STAGED_CONTACTS = (
    "INSERT INTO {contact_slots} SELECT * FROM {staged}.contact_slots WHERE true"
    + CONTACTS_CONFLICT
)
STAGED_APPLIED = "INSERT INTO {applied_events} SELECT * FROM {staged}.applied_events"
STAGED_IDENTITY = "INSERT INTO {identity_events} SELECT * FROM {staged}.identity_events"
STAGED_DEAD_LETTERS = (
    "INSERT INTO {dead_letters} SELECT * FROM {staged}.dead_letters WHERE true "
    "ON CONFLICT DO NOTHING"
)
STAGING_DDL = [
    "CREATE TABLE profiles (customer TEXT, state TEXT, last_purchase INTEGER, "
    "oldest_open_complaint INTEGER, purchases INTEGER)",
    "CREATE TABLE contact_slots (customer TEXT, channel TEXT, direction TEXT, purpose TEXT, "
    "slot INTEGER, n INTEGER)",
    "CREATE TABLE applied_events (event_id TEXT, digest INTEGER, partition INTEGER, "
    "offset INTEGER, micros INTEGER)",
    "CREATE TABLE dead_letters (partition INTEGER, offset INTEGER, raw BLOB, reason TEXT, "
    "parked_at INTEGER, record_key BLOB, headers TEXT, record_timestamp INTEGER, "
    "first_partition INTEGER, first_offset INTEGER)",
    service.STAGING_DDL,
    "CREATE TABLE identity_events (event_id TEXT, type TEXT, customer TEXT, other TEXT, "
    "micros INTEGER, note TEXT)",
]
DELETE_DEAD_LETTER = "DELETE FROM {dead_letters} WHERE partition = ? AND offset = ?"
UPSERT_PROGRESS = (
    "INSERT INTO {progress} VALUES (?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "last_event_time = CASE WHEN excluded.last_event_time > {progress}.last_event_time "
    "THEN excluded.last_event_time ELSE {progress}.last_event_time END, "
    "committed_at = excluded.committed_at, rate = excluded.rate"
)

UPSERT_MISPLACED = (
    "INSERT INTO {misplaced} VALUES (?, ?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "n = {misplaced}.n + excluded.n, last_offset = excluded.last_offset, "
    "last_customer = excluded.last_customer, home = excluded.home"
)
UPSERT_CLEARTEXT = (
    "INSERT INTO {cleartext} VALUES (?, ?, ?, ?) ON CONFLICT (partition) DO UPDATE SET "
    "n = {cleartext}.n + excluded.n, last_offset = excluded.last_offset, "
    "last_customer = excluded.last_customer"
)


def contact_key_order(row: tuple[str, str, str, str, int, int]) -> tuple[str, int, str, str, str]:
    return row[0], row[4], row[1], row[2], row[3]


def view_rows(batch: ViewBatch) -> list[tuple[str, str, list[tuple[Any, ...]]]]:
    """The view rows of a batch, ``(table, upsert statement, rows)``: profiles, contact
    slots, applied ids, dead letters. Profiles and contact slots are sorted by the tables'
    keys: concurrent writers lock rows in the same order, and B-trees fill in order."""
    profiles = sorted(batch.profiles)
    contacts = [(c, ch, d, p, s, n) for (c, ch, d, p, s), n in batch.contacts.items()]
    contacts.sort(key=contact_key_order)  # (customer, slot, channel, direction, purpose)
    return [
        ("profiles", UPSERT_PROFILE, [profile_row(batch.profiles[c]) for c in profiles]),
        ("contact_slots", UPSERT_CONTACTS, contacts),
        (
            "applied_events",
            INSERT_APPLIED,
            [(i, *seen) for i, seen in batch.applied_ids.items()],
        ),
        (
            "dead_letters",
            INSERT_DEAD_LETTER,
            [
                (
                    d.partition,
                    d.offset,
                    d.raw,
                    d.reason,
                    to_micros(d.parked_at),
                    d.key,
                    encode_headers(d.headers),
                    None if d.timestamp is None else to_micros(d.timestamp),
                    None if d.first is None else d.first[0],
                    None if d.first is None else d.first[1],
                )
                for d in batch.dead_letters
            ],
        ),
        (service.TABLE, service.INSERT, service.rows_of(batch.service)),
        ("identity_events", INSERT_IDENTITY, sorted(batch.identity)),
    ]


def batch_rows(batch: ViewBatch) -> list[tuple[str, list[tuple[Any, ...]]]]:
    now = to_micros(datetime.now(UTC))
    return [
        *((statement, rows) for _, statement, rows in view_rows(batch)),
        (DELETE_DEAD_LETTER, sorted(batch.resolved)),
        (
            UPSERT_PROGRESS,
            [(p, t, now, batch.rate) for p, t in sorted(batch.newest.items())],
        ),
        (
            UPSERT_MISPLACED,
            [
                (p, m.count, m.offset, m.customer, m.home)
                for p, m in sorted(batch.misplaced.items())
            ],
        ),
        (
            UPSERT_CLEARTEXT,
            [(p, c.count, c.offset, c.customer) for p, c in sorted(batch.cleartext.items())],
        ),
    ]


def write_staged(path: Path, batch: ViewBatch) -> None:
    """Write a batch's view rows to a staging file, for a later :meth:`ViewStore.commit`
    that adds them to the views in its own transaction, with the positions.

    A projector's worker processes fold their shares of a batch and serialise its rows in
    parallel; the commit then merges them inside SQLite, without Python touching a row.
    The file is scratch (no journal, no fsync): an interrupted run just leaves it unused.
    """
    path.unlink(missing_ok=True)
    connection = sqlite3.connect(path, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode = OFF")
        connection.execute("PRAGMA synchronous = OFF")
        connection.execute("BEGIN")
        for statement in STAGING_DDL:
            connection.execute(statement)
        for table, _, rows in view_rows(batch):
            if rows:
                marks = ", ".join("?" * len(rows[0]))
                connection.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        connection.execute("COMMIT")
    finally:
        connection.close()


def view_indexes(tables: dict[str, str], suffix: str) -> list[tuple[str, str]]:
    """The secondary indexes of the views, ``(name, CREATE statement)``: lifecycle
    queries by last purchase, and reports over one time window for every customer."""
    return [
        (
            f"profiles{suffix}_last_purchase",
            f"CREATE INDEX IF NOT EXISTS profiles{suffix}_last_purchase "
            f"ON {tables['profiles']} (last_purchase)",
        ),
        (
            f"contact_slots{suffix}_slot",
            f"CREATE INDEX IF NOT EXISTS contact_slots{suffix}_slot "
            f"ON {tables['contact_slots']} (slot)",
        ),
        (
            f"identity_events{suffix}_other",
            f"CREATE INDEX IF NOT EXISTS identity_events{suffix}_other "
            f"ON {tables['identity_events']} (other)",
        ),
        (
            f"identity_events{suffix}_customer",
            f"CREATE INDEX IF NOT EXISTS identity_events{suffix}_customer "
            f"ON {tables['identity_events']} (customer)",
        ),
    ]


def view_ddl(tables: dict[str, str], suffix: str, *, postgres: bool) -> list[str]:
    """The view tables of one dialect; ``suffix`` names a separate set (a rebuild)."""
    integer, blob, real = (
        ("BIGINT", "BYTEA", "DOUBLE PRECISION") if postgres else ("INTEGER", "BLOB", "REAL")
    )
    keyed = "" if postgres else " WITHOUT ROWID"
    offset = '"offset"' if postgres else "offset"
    t = tables
    return [
        f"CREATE TABLE IF NOT EXISTS {t['profiles']} (customer TEXT PRIMARY KEY, "
        f"state TEXT NOT NULL, last_purchase {integer}, oldest_open_complaint {integer}, "
        f"purchases {integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['contact_slots']} (customer TEXT NOT NULL, "
        "channel TEXT NOT NULL, direction TEXT NOT NULL, purpose TEXT NOT NULL, "
        f"slot {integer} NOT NULL, n {integer} NOT NULL, "
        f"PRIMARY KEY (customer, slot, channel, direction, purpose)){keyed}",
        service.ddl(tables, postgres=postgres),
        # The identity facts (projections/identity.py folds them at read time, as of any
        # moment): one row per applied link, unlink, merge or unmerge.
        f"CREATE TABLE IF NOT EXISTS {t['identity_events']} (event_id TEXT PRIMARY KEY, "
        "type TEXT NOT NULL, customer TEXT NOT NULL, other TEXT NOT NULL, "
        f"micros {integer} NOT NULL, note TEXT){keyed}",
        *(create for _, create in view_indexes(tables, suffix)),
        f"CREATE TABLE IF NOT EXISTS {t['applied_events']} (event_id TEXT PRIMARY KEY, "
        f"digest {integer}, partition {integer}, {offset} {integer}, micros {integer})"
        f"{keyed}",
        f"CREATE TABLE IF NOT EXISTS {t['dead_letters']} (partition {integer} NOT NULL, "
        f"{offset} {integer} NOT NULL, raw {blob} NOT NULL, reason TEXT NOT NULL, "
        f"parked_at {integer} NOT NULL, record_key {blob}, headers TEXT, "
        f"record_timestamp {integer}, first_partition {integer}, first_offset {integer}, "
        f"PRIMARY KEY (partition, {offset})){keyed}",
        f"CREATE TABLE IF NOT EXISTS {t['progress']} (partition {integer} PRIMARY KEY, "
        f"last_event_time {integer} NOT NULL, committed_at {integer} NOT NULL, "
        f"rate {real} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['misplaced']} (partition {integer} PRIMARY KEY, "
        f"n {integer} NOT NULL, last_offset {integer} NOT NULL, last_customer TEXT NOT NULL, "
        f"home {integer} NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {t['cleartext']} (partition {integer} PRIMARY KEY, "
        f"n {integer} NOT NULL, last_offset {integer} NOT NULL, last_customer TEXT NOT NULL)",
    ]


def profile_row(profile: Profile) -> tuple[str, str, int | None, int | None, int]:
    state = profile.state
    return (
        state["customer"],
        # Sorted keys: the same profile gives the same bytes whatever order its events
        # arrived in (a late or retried event changes dict insertion order, not content).
        profile.to_json().decode(),
        state["last_purchase"],
        profile.oldest_open_complaint() if state["complaints"] else None,
        state["purchases"],
    )
