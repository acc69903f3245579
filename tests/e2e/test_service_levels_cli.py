"""`ledger service-levels`, `ledger sla breaches`, `ledger churn after-bad-service`: output
people read, JSON machines read, and a chart that renders (issue 13)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import orjson
import pytest

from tests.e2e.conftest import Run, lines

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture
def demo(run: Run) -> Run:
    assert run("demo", "--customers", "150", "--days", "60", "--seed", "4").exit_code == 0
    return run


@pytest.mark.parametrize(
    "command", ["service-levels", "sla", "sla breaches", "churn", "churn after-bad-service"]
)
def test_every_command_has_help_with_an_example(run: Run, command: str) -> None:
    result = run(*command.split(), "--help")
    assert result.exit_code == 0
    assert f"ledger {command}" in result.stdout.split("Example:")[1]


def test_service_levels_by_day_with_a_chart_that_renders(demo: Run, tmp_path: Path) -> None:
    chart = tmp_path / "service.svg"
    result = demo(
        "service-levels", "--since", "2025-01-01", "--until", "2025-03-01", "--chart", str(chart)
    )
    assert result.exit_code == 0, result.output
    table = result.stdout.splitlines()
    assert table[0].split()[:3] == ["group", "offered", "SL"]
    days = [line.split()[0] for line in table[1:] if line[:4] == "2025"]
    assert days == sorted(days)
    assert len(days) > 20
    assert any(line.startswith("all ") for line in table)
    assert "short_abandon: abandoned after less than 5s: left out" in result.stdout
    # The chart: one bar per day with calls offered, one point per day on the abandonment
    # line, the target line, parsed as XML.
    report = orjson.loads(
        demo("service-levels", "--since", "2025-01-01", "--until", "2025-03-01", "--json").stdout
    )
    with_calls = [g for g in report["groups"] if g["calls"]["offered"]]
    root = ET.parse(chart).getroot()
    assert root.tag == f"{SVG}svg"
    bars = root.findall(f"{SVG}rect[@class='service-level']")
    dots = root.findall(f"{SVG}circle[@class='abandonment']")
    (line,) = root.findall(f"{SVG}polyline[@class='abandonment']")
    assert len(bars) == len(with_calls) > 10
    assert len(dots) == len(with_calls) == len(line.get("points", "").split())
    assert len(root.findall(f"{SVG}line[@class='target']")) == 1
    heights = [float(bar.get("height", "nan")) for bar in bars]
    assert all(0 <= h <= 360 for h in heights)
    first = with_calls[0]
    assert (
        bars[0]
        .findtext(f"{SVG}title", "")
        .startswith(f"{first['group']}: service level {first['calls']['service_level']:.1%}")
    )


def test_service_levels_json_by_agent_and_channel(demo: Run) -> None:
    result = demo("service-levels", "--by", "agent", "--channel", "phone", "--json")
    assert result.exit_code == 0
    report = orjson.loads(result.stdout)
    assert report["by"] == "agent"
    assert report["channel"] == "phone"
    assert report["calendar_zone"] == "Europe/Istanbul"
    agents = [g["group"] for g in report["groups"]]
    assert "(none)" in agents  # abandoned calls have no agent
    assert all(g["messages"]["received"] == 0 for g in report["groups"])
    total = report["total"]["calls"]
    assert total["offered"] == sum(g["calls"]["offered"] for g in report["groups"])


def test_sla_breaches_and_churn(demo: Run) -> None:
    result = demo("sla", "breaches", "--open", "--as-of", "2025-03-15", "--json")
    assert result.exit_code == 0
    found = lines(result)
    assert found
    assert all(b["answered"] is None for b in found)
    assert all(b["deadline"] < "2025-03-16" for b in found)
    lates = [b["late_by_seconds"] for b in found]
    assert lates == sorted(lates, reverse=True)
    table = demo("sla", "breaches", "--limit", "3", "--as-of", "2025-03-15")
    assert table.stdout.startswith(
        f"{len(lines(demo('sla', 'breaches', '--as-of', '2025-03-15', '--json')))} SLA breaches"
    )
    churn = demo("churn", "after-bad-service")
    assert churn.exit_code == 0
    assert "stopped buying" in churn.stdout
    assert "Definition: Bad service:" in churn.stdout
    report = orjson.loads(demo("churn", "after-bad-service", "--json").stdout)
    assert report["lapse_days"] == 90
    assert report["definition"].startswith("Bad service")


def test_a_bad_date_is_a_usage_error(demo: Run) -> None:
    result = demo("service-levels", "--since", "2025-02-30")
    assert result.exit_code == 2
    assert "--since" in result.output


def test_views_built_before_service_levels_ask_for_a_rebuild(demo: Run, tmp_path: Path) -> None:
    import sqlite3

    views = tmp_path / "ledger-data" / "views.db"
    with sqlite3.connect(views) as connection:
        connection.execute("DELETE FROM service_facts")  # as an older release left them
    result = demo("service-levels")
    assert result.exit_code == 1
    assert "run `ledger project rebuild` once" in result.stderr
    assert demo("project", "rebuild").exit_code == 0
    assert demo("service-levels").exit_code == 0
