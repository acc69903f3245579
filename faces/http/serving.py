"""How ``ledger serve`` hands its settings to uvicorn's processes: through the environment
(uvicorn starts ``--workers`` processes that import :func:`app` by name)."""

from __future__ import annotations

import json
import os
from typing import Any

from fastapi import FastAPI

from faces.http.app import create_app
from ledger.settings import Settings

_OPTIONS = "LEDGER_SERVE_OPTIONS"
SERVER_SQLITE_CACHE_MB = 2
"""SQLite page cache per connection of a server thread, unless LEDGER_SQLITE_CACHE_MB says
otherwise: every thread keeps its own connections (log, views, keys), and with the 256 MiB
a batch job wants, a server's memory would grow with each connection's cache up to the size
of the database. Random lookups hardly hit a cache of any size the operating system's file
cache does not hold anyway: 2 MiB (SQLite's default) and 8 MiB cost the same CPU per lookup,
and a process under load settles at ~130 MB instead of climbing past 200 MB."""


def configure(settings: Settings, **options: Any) -> None:
    """Make :func:`app` build the app of ``settings`` with ``options`` in every process."""
    os.environ["LEDGER_LOG"] = settings.log_url
    os.environ["LEDGER_DATA_DIR"] = str(settings.data_dir)
    os.environ[_OPTIONS] = json.dumps(options)
    os.environ.setdefault("LEDGER_SQLITE_CACHE_MB", str(SERVER_SQLITE_CACHE_MB))


def app() -> FastAPI:
    """The app factory uvicorn calls in each server process."""
    return create_app(Settings(), **json.loads(os.environ.get(_OPTIONS, "{}")))
