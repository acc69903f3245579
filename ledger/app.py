"""The composition root: turn :class:`Settings` into the objects the commands use."""

from __future__ import annotations

from ledger.kafka_log import KafkaLog
from ledger.log import EventLog
from ledger.settings import KafkaLogTarget, Settings, parse_log_url
from ledger.sqlite_log import SQLiteLog


def open_log(settings: Settings, *, create: bool = True) -> EventLog:
    """The log ``settings`` point at. ``create=False`` refuses to start an empty one."""
    target = parse_log_url(settings.log_url)
    if isinstance(target, KafkaLogTarget):
        return KafkaLog(target, settings)
    return SQLiteLog(target.path, create=create, cache_mib=settings.sqlite_cache_mb)
