"""touchpoint-ledger: an event-sourced ledger of every customer touchpoint."""

from ledger.codec import event_from_json, event_to_json, parse_event
from ledger.errors import (
    ConfigurationError,
    InvalidEvent,
    LedgerError,
    LogCorrupted,
    LogUnavailable,
)
from ledger.events import EVENT_CLASSES, Touchpoint, TouchpointEvent

__all__ = [
    "EVENT_CLASSES",
    "ConfigurationError",
    "InvalidEvent",
    "LedgerError",
    "LogCorrupted",
    "LogUnavailable",
    "Touchpoint",
    "TouchpointEvent",
    "event_from_json",
    "event_to_json",
    "parse_event",
]
