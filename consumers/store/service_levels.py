"""The service-level rows in the view stores (SQLite and PostgreSQL): table, writes, reads.

One row per event that matters to service levels (:mod:`projections.service_levels`),
written by the projector in the same transaction as the other views and the positions
(``ViewBatch.service``), so each event counts exactly once and a rebuild makes the same
rows. Figures are computed from the rows when asked; the table only needs to give the
rows of a time range quickly (the key is ``(kind, micros, event_id)``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from psycopg.rows import tuple_row

from projections.service_levels import ServiceFact

TABLE = "service_facts"
COLUMNS = "event_id, customer, kind, item, micros, channel, queue, agent, wait, outcome, score"

# A row already there belongs to a batch another projector committed first: this batch's
# guards then fail and roll it back (BatchConflict), so the insert must not fail before them.
INSERT = f"INSERT INTO {{{TABLE}}} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
STAGED = (
    f"INSERT INTO {{{TABLE}}} SELECT * FROM {{staged}}.{TABLE} WHERE true ON CONFLICT DO NOTHING"
)
STAGING_DDL = (
    f"CREATE TABLE {TABLE} (event_id TEXT, customer TEXT, kind TEXT, item TEXT, "
    "micros INTEGER, channel TEXT, queue TEXT, agent TEXT, wait INTEGER, outcome TEXT, "
    "score INTEGER)"
)


def ddl(tables: dict[str, str], *, postgres: bool) -> str:
    """The table, clustered by ``(kind, micros)`` in SQLite (a time range of one kind is
    one sequential read; events arrive roughly in time order, so rows are appended)."""
    integer = "BIGINT" if postgres else "INTEGER"
    keyed = "" if postgres else " WITHOUT ROWID"
    return (
        f"CREATE TABLE IF NOT EXISTS {tables[TABLE]} (event_id TEXT NOT NULL, "
        "customer TEXT NOT NULL, kind TEXT NOT NULL, item TEXT NOT NULL, "
        f"micros {integer} NOT NULL, channel TEXT, queue TEXT, agent TEXT, wait {integer}, "
        f"outcome TEXT, score {integer}, PRIMARY KEY (kind, micros, event_id)){keyed}"
    )


def rows_of(facts: Iterable[ServiceFact]) -> list[tuple[Any, ...]]:
    """The table rows of a batch's facts (a ``ServiceFact`` is already the row), in key
    order (B-trees fill in order)."""
    ordered: list[ServiceFact] = sorted(facts, key=_key)
    return list(ordered)


def _key(row: ServiceFact) -> tuple[str, int, str]:
    return row.kind, row.at, row.event_id


def fetch(recorder: Any, statement: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
    """Rows as plain tuples, straight from the driver: the recorders' own ``select`` makes a
    mapping per row first (eventsourcing's row factories), which costs more than the query
    when a report reads a year of rows. ``recorder`` is a SQLite or PostgreSQL view
    recorder (``projections.store``)."""
    with recorder.datastore.transaction(commit=False) as cursor:
        raw = getattr(cursor, "sqlite_cursor", None)
        if raw is not None:
            raw.row_factory = None
            raw.execute(recorder.sql(statement), params)
            return list(raw.fetchall())
        cursor.row_factory = tuple_row
        cursor.execute(recorder.sql(statement), params)
        return list(cursor.fetchall())


FIGURES: dict[str, frozenset[str]] = {
    "call": frozenset({"micros", "queue", "agent", "wait", "outcome"}),
    "message": frozenset({"event_id", "customer", "micros", "channel", "queue"}),
    "reply": frozenset({"event_id", "customer", "item", "micros", "agent"}),
    "complaint": frozenset({"event_id", "customer", "item", "micros", "channel"}),
    "resolution": frozenset({"event_id", "customer", "item", "micros", "agent"}),
    "feedback": frozenset({"micros", "channel", "agent", "outcome", "score"}),
}
"""The columns service-level figures read of each kind (the others come back as NULL:
a year of rows is read in about half the time)."""


def read(
    recorder: Any,
    kinds: Sequence[str],
    *,
    since: int | None = None,
    until: int | None = None,
    columns: dict[str, frozenset[str]] | None = None,
) -> list[ServiceFact]:
    """The rows of these kinds with event times in ``[since, until]`` (microseconds;
    ``None``: open ended), kind by kind in time order (one range of the key each). With
    ``columns``, only those of each kind are read (``kind`` always); the others are None."""
    clauses = ["kind = ?"]
    bounds: list[Any] = []
    if since is not None:
        clauses.append("micros >= ?")
        bounds.append(since)
    if until is not None:
        clauses.append("micros <= ?")
        bounds.append(until)
    where = " AND ".join(clauses)
    found: list[ServiceFact] = []
    for kind in kinds:
        wanted = None if columns is None else columns[kind] | {"kind"}
        names = ", ".join(
            name if wanted is None or name in wanted else "NULL" for name in COLUMNS.split(", ")
        )
        statement = f"SELECT {names} FROM {{{TABLE}}} WHERE {where}"
        found += map(ServiceFact._make, fetch(recorder, statement, [kind, *bounds]))
    return found


def dump(recorder: Any) -> list[tuple[Any, ...]]:
    """Every row, sorted (for comparing stores and runs)."""
    return fetch(recorder, f"SELECT {COLUMNS} FROM {{{TABLE}}} ORDER BY event_id")
