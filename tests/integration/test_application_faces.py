"""The application layer answers what the CLI prints: a second face (HTTP, a service) that
calls the same use-case functions gets the data ``--json`` shows, byte for byte."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from click.testing import CliRunner

from application import decisions, projecting, views
from application.as_of import customer_contacts, customer_profile
from application.demo import demo_dict, run_demo
from application.status import projection_status
from cli import main
from ledger.settings import Settings
from projections.frequency import Window

AT = datetime(2025, 6, 30, 12, tzinfo=UTC)


@pytest.fixture(scope="module")
def demo_ledger(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    data = tmp_path_factory.mktemp("demo")
    settings = Settings(data_dir=data, log=f"sqlite:///{data / 'ledger.db'}")
    report = run_demo(settings, customers=120, days=180, seed=5, on_progress=lambda _: None)
    assert demo_dict(report, settings)["events"] > 1000
    return settings


def cli_json(settings: Settings, *args: str) -> Any:
    result = CliRunner().invoke(
        main,
        ["--data-dir", str(settings.data_dir), "--log", settings.log_url, *args],
        # the ledger's own key store, not the one each test's environment points at
        env={
            "LEDGER_KEYS": settings.keys_url,
            "LEDGER_MASTER_KEY_FILE": str(settings.master_key_path),
        },
        catch_exceptions=False,
    )
    assert result.exit_code in (0, 5), result.output  # 5: a denied contact
    return orjson.loads(result.stdout)


def same(answer: Any) -> Any:
    """What a face that dumps ``answer`` as JSON sends."""
    return orjson.loads(orjson.dumps(answer))


def test_profile_and_contacts_now_and_as_of(demo_ledger: Settings) -> None:
    now = customer_profile(demo_ledger, "C0000042", at=AT, until=None, recorded_by=None, fresh=None)
    assert same(now.to_dict()) == cli_json(
        demo_ledger, "profile", "C0000042", "--at", AT.isoformat(), "--json"
    )
    then = customer_profile(
        demo_ledger,
        "C0000042",
        at=None,
        until=datetime(2025, 4, 1, tzinfo=UTC) + timedelta(days=1, microseconds=-1),
        recorded_by=None,
        fresh=None,
    )
    assert same(then.to_dict()) == cli_json(
        demo_ledger, "profile", "C0000042", "--as-of", "2025-04-01", "--json"
    )
    assert then.to_dict() != now.to_dict()
    contacts = customer_contacts(
        demo_ledger,
        "C0000042",
        {"7d": timedelta(days=7)},
        at=AT,
        until=None,
        recorded_by=None,
        fresh=None,
    )
    assert same(contacts.to_dict()) == cli_json(
        demo_ledger, "contacts", "C0000042", "--at", AT.isoformat(), "--window", "7d", "--json"
    )
    assert contacts.to_dict()["contacts"], "C0000042 was contacted in the week to AT"


def test_queries_across_customers(demo_ledger: Settings) -> None:
    top = views.most_contacted(
        demo_ledger,
        Window.rolling(AT, timedelta(days=30)),
        channel=None,
        direction=None,
        purpose=None,
        limit=20,
    )
    assert top, "the demo over-contacts some customers"
    assert [{"customer": c, "contacts": n} for c, n in top] == cli_json(
        demo_ledger, "contacts", "top", "--window", "30d", "--at", AT.isoformat(), "--json"
    )
    active = views.customers(demo_ledger, AT, status="active", at_risk=False, limit=None)
    assert active == cli_json(
        demo_ledger, "customers", "--status", "active", "--at", AT.isoformat(), "--json"
    )


def test_decisions_pressure_and_policy(demo_ledger: Settings) -> None:
    decision = decisions.may_contact(
        demo_ledger,
        "C0000042",
        "sms",
        "marketing",
        AT,
        policy_file=None,
        record=False,
        requested_by=None,
    )
    shown = cli_json(
        demo_ledger,
        "may-contact",
        "C0000042",
        "--channel",
        "sms",
        "--purpose",
        "marketing",
        "--at",
        AT.isoformat(),
        "--json",
    )
    assert same(decision.to_dict()) == shown
    load = decisions.contact_pressure(demo_ledger, AT, "30d", timedelta(days=30), policy_file=None)
    assert same(load.to_dict()) == cli_json(
        demo_ledger, "pressure", "--window", "30d", "--at", AT.isoformat(), "--json"
    )
    assert same(decisions.policy_dict(decisions.policies(demo_ledger))) == cli_json(
        demo_ledger, "policy", "show", "--json"
    )


def test_projection_status_and_parked_records(demo_ledger: Settings) -> None:
    status = projection_status(demo_ledger).to_dict()
    assert status["partitions"][0]["lag_events"] == 0
    assert same(status) == cli_json(demo_ledger, "project", "status", "--json")
    assert projecting.parked(demo_ledger) == []
