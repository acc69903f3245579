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


def _sms(run: Run, subject: str) -> None:
    sent = run(
        "append",
        "--type",
        "sms",
        "--customer",
        subject,
        "--set",
        "direction=outbound",
        "--set",
        "purpose=marketing",
    )
    assert sent.exit_code == 0, sent.output


def test_reports_count_a_person_once_with_every_identifier(run: Run) -> None:
    for subject in ("C1", "phone:+905551112233", "phone:+905551112233", "C9", "C9"):
        _sms(run, subject)
    bought = run(
        "append",
        "--type",
        "purchase",
        "--customer",
        "external:shop:88412",
        "--set",
        "channel=web",
        "--set",
        "order_id=O-1",
        "--set",
        "amount=10",
        "--set",
        "currency=TRY",
        "--set",
        "item_count=1",
    )
    assert bought.exit_code == 0, bought.output
    assert run("project", "run").exit_code == 0

    def top() -> list[dict[str, object]]:
        result = run("contacts", "top", "--json")
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)  # type: ignore[no-any-return]

    def active() -> list[str]:
        result = run("customers", "--status", "active", "--json")
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)  # type: ignore[no-any-return]

    def sms_pressure() -> dict[str, object]:
        result = run("pressure", "--window", "7d", "--json")
        assert result.exit_code == 0, result.output
        channels = orjson.loads(result.stdout)["channels"]
        return next(c for c in channels if c["channel"] == "sms")  # type: ignore[no-any-return]

    assert top()[0] == {"customer": "C9", "contacts": 2}
    assert active() == ["external:shop:88412"]
    assert (sms_pressure()["customers"], sms_pressure()["max"]) == (3, 2)
    assert run("link", "C1", "--phone", "+905551112233").exit_code == 0
    assert run("link", "C1", "--external", "shop:88412").exit_code == 0
    assert run("project", "run").exit_code == 0
    # 3 SMS (one to C1, two to the phone) and the purchase under the shop id
    assert top()[:2] == [{"customer": "C1", "contacts": 4}, {"customer": "C9", "contacts": 2}]
    assert active() == ["C1"]  # the shop's purchase makes the CRM's customer active
    assert (sms_pressure()["customers"], sms_pressure()["max"]) == (2, 3)
    profile = orjson.loads(run("profile", "phone:+905551112233", "--json").stdout)
    assert profile["customer"] == "C1"
    assert profile["purchases"] == 1
    assert profile["by_channel"] == {"sms": 3, "web": 1}


def test_replay_and_history_of_a_customer_gather_every_identifier(run: Run) -> None:
    _sms(run, "C1")
    _sms(run, "phone:+905551112233")
    _sms(run, "C2")

    def replayed() -> list[str]:
        result = run("replay", "--customer", "C1", "--json")
        assert result.exit_code == 0, result.output
        return [orjson.loads(line)["subject"] for line in result.stdout.splitlines()]

    assert replayed() == ["C1"]
    assert run("link", "C1", "--phone", "+905551112233").exit_code == 0
    assert replayed() == ["C1", "phone:+905551112233", "C1"]  # log order; the link is C1's
    history = run("history", "C1", "--json")
    assert history.exit_code == 0, history.output
    kinds = [orjson.loads(line)["event"]["type"] for line in history.stdout.splitlines()]
    assert kinds.count("touchpoint.sms") == 2


def test_identity_as_of_shows_the_graph_as_it_stood(run: Run) -> None:
    linked = run("link", "C1", "--email", "a@example.com", "--at", "2025-01-10T09:00:00Z")
    assert linked.exit_code == 0, linked.output
    merged = run("merge", "C2", "C1", "--into", "C1", "--reason", "r", "--at", "2025-02-01")
    assert merged.exit_code == 0, merged.output

    def graph(as_of: str) -> dict[str, object]:
        result = run("identity", "C1", "--as-of", as_of, "--json")
        assert result.exit_code == 0, result.output
        return orjson.loads(result.stdout)  # type: ignore[no-any-return]

    assert graph("2025-01-05")["identifiers"] == []
    assert graph("2025-01-10T09:00:00Z")["identifiers"] == ["email:a@example.com"]
    assert graph("2025-01-31")["customers"] == ["C1"]
    assert graph("2025-02-01")["customers"] == ["C1", "C2"]  # a bare date: its whole day
    assert run("identity", "C1", "--as-of", "garbage").exit_code == 2
