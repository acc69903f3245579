"""Settings come from LEDGER_ variables; log URLs are parsed strictly."""

from __future__ import annotations

from pathlib import Path

import pytest

from ledger.errors import ConfigurationError
from ledger.redact import redact, redact_url
from ledger.settings import KafkaLogTarget, Settings, SQLiteLogTarget, parse_log_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///ledger.db", SQLiteLogTarget(Path("ledger.db"))),
        ("sqlite:////var/lib/ledger.db", SQLiteLogTarget(Path("/var/lib/ledger.db"))),
        ("kafka://k1:9092/touchpoints", KafkaLogTarget(("k1:9092",), "touchpoints")),
        (
            "kafka://k1:9092,k2:9093/crm.touchpoints-v1",
            KafkaLogTarget(("k1:9092", "k2:9093"), "crm.touchpoints-v1"),
        ),
    ],
)
def test_log_urls(url: str, expected: object) -> None:
    assert parse_log_url(url) == expected


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("ledger.db", "expected sqlite:///PATH"),
        ("sqlite://ledger.db", "three slashes"),
        ("kafka://k1/topic", "is not host:port"),
        ("kafka://k1:9092/", "topic ''"),
        ("kafka://k1:9092/bad topic", "must be 1-249 characters"),
        ("postgres://x/y", "unknown scheme 'postgres'"),
    ],
)
def test_bad_log_urls_say_what_is_wrong(url: str, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=problem):
        parse_log_url(url)


def test_environment_variables_configure_the_ledger(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LEDGER_LOG", "kafka://k:1/t")
    monkeypatch.setenv("LEDGER_KAFKA_PARTITIONS", "24")
    monkeypatch.setenv("LEDGER_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("LEDGER_KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("LEDGER_KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("LEDGER_KAFKA_SASL_PASSWORD", "s3cret")
    monkeypatch.setenv("LEDGER_KAFKA_SSL_CAFILE", "/etc/ca.pem")
    settings = Settings()
    assert settings.log_url == "kafka://k:1/t"
    assert settings.kafka_partitions == 24
    options = settings.kafka_client_options()
    assert options["security_protocol"] == "SASL_SSL"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_password"] == "s3cret"
    assert options["ssl_cafile"] == "/etc/ca.pem"
    assert "s3cret" not in repr(settings)


def test_default_log_is_sqlite_in_the_data_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LEDGER_LOG", raising=False)
    settings = Settings(data_dir=Path("somewhere"))
    assert parse_log_url(settings.log_url) == SQLiteLogTarget(Path("somewhere/ledger.db"))


def test_invalid_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="kafka_partitions"):
        Settings(kafka_partitions=0)


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://user:secret@host/db", "postgresql://user:***@host/db"),
        ("postgresql://user@host/db", "postgresql://user@host/db"),
        ("postgresql://:secret@host:5432/db", "postgresql://:***@host:5432/db"),
        ("postgresql://u:a/b@c@host/db?schema=s", "postgresql://u:***@host/db?schema=s"),
        ("user:secret@host/db", "user:***@host/db"),
        ("sqlite:///views.db", "sqlite:///views.db"),
        (
            "postgresql://h/db?sslpassword=x&schema=s&api_key=y",
            "postgresql://h/db?sslpassword=***&schema=s&api_key=***",
        ),
        ("kafka://k1:9092,k2:9092/topic", "kafka://k1:9092,k2:9092/topic"),
    ],
)
def test_redact_url_hides_every_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_redact_finds_urls_in_free_text() -> None:
    text = "failed: 'kafka://a:pw1@h:1/t' and \"postgresql://b:pw2@h/db?password=pw3\" (x)"
    assert redact(text) == (
        "failed: 'kafka://a:***@h:1/t' and \"postgresql://b:***@h/db?password=***\" (x)"
    )


def test_a_kafka_url_with_credentials_is_refused_without_echoing_them() -> None:
    with pytest.raises(ConfigurationError, match="LEDGER_KAFKA_SASL_PASSWORD") as caught:
        parse_log_url("kafka://user:hunter2@k1:9092/topic")
    assert "hunter2" not in str(caught.value)
    assert "user:***@k1:9092" in str(caught.value)
