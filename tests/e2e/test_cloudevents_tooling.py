"""Standard CloudEvents tooling works out of the box: extensions are kept and replayed,
content types with parameters and header names in any case are read, times are exact, bare
dates mean whole days, and a file of another layout is rejected with every reason."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaProducer

from ledger.settings import Settings
from tests.e2e.conftest import Run, lines

TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def sms(event_id: str, time: str = "2025-01-01T10:00:00Z", **extra: object) -> dict[str, Any]:
    return {
        "specversion": "1.0",
        "id": event_id,
        "source": "crm/sms",
        "type": "touchpoint.sms",
        "subject": "C1",
        "time": time,
        "data": {"direction": "outbound"},
        **extra,
    }


def test_extensions_are_kept_replayed_and_survive_replay_then_import(
    run: Run, tmp_path: Path
) -> None:
    events = [
        sms(
            "x1",
            traceparent=TRACEPARENT,
            tracestate="congo=t61rcWkgMzE",
            partitionkey="C1",
            sequence="7",
            retries=3,
            replayed=False,
            datacontenttype="application/json; charset=utf-8",
        ),
        sms("x2", time="2025-01-02T10:00:00Z"),
    ]
    source = tmp_path / "in.jsonl"
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in events))
    assert run("import", str(source)).exit_code == 0
    replayed = run("replay", "--json").stdout
    first, second = (orjson.loads(line) for line in replayed.splitlines())
    for name in ("traceparent", "tracestate", "partitionkey", "sequence", "retries", "replayed"):
        assert first[name] == events[0][name], name
    assert first["datacontenttype"] == "application/json; charset=utf-8"
    assert "traceparent" not in second
    copy = run("--data-dir", str(tmp_path / "copy"), "import", "-", input=replayed)
    assert copy.exit_code == 0
    assert run("--data-dir", str(tmp_path / "copy"), "replay", "--json").stdout == replayed


def test_what_the_spec_refuses_is_refused_and_core_typos_still_are(run: Run) -> None:
    for extra, expected in [
        ({"trace_parent": TRACEPARENT}, "trace_parent: unknown attribute, and not a valid"),
        ({"traceparent": 1}, "traceparent: must be a string"),
        ({"subjet": "C2"}, "subjet: unknown attribute; did you mean 'subject'?"),
        ({"tme": "2025-01-01T10:00:00Z"}, "tme: unknown attribute; did you mean 'time'?"),
        ({"myext": {"a": 1}}, "myext: an extension value must be a string"),
    ]:
        result = run("append", orjson.dumps(sms("bad", **extra)).decode())
        assert result.exit_code == 1, extra
        [message] = result.stderr.strip().splitlines()
        assert expected in message
    result = run(
        "append", orjson.dumps(sms("bad", data={"direction": "outbound", "x": 1})).decode()
    )
    assert "data.x: unknown field" in result.stderr


def test_kafka_records_from_standard_tools_keep_their_extensions(
    run: Run, kafka_settings: Callable[[], Settings]
) -> None:
    settings = kafka_settings()
    url = settings.log_url
    assert (
        run("--log", url, "append", orjson.dumps(sms("k0", partitionkey="C1")).decode()).exit_code
        == 0
    )
    topic = url.rsplit("/", 1)[1]
    producer = KafkaProducer(bootstrap_servers=url.split("//")[1].split("/")[0])
    binary = [
        ("CE_SPECVERSION", b"1.0"),
        ("ce_Id", b"k1"),
        ("ce_source", b"svc/go"),
        ("ce_type", b"touchpoint.sms"),
        ("ce_subject", b"C1"),
        ("ce_time", b"2025-01-01T11:00:00Z"),
        ("ce_traceparent", TRACEPARENT.encode()),
        ("ce_partitionkey", b"C1"),
        ("Content-Type", b"application/json; charset=utf-8"),
    ]
    producer.send(topic, key=b"C1", value=b'{"direction":"outbound"}', headers=binary)
    structured = orjson.dumps(sms("k2", time="2025-01-01T12:00:00Z", traceparent=TRACEPARENT))
    producer.send(
        topic,
        key=b"C1",
        value=structured,
        headers=[("Content-Type", b"application/cloudevents+json; charset=UTF-8")],
    )
    producer.flush()
    producer.close()
    replayed = {
        e["id"]: e for e in lines(run("--log", url, "replay", "--customer", "C1", "--json"))
    }
    assert set(replayed) == {"k0", "k1", "k2"}
    assert replayed["k0"]["partitionkey"] == "C1"
    assert replayed["k1"]["traceparent"] == TRACEPARENT
    assert replayed["k1"]["partitionkey"] == "C1"
    assert replayed["k1"]["datacontenttype"] == "application/json; charset=utf-8"
    assert replayed["k2"]["traceparent"] == TRACEPARENT
    assert run("--log", url, "project", "run").exit_code == 0
    assert "no parked records" in run("--log", url, "project", "errors").stdout


def test_sub_microsecond_times_are_refused_not_truncated(run: Run) -> None:
    result = run("append", orjson.dumps(sms("n1", time="2025-01-01T10:00:00.123456789Z")).decode())
    assert result.exit_code == 1
    assert "more precise than a microsecond" in result.stderr
    assert (
        run(
            "append", orjson.dumps(sms("n2", time="2025-01-01T10:00:00.123456Z")).decode()
        ).exit_code
        == 0
    )
    assert [e["time"] for e in lines(run("replay", "--json"))] == ["2025-01-01T10:00:00.123456Z"]


def test_a_bare_date_as_an_upper_bound_includes_that_whole_day(run: Run) -> None:
    for event_id, time in [
        ("d1", "2025-06-29T12:00:00Z"),
        ("d2", "2025-06-30T00:00:00Z"),
        ("d3", "2025-06-30T23:59:59.999999Z"),
        ("d4", "2025-07-01T00:00:00Z"),
    ]:
        assert run("append", orjson.dumps(sms(event_id, time=time)).decode()).exit_code == 0
    ids = lambda result: [e["id"] for e in lines(result)]  # noqa: E731
    assert ids(run("replay", "--until", "2025-06-30", "--json")) == ["d1", "d2", "d3"]
    assert ids(run("replay", "--since", "2025-06-30", "--json")) == ["d2", "d3", "d4"]
    history = lines(run("history", "C1", "--until", "2025-06-30", "--json"))
    assert [h["event"]["id"] for h in history] == ["d1", "d2", "d3"]
    assert run("project", "run").exit_code == 0
    profile = orjson.loads(run("profile", "C1", "--as-of", "2025-06-30", "--json").stdout)
    assert sum(profile["by_type"].values()) == 3
    assert "end of that UTC day" in " ".join(run("profile", "--help").stdout.split())


def test_a_file_of_another_layout_names_every_missing_attribute_and_unknown_column(
    run: Run, tmp_path: Path
) -> None:
    source = tmp_path / "crm-export.csv"
    source.write_text("customer_id,date,amount\nC1,2025-01-01,19.90\n")
    rejects = tmp_path / "rejects.jsonl"
    assert run("import", str(source), "--rejects", str(rejects)).exit_code == 3
    reasons = orjson.loads(rejects.read_text())["reasons"]
    for expected in (
        "customer_id: unknown attribute",
        "date: unknown attribute; did you mean 'data'?",
        "amount: unknown attribute",
        "id: required",
        "source: required",
        "subject: required",
        "time: required",
        "data: required",
    ):
        assert any(r.startswith(expected) for r in reasons), (expected, reasons)
    assert any(r.startswith("type: required") for r in reasons)


def test_csv_cells_are_converted_by_type_but_json_strings_are_not_numbers(
    run: Run, tmp_path: Path
) -> None:
    source = tmp_path / "emails.csv"
    source.write_text(
        "id,source,type,subject,time,data.direction,data.bounced\n"
        "e1,mail,touchpoint.email,C1,2025-01-01T10:00:00Z,outbound,true\n"
        "e2,mail,touchpoint.email,C1,2025-01-01T10:00:00Z,outbound,yes\n"
    )
    rejects = tmp_path / "rejects.jsonl"
    assert run("import", str(source), "--rejects", str(rejects)).exit_code == 3
    [rejected] = [orjson.loads(line) for line in rejects.read_text().splitlines()]
    assert rejected["line"] == 3
    assert any("data.bounced: 'yes'" in r for r in rejected["reasons"])
    [email] = lines(run("replay", "--json"))
    assert email["data"]["bounced"] is True
    document = sms("s1", data={"direction": "outbound", "segments": "3"})
    result = run("append", orjson.dumps(document).decode())
    assert result.exit_code == 1
    assert "data.segments: '3' is a string, not a whole number" in result.stderr
    appended = run(
        "append",
        "--type",
        "sms",
        "--customer",
        "C1",
        "--set",
        "direction=outbound",
        "--set",
        "segments=3",
    )
    assert appended.exit_code == 0
