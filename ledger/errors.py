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


class InvalidEvent(LedgerError):
    """An event does not satisfy the contract.

    ``reasons`` holds one ``"field: problem"`` string per violation, so a
    publisher can fix every problem in one round trip.
    """

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__("; ".join(reasons))


class LogUnavailable(LedgerError):
    """The event log cannot be reached, opened or written (broker down, file missing)."""


class LogCorrupted(LedgerError):
    """The event log holds something it could never have written itself."""
