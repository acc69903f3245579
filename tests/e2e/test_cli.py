"""The ``ledger`` command end to end: exit codes, output, files, idempotency."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import orjson
import pytest

from application.file_lock import held
from ledger.settings import Settings
from tests.e2e.conftest import Run, lines

PURCHASE = [
    "--type",
    "purchase",
    "--customer",
    "C1",
    "--set",
    "channel=web",
    "--set",
    "order_id=O1",
    "--set",
    "amount=19.90",
    "--set",
    "currency=GBP",
    "--set",
    "item_count=1",
]


COMMANDS = [
    "append",
    "import",
    "replay",
    "generate",
    "demo",
    "schema",
    "project",
    "project run",
    "project status",
    "project reset",
    "project errors",
    "profile",
    "contacts",
    "contacts top",
    "customers",
    "history",
    "audit",
    "audit keygen",
    "audit seal",
    "audit verify",
    "audit export",
    "policy",
    "policy check",
    "policy show",
    "may-contact",
    "violations",
    "pressure",
    "erase",
    "erasures",
    "subject-access",
    "keys",
    "keys backup",
    "keys restore",
    "copy",
    "doctor",
    "identity",
    "identity suspicious",
    "link",
    "unlink",
    "merge",
    "unmerge",
]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(run: Run, command: str) -> None:
    result = run(*command.split(), "--help")
    assert result.exit_code == 0
    assert "Example:" in result.stdout
    assert f"ledger {command}" in result.stdout.split("Example:")[1]


def test_the_group_lists_every_command(run: Run) -> None:
    result = run("--help")
    for command in COMMANDS:
        assert command.split()[0] in result.stdout


def test_append_prints_id_and_position_then_reports_the_duplicate(run: Run) -> None:
    first = run("append", *PURCHASE, "--id", "evt-1")
    assert first.exit_code == 0
    assert first.stdout.strip() == "appended evt-1 at position 0:1"
    again = run("append", *PURCHASE, "--id", "evt-1", "--json")
    assert again.exit_code == 0
    assert orjson.loads(again.stdout) == {"id": "evt-1", "status": "duplicate", "position": "0:1"}


def test_append_a_json_document_from_stdin(run: Run) -> None:
    document = {
        "id": "d1",
        "source": "crm",
        "type": "complaint.opened",
        "subject": "C7",
        "time": "2025-02-01T09:00:00+03:00",
        "data": {"channel": "phone", "complaint_id": "K1", "category": "delivery"},
    }
    result = run("append", "-", "--json", input=orjson.dumps(document))
    assert result.exit_code == 0
    assert orjson.loads(result.stdout)["status"] == "appended"
    replayed = lines(run("replay", "--json"))
    assert replayed[0]["data"]["severity"] == "medium"  # the default, now explicit
    assert replayed[0]["time"] == "2025-02-01T09:00:00+03:00"


def test_an_invalid_event_is_one_line_naming_each_field_and_exit_1(run: Run) -> None:
    result = run(
        "append",
        "--type",
        "purchase",
        "--customer",
        "C1",
        "--set",
        "channel=fax",
        "--set",
        "amount=-1",
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    [message] = result.stderr.strip().splitlines()
    assert message.startswith("error: data.channel: ")
    for field in ("data.order_id: required", "data.amount:", "data.currency: required"):
        assert field in message
    assert "Traceback" not in result.output


def test_usage_mistakes_are_explained_without_a_traceback(run: Run) -> None:
    assert run("append", "--type", "fax", "--customer", "C1").exit_code == 2
    assert run("append").exit_code == 2
    result = run("replay", "--since", "2025-01-01T10:00")
    assert result.exit_code == 2
    assert "not an RFC 3339 timestamp with a time zone" in result.stderr
    result = run("replay")
    assert result.exit_code == 1
    assert result.stderr.startswith("error: no ledger at ")
    result = run("--log", "kafka://nohost/t", "replay")
    assert (result.exit_code, result.stderr.strip()) == (
        1,
        "error: log URL 'kafka://nohost/t': server 'nohost' is not host:port",
    )


def test_import_accepts_good_lines_rejects_bad_ones_and_is_idempotent(
    run: Run, tmp_path: Path
) -> None:
    good = [
        {
            "id": f"e{i}",
            "source": "s",
            "type": "touchpoint.sms",
            "subject": f"C{i % 3}",
            "time": f"2025-01-0{i + 1}T10:00:00Z",
            "data": {"direction": "outbound"},
        }
        for i in range(5)
    ]
    text = b"".join(orjson.dumps(e) + b"\n" for e in good[:2])
    text += b'{"id": "bad-1", "type": "touchpoint.sms"}\n' + b"[1]\n"
    text += b"".join(orjson.dumps(e) + b"\n" for e in good[2:])
    source = tmp_path / "in.jsonl"
    source.write_bytes(text)
    rejects = tmp_path / "rejects.jsonl"
    result = run("import", str(source), "--rejects", str(rejects), "--json")
    assert result.exit_code == 3
    summary = orjson.loads(result.stdout)
    assert (summary["read"], summary["accepted"], summary["duplicates"], summary["rejected"]) == (
        7,
        5,
        0,
        2,
    )
    rejected = [orjson.loads(line) for line in rejects.read_text().splitlines()]
    assert [r["line"] for r in rejected] == [3, 4]
    assert "source: required" in rejected[0]["reasons"]
    assert rejected[0]["input"] == '{"id": "bad-1", "type": "touchpoint.sms"}'
    assert [e["id"] for e in lines(run("replay", "--json"))] == [e["id"] for e in good]
    source.write_bytes(b"".join(orjson.dumps(e) + b"\n" for e in good))
    again = run("import", str(source), "--json")
    assert again.exit_code == 0
    assert orjson.loads(again.stdout)["duplicates"] == 5
    assert len(lines(run("replay", "--json"))) == 5


def test_import_rejects_land_in_the_data_dir_by_default(run: Run, tmp_path: Path) -> None:
    source = tmp_path / "calls.csv"
    source.write_text(
        "id,source,type,subject,time,data.direction,data.outcome\n"
        "c1,cc,touchpoint.call,C1,2025-01-01T10:00:00Z,inbound,answered\n"
        "c2,cc,touchpoint.call,C1,2025-01-01T10:00:00Z,inbound,hung up\n"
    )
    result = run("import", str(source))
    assert result.exit_code == 3
    assert "read 2: 1 accepted, 0 duplicates, 1 rejected" in result.stdout
    [rejects] = (tmp_path / "ledger-data" / "rejects").glob("calls.csv-*.jsonl")
    assert str(rejects.relative_to(tmp_path)) in result.stdout
    assert orjson.loads(rejects.read_text())["line"] == 3


def test_replay_filters_and_the_output_imports_into_another_ledger_identically(
    run: Run, tmp_path: Path
) -> None:
    assert run("generate", "--customers", "40", "--days", "60", "--seed", "9").exit_code == 0
    everything = run("replay", "--json").stdout
    purchases = lines(run("replay", "--type", "purchase", "--type", "refund", "--json"))
    assert purchases
    assert {e["type"] for e in purchases} == {"touchpoint.purchase", "touchpoint.refund"}
    customer = purchases[0]["subject"]
    theirs = lines(run("replay", "--customer", customer, "--since", "2025-01-15", "--json"))
    assert theirs
    assert all(e["subject"] == customer and e["time"] >= "2025-01-15" for e in theirs)
    assert len(lines(run("replay", "--limit", "7", "--json"))) == 7
    later = lines(run("replay", "--from-position", "100", "--with-position"))
    assert later[0]["position"] == "0:100"
    copy = run("--data-dir", str(tmp_path / "copy"), "import", "-", "--json", input=everything)
    assert copy.exit_code == 0
    assert run("--data-dir", str(tmp_path / "copy"), "replay", "--json").stdout == everything


def test_replay_table_is_readable(run: Run) -> None:
    run("append", *PURCHASE, "--id", "t1", "--time", "2025-03-04T05:06:07Z")
    result = run("replay", "--format", "table")
    assert "order O1: 19.90 GBP, 1 items" in result.stdout
    assert "touchpoint.purchase" in result.stdout


def test_generate_is_deterministic_per_seed(run: Run, tmp_path: Path) -> None:
    for name, seed in (("a", "5"), ("b", "5"), ("c", "6")):
        result = run(
            "generate",
            "--customers",
            "30",
            "--days",
            "30",
            "--seed",
            seed,
            "--out",
            str(tmp_path / f"{name}.jsonl"),
        )
        assert result.exit_code == 0
    a, b, c = ((tmp_path / f"{n}.jsonl").read_bytes() for n in "abc")
    assert a == b
    assert a != c


def test_demo_reports_the_log_and_is_idempotent(run: Run) -> None:
    first = run("demo", "--customers", "60", "--json")
    assert first.exit_code == 0
    report = orjson.loads(first.stdout)
    assert report["this_run"]["accepted"] == report["events"] > 500
    assert report["customers"] == 60
    assert report["late_events"] > 0
    assert set(report["by_type"]) >= {"touchpoint.purchase", "complaint.opened"}
    second = orjson.loads(run("demo", "--customers", "60", "--json").stdout)
    assert second["this_run"]["accepted"] == 0
    assert second["this_run"]["duplicates"] == report["events"]
    assert second["events"] == report["events"]
    relationship = report["relationship"]
    assert sum(relationship["statuses"].values()) == 60
    assert relationship["projected"] == report["events"]
    assert relationship["most_contacted"]
    spenders = [Decimal(row["net_spend"]) for row in relationship["top_spenders"]]
    assert spenders == sorted(spenders, reverse=True)
    assert set(report["violations"]) <= {"consent", "cap", "quiet", "complaint"}
    assert report["violations"]  # the generated history over-contacts on purpose
    assert set(report["over_caps"]) == {
        cap for cap in report["over_caps"] if cap.startswith("marketing")
    }
    people = run("demo", "--customers", "60")
    assert "Touchpoints by type" in people.stdout
    assert "The busiest customer" in people.stdout
    assert "The relationship on" in people.stdout


def test_schema_files_match_the_committed_docs(run: Run, tmp_path: Path) -> None:
    result = run("schema", "--out", str(tmp_path / "schema"))
    assert result.exit_code == 0
    committed = Path(__file__).parents[2] / "docs" / "schema"
    written = sorted(p.name for p in (tmp_path / "schema").iterdir())
    assert written == sorted(p.name for p in committed.iterdir()), (
        "run: ledger schema --out docs/schema"
    )
    for name in written:
        assert (tmp_path / "schema" / name).read_bytes() == (committed / name).read_bytes(), name
    assert orjson.loads(run("schema").stdout)["kafka"]["producer"].startswith("acks=all")


def test_the_same_commands_work_against_kafka(
    run: Run, kafka_settings: Callable[[], Settings], tmp_path: Path
) -> None:
    url = kafka_settings().log_url
    assert run("--log", url, "generate", "--customers", "30", "--days", "30").exit_code == 0
    assert run("--log", url, "append", *PURCHASE, "--id", "k1").exit_code == 0
    replayed = lines(run("--log", url, "replay", "--json"))
    assert "k1" in {e["id"] for e in replayed}
    mine = lines(run("--log", url, "replay", "--customer", "C1", "--json"))
    assert [e["id"] for e in mine] == ["k1"]


def test_the_installed_console_script_runs_the_demo(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "ledger"
    result = subprocess.run(
        [str(script), "demo", "--customers", "30", "--days", "30"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "the log holds" in result.stdout
    assert (tmp_path / "ledger-data" / "ledger.db").exists()


def test_a_rebuild_or_reset_while_a_rebuild_runs_is_refused_and_the_views_stay(
    run: Run, tmp_path: Path
) -> None:
    assert run("generate", "--customers", "20", "--days", "30", "--seed", "3").exit_code == 0
    assert run("project", "run").exit_code == 0
    before = orjson.loads(run("project", "status", "--json").stdout)["rows"]
    log = tmp_path / "ledger-data" / "ledger.db"
    with held(log.with_name(log.name + ".rebuild.lock")):  # a rebuild running elsewhere
        refused = run("project", "rebuild")
        reset = run("project", "reset", "--yes")  # would drop its tables too
    for result in (refused, reset):
        assert result.exit_code == 1
        assert "another rebuild of these views is running" in result.output
    assert orjson.loads(run("project", "status", "--json").stdout)["rows"] == before
    assert run("project", "rebuild").exit_code == 0  # once it has ended


def test_read_models_from_the_command_line(run: Run) -> None:
    assert run("generate", "--customers", "80", "--days", "200", "--seed", "3").exit_code == 0
    first = orjson.loads(run("project", "run", "--json").stdout)
    assert first["applied"] == first["records"] > 1000
    assert orjson.loads(run("project", "run", "--json").stdout)["records"] == 0
    status = orjson.loads(run("project", "status", "--json").stdout)
    assert status["rows"]["profiles"] == 80
    [partition] = status["partitions"]
    assert (partition["position"], partition["end"], partition["lag_events"]) == (
        first["records"] + 1,
        first["records"] + 1,
        0,
    )
    assert partition["lag_seconds"] == 0
    late = run(
        "append",
        "--type",
        "sms",
        "--customer",
        "C0000001",
        "--set",
        "direction=outbound",
        "--time",
        "2026-06-01T00:00:00Z",
    )
    assert late.exit_code == 0
    [behind] = orjson.loads(run("project", "status", "--json").stdout)["partitions"]
    assert behind["lag_events"] == 1
    assert behind["lag_seconds"] > 0
    assert orjson.loads(run("project", "run", "--json").stdout)["applied"] == 1
    at = "2025-07-20"
    top = orjson.loads(
        run(
            "contacts", "top", "--window", "30d", "--direction", "outbound", "--at", at, "--json"
        ).stdout
    )
    assert top
    assert top == sorted(top, key=lambda row: (-row["contacts"], row["customer"]))
    customer = top[0]["customer"]
    theirs = orjson.loads(run("contacts", customer, "--window", "30d", "--at", at, "--json").stdout)
    outbound = sum(row["30d"] for row in theirs["contacts"] if row["direction"] == "outbound")
    assert outbound == top[0]["contacts"]
    shown = orjson.loads(run("profile", customer, "--at", at, "--json").stdout)
    assert shown["customer"] == customer
    assert shown["status"] in {"active", "passive", "lapsed", "prospect"}
    everyone = set(orjson.loads(run("customers", "--json").stdout))
    by_status = [
        set(orjson.loads(run("customers", "--status", s, "--at", at, "--json").stdout))
        for s in ("active", "passive", "lapsed", "prospect")
    ]
    assert set().union(*by_status) == everyone
    assert sum(len(group) for group in by_status) == len(everyone)  # a partition
    assert run("project", "errors").stdout.strip() == "no parked records"
    missing = run("profile", "nobody")
    assert (missing.exit_code, missing.stderr.startswith("error: no profile")) == (1, True)


def test_history_and_as_of_from_the_command_line(run: Run) -> None:
    assert run("generate", "--customers", "30", "--days", "120", "--seed", "4").exit_code == 0
    assert run("project", "run").exit_code == 0
    subjects = [e["subject"] for e in lines(run("replay", "--json"))]
    customer = max(sorted(set(subjects)), key=subjects.count)
    history = lines(run("history", customer, "--json"))
    assert history
    assert {h["event"]["subject"] for h in history} == {customer}
    times = [h["event"]["time"] for h in history]
    moment = times[len(times) // 2]
    until = lines(run("history", customer, "--until", moment, "--json"))
    assert 0 < len(until) < len(history)
    then = orjson.loads(run("profile", customer, "--as-of", moment, "--json").stdout)
    now = orjson.loads(run("profile", customer, "--json", "--at", moment).stdout)
    assert sum(then["by_type"].values()) == len(until)
    assert sum(now["by_type"].values()) == len(history)
    table = run("history", customer).stdout.splitlines()
    assert len(table) == len(history)
    assert all("recorded" in line for line in table)
    contacts = orjson.loads(
        run("contacts", customer, "--as-of", moment, "--window", "90d", "--json").stdout
    )
    assert contacts["at"].startswith(moment[:10])


def test_seal_verify_export_from_the_command_line(run: Run, tmp_path: Path) -> None:
    assert run("generate", "--customers", "20", "--days", "60").exit_code == 0
    unsealed = run("audit", "verify")
    assert (unsealed.exit_code, "no seals for log 'embedded'" in unsealed.stderr) == (1, True)
    assert "audit seal` first" not in unsealed.stderr
    assert not (tmp_path / "ledger-data" / "audit.db").exists()  # a check creates nothing
    assert run("audit", "keygen", "keys/seal.pem").exit_code == 0
    assert run("audit", "keygen", "keys/seal.pem").exit_code == 1  # never overwrites a key
    sealed = orjson.loads(run("audit", "seal", "--key", "keys/seal.pem", "--json").stdout)
    assert sealed["records"] > 100
    clean = run("audit", "verify", "--public-key", "keys/seal.pem.pub", "--json")
    assert clean.exit_code == 0
    assert orjson.loads(clean.stdout)["partitions"][0]["signatures_verified"] == 1
    assert run("audit", "export", "--out", "bundle").exit_code == 0
    assert orjson.loads((tmp_path / "bundle" / "seals.json").read_bytes())["checkpoints"]
    import sqlite3

    with sqlite3.connect(tmp_path / "ledger-data" / "ledger.db") as connection:
        connection.execute("DELETE FROM touchpoints WHERE position = 7")
    tampered = run("audit", "verify", "--public-key", "keys/seal.pem.pub")
    assert tampered.exit_code == 4
    assert "first divergence at position 7: deleted" in tampered.stdout


def test_may_contact_and_policy_from_the_command_line(run: Run, tmp_path: Path) -> None:
    missing = run("policy", "check", "nowhere.toml")
    assert (missing.exit_code, "cannot read" in missing.stderr) == (1, True)
    bad = tmp_path / "bad.toml"
    bad.write_text(
        'version = "x"\n[[caps]]\nchannel = "sms"\npurpose = "marketing"\nmax = -1\nper = "7d"\n'
    )
    checked = run("policy", "check", str(bad))
    assert checked.exit_code == 1
    assert "line 5: caps.0.max" in checked.stderr
    shown = orjson.loads(run("policy", "show", "--json").stdout)
    assert shown["source"] == "(built-in policy)"
    assert len(shown["sha256"]) == 64
    run(
        "append",
        "--type",
        "consent-given",
        "--customer",
        "C1",
        "--set",
        "channel=sms",
        "--set",
        "evidence_source=web",
        "--time",
        "2026-01-01T10:00:00Z",
    )

    def marketing_sms(day: str) -> None:
        sms = ["--type", "sms", "--customer", "C1", "--set", "direction=outbound"]
        moment = ["--set", "purpose=marketing", "--time", f"{day}T10:00:00Z"]
        assert run("append", *sms, *moment).exit_code == 0

    for day in ("2026-03-01", "2026-03-03"):
        marketing_sms(day)
    assert run("project", "run").exit_code == 0
    at = "2026-03-04T10:00:00Z"
    denied = run(
        "may-contact", "C1", "--channel", "sms", "--purpose", "marketing", "--at", at, "--json"
    )
    assert denied.exit_code == 5
    decision = orjson.loads(denied.stdout)
    assert decision["allowed"] is False
    assert [r["rule"] for r in decision["reasons"]] == ["cap"]
    assert decision["earliest"] == "2026-03-08T10:15:00+00:00"
    assert decision["policy"]["version"] == shown["version"]
    table = run("may-contact", "C1", "--channel", "sms", "--purpose", "marketing", "--at", at)
    assert "DENIED" in table.stdout
    assert "earliest allowed: 2026-03-08T10:15:00+00:00" in table.stdout
    nobody = run("may-contact", "C2", "--channel", "sms", "--purpose", "marketing", "--json")
    assert orjson.loads(nobody.stdout)["reasons"][0]["message"] == "no sms consent on record"
    campaign = tmp_path / "campaign.csv"
    campaign.write_text(
        "customer,channel,purpose\nC1,sms,marketing\nC2,email,transactional\nC3,fax,marketing\n"
    )
    batch = run("may-contact", "--batch", str(campaign), "--at", at)
    assert batch.exit_code == 3
    assert "line 4: channel: 'fax'" in batch.stderr
    decisions = lines(batch)
    assert [(d["customer"], d["allowed"]) for d in decisions] == [("C1", False), ("C2", True)]
    # Contacts that broke the policy when they happened: none here (2 SMS in 7 days is
    # the cap, not over it), until a third one is sent.
    assert lines(run("violations", "--json")) == []
    marketing_sms("2026-03-04")
    [violation] = lines(run("violations", "--json"))
    assert (violation["customer"], violation["rules"]) == ("C1", ["cap"])
    assert "1 violations of policy" in run("violations").stdout
    assert run("project", "run").exit_code == 0
    pressure = orjson.loads(
        run("pressure", "--window", "7d", "--at", "2026-03-05", "--json").stdout
    )
    assert [
        (c["channel"], c["customers"], c["contacts"], c["max"]) for c in pressure["channels"]
    ] == [("sms", 1, 3, 3)]
    over = {row["cap"]: row["customers"] for row in pressure["over_caps"]}
    assert over["marketing sms: at most 2 per 7d"] == 1
    assert over["marketing phone: at most 1 per 7d"] == 0
    assert [row["contacts"] for row in pressure["over_contact_sources"]] == [1]


def test_may_contact_records_its_decisions_for_auditors(run: Run, tmp_path: Path) -> None:
    """--record appends each decision to the log with its reasons and policy; the read
    models count no touchpoint for it, and a violation check ignores it."""
    consent = ["--set", "channel=sms", "--set", "evidence_source=web"]
    run(
        "append",
        "--type",
        "consent-given",
        "--customer",
        "C1",
        *consent,
        "--time",
        "2026-01-01T00:00:00Z",
    )
    sms = ["--type", "sms", "--customer", "C1", "--set", "direction=outbound"]
    for day in ("2026-03-01", "2026-03-03"):
        run("append", *sms, "--set", "purpose=marketing", "--time", f"{day}T10:00:00Z")
    assert run("project", "run").exit_code == 0
    before = orjson.loads(run("profile", "C1", "--json").stdout)
    at = "2026-03-04T10:00:00Z"
    ask = ["may-contact", "C1", "--channel", "sms", "--purpose", "marketing", "--at", at]
    assert run(*ask, "--record", "--requested-by", "spring-sale").exit_code == 5
    campaign = tmp_path / "campaign.csv"
    campaign.write_text("customer,channel,purpose\nC1,sms,transactional\nC2,sms,marketing\n")
    batch = run("may-contact", "--batch", str(campaign), "--at", at, "--record")
    assert batch.exit_code == 0
    assert "recorded 2 decisions" in batch.stderr
    blocked = lines(run("replay", "--type", "contact-blocked", "--json"))
    allowed = lines(run("replay", "--type", "contact-allowed", "--json"))
    assert [(e["subject"], e["time"]) for e in allowed] == [("C1", "2026-03-04T10:00:00Z")]
    assert [e["subject"] for e in blocked] == ["C1", "C2"]
    first = blocked[0]["data"]
    assert first["requested_by"] == "spring-sale"
    assert [r["rule"] for r in first["reasons"]] == ["cap"]
    assert first["earliest"] == "2026-03-08T10:15:00Z"
    assert (
        first["policy_version"] == orjson.loads(run("policy", "show", "--json").stdout)["version"]
    )
    assert blocked[1]["data"]["reasons"][0]["message"] == "no sms consent on record"
    assert run("project", "run").exit_code == 0
    after = orjson.loads(run("profile", "C1", "--json").stdout)
    assert after.pop("freshness") != before.pop("freshness")  # the log moved on ...
    assert after == before  # ... but a check is not a touchpoint
    assert run("profile", "C2").exit_code != 0  # asked about, never in touch: no profile
    assert run("customers", "--json").stdout.count("C2") == 0
    assert lines(run("violations", "--json")) == []
    assert (
        run(
            "may-contact", "C1", "--channel", "sms", "--purpose", "marketing", "--requested-by", "x"
        ).exit_code
        == 2
    )


def test_verify_says_what_missing_seals_mean_and_never_advises_sealing(
    run: Run, tmp_path: Path
) -> None:
    """Seals made, then the audit store deleted: verify must not pass, nor suggest a seal
    (which would bless a tampered log), but say that nothing can be verified and why."""
    assert run("generate", "--customers", "5", "--days", "10").exit_code == 0
    assert run("audit", "seal").exit_code == 0
    assert run("audit", "verify").exit_code == 0
    for name in ("audit.db", "audit.db-wal", "audit.db-shm"):
        (tmp_path / "ledger-data" / name).unlink(missing_ok=True)
    lost = run("audit", "verify")
    assert lost.exit_code == 1
    message = lost.stderr.strip()
    assert "\n" not in message
    assert "Traceback" not in message
    for meaning in (
        "does not exist",
        "the log holds records",
        "nothing can be verified",
        "never sealed",
        "their loss is itself an incident",
        "Restore the audit store from a backup",
        "seals.json",
        "do not seal now",
    ):
        assert meaning in message, meaning
    assert run("audit", "export", "--out", "bundle").exit_code == 1
    assert not (tmp_path / "ledger-data" / "audit.db").exists()
