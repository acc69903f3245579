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


def configure(settings: Settings, **options: Any) -> None:
    """Make :func:`app` build the app of ``settings`` with ``options`` in every process."""
    os.environ["LEDGER_LOG"] = settings.log_url
    os.environ["LEDGER_DATA_DIR"] = str(settings.data_dir)
    os.environ[_OPTIONS] = json.dumps(options)


def app() -> FastAPI:
    """The app factory uvicorn calls in each server process."""
    return create_app(Settings(), **json.loads(os.environ.get(_OPTIONS, "{}")))
