"""The view store: profile rows, contact slots, dedupe records and positions, one transaction.

Built on eventsourcing's tracking recorders (SQLite and PostgreSQL): each batch writes its
view rows, the id of every event it applied, its dead letters and the tracked position of
each log partition (``Tracking("views|<log>:<partition>", next offset)``) in one
transaction, so a position is never committed for rows the view does not hold, and an event
re-published with the same id never counts twice.

- :mod:`~consumers.store.batch`: what a projector hands a store (:class:`ViewBatch`) and the
  errors a commit raises;
- :mod:`~consumers.store.schema`: the tables, the statements that write a batch, staging files;
- :mod:`~consumers.store.recorders`: the SQLite and PostgreSQL recorders that commit it;
- :mod:`~consumers.store.staging`: worker processes' staging folders and read-only reader;
- :mod:`~consumers.store.views`: :class:`ViewStore`, what projectors and use cases call.
"""

from consumers.store.batch import (
    BatchConflict,
    Cleartext,
    DeadLetter,
    Misplaced,
    PreparedBatch,
    Seen,
    SharedEventId,
    StoreUnavailable,
    ViewBatch,
    decode_headers,
    encode_headers,
)
from consumers.store.schema import write_staged
from consumers.store.staging import Staging, ViewReader
from consumers.store.views import PostgresViewStore, SQLiteViewStore, ViewStore

__all__ = [
    "BatchConflict",
    "Cleartext",
    "DeadLetter",
    "Misplaced",
    "PostgresViewStore",
    "PreparedBatch",
    "SQLiteViewStore",
    "Seen",
    "SharedEventId",
    "Staging",
    "StoreUnavailable",
    "ViewBatch",
    "ViewReader",
    "ViewStore",
    "decode_headers",
    "encode_headers",
    "write_staged",
]
