"""Fixtures of the HTTP tests: ``ledger`` run as a user runs it, and ``ledger serve`` started
on a free port over real HTTP (stopped with SIGTERM after the test)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

LEDGER = str(Path(sys.executable).parent / "ledger")
AT = "2025-06-30T12:00:00Z"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def ledger_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    return {**env, "LEDGER_DATA_DIR": str(data_dir), **extra}


def ledger(
    env: dict[str, str], *args: str, input: bytes | None = None, codes: tuple[int, ...] = (0,)
) -> bytes:
    """Run ``ledger ARGS``; its stdout (its exit code must be one of ``codes``)."""
    done = subprocess.run(
        [LEDGER, *args], env=env, input=input, capture_output=True, check=False, timeout=240
    )
    assert done.returncode in codes, (args, done.stderr.decode())
    return done.stdout


def new_key(env: dict[str, str], name: str, *scopes: str) -> str:
    scope_args = [a for s in scopes for a in ("--scope", s)]
    return ledger(env, "api-keys", "create", name, *scope_args).decode().strip()


class Server:
    """``ledger serve`` in a process of its own, on a free port."""

    def __init__(self, env: dict[str, str], *args: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.output = tempfile.TemporaryFile()  # noqa: SIM115  (closed by stop(): no pipe)
        self.process = subprocess.Popen(
            [LEDGER, "serve", "--port", str(self.port), *args],
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.output.seek(0)
                out = self.output.read().decode()
                self.output.close()
                pytest.fail(f"ledger serve exited: {out}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("ledger serve did not answer /healthz within 30 s")

    def client(self, token: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=60)

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)
        self.output.close()


StartServer = Callable[..., Server]


@pytest.fixture
def start_server() -> Iterator[StartServer]:
    started: list[Server] = []

    def start(env: dict[str, str], *args: str) -> Server:
        server = Server(env, *args)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


def event(event_id: str, customer: str, time: str = "2025-06-29T10:00:00Z") -> dict[str, Any]:
    """A valid outbound marketing e-mail as a structured-mode CloudEvent."""
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "crm/test",
        "type": "touchpoint.email",
        "subject": customer,
        "time": time,
        "data": {"direction": "outbound", "purpose": "marketing", "campaign": "http-test"},
    }
