"""Helpers the benchmarks share: every figure comes from a fresh child process."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any


def run_child(script: str, kind: str, **options: Any) -> dict[str, Any]:
    """Run ``script --child KIND --option value ...`` and return the JSON its last line
    prints, with ``rate`` (events per second) added. ``True`` options are bare flags."""
    command = [sys.executable, script, "--child", kind]
    for name, value in options.items():
        command += [f"--{name}"] if value is True else [f"--{name}", str(value)]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["events"] / result["seconds"] if result["seconds"] else 0.0
    return result
