"""Scale-out: two ``ledger serve`` processes and two projectors in one consumer group, on one
Kafka log and one PostgreSQL view store (the deployment of docs/http.md)."""

from __future__ import annotations

import signal
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest

from ledger.settings import Settings
from tests.conftest import applied_events, wait_until
from tests.http.conftest import LEDGER, StartServer, event, ledger_env, new_key

BATCH = {"content-type": "application/cloudevents-batch+json"}


@pytest.fixture
def postgres_store(postgres_url: str) -> Iterator[str]:
    schema = f"t_{uuid.uuid4().hex[:16]}"
    yield f"{postgres_url}?schema={schema}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


@pytest.mark.kafka
def test_two_api_processes_and_two_projectors_share_one_store(
    tmp_path: Path,
    start_server: StartServer,
    kafka_settings: Callable[[], Settings],
    postgres_store: str,
) -> None:
    log_url = kafka_settings().log_url
    env = ledger_env(
        tmp_path,
        LEDGER_LOG=log_url,
        LEDGER_STORE=postgres_store,
        LEDGER_KAFKA_PARTITIONS="4",
        LEDGER_KAFKA_SESSION_TIMEOUT_MS="6000",
    )
    token = new_key(env, "crm", "publish", "read")
    first, second = start_server(env), start_server(env, "--workers", "2")
    group = f"g-{uuid.uuid4().hex[:8]}"
    projectors = [
        subprocess.Popen(
            [LEDGER, "project", "run", "--follow", "--group", group, "--batch-size", "50"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for _ in range(2)
    ]
    try:
        customers = [f"C{n:07d}" for n in range(40)]
        for number, server in enumerate((first, second)):
            events = [
                event(f"e-{number}-{n}", customers[n % 40], f"2025-06-{1 + n % 28:02d}T10:00:00Z")
                for n in range(200)
            ]
            with server.client(token) as http:
                for start in range(0, 200, 50):
                    answer = http.post(
                        "/v1/events",
                        content=orjson.dumps(events[start : start + 50]),
                        headers=BATCH,
                    )
                    assert answer.status_code == 200, answer.text
                    assert answer.json()["accepted"] == 50
        settings = Settings(log=log_url, store=postgres_store, kafka_partitions=4)
        assert wait_until(lambda: applied_events(settings) == 400, 90), applied_events(settings)
        with first.client(token) as a, second.client(token) as b:
            for customer in customers[:5]:
                path = f"/v1/customers/{customer}/profile?fresh=false"
                one, other = a.get(path), b.get(path)
                assert one.status_code == 200
                assert one.content == other.content
                assert one.json()["by_type"] == {"touchpoint.email": 10}
            status = a.get("/v1/project/status").json()
        assert sum(p["lag_events"] for p in status["partitions"]) == 0
        assert len(status["partitions"]) == 4
    finally:
        for projector in projectors:
            projector.send_signal(signal.SIGTERM)
        for projector in projectors:
            code = projector.wait(30)
            assert code == 0, projector.stderr.read().decode() if projector.stderr else ""
            if projector.stderr:
                projector.stderr.close()
