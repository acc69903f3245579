"""The view store: profile rows, contact slots, dedupe records and positions, one transaction.

Built on eventsourcing's ``SQLiteTrackingRecorder``: each batch writes its view rows, the
id of every event it applied, its dead letters and the tracked position of each log
partition (``Tracking("views|<log>:<partition>", next offset)``) in one transaction, so a
position is never committed for rows the view does not hold, and an event re-published
with the same id never counts twice.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import sqlite3
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import psycopg
from eventsourcing.persistence import IntegrityError, PersistenceError
from eventsourcing.postgres import PostgresDatastore

from consumers.store import service_levels as service
from consumers.store.batch import (
    PREFIXED,
    REBUILD_PREFIX,
    REBUILD_SUFFIX,
    VIEWS,
    BatchConflict,
    Cleartext,
    DeadLetter,
    Guard,
    Misplaced,
    PreparedBatch,
    Seen,
    StoreUnavailable,
    ViewBatch,
    decode_headers,
    name_prefix,
)
from consumers.store.recorders import (
    PostgresViewRecorder,
    SQLiteViewRecorder,
    ViewRecorder,
    add_columns,
    create_tables,
    select_applied,
    select_profiles,
    select_seen,
)
from consumers.store.schema import (
    DEAD_LETTER_COLUMNS,
    IDENTITY_COLUMNS,
    PRUNE_APPLIED,
    TABLES,
    batch_rows,
    view_indexes,
)
from consumers.store.staging import Staging
from ledger.log import as_bytes
from ledger.redact import MASK, redact
from ledger.sqlite_log import LedgerDatastore
from ledger.timeutil import from_micros, to_micros
from projections.frequency import Window
from projections.identity import IdentityFact
from projections.profile import Profile


class ViewStore:
    """The read models of one log, in SQLite or PostgreSQL (same queries, same results)."""

    staging: Staging | None = None
    """Where parallel projectors' workers read the views and stage their rows (see
    :func:`write_staged`): set by the SQLite and PostgreSQL stores."""

    def __init__(
        self, recorder: ViewRecorder, source: str, where: str, prefix: str = VIEWS
    ) -> None:
        self.recorder = recorder
        self.prefix = prefix
        self.source = source
        """Which log the positions belong to (``embedded`` or the Kafka topic)."""
        self.where = where
        self.dedupe_window: int | None = None
        """Keep applied ids for this long of event time (microseconds) per partition
        (``None``: for ever); see :meth:`consumers.folding.Folder.too_old`."""
        self._pruned: dict[int, int] = {}
        try:
            create_tables(recorder)
            add_columns(recorder)
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the view store {where}: {exc}") from exc

    def tracking_name(self, partition: int) -> str:
        return f"{self.prefix}|{self.source}:{partition}"

    def positions(self, partitions: Iterable[int]) -> dict[int, int]:
        """Per partition, the next offset to read (absent: from the start)."""
        found = {}
        for partition in partitions:
            position = self.recorder.max_tracking_id(self.tracking_name(partition))
            if position is not None:
                found[partition] = position
        return found

    def snapshot(
        self, partitions: Iterable[int], customers: Sequence[str], window: Window
    ) -> tuple[dict[int, int], dict[str, Profile], dict[str, list[tuple[int, str, str, str, int]]]]:
        """Positions, profiles and contact slots (as :meth:`positions`,
        :meth:`load_profiles`, :meth:`contact_slots`) read in one transaction, so the rows
        are exactly those of the positions (what a fresh decision folds the log onto)."""
        with self.recorder.snapshot():
            positions = self._positions_in(partitions)
            return positions, self.load_profiles(customers), self.contact_slots(customers, window)

    def _positions_in(self, partitions: Iterable[int]) -> dict[int, int]:
        """:meth:`positions` in one statement (inside the caller's transaction)."""
        names = {self.tracking_name(p): p for p in partitions}
        rows = self.recorder.select(
            "SELECT application_name, MAX(notification_id) FROM "
            f"{self.recorder.tracking_table} WHERE application_name IN "
            f"({','.join('?' * len(names))}) GROUP BY application_name",
            list(names),
        )
        return {names[name]: int(n) for name, n in rows if n is not None}

    def identity_snapshot(
        self, keys: Sequence[str], partitions: Iterable[int]
    ) -> tuple[list[IdentityFact], dict[int, int]]:
        """:meth:`identity_facts` of ``keys`` and the positions they are as of, read in one
        transaction (a projector commit between the two would leave its identity facts
        in neither the rows read nor the log past the positions)."""
        with self.recorder.snapshot():
            return self.identity_facts(keys), self._positions_in(partitions)

    def applied(self, event_ids: Sequence[str]) -> set[str]:
        """Which of these events the views already hold."""
        return select_applied(self.recorder.select, event_ids)

    def seen(self, event_ids: Sequence[str]) -> dict[str, Seen]:
        """The applied ones of these events: content digest and position of each."""
        postgres = isinstance(self.recorder, PostgresViewRecorder)
        return select_seen(self.recorder.select, event_ids, arrays=postgres)

    def load_profiles(self, customers: Sequence[str]) -> dict[str, Profile]:
        postgres = isinstance(self.recorder, PostgresViewRecorder)
        return select_profiles(self.recorder.select, customers, arrays=postgres)

    def newest_times(self) -> dict[int, int]:
        """Per partition, the newest event time applied (microseconds)."""
        rows = self.recorder.select("SELECT partition, last_event_time FROM {progress}")
        return {int(p): int(t) for p, t in rows}

    def _identity_prefix(self) -> str:
        return f"{self.prefix}|{self.source}:log="

    def log_identity(self) -> str | None:
        """The identity of the log these views were built from (see
        :meth:`ledger.log.EventLog.identity`), if recorded."""
        prefix = self._identity_prefix()
        rows = self.recorder.select(
            f"SELECT application_name FROM {self.recorder.tracking_table} WHERE {PREFIXED}",
            name_prefix(prefix),
        )
        return str(rows[0][0])[len(prefix) :] if rows else None

    def record_log_identity(self, identity: str) -> None:
        """Record which log the views are built from (kept by rebuilds, dropped by reset)."""
        table, prefix = self.recorder.tracking_table, self._identity_prefix()
        try:
            self.recorder.run(  # two projectors may record it at once: the same name
                [
                    (
                        f"INSERT INTO {table} VALUES (?, 0) ON CONFLICT DO NOTHING",
                        (prefix + identity,),
                    )
                ]
            )
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot write the view store {self.where}: {exc}") from exc

    def generation_name(self) -> str:
        return f"{self.prefix}|{self.source}:generation"

    def generation(self) -> int | None:
        """Bumped by every change made outside the normal flow (retry); projectors holding
        profiles from an older generation must reload them."""
        return self.recorder.max_tracking_id(self.generation_name())

    def prepare(self, batch: ViewBatch, staged: Sequence[Path] = ()) -> PreparedBatch:
        """The rows and guards of a batch: CPU work only (profiles serialised now, so the
        batch's profiles may change afterwards), for :meth:`write`."""
        guards: list[Guard] = [
            (self.tracking_name(p), batch.expected.get(p), offset)
            for p, offset in batch.positions.items()
        ]
        bumped = (batch.generation or 0) + 1 if batch.bump_generation else None
        guards.append((self.generation_name(), batch.generation, bumped))
        rows = batch_rows(batch)
        if self.dedupe_window is not None:  # after the inserts: no id older is left
            rows.append((PRUNE_APPLIED, self._prune(batch)))
        return PreparedBatch(rows, sorted(guards), tuple(map(str, staged)))

    def _prune(self, batch: ViewBatch) -> list[tuple[Any, ...]]:
        """``(partition, horizon)`` of the partitions whose ids older than the dedupe
        window this batch forgets: those whose horizon (newest event time of the batch
        less the window) moved by a hundredth of the window or more since this store
        last pruned them (each prune scans the partition's ids)."""
        assert self.dedupe_window is not None
        step = max(self.dedupe_window // 100, 1)
        rows = []
        for partition, newest in sorted(batch.newest.items()):
            horizon = newest - self.dedupe_window
            if horizon - self._pruned.get(partition, -(1 << 62)) >= step:
                rows.append((partition, horizon))
                self._pruned[partition] = horizon
        return rows

    def commit(self, batch: ViewBatch, staged: Sequence[Path] = ()) -> None:
        """Write a batch in one transaction (see :meth:`write`), with the view rows of
        ``staged`` files (:func:`write_staged`) besides its own."""
        self.write(self.prepare(batch, staged))

    def write(self, prepared: PreparedBatch) -> None:
        """Write a prepared batch in one transaction, if its guards hold: raises
        ``BatchConflict`` (and writes nothing) when another projector moved a position or
        the generation first. Mostly I/O and SQL, with the GIL released."""
        try:
            self.recorder.commit(prepared)
        except IntegrityError as exc:
            raise BatchConflict(f"another projector got there first: {exc}") from exc
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot write the view store {self.where}: {exc}") from exc

    # -- queries ----------------------------------------------------------------------

    def identity_facts(self, keys: Sequence[str], *, limit: int = 100_000) -> list[IdentityFact]:
        """Every identity fact that ever touched the people of ``keys``: the rows naming
        them, then the rows naming what those rows name, until nothing new turns up (the
        graph's fold then says who is joined when). At most ``limit`` rows."""
        found: dict[str, IdentityFact] = {}
        known, todo = set(keys), sorted(set(keys))
        while todo and len(found) < limit:
            reached: set[str] = set()
            for start in range(0, len(todo), 250):
                chunk = todo[start : start + 250]
                marks = ",".join("?" * len(chunk))
                rows = self.recorder.select(
                    f"SELECT {IDENTITY_COLUMNS} FROM {{identity_events}} "
                    f"WHERE customer IN ({marks}) OR other IN ({marks})",
                    (*chunk, *chunk),
                )
                for row in rows:
                    if row[0] not in found:
                        fact = IdentityFact(row[0], row[1], row[2], row[3], int(row[4]), row[5])
                        found[fact.id] = fact
                        reached.update((fact.customer, fact.other))
            todo = sorted(reached - known)
            known |= reached
        return list(found.values())

    def all_identity_facts(self) -> list[IdentityFact]:
        """Every identity fact the views hold (reports over all people)."""
        rows = self.recorder.select(f"SELECT {IDENTITY_COLUMNS} FROM {{identity_events}}")
        return [IdentityFact(r[0], r[1], r[2], r[3], int(r[4]), r[5]) for r in rows]

    def profile(self, customer: str) -> Profile | None:
        found = self.load_profiles([customer])
        return found.get(customer)

    def iter_profiles(self) -> Iterator[Profile]:
        """Every profile, in customer order (pages of 1,000)."""
        last = ""
        while rows := self.recorder.select(
            "SELECT customer, state FROM {profiles} WHERE customer > ? "
            "ORDER BY customer LIMIT 1000",
            (last,),
        ):
            for _, state in rows:
                yield Profile.from_json(state)
            last = rows[-1][0]

    def contacts(self, customer: str, window: Window) -> dict[tuple[str, str, str], int]:
        """Contacts of one customer in ``window``, per (channel, direction, purpose)."""
        rows = self.recorder.select(
            "SELECT channel, direction, purpose, SUM(n) FROM {contact_slots} WHERE customer = ? "
            "AND slot >= ? AND slot < ? GROUP BY channel, direction, purpose",
            (customer, window.start, window.end),
        )
        return {(ch, d, p): n for ch, d, p, n in rows}

    def contact_slots(
        self, customers: Sequence[str], window: Window
    ) -> dict[str, list[tuple[int, str, str, str, int]]]:
        """Customers' contact slots in ``window``: per customer, ``(slot, channel,
        direction, purpose, n)`` in slot order (what contact-policy decisions read)."""
        found: dict[str, list[tuple[int, str, str, str, int]]] = {c: [] for c in customers}
        unique = sorted(found)
        for start in range(0, len(unique), 500):
            chunk = unique[start : start + 500]
            rows = self.recorder.select(
                "SELECT customer, slot, channel, direction, purpose, n FROM {contact_slots} "
                f"WHERE customer IN ({','.join('?' * len(chunk))}) AND slot >= ? AND slot < ? "
                "ORDER BY customer, slot",
                (*chunk, window.start, window.end),
            )
            for customer, slot, channel, direction, purpose, n in rows:
                found[customer].append((int(slot), channel, direction, purpose, int(n)))
        return found

    def outbound_per_customer(
        self, window: Window, *, purpose: str | None = None
    ) -> dict[str, dict[str, int]]:
        """Outbound contacts in ``window`` per channel, per customer (of ``purpose``)."""
        clauses, params = (
            ["slot >= ?", "slot < ?", "direction = 'outbound'"],
            [
                window.start,
                window.end,
            ],
        )
        if purpose is not None:
            clauses.append("purpose = ?")
            params.append(purpose)  # type: ignore[arg-type]
        rows = self.recorder.select(
            "SELECT channel, customer, SUM(n) FROM {contact_slots} "
            f"WHERE {' AND '.join(clauses)} GROUP BY channel, customer",
            params,
        )
        found: dict[str, dict[str, int]] = {}
        for channel, customer, n in rows:
            found.setdefault(channel, {})[customer] = int(n)
        return found

    def outbound_slots(
        self, window: Window, purposes: Iterable[str]
    ) -> list[tuple[str, int, str, str, int]]:
        """Outbound contact slots in ``window`` of these purposes: ``(customer, slot,
        channel, purpose, n)``."""
        wanted = sorted(set(purposes))
        if not wanted:
            return []
        rows = self.recorder.select(
            "SELECT customer, slot, channel, purpose, n FROM {contact_slots} "
            "WHERE slot >= ? AND slot < ? AND direction = 'outbound' "
            f"AND purpose IN ({','.join('?' * len(wanted))})",
            (window.start, window.end, *wanted),
        )
        return [(c, int(slot), ch, p, int(n)) for c, slot, ch, p, n in rows]

    def most_contacted(
        self,
        window: Window,
        *,
        channel: str | None = None,
        direction: str | None = None,
        purpose: str | None = None,
        limit: int = 20,
    ) -> list[tuple[str, int]]:
        """The customers contacted most in ``window``: the harassment report."""
        clauses, params = ["slot >= ?", "slot < ?"], [window.start, window.end]
        for column, value in (("channel", channel), ("direction", direction), ("purpose", purpose)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)  # type: ignore[arg-type]
        rows = self.recorder.select(
            "SELECT customer, SUM(n) AS total FROM {contact_slots} "
            f"WHERE {' AND '.join(clauses)} "
            "GROUP BY customer ORDER BY total DESC, customer LIMIT ?",
            (*params, limit),
        )
        return [(customer, total) for customer, total in rows]

    def customers(
        self,
        now: datetime,
        *,
        status: str | None = None,
        at_risk: bool = False,
        active_days: int = 90,
        lapsed_days: int = 365,
        risk_after: timedelta = timedelta(days=7),
        limit: int | None = None,
    ) -> list[str]:
        """Customers by lifecycle status and/or with a complaint open longer than ``risk_after``."""
        active = to_micros(now - timedelta(days=active_days))
        lapsed = to_micros(now - timedelta(days=lapsed_days))
        clauses: list[str] = []
        params: list[int] = []
        if status == "prospect":
            clauses.append("last_purchase IS NULL")
        elif status == "active":
            clauses.append("last_purchase >= ?")
            params.append(active)
        elif status == "passive":
            clauses.append("last_purchase < ? AND last_purchase >= ?")
            params += [active, lapsed]
        elif status == "lapsed":
            clauses.append("last_purchase < ?")
            params.append(lapsed)
        if at_risk:
            clauses.append("oldest_open_complaint < ?")
            params.append(to_micros(now - risk_after))
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        suffix = f" LIMIT {int(limit)}" if limit is not None else ""
        rows = self.recorder.select(
            f"SELECT customer FROM {{profiles}} {where} ORDER BY customer{suffix}", params
        )
        return [row[0] for row in rows]

    def progress(self) -> dict[int, tuple[datetime, datetime, float]]:
        """Per partition: newest applied event time, last commit time, records/s then."""
        rows = self.recorder.select(
            "SELECT partition, last_event_time, committed_at, rate FROM {progress}"
        )
        return {p: (from_micros(t), from_micros(c), float(r)) for p, t, c, r in rows}

    def misplaced(self) -> dict[int, Misplaced]:
        """Per partition, the applied records that sit outside their key's murmur2
        partition (a producer with another partitioner: see docs/kafka.md)."""
        rows = self.recorder.select(
            "SELECT partition, n, last_offset, last_customer, home FROM {misplaced} "
            "ORDER BY partition"
        )
        return {int(p): Misplaced(int(p), int(n), int(o), str(c), int(h)) for p, n, o, c, h in rows}

    def cleartext(self) -> dict[int, Cleartext]:
        """Per partition, the applied records holding personal data in clear (see
        docs/privacy.md: publishers that do not encrypt)."""
        rows = self.recorder.select(
            "SELECT partition, n, last_offset, last_customer FROM {cleartext} ORDER BY partition"
        )
        return {int(p): Cleartext(int(p), int(n), int(o), str(c)) for p, n, o, c in rows}

    def last_error(self) -> DeadLetter | None:
        """The record parked most recently, if any."""
        letters = self.dead_letters()
        return max(letters, key=lambda d: d.parked_at) if letters else None

    def dead_letters(self) -> list[DeadLetter]:
        rows = self.recorder.select(
            f"SELECT {DEAD_LETTER_COLUMNS} FROM {{dead_letters}} ORDER BY partition, offset"
        )
        return [
            DeadLetter(
                p,
                o,
                as_bytes(raw),
                reason,
                from_micros(at),
                None if key is None else as_bytes(key),
                decode_headers(headers),
                None if stamp is None else from_micros(stamp),
                None if first_p is None else (int(first_p), int(first_o)),
            )
            for p, o, raw, reason, at, key, headers, stamp, first_p, first_o in rows
        ]

    def counts(self) -> dict[str, int]:
        """Rows per table, for status reports and tests."""
        return {
            table: self.recorder.select(f"SELECT COUNT(*) FROM {{{table}}}")[0][0]
            for table in TABLES
        }

    # -- rebuild ----------------------------------------------------------------------

    def rebuild_store(self) -> ViewStore:
        """Fresh, empty view tables beside the live ones, for a rebuild from position 0.
        Leftovers of an interrupted rebuild are dropped first."""
        recorder = type(self.recorder)(self.recorder.datastore, REBUILD_SUFFIX)  # type: ignore[arg-type]
        try:
            recorder.run(
                [(f"DROP TABLE IF EXISTS {name}", ()) for name in recorder.tables.values()]
                + [
                    (
                        f"DELETE FROM {recorder.tracking_table} WHERE {PREFIXED}",
                        name_prefix(f"{REBUILD_PREFIX}|{self.source}:"),
                    )
                ]
            )
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot prepare the rebuild tables: {exc}") from exc
        fresh = ViewStore(recorder, self.source, f"{self.where} (rebuild)", prefix=REBUILD_PREFIX)
        if self.staging is not None:
            fresh.staging = dataclasses.replace(self.staging, suffix=REBUILD_SUFFIX)
        fresh.dedupe_window = self.dedupe_window
        return fresh

    def swap_in(self, rebuild: ViewStore) -> None:
        """Make the rebuilt views the live ones, in one transaction: readers see the old
        views or the new, never a mix. Positions become the rebuild's (even if lower: a
        running projector then conflicts, resumes from them and reloads), and the
        generation moves on."""
        live, new = self.recorder.tables, rebuild.recorder.tables
        tracking = self.recorder.tracking_table
        generation = (self.generation() or 0) + 1
        statements: list[tuple[str, Sequence[Any]]] = []
        if isinstance(self.recorder, SQLiteViewRecorder):
            # SQLite's DDL is transactional: rename the rebuilt tables in (no copy), and
            # give their indexes the live names (built in one pass if the load deferred them).
            for table in TABLES:
                statements += [
                    (f"DROP TABLE {live[table]}", ()),
                    (f"ALTER TABLE {new[table]} RENAME TO {live[table]}", ()),
                ]
            statements += [(f"DROP INDEX IF EXISTS {name}", ()) for name, _ in rebuild.indexes()]
            statements += [(create, ()) for _, create in self.indexes()]
        else:
            for table in TABLES:
                statements += [
                    (f"DELETE FROM {live[table]}", ()),
                    (f"INSERT INTO {live[table]} SELECT * FROM {new[table]}", ()),
                    (f"DROP TABLE {new[table]}", ()),
                ]
        live_names, new_names = f"{self.prefix}|{self.source}:", f"{rebuild.prefix}|{self.source}:"
        statements += [
            (f"DELETE FROM {tracking} WHERE {PREFIXED}", name_prefix(live_names)),
            (
                f"INSERT INTO {tracking} SELECT REPLACE(application_name, ?, ?), notification_id "
                f"FROM {tracking} WHERE {PREFIXED} AND application_name <> ?",
                (new_names, live_names, *name_prefix(new_names), rebuild.generation_name()),
            ),
            (f"DELETE FROM {tracking} WHERE {PREFIXED}", name_prefix(new_names)),
            (f"INSERT INTO {tracking} VALUES (?, ?)", (self.generation_name(), generation)),
        ]
        try:
            if isinstance(self.recorder, PostgresViewRecorder):
                self.recorder.run(statements, lock=self.generation_name())
            else:
                self.recorder.run(statements)
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot swap the rebuilt views in: {exc}") from exc

    def reset(self) -> None:
        """Drop every view row, dead letter and position, in one transaction (empty views
        swapped in): the next projector run starts from the beginning of the log. A
        projector running meanwhile conflicts once and starts over from there."""
        self.swap_in(self.rebuild_store())

    def indexes(self) -> list[tuple[str, str]]:
        return view_indexes(self.recorder.tables, self.recorder.suffix)

    def defer_indexes(self) -> bool:
        """Before a bulk load into empty views (a first catch-up, a rebuild): drop the
        secondary indexes, which cost more to keep up row by row than to build in one
        pass afterwards (:meth:`restore_indexes`; a rebuild's are built by the swap).
        Queries stay correct meanwhile, only slower; if the load is interrupted, opening
        the store builds them again. SQLite only; returns whether it dropped any."""
        if not isinstance(self.recorder, SQLiteViewRecorder):
            return False
        if self.recorder.select("SELECT 1 FROM {profiles} LIMIT 1"):
            return False
        names = [name for name, _ in self.indexes()]
        marks = ",".join("?" * len(names))
        query = f"SELECT name FROM sqlite_master WHERE type = 'index' AND name IN ({marks})"
        if not self.recorder.select(query, names):
            return False
        try:
            self.recorder.run([(f"DROP INDEX IF EXISTS {name}", ()) for name in names])
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot prepare {self.where} for a bulk load: {exc}") from exc
        return True

    def restore_indexes(self) -> None:
        """Build the secondary indexes :meth:`defer_indexes` dropped."""
        try:
            self.recorder.run([(create, ()) for _, create in self.indexes()])
        except (PersistenceError, sqlite3.Error, psycopg.Error) as exc:
            raise StoreUnavailable(f"cannot index {self.where}: {exc}") from exc

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every view row, sorted: for comparing stores and runs in tests and checks."""
        return {
            "profiles": self.recorder.select("SELECT * FROM {profiles} ORDER BY customer"),
            "contact_slots": self.recorder.select(
                "SELECT * FROM {contact_slots} ORDER BY customer, slot, channel, direction, purpose"
            ),
            service.TABLE: service.dump(self.recorder),
            "identity_events": self.recorder.select(
                "SELECT * FROM {identity_events} ORDER BY event_id"
            ),
        }

    def close(self) -> None:
        self.recorder.datastore.close()


class SQLiteViewStore(ViewStore):
    """The read models in a SQLite file (default: ``views.db`` beside the log)."""

    def __init__(self, path: Path, source: str, *, cache_mib: int = 64) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            datastore = LedgerDatastore(
                str(path), lock_timeout=30, cache_mib=cache_mib, durable=False
            )
        except (PersistenceError, sqlite3.Error) as exc:
            raise StoreUnavailable(f"cannot open the view store {path}: {exc}") from exc
        super().__init__(SQLiteViewRecorder(datastore), source, str(path))
        self.staging = Staging(path, "")
        self.staging.remove_stale()


class PostgresViewStore(ViewStore):
    """The read models in PostgreSQL, in one schema (``?schema=`` in the URL)."""

    def __init__(self, url: str, source: str) -> None:
        parts = urlsplit(url)
        schema = dict(parse_qsl(parts.query)).get("schema", "public")
        try:
            datastore = PostgresDatastore(
                dbname=parts.path.lstrip("/") or "postgres",
                host=parts.hostname or "127.0.0.1",
                port=parts.port or 5432,
                user=unquote(parts.username or "postgres"),
                password=unquote(parts.password or ""),
                schema=schema,
                originator_id_type="text",
                pool_size=2,
                max_overflow=1,  # a third if a member's main, commit and lookup threads all ask
                connect_timeout=5,
            )
            if schema != "public":
                # IF NOT EXISTS is not safe against a concurrent creator in PostgreSQL:
                # losing that race means the schema exists, which is all we need.
                with (
                    contextlib.suppress(IntegrityError),
                    datastore.transaction(commit=True) as cursor,
                ):
                    cursor.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
        except (PersistenceError, psycopg.Error) as exc:
            reason = redact(str(exc))
            if parts.password:  # in case a driver's message quotes it
                reason = reason.replace(parts.password, MASK).replace(unquote(parts.password), MASK)
            raise StoreUnavailable(
                f"cannot reach PostgreSQL at {parts.hostname}: {reason}"
            ) from exc
        super().__init__(PostgresViewRecorder(datastore), source, f"postgresql://{parts.hostname}")
        # Worker processes read the views here and stage their rows in SQLite files under
        # the temporary directory; the commit copies them in (see consumers.shards).
        name = hashlib.sha256(f"{parts.hostname}:{parts.port}{parts.path}/{schema}".encode())
        self.staging = Staging(
            Path(tempfile.gettempdir()) / f"ledger-views-{name.hexdigest()[:16]}",
            "",
            postgres=url,
            schema=schema,
        )
        self.staging.remove_stale()
