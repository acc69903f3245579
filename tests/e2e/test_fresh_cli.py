"""The issue-18 story from the command line: a withdrawal appended a moment ago denies the
next may-contact although no projector ran; every answer says how fresh it is."""

from __future__ import annotations

from pathlib import Path

import orjson

from tests.e2e.conftest import Run

CONSENT = ["--customer", "C1", "--set", "channel=sms", "--set", "evidence_source=web"]
ASK = ["may-contact", "C1", "--channel", "sms", "--purpose", "marketing"]


def test_a_withdrawal_counts_at_once_and_answers_say_how_fresh_they_are(run: Run) -> None:
    run("append", "--type", "consent-given", *CONSENT, "--time", "2026-01-01T10:00:00Z")
    assert run("project", "run").exit_code == 0
    allowed = run(*ASK, "--at", "2026-03-01T12:00:00Z", "--json")
    assert allowed.exit_code == 0
    assert orjson.loads(allowed.stdout)["freshness"]["folded_beyond_views"] == 0
    withdrawn = ["--type", "consent-withdrawn", *CONSENT, "--time", "2026-03-01T11:00:00Z"]
    assert run("append", *withdrawn).exit_code == 0
    denied = run(*ASK, "--at", "2026-03-01T12:00:00Z", "--json")
    assert denied.exit_code == 5
    decision = orjson.loads(denied.stdout)
    assert [r["rule"] for r in decision["reasons"]] == ["consent"]
    assert decision["freshness"]["log_positions"] == {"0": 3}
    assert decision["freshness"]["view_positions"] == {"0": 2}
    assert decision["freshness"]["folded_beyond_views"] == 1
    text = run(*ASK, "--at", "2026-03-01T12:00:00Z")
    assert "as of log 0:3, views 0:2, 1 record(s) folded beyond the views" in text.stdout
    profile = orjson.loads(run("profile", "C1", "--json").stdout)
    assert profile["consent"]["sms"]["status"] == "withdrawn"
    assert profile["freshness"]["folded_beyond_views"] == 1
    stale = orjson.loads(run("profile", "C1", "--json", "--no-fresh").stdout)
    assert stale["consent"]["sms"]["status"] == "granted"
    assert "--no-fresh" in stale["freshness"]["warning"]
    sms = ["--type", "sms", "--customer", "C1", "--set", "direction=outbound"]
    run("append", *sms, "--set", "purpose=marketing", "--time", "2026-03-01T11:30:00Z")
    contacts = orjson.loads(run("contacts", "C1", "--at", "2026-03-01T12:00:00Z", "--json").stdout)
    assert [(c["channel"], c["24h"]) for c in contacts["contacts"]] == [("sms", 1)]
    assert contacts["freshness"]["folded_beyond_views"] == 2
    status = orjson.loads(run("project", "status", "--json").stdout)
    assert status["decisions"]["unprojected_records"] == 2
    assert status["decisions"]["oldest_unprojected_age_seconds"] >= 0
    assert "decisions fold 2 unprojected record(s)" in run("project", "status").stdout
    assert run("project", "run").exit_code == 0
    status = orjson.loads(run("project", "status", "--json").stdout)
    assert status["decisions"] == {"unprojected_records": 0, "oldest_unprojected_age_seconds": None}


def test_policy_check_validates_the_freshness_keys(run: Run, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('version = "x"\n[freshness.marketing]\nstale = "sometimes"\n')
    checked = run("policy", "check", str(bad))
    assert checked.exit_code == 1
    assert "line 3: freshness.marketing.stale" in checked.stderr
    shown = run("policy", "show").stdout
    assert "marketing: deny when stale (max 10000 unprojected), reserve for 15m" in shown
