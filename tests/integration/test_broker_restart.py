"""Fault test: the broker stops and restarts under a `project run --follow` group member.

Tansu keeps everything in memory, so a restarted broker has lost the topic: the "data lost
/ topic recreated" case. The follower must wait and say so while the broker is down, then
stop with the clear error (never skip events of the new topic), and `project status` /
`project reset` must see and recover it. Its own broker: the session's must stay up."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from click.testing import CliRunner

from application.wiring import open_log
from cli import main
from ledger.codec import parse_event
from ledger.devbroker import TansuBroker
from ledger.errors import LogUnavailable
from ledger.generate import generated
from ledger.settings import Settings
from tests.conftest import applied_events, wait_until
from tests.integration.test_lost_positions import fresh_projection, views

ROOT = Path(__file__).parents[2]


def test_a_follower_waits_for_a_restarted_broker_then_stops_instead_of_skipping(
    tmp_path: Path,
) -> None:
    broker = TansuBroker(tmp_path / "broker.log")
    try:
        broker.start()
    except LogUnavailable as exc:
        pytest.fail(str(exc))
    settings = Settings(
        log=f"kafka://{broker.bootstrap}/touchpoints-{uuid.uuid4().hex[:8]}",
        store=f"sqlite:///{tmp_path / 'views'}.db",
        kafka_partitions=4,
    )
    env = {
        **os.environ,
        "LEDGER_LOG": settings.log_url,
        "LEDGER_STORE": settings.store_url,
        "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "LEDGER_KAFKA_TIMEOUT_SECONDS": "5",
    }
    follower: subprocess.Popen[str] | None = None
    try:
        events = [parse_event(d) for d in generated(40, 60, seed=5)]
        with open_log(settings) as log:
            log.append(events)
        follower = subprocess.Popen(
            [sys.executable, "-m", "cli", "project", "run", "--follow"],
            env=env,
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert wait_until(lambda: applied_events(settings) == len(events), 60, 0.2)
        before = views(settings)
        broker.stop()  # everything the broker held is gone
        time.sleep(7)
        assert follower.poll() is None, "a follower must wait for the broker, not give up"
        broker.start()
        with open_log(settings) as log:  # a new topic, fewer events than the views counted
            log.append([parse_event(d) for d in generated(6, 10, seed=6)])
        _, err = follower.communicate(timeout=60)
    finally:
        if follower is not None and follower.poll() is None:
            follower.kill()
            follower.communicate()
    try:
        assert follower.returncode == 1, err
        assert "Traceback" not in err
        assert "waiting" in err, "the follower must say that it waits for the broker"
        assert "reachable again" in err
        last = err.strip().splitlines()[-1]
        assert last.startswith("error: Kafka topic"), err
        assert "beyond the end" in last
        assert "ledger project rebuild" in last
        assert views(settings) == before, "nothing of the new topic may be applied"

        runner = CliRunner()
        cli_env = {"LEDGER_STORE": settings.store_url, "LEDGER_KAFKA_SESSION_TIMEOUT_MS": "6000"}

        def ledger(*args: str) -> int:
            result = runner.invoke(main, ["--log", settings.log_url, *args], env=cli_env)
            return result.exit_code

        assert ledger("project", "status") == 1
        assert ledger("project", "reset", "--yes") == 0
        assert ledger("project", "run") == 0
        assert views(settings) == fresh_projection(settings, tmp_path)
        assert ledger("project", "status") == 0
    finally:
        broker.stop()
