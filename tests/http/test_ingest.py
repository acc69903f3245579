"""Touchpoints in over HTTP (the CloudEvents binding's three modes), then a projector
applies them; bad bodies, limits, an unavailable log; metrics of both faces."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import orjson
import pytest

from ledger.settings import Settings
from tests.conftest import wait_until
from tests.http.conftest import (
    LEDGER,
    StartServer,
    event,
    free_port,
    ledger,
    ledger_env,
    new_key,
)

BATCH = {"content-type": "application/cloudevents-batch+json"}
STRUCTURED = {"content-type": "application/cloudevents+json"}


def binary_headers(event_id: str, customer: str) -> dict[str, str]:
    return {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": event_id,
        "ce-source": "crm/test",
        "ce-type": "touchpoint.email",
        "ce-subject": customer,
        "ce-time": "2025-06-29T11:00:00Z",
        "ce-traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
    }


def test_three_modes_then_a_projector_applies_them(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = ledger_env(tmp_path)
    token = new_key(env, "crm", "publish", "read")
    server = start_server(env)
    with server.client(token) as http:
        structured = http.post(
            "/v1/events", content=orjson.dumps(event("s-1", "C1")), headers=STRUCTURED
        )
        binary = http.post(
            "/v1/events",
            content=b'{"direction": "outbound", "purpose": "service"}',
            headers=binary_headers("b-1", "C1"),
        )
        again = http.post(
            "/v1/events", content=orjson.dumps(event("s-1", "C1")), headers=STRUCTURED
        )
        wrong = {**event("s-2", "C1"), "time": "yesterday"}
        rejected = http.post("/v1/events", content=orjson.dumps(wrong), headers=STRUCTURED)
        bad_event = {**event("x-2", "C2"), "data": {"direction": "sideways"}}
        batch = http.post(
            "/v1/events",
            content=orjson.dumps(
                [
                    event("x-1", "C2"),
                    bad_event,
                    event("x-1", "C2"),
                    event("s-1", "C1"),
                    "not an object",
                ]
            ),
            headers=BATCH,
        )
    assert structured.status_code == 201
    assert structured.json()["status"] == "accepted"
    assert structured.json()["position"]
    assert binary.status_code == 201, binary.text
    assert again.status_code == 200
    assert again.json()["status"] == "duplicate"
    assert rejected.status_code == 422
    assert any(r.startswith("time:") for r in rejected.json()["reasons"])
    assert batch.status_code == 200
    found = batch.json()
    assert [r["status"] for r in found["results"]] == [
        "accepted",
        "rejected",
        "duplicate",
        "duplicate",
        "rejected",
    ]
    assert (found["accepted"], found["duplicates"], found["rejected"]) == (1, 2, 2)
    assert any(r.startswith("data.direction:") for r in found["results"][1]["reasons"])
    assert found["results"][4]["reasons"] == ["(event): must be a JSON object, got str"]
    # The same events, imported by `ledger import` into another ledger, are judged the same.
    other = ledger_env(tmp_path / "other")
    lines = b"\n".join(orjson.dumps(e) for e in [event("x-1", "C2"), bad_event]) + b"\n"
    imported = orjson.loads(ledger(other, "import", "-", "--json", input=lines, codes=(3,)))
    assert (imported["accepted"], imported["rejected"]) == (1, 1)
    # The binary-mode event kept its extension; a projector applies what came in.
    history = ledger(env, "history", "C1", "--json").splitlines()
    kept = [orjson.loads(x)["event"] for x in history]
    assert [e["id"] for e in kept] == ["s-1", "b-1"]
    assert kept[1]["traceparent"].startswith("00-4bf9")
    assert kept[1]["data"]["purpose"] == "service"
    ledger(env, "project", "run")
    with server.client(token) as http:
        profile = http.get("/v1/customers/C1/profile").json()
        c2 = http.get("/v1/customers/C2/profile").json()
    assert profile["by_type"] == {"touchpoint.email": 2}
    assert c2["by_type"] == {"touchpoint.email": 1}


def test_bad_bodies_and_limits(tmp_path: Path, start_server: StartServer) -> None:
    env = ledger_env(tmp_path)
    token = new_key(env, "crm", "publish")
    server = start_server(env, "--max-batch-events", "3", "--max-body-bytes", "4000")
    with server.client(token) as http:
        malformed = http.post("/v1/events", content=b'[{"id": ', headers=BATCH)
        duplicate_key = http.post(
            "/v1/events", content=b'{"id": "a", "id": "b"}', headers=STRUCTURED
        )
        not_array = http.post("/v1/events", content=b'{"id": "a"}', headers=BATCH)
        text = http.post("/v1/events", content=b"hello", headers={"content-type": "text/plain"})
        binary_text = http.post(
            "/v1/events",
            content=b"hello",
            headers={**binary_headers("b-1", "C1"), "content-type": "text/plain"},
        )
        too_many = http.post(
            "/v1/events",
            content=orjson.dumps([event(f"e-{n}", "C1") for n in range(4)]),
            headers=BATCH,
        )
        too_big = http.post("/v1/events", content=b"[" + b" " * 5000 + b"]", headers=BATCH)

        def chunks() -> object:
            for _ in range(10):
                yield b" " * 1000

        streamed = http.post("/v1/events", content=chunks(), headers=BATCH)  # type: ignore[arg-type]
    assert malformed.status_code == 400
    assert "not valid JSON" in malformed.json()["error"]
    assert duplicate_key.status_code == 422  # the strict reader names the repeated key
    assert "id" in duplicate_key.json()["reasons"][0]
    assert not_array.status_code == 400
    assert text.status_code == 415
    assert binary_text.status_code == 415
    assert too_many.status_code == 413
    assert too_many.json()["limit_events"] == 3
    assert too_big.status_code == 413
    assert streamed.status_code == 413  # no Content-Length: counted as it arrives
    assert ledger(env, "replay", "--json") == b""  # nothing of any of them was appended


def test_an_unavailable_log_answers_503_with_retry_after(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = ledger_env(tmp_path)
    token = new_key(env, "crm", "publish")
    server = start_server(env)  # it checks the log opens, then opens it per thread on use
    for path in tmp_path.glob("ledger.db*"):
        path.unlink()
    (tmp_path / "ledger.db").mkdir()  # from now on the log file cannot be opened
    with server.client(token) as http:
        answer = http.post(
            "/v1/events", content=orjson.dumps(event("e-1", "C1")), headers=STRUCTURED
        )
        ready = http.get("/readyz")
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert "cannot open" in answer.json()["error"]
    assert ready.status_code == 503
    assert ready.headers["retry-after"] == "5"


def test_metrics_count_requests_ingest_and_lag(tmp_path: Path, start_server: StartServer) -> None:
    env = ledger_env(tmp_path)
    token = new_key(env, "crm", "publish", "read")
    server = start_server(env, "--ready-max-lag", "1")
    with server.client(token) as http:
        http.post(
            "/v1/events",
            headers=BATCH,
            content=orjson.dumps(
                [event("e-1", "C1"), event("e-2", "C1"), {**event("e-3", "C1"), "time": "no"}]
            ),
        )
        http.get("/v1/customers/C1/profile")
        lagging = http.get("/readyz")
        text = http.get("/metrics").text
    assert 'ledger_ingest_events_total{outcome="accepted",type="touchpoint.email"} 2.0' in text
    assert 'ledger_ingest_events_total{outcome="rejected",type="touchpoint.email"} 1.0' in text
    assert 'ledger_projector_lag_events{partition="0"} 2.0' in text
    assert 'ledger_http_requests_total{method="POST",route="/v1/events",status="200"} 1.0' in text
    assert 'route="/v1/customers/{customer}/profile",status="200"' in text  # fresh: from the log
    assert "ledger_http_request_duration_seconds_bucket" in text
    assert lagging.status_code == 503
    assert "2 records behind" in lagging.json()["problems"][0]
    # A projector alone serves the same series while it follows the log.
    port = free_port()
    import subprocess

    follower = subprocess.Popen(
        [LEDGER, "project", "run", "--follow", "--metrics-port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def caught_up() -> bool:
            try:
                scraped = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2).text
            except httpx.TransportError:
                return False
            return 'ledger_projector_lag_events{partition="0"} 0.0' in scraped

        assert wait_until(caught_up, 30)
    finally:
        follower.terminate()
        assert follower.wait(15) == 0
    with server.client(token) as http:  # the server reads the status at most once a second
        assert wait_until(lambda: http.get("/readyz").status_code == 200, 10)


@pytest.mark.kafka
def test_http_ingest_on_kafka_then_a_projector_applies_it(
    tmp_path: Path, start_server: StartServer, kafka_settings: Callable[[], Settings]
) -> None:
    settings = kafka_settings()
    env = ledger_env(tmp_path, LEDGER_LOG=settings.log_url, LEDGER_KAFKA_PARTITIONS="4")
    token = new_key(env, "crm", "publish", "read")
    server = start_server(env)
    events = [event(f"k-{n}", f"C{n % 3}") for n in range(9)]
    with server.client(token) as http:
        first = http.post("/v1/events", content=orjson.dumps(events), headers=BATCH).json()
        again = http.post("/v1/events", content=orjson.dumps(events[:2]), headers=BATCH).json()
    assert first["accepted"] == 9
    assert again["accepted"] + again["duplicates"] == 2  # Kafka: the projector deduplicates
    ledger(env, "project", "run")
    with server.client(token) as http:
        profiles = [http.get(f"/v1/customers/C{n}/profile?fresh=false").json() for n in range(3)]
    assert [p["by_type"]["touchpoint.email"] for p in profiles] == [3, 3, 3]


def test_may_contact_with_record_appends_the_decision(
    tmp_path: Path, start_server: StartServer
) -> None:
    env = ledger_env(tmp_path)
    both = new_key(env, "campaigns", "contact-check", "publish", "read")
    server = start_server(env)
    with server.client(both) as http:
        http.post("/v1/events", content=orjson.dumps(event("e-1", "C1")), headers=STRUCTURED)
        asked = http.get(
            "/v1/may-contact?customer=C1&channel=email&purpose=marketing"
            "&at=2025-06-30T12:00:00Z&record=true&requested_by=spring-sale"
        )
        dashboard_without_key = httpx.get(f"{server.url}/dashboard")
    assert asked.status_code == 200
    decision = asked.json()
    assert decision["allowed"] is False  # no e-mail consent on record
    recorded = [
        orjson.loads(x)["event"] for x in ledger(env, "history", "C1", "--json").splitlines()
    ]
    assert [e["type"] for e in recorded] == ["touchpoint.email", "contact.blocked"]
    assert recorded[1]["data"]["requested_by"] == "spring-sale"
    assert dashboard_without_key.status_code == 401
