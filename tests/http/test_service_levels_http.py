"""Service levels over real HTTP (issue 13's commands, issue 14's face): the same JSON as the
CLI's --json, the chart as SVG, bad arguments named in a 422, the read scope required."""

from __future__ import annotations

import subprocess
import xml.etree.ElementTree as ET
from collections.abc import Iterator

import orjson
import pytest

from tests.http.conftest import LEDGER, Server, ledger, ledger_env, new_key

AS_OF = "2025-03-01"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[dict[str, str], Server, str]]:
    env = ledger_env(tmp_path_factory.mktemp("service"))
    ledger(env, "demo", "--customers", "150", "--days", "60", "--seed", "4", "--json")
    reader = new_key(env, "screen", "read")
    server = Server(env)
    try:
        yield env, server, reader
    finally:
        server.stop()


CASES = [
    (
        ["service-levels", "--since", "2025-01-01", "--until", "2025-02-01"],
        "/v1/service-levels?since=2025-01-01&until=2025-02-01",
        False,
    ),
    (
        ["service-levels", "--by", "agent", "--channel", "phone"],
        "/v1/service-levels?by=agent&channel=phone",
        False,
    ),
    (
        ["service-levels", "--by", "week", "--since", "2025-01-06T00:00:00+03:00"],
        "/v1/service-levels?by=week&since=2025-01-06T00:00:00%2B03:00",
        False,
    ),
    (["sla", "breaches"], "/v1/sla/breaches", True),
    (
        ["sla", "breaches", "--open", "--since", "2025-01-15"],
        "/v1/sla/breaches?open=true&since=2025-01-15",
        True,
    ),
    (["churn", "after-bad-service"], "/v1/churn/after-bad-service", False),
]


@pytest.mark.parametrize(("args", "path", "jsonl"), CASES, ids=[" ".join(c[0]) for c in CASES])
def test_http_answers_what_the_cli_prints(
    served: tuple[dict[str, str], Server, str], args: list[str], path: str, jsonl: bool
) -> None:
    env, server, reader = served
    cli = subprocess.run(
        [LEDGER, *args, "--as-of", AS_OF, "--json"], env=env, capture_output=True, check=True
    ).stdout
    with server.client(reader) as http:
        answer = http.get(f"{path}{'&' if '?' in path else '?'}as_of={AS_OF}")
    assert answer.status_code == 200, answer.text
    if jsonl:
        lines = [orjson.loads(line) for line in cli.splitlines()]
        assert lines, "the demo has late answers: the comparison must compare something"
        assert answer.content == orjson.dumps(lines)
    else:
        assert answer.content == cli.rstrip(b"\n")  # byte for byte


def test_the_chart_is_the_cli_chart(
    served: tuple[dict[str, str], Server, str], tmp_path_factory: pytest.TempPathFactory
) -> None:
    env, server, reader = served
    chart = tmp_path_factory.mktemp("chart") / "service.svg"
    ledger(env, "service-levels", "--since", "2025-01-01", "--as-of", AS_OF, "--chart", str(chart))
    with server.client(reader) as http:
        answer = http.get(f"/v1/service-levels/chart?since=2025-01-01&as_of={AS_OF}")
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "image/svg+xml"
    assert answer.content == chart.read_bytes()
    assert ET.fromstring(answer.content).findall("{http://www.w3.org/2000/svg}rect")


@pytest.mark.parametrize(
    ("path", "named"),
    [
        ("/v1/service-levels?since=yesterday", "since"),
        ("/v1/service-levels?until=2025-02-30", "until"),
        ("/v1/service-levels?by=month", "by"),
        ("/v1/service-levels?channel=pigeon", "channel"),
        ("/v1/sla/breaches?as_of=2025-13-01", "as_of"),
        ("/v1/churn/after-bad-service?as_of=noon", "as_of"),
    ],
)
def test_bad_arguments_are_named(
    served: tuple[dict[str, str], Server, str], path: str, named: str
) -> None:
    _, server, reader = served
    with server.client(reader) as http:
        answer = http.get(path)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"].startswith(f"{named}: "), answer.json()


def test_the_read_scope_is_required(served: tuple[dict[str, str], Server, str]) -> None:
    env, server, _ = served
    publisher = new_key(env, "crm", "publish")
    with server.client(publisher) as http:
        refused = http.get("/v1/service-levels")
    with server.client(None) as http:
        anonymous = http.get("/v1/sla/breaches")
    assert refused.status_code == 403
    assert "read" in refused.json()["error"]
    assert anonymous.status_code == 401
