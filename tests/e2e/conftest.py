"""The ``run`` fixture of the CLI tests: ``ledger`` in an empty folder, as a user runs it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from click.testing import CliRunner, Result

from cli import main

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    """Invoke ``ledger`` with a fresh data dir, as a user in an empty folder would."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LEDGER_LOG", raising=False)
    monkeypatch.delenv("LEDGER_KEYS", raising=False)  # keys.db, master.key in ./ledger-data
    monkeypatch.delenv("LEDGER_MASTER_KEY_FILE", raising=False)

    def invoke(*args: str, input: bytes | str | None = None) -> Result:
        return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)

    return invoke


def lines(result: Result) -> list[dict[str, Any]]:
    """The JSON Lines a command printed, decoded."""
    return [orjson.loads(line) for line in result.stdout.splitlines() if line.strip()]
