"""No command prints a password: not in text, not in --json, not in an error message.

Every command that shows a URL (``demo``, ``project status``) and every command whose
errors can name one is run with credentials in ``LEDGER_STORE`` / ``LEDGER_LOG`` /
``--log``; the secret must appear nowhere in stdout or stderr.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import psycopg
import pytest
from click.testing import CliRunner, Result

from cli import main

SECRET = "S3cret-Pw"

Run = Callable[..., Result]


@pytest.fixture
def run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Run:
    monkeypatch.chdir(tmp_path)
    for name in ("LEDGER_LOG", "LEDGER_STORE"):
        monkeypatch.delenv(name, raising=False)

    def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
        result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
        assert SECRET not in result.stdout, result.stdout
        assert SECRET not in result.stderr, result.stderr
        return result

    return invoke


@pytest.fixture
def postgres_with_password(postgres_url: str) -> Iterator[str]:
    """The test server's URL with a password (the server trusts local users, so any
    password connects) and a secret query parameter, in a fresh schema."""
    schema = f"t_{uuid.uuid4().hex[:16]}"
    base = postgres_url.replace("postgresql://postgres@", f"postgresql://postgres:{SECRET}@")
    assert SECRET in base
    yield f"{base}?schema={schema}&sslpassword={SECRET}"
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')  # type: ignore[arg-type]


def test_demo_and_status_show_urls_without_their_secrets(
    run: Run, postgres_with_password: str
) -> None:
    env = {"LEDGER_STORE": postgres_with_password, "LEDGER_LOG": f"sqlite:///l.db?token={SECRET}"}
    demo = run("demo", "--customers", "3", "--days", "5", env=env)
    assert demo.exit_code == 0
    assert "token=***" in demo.stdout
    as_json = run("demo", "--customers", "3", "--days", "5", "--json", env=env)
    assert orjson.loads(as_json.stdout)["log"] == "sqlite:///l.db?token=***"
    assert run("project", "run", env=env).exit_code == 0
    status = run("project", "status", env=env)
    assert status.exit_code == 0
    assert "postgres:***@" in status.stdout
    data = orjson.loads(run("project", "status", "--json", env=env).stdout)
    assert data["store"].startswith("postgresql://postgres:***@127.0.0.1")
    assert data["store"].endswith("&sslpassword=***")
    assert data["log"] == "sqlite:///l.db?token=***"


STORE_COMMANDS = [
    ("project", "status"),
    ("project", "status", "--json"),
    ("project", "run"),
    ("profile", "C1"),
]
LOG_COMMANDS = [*STORE_COMMANDS, ("replay",), ("violations",), ("audit", "verify")]

ERROR_SETTINGS = {
    # The server answers, then refuses the schema name (an unreachable server would take
    # eventsourcing's ten connection attempts, about 50 s, to give up).
    "postgres error": {"LEDGER_STORE": f'postgresql://postgres:{SECRET}@127.0.0.1/test?schema=a"b'},
    "kafka with credentials": {"LEDGER_LOG": f"kafka://admin:{SECRET}@127.0.0.1:9092/tp"},
    "unknown log scheme": {"LEDGER_LOG": f"kafkaa://admin:{SECRET}@broker:9092/tp"},
    "unknown store scheme": {"LEDGER_STORE": f"mysql://admin:{SECRET}@db/crm"},
    "store without scheme": {"LEDGER_STORE": f"admin:{SECRET}@db/crm"},
    "password with @ and /": {"LEDGER_STORE": f"mysql://admin:{SECRET}/@x@db/crm"},
    "secret in a query": {"LEDGER_LOG": f"sqlite:///missing.db?password={SECRET}"},
}


@pytest.mark.parametrize("case", list(ERROR_SETTINGS))
def test_errors_never_echo_a_password(run: Run, case: str, postgres_url: str) -> None:
    env = ERROR_SETTINGS[case]
    commands = LOG_COMMANDS
    if "LEDGER_STORE" in env:  # a real log, so that the error comes from the store
        assert run("generate", "--customers", "2", "--days", "3").exit_code == 0
        commands = STORE_COMMANDS
    for command in commands:
        result = run(*command, env=env)
        assert result.exit_code != 0, (command, result.stdout)
        assert result.stderr.startswith("error: "), (command, result.stderr)
        assert result.stderr.count("\n") == 1, (command, result.stderr)


def test_the_log_option_is_redacted_too(run: Run) -> None:
    result = run("--log", f"redis://u:{SECRET}@h:1/x", "replay")
    assert result.exit_code == 1
    assert "redis://u:***@h:1/x" in result.stderr
    shown = run("--log", f"sqlite:///l.db?password={SECRET}", "demo", "--customers", "2")
    assert shown.exit_code == 0
    assert "log: sqlite:///l.db?password=***" in shown.stdout
