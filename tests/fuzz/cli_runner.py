"""Running ``ledger`` in-process for the fault suite, and the rule every run must keep."""

from __future__ import annotations

from collections.abc import Collection
from pathlib import Path

from click.testing import CliRunner, Result

from cli import main

ERROR_EXITS = {1, 2}
"""A user's error: exactly one ``error:`` line on stderr. (70 is a bug, never allowed.)"""


class Ledger:
    """One ledger in a folder of its own, driven through the CLI."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def run(
        self, *args: str, allowed: Collection[int] = (0,), stdin: bytes | None = None
    ) -> Result:
        """Run one command; fail unless it exits with one of ``allowed``, without a
        traceback, and with exactly one error line when it exits with an error code."""
        env = {"LEDGER_DATA_DIR": str(self.data_dir), "LEDGER_LOG": None, "LEDGER_DEBUG": None}
        result = CliRunner().invoke(main, list(args), input=stdin, env=env, catch_exceptions=False)
        output = result.stdout + result.stderr
        command = " ".join(args)[:200]
        assert "Traceback" not in output, f"{command}: {output[-2000:]}"
        assert "internal error" not in output, f"{command}: {result.stderr}"
        assert result.exit_code in allowed, (
            f"{command}: exit {result.exit_code} not in {sorted(allowed)}: {output[-2000:]}"
        )
        if result.exit_code in ERROR_EXITS:
            errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
            assert len(errors) == 1, f"{command}: not one error line: {result.stderr}"
        return result
