"""The identity commands as a user runs them: link, merge, unmerge, identity (issue 12)."""

from __future__ import annotations

import orjson

from tests.e2e.conftest import Run


def test_the_cli_links_merges_and_shows_the_graph(run: Run) -> None:
    assert (
        run("append", "--type", "visit", "--customer", "C1", "--set", "channel=web").exit_code == 0
    )
    result = run("link", "C1", "--phone", "+90 555 111 22 33", "--evidence", "sms code")
    assert result.exit_code == 0, result.output
    assert "phone:+905551112233" in result.stdout
    assert run("link", "C2", "--email", "Ayse@Example.COM").exit_code == 0
    assert run("merge", "C2", "C1", "--reason", "same person").exit_code == 0
    shown = run("identity", "phone:+90 555 111 22 33", "--json")
    assert shown.exit_code == 0, shown.output
    graph = orjson.loads(shown.stdout)
    assert graph["person"] == "C1"
    assert graph["customers"] == ["C1", "C2"]
    assert graph["identifiers"] == ["email:Ayse@example.com", "phone:+905551112233"]
    assert graph["links"][1]["evidence"] == "sms code"
    cycle = run("merge", "C1", "C2", "--into", "C2", "--reason", "x")
    assert cycle.exit_code == 1
    assert "merge cycle" in cycle.stderr
    assert run("unmerge", "C2", "--reason", "wrong").exit_code == 0
    assert orjson.loads(run("identity", "C2", "--json").stdout)["customers"] == ["C2"]
    bad = run("link", "C1", "--phone", "12")
    assert bad.exit_code == 1
    assert "E.164" in bad.stderr
    assert run("identity", "suspicious").exit_code == 0
