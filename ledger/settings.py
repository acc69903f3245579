"""Settings: one pydantic-settings object, built once at the entry point.

Every field reads a ``LEDGER_<FIELD>`` environment variable (e.g. ``LEDGER_LOG``);
CLI options override it. Library code receives a :class:`Settings`; it never reads
``os.environ`` itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from ledger.errors import ConfigurationError
from ledger.redact import redact_url


class Settings(BaseSettings):
    """Configuration of a ledger process (documented in README.md, "Configuration")."""

    model_config = SettingsConfigDict(env_prefix="LEDGER_", extra="ignore", frozen=True)

    data_dir: Path = Field(
        default=Path("ledger-data"),
        description="Folder for the embedded log, views and rejects files (LEDGER_DATA_DIR).",
    )
    log: str | None = Field(
        default=None,
        description=(
            "Where the log lives: sqlite:///path/to/ledger.db or "
            "kafka://host:port[,host:port]/topic. Default: sqlite in the data dir (LEDGER_LOG)."
        ),
    )
    store: str | None = Field(
        default=None,
        description="Where the read models live: sqlite:///path/to/views.db (default: "
        "views.db in the data dir) (LEDGER_STORE).",
    )
    audit_store: Path | None = Field(
        default=None,
        description="Where seals (checkpoints and record digests) are kept, apart from the "
        "log: a SQLite file (default: audit.db in the data dir) (LEDGER_AUDIT_STORE).",
    )
    policy: Path | None = Field(
        default=None,
        description="The contact policy file (TOML) (LEDGER_POLICY); default: policy.toml in "
        "the data dir if present, else the built-in one (application/default_policy.toml).",
    )
    kafka_partitions: int = Field(
        default=12,
        ge=1,
        le=10_000,
        description="Partitions when the ledger creates its topic (LEDGER_KAFKA_PARTITIONS).",
    )
    kafka_replication_factor: int = Field(
        default=1,
        ge=1,
        le=32,
        description="Replication factor when the ledger creates its topic.",
    )
    kafka_min_insync_replicas: int | None = Field(
        default=None,
        ge=1,
        le=32,
        description="min.insync.replicas when the ledger creates its topic "
        "(LEDGER_KAFKA_MIN_INSYNC_REPLICAS); default min(2, replication factor), so that an "
        "acks=all write is on two brokers before it counts.",
    )
    kafka_allow_finite_retention: bool = Field(
        default=False,
        description="Write to a topic that deletes or compacts events (finite retention.ms "
        "or retention.bytes, cleanup.policy=compact) with a warning instead of refusing "
        "(LEDGER_KAFKA_ALLOW_FINITE_RETENTION). See docs/kafka.md.",
    )
    kafka_client_id: str = Field(default="touchpoint-ledger", description="Kafka client.id.")
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="Passed to kafka-python as security_protocol."
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None, description="SASL mechanism (with SASL_* protocols)."
    )
    kafka_sasl_username: str | None = Field(default=None, description="SASL user name.")
    kafka_sasl_password: SecretStr | None = Field(default=None, description="SASL password.")
    kafka_ssl_cafile: Path | None = Field(default=None, description="CA bundle for TLS.")
    kafka_ssl_certfile: Path | None = Field(default=None, description="Client certificate.")
    kafka_ssl_keyfile: Path | None = Field(default=None, description="Client private key.")
    kafka_ssl_password: SecretStr | None = Field(default=None, description="Key password.")
    kafka_ssl_check_hostname: bool = Field(default=True, description="Verify the broker name.")
    group_id: str = Field(
        default="touchpoint-ledger-views",
        description="Kafka consumer group of the projectors (LEDGER_GROUP_ID).",
    )
    kafka_session_timeout_ms: int = Field(
        default=10_000,
        ge=1000,
        le=300_000,
        description="Consumer-group session timeout; a dead projector's partitions move "
        "after this long (LEDGER_KAFKA_SESSION_TIMEOUT_MS).",
    )
    kafka_reader: Literal["kafka-python", "confluent-kafka"] = Field(
        default="kafka-python",
        description="The client projectors read a Kafka log with (LEDGER_KAFKA_READER): "
        "kafka-python, the ledger's Kafka adapter, or confluent-kafka (librdkafka; "
        "`pip install 'touchpoint-ledger[confluent]'`), which reads records about four "
        "times cheaper: group members, worker processes and validating reads. Publishing "
        'and admin stay on kafka-python. See docs/kafka.md, "Read client".',
    )
    kafka_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=600,
        description="How long to wait for Kafka to answer before giving up "
        "(LEDGER_KAFKA_TIMEOUT_SECONDS).",
    )
    sqlite_cache_mb: int = Field(
        default=256,
        ge=2,
        le=65_536,
        description="SQLite page cache per connection, MiB (LEDGER_SQLITE_CACHE_MB): the "
        "largest part of an import's memory; smaller is slower on big logs.",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=64,
        description="Processes a projector catch-up or rebuild folds with (LEDGER_WORKERS); "
        "0: one per CPU core, 1: none besides the projector itself. Used for a backlog of "
        "50,000 records or more (embedded log) or a first catch-up (Kafka).",
    )
    dedupe_window_days: float = Field(
        default=0,
        ge=0,
        le=100_000,
        description="Kafka logs: keep the ids of applied events for this many days of event "
        "time per partition, before the newest applied (LEDGER_DEDUPE_WINDOW_DAYS); a record "
        "older than that whose id is not kept is parked, not applied (it may be a copy of an "
        "event applied long ago). 0, the default: keep every id for ever.",
    )
    keys: str | None = Field(
        default=None,
        description="Where customers' data keys live, apart from the log: sqlite:///PATH "
        "(default: keys.db in the data dir) or postgresql://USER@HOST/DB (LEDGER_KEYS).",
    )
    master_key: SecretStr | None = Field(
        default=None,
        description="The master key wrapping every data key: 32 bytes as 64 hex digits or "
        "base64 (LEDGER_MASTER_KEY); default: read from master_key_file. Never printed.",
    )
    master_key_file: Path | None = Field(
        default=None,
        description="The master key file, created with mode 0600 on first use if "
        "LEDGER_MASTER_KEY is not set (LEDGER_MASTER_KEY_FILE; default: master.key in the "
        "data dir).",
    )
    encrypt: bool = Field(
        default=True,
        description="Encrypt personal fields when appending (LEDGER_ENCRYPT). Off only for "
        "benchmarks and for reading old logs: a log written with it off cannot be erased "
        "per customer (see docs/privacy.md).",
    )
    batch_size: int = Field(
        default=20_000,
        ge=1,
        le=1_000_000,
        description="Events per append batch for import and generate (LEDGER_BATCH_SIZE).",
    )
    identity_max_customers: int = Field(
        default=2,
        ge=1,
        le=1_000,
        description="An identifier linked to more customers than this at once is suspicious "
        "(LEDGER_IDENTITY_MAX_CUSTOMERS): it joins nobody into one person and is listed by "
        "`ledger identity suspicious` (a shared or placeholder number or address).",
    )

    @property
    def store_url(self) -> str:
        """The configured view store URL, or ``views.db`` under ``data_dir``."""
        return self.store or f"sqlite:///{self.data_dir / 'views.db'}"

    @property
    def audit_path(self) -> Path:
        """The audit store file: ``audit_store``, or ``audit.db`` under ``data_dir``."""
        return self.audit_store or self.data_dir / "audit.db"

    @property
    def keys_url(self) -> str:
        """The configured key store URL, or ``keys.db`` under ``data_dir``."""
        return self.keys or f"sqlite:///{self.data_dir / 'keys.db'}"

    @property
    def master_key_path(self) -> Path:
        """The master key file: ``master_key_file``, or ``master.key`` under ``data_dir``."""
        return self.master_key_file or self.data_dir / "master.key"

    @property
    def log_url(self) -> str:
        """The configured log URL, or the embedded default under ``data_dir``."""
        return self.log or f"sqlite:///{self.data_dir / 'ledger.db'}"

    def kafka_client_options(self) -> dict[str, Any]:
        """Security and identity options for every kafka-python client we create."""
        options: dict[str, Any] = {
            "client_id": self.kafka_client_id,
            "security_protocol": self.kafka_security_protocol,
            "bootstrap_timeout_ms": int(self.kafka_timeout_seconds * 1000),
        }
        if self.kafka_sasl_mechanism:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            if self.kafka_sasl_password is not None:
                options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if self.kafka_security_protocol in ("SSL", "SASL_SSL"):
            options["ssl_check_hostname"] = self.kafka_ssl_check_hostname
            for name in ("cafile", "certfile", "keyfile"):
                value = getattr(self, f"kafka_ssl_{name}")
                if value is not None:
                    options[f"ssl_{name}"] = str(value)
            if self.kafka_ssl_password is not None:
                options["ssl_password"] = self.kafka_ssl_password.get_secret_value()
        return options


@dataclass(frozen=True)
class SQLiteLogTarget:
    """An embedded log in a SQLite file."""

    path: Path


@dataclass(frozen=True)
class KafkaLogTarget:
    """A log in a Kafka topic."""

    bootstrap_servers: tuple[str, ...]
    topic: str


LogTarget = SQLiteLogTarget | KafkaLogTarget

_TOPIC_CHARS = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")


def parse_log_url(url: str) -> LogTarget:
    """Parse ``sqlite:///path`` or ``kafka://host:port[,host:port]/topic``.

    ``sqlite:///ledger.db`` is relative to the current folder and
    ``sqlite:////var/ledger.db`` absolute, as in SQLAlchemy URLs.
    """
    shown = redact_url(url)  # every message shows the URL without its password
    scheme, sep, rest = url.partition("://")
    if not sep:
        raise ConfigurationError(
            f"log URL {shown!r}: expected sqlite:///PATH or kafka://HOST:PORT/TOPIC"
        )
    if scheme == "sqlite":
        if not rest.startswith("/") or len(rest) < 2:
            raise ConfigurationError(f"log URL {shown!r}: expected sqlite:///PATH (three slashes)")
        return SQLiteLogTarget(Path(unquote(rest[1:])))
    if scheme == "kafka":
        parts = urlsplit(url)
        if "@" in parts.netloc:
            raise ConfigurationError(
                f"log URL {shown!r}: credentials do not belong in a Kafka URL; set "
                "LEDGER_KAFKA_SASL_USERNAME and LEDGER_KAFKA_SASL_PASSWORD instead"
            )
        servers = tuple(s.strip() for s in parts.netloc.split(",") if s.strip())
        topic = parts.path.lstrip("/")
        if not servers:
            raise ConfigurationError(
                f"log URL {shown!r}: no bootstrap server (kafka://host:port/topic)"
            )
        for server in servers:
            host, colon, port = server.rpartition(":")
            if not colon or not host or not port.isdigit():
                raise ConfigurationError(f"log URL {shown!r}: server {server!r} is not host:port")
        if not topic or len(topic) > 249 or not set(topic) <= _TOPIC_CHARS:
            raise ConfigurationError(
                f"log URL {shown!r}: topic {topic!r} must be 1-249 characters of [a-zA-Z0-9._-]"
            )
        return KafkaLogTarget(servers, topic)
    raise ConfigurationError(
        f"log URL {shown!r}: unknown scheme {redact_url(scheme)!r} (use sqlite or kafka)"
    )
