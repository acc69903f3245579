"""The settings a librdkafka reader gets are the ones kafka-python's clients get
(``LEDGER_KAFKA_READER=confluent-kafka``: ledger/confluent_reader.py)."""

from __future__ import annotations

from pathlib import Path

from ledger.confluent_reader import PARTITION_OPTIONS, librdkafka_options
from ledger.kafka_log import CONSUMER_OPTIONS
from ledger.settings import Settings


def test_security_and_identity_settings_reach_librdkafka(tmp_path: Path) -> None:
    settings = Settings(
        data_dir=tmp_path,
        kafka_client_id="views-7",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="ledger",
        kafka_sasl_password="s3cret",  # type: ignore[arg-type]
        kafka_ssl_cafile=tmp_path / "ca.pem",
        kafka_ssl_check_hostname=False,
        kafka_timeout_seconds=7,
    )
    options = {"bootstrap_servers": ["a:9093", "b:9093"], **settings.kafka_client_options()}
    assert librdkafka_options(options) == {
        "bootstrap.servers": "a:9093,b:9093",
        "client.id": "views-7",
        "security.protocol": "SASL_SSL",
        "socket.connection.setup.timeout.ms": 7000,
        "sasl.mechanism": "SCRAM-SHA-512",
        "sasl.username": "ledger",
        "sasl.password": "s3cret",
        "ssl.ca.location": str(tmp_path / "ca.pem"),
        "ssl.endpoint.identification.algorithm": "none",
    }


def test_plaintext_settings_set_nothing_else(tmp_path: Path) -> None:
    options = {
        "bootstrap_servers": ["k:9092"],
        **Settings(data_dir=tmp_path).kafka_client_options(),
    }
    config = librdkafka_options(options)
    assert config["bootstrap.servers"] == "k:9092"
    assert config["security.protocol"] == "PLAINTEXT"
    assert not [name for name in config if name.startswith(("sasl.", "ssl."))]


def test_the_reader_never_commits_or_resets_on_its_own_as_kafka_python() -> None:
    """Positions are the view store's: no automatic commit, and a position out of range
    is an error, never a silent jump to the start or the end."""
    assert CONSUMER_OPTIONS["enable_auto_commit"] is False
    assert CONSUMER_OPTIONS["auto_offset_reset"] == "none"
    assert PARTITION_OPTIONS["enable.auto.commit"] is False
    assert PARTITION_OPTIONS["auto.offset.reset"] == "error"
    assert PARTITION_OPTIONS["isolation.level"] == "read_uncommitted"
