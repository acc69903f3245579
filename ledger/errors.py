"""One exception tree for the ledger.

Everything the ledger raises on purpose is a :class:`LedgerError`; infrastructure
errors (sqlite3, kafka-python, OS) are translated at the boundary with
``raise LogUnavailable(...) from exc`` so callers (and the CLI) handle one family.
"""

from __future__ import annotations


class LedgerError(Exception):
    """Root of every error the ledger raises deliberately."""


class ConfigurationError(LedgerError):
    """A setting, URL or option is malformed or inconsistent."""


class TopicForgets(ConfigurationError):
    """The Kafka topic is configured to delete or compact events (finite retention,
    ``cleanup.policy=compact``): the ledger refuses to write to it unless allowed
    (``LEDGER_KAFKA_ALLOW_FINITE_RETENTION``)."""


class InvalidEvent(LedgerError):
    """An event does not satisfy the contract.

    ``reasons`` holds one ``"field: problem"`` string per violation, so a
    publisher can fix every problem in one round trip.
    """

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


class NotFound(LedgerError):
    """What was asked about is not there (a customer with no profile or no touchpoints)."""


class LogUnavailable(LedgerError):
    """The event log cannot be reached, opened or written (broker down, file missing)."""


class LogCorrupted(LedgerError):
    """The event log holds something it could never have written itself."""


VIEWS_REMEDY = (
    "the views no longer match this log: run `ledger project rebuild` to build them again "
    "from the start of the log, or `ledger project reset --yes` to drop them and their "
    "positions (the next `ledger project run` starts from the beginning)"
)


class PositionLost(LedgerError):
    """A stored position no longer fits the log it belongs to: reading on from it would
    skip records silently, so nothing is read (see :class:`PositionBeyondEnd` and
    :class:`RecordsDeleted`)."""

    def __init__(self, message: str, *, log: str) -> None:
        self.log = log
        super().__init__(message)


class PositionBeyondEnd(PositionLost):
    """A stored position is past the end of its partition: the log was replaced (a Kafka
    topic deleted and recreated, a broker that lost its data, an embedded log file swapped
    or truncated), and the records now there are not the ones the position counted."""

    def __init__(self, *, log: str, partition: int, position: int, end: int) -> None:
        self.partition, self.position, self.end = partition, position, end
        super().__init__(
            f"{log}, partition {partition}: the stored position {position} is beyond the end "
            f"of the partition ({end}): the log was replaced or lost records (topic deleted "
            f"and recreated, broker data lost, file swapped); {VIEWS_REMEDY}",
            log=log,
        )


class RecordsDeleted(PositionLost):
    """A partition starts after a stored position: records not yet read were deleted under
    it (Kafka retention, a truncated file) and can never be read again."""

    def __init__(self, *, log: str, partition: int, position: int, start: int) -> None:
        self.partition, self.position, self.start = partition, position, start
        super().__init__(
            f"{log}, partition {partition}: records {position}..{start - 1} were deleted "
            f"before they were read (the partition now starts at {start}, the stored "
            f"position is {position}): finite retention or a truncated log; they cannot be "
            "projected or verified from this log. Restore them, or accept the loss and run "
            "`ledger project reset --yes` (views from what is left); see docs/kafka.md",
            log=log,
        )


class LogReplaced(PositionLost):
    """The log is not the one the views were built from (another Kafka topic id, another
    first event in the embedded log), whatever its positions say: a recreated topic that
    already holds more records than the views' positions would otherwise pass unseen."""

    def __init__(self, *, log: str, recorded: str, current: str) -> None:
        self.recorded, self.current = recorded, current
        super().__init__(
            f"{log}: the views were built from another log ({recorded}; this one is "
            f"{current}): it was replaced (topic deleted and recreated, file swapped); "
            f"{VIEWS_REMEDY}",
            log=log,
        )


class KeyStoreUnavailable(LedgerError):
    """The key store (``LEDGER_KEYS``) cannot be reached, opened or written: events that
    carry personal data cannot be encrypted, so they are not appended (never in clear)."""


class MasterKeyError(LedgerError):
    """The master key is missing, malformed, or not the one the key store was made with
    (``LEDGER_MASTER_KEY`` or the master key file)."""
