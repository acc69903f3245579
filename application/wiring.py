"""The composition root: turn :class:`Settings` into the objects the commands use.

Part of the application layer (with :mod:`application.service`), so it may build read-side
objects too; the write-side modules never import the read side.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote

from consumers.store import PostgresViewStore, SQLiteViewStore, ViewStore
from ledger.errors import ConfigurationError
from ledger.kafka_log import KafkaLog
from ledger.log import EventLog
from ledger.privacy.keystore import KeyStore, open_key_store
from ledger.privacy.master import MasterKey, load_master_key
from ledger.privacy.protect import Protector
from ledger.redact import redact_url
from ledger.settings import KafkaLogTarget, LogTarget, Settings, parse_log_url
from ledger.sqlite_log import SQLiteLog

_T = TypeVar("_T")


class _Kept(threading.local):
    """The logs and stores one thread keeps open (see :func:`keep_open`)."""

    def __init__(self) -> None:
        self.generation = -1
        self.opened: dict[tuple[str, ...], Any] = {}


_kept = _Kept()
_keeping = {"on": 0, "generation": 0}
"""Whether this process keeps logs and stores open, and the generation of what is kept."""


def keep_open() -> None:
    """From now on, in this process, :func:`open_log` and :func:`open_store` hand each thread
    one log and one store per URL, kept open: closing them does nothing. For a long-running
    face (the HTTP server answers thousands of questions a second; opening a SQLite file or a
    Kafka producer per question would cost more than the answer). Every use case works
    unchanged: it opens and closes as before."""
    _keeping["on"] = 1


def forget_kept() -> None:
    """Open afresh from now on (after a log or store became unreachable): every thread drops
    what it kept at its next open."""
    _keeping["generation"] += 1


@dataclass(frozen=True)
class _Urls:
    log: str
    store: str
    keys: str
    master_key: str


_urls_of: dict[int, tuple[Settings, _Urls]] = {}


def _urls(settings: Settings) -> _Urls:
    """``settings``' URLs, worked out once per settings object (they are frozen): each
    property joins paths afresh, and a server asks for them several times per request."""
    found = _urls_of.get(id(settings))
    if found is not None and found[0] is settings:
        return found[1]
    urls = _Urls(
        settings.log_url, settings.store_url, settings.keys_url, str(settings.master_key_path)
    )
    if len(_urls_of) >= 64:  # a process sees one or a few; never let them pile up
        _urls_of.clear()
    _urls_of[id(settings)] = (settings, urls)
    return urls


@lru_cache(maxsize=64)
def _log_target(url: str) -> LogTarget:
    """:func:`parse_log_url`, remembered per URL (a refused URL raises every time)."""
    return parse_log_url(url)


def _noop() -> None:
    return None


def _reused(key: tuple[str, ...], make: Callable[[], _T]) -> _T:
    if not _keeping["on"]:
        return make()
    if _kept.generation != _keeping["generation"]:
        _kept.opened, _kept.generation = {}, _keeping["generation"]
    found = _kept.opened.get(key)
    if found is None:
        found = make()
        setattr(found, "close", _noop)  # shared by this thread's later calls  # noqa: B010
        _kept.opened[key] = found
    return found


def open_log(settings: Settings, *, create: bool = True) -> EventLog:
    """The log ``settings`` point at, encrypting personal values on append (unless
    ``settings.encrypt`` is off). ``create=False`` refuses to start an empty one."""
    return _reused(
        ("log", _urls(settings).log, str(create)), lambda: _open_log(settings, create=create)
    )


def _open_log(settings: Settings, *, create: bool) -> EventLog:
    target = _log_target(settings.log_url)
    log: EventLog
    if isinstance(target, KafkaLogTarget):
        log = KafkaLog(target, settings)
    else:
        log = SQLiteLog(target.path, create=create, cache_mib=settings.sqlite_cache_mb)
    if settings.encrypt:
        log.protector = Protector(open_keys(settings))
    return log


def open_keys(settings: Settings) -> KeyStore:
    """The key store ``settings`` point at (opened, and the master key loaded, on first
    use: a command that meets no personal data never needs either). Kept open per thread
    under :func:`keep_open`, like logs and stores: it caches its connection and the master
    key's check, never a customer's data key (each lookup reads the rows afresh, so a key
    destroyed by ``ledger erase`` in another process is not used again)."""
    return _reused(
        ("keys", _urls(settings).keys, _urls(settings).master_key), lambda: _open_keys(settings)
    )


def _open_keys(settings: Settings) -> KeyStore:
    def master(may_create: bool) -> MasterKey:
        return load_master_key(settings.master_key, settings.master_key_path, may_create=may_create)

    return open_key_store(settings.keys_url, master)


def known_partitions(settings: Settings) -> list[int]:
    """The partitions the views may hold positions of, without asking the log."""
    if isinstance(_log_target(_urls(settings).log), KafkaLogTarget):
        return list(range(settings.kafka_partitions))
    return [0]


def fresh_by_default(settings: Settings) -> bool:
    """Whether ``profile`` and ``contacts`` read the log's tail unless told not to: on the
    embedded log (one indexed query, ~0.1 ms), not on Kafka (a consumer and a scan of the
    customer's partition from the views' position: tens of milliseconds and up)."""
    return not isinstance(_log_target(_urls(settings).log), KafkaLogTarget)


def log_name(settings: Settings) -> str:
    """What the view store calls the log its positions belong to."""
    target = _log_target(_urls(settings).log)
    return target.topic if isinstance(target, KafkaLogTarget) else "embedded"


def open_store(settings: Settings) -> ViewStore:
    """The view store ``settings`` point at: ``sqlite:///PATH`` or
    ``postgresql://user:password@host:port/database[?schema=NAME]``."""
    urls = _urls(settings)
    return _reused(("store", urls.store, urls.log), lambda: _open_store(settings))


def _open_store(settings: Settings) -> ViewStore:
    url = settings.store_url
    scheme, _, rest = url.partition("://")
    window = round(settings.dedupe_window_days * 86_400_000_000) or None
    if scheme in ("postgresql", "postgres"):
        store: ViewStore = PostgresViewStore(url, log_name(settings))
        store.dedupe_window = window
        return store
    if scheme != "sqlite" or not rest.startswith("/") or len(rest) < 2:
        raise ConfigurationError(
            f"store URL {redact_url(url)!r}: expected sqlite:///PATH or postgresql://USER@HOST/DATABASE"
        )
    store = SQLiteViewStore(
        Path(unquote(rest[1:])), log_name(settings), cache_mib=settings.sqlite_cache_mb
    )
    store.dedupe_window = window
    return store
