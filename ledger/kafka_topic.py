"""What the ledger's Kafka topic must be configured like, and what is wrong with one.

The log is the truth: a topic that deletes or compacts records silently takes rebuilds,
as-of answers, replays and audits with it. The ledger creates its topic to keep every
record forever and checks an existing topic's configuration when it opens it (pure
functions here, the I/O in :mod:`ledger.kafka_log`; docs/kafka.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


def keep_forever(replication_factor: int, min_insync_replicas: int | None = None) -> dict[str, str]:
    """The topic configuration the ledger creates its topic with: no time or size limit,
    deletion (never compaction) as the policy, and ``min.insync.replicas`` of
    ``min(2, replication_factor)`` unless given (an ``acks=all`` write counts once that
    many replicas hold it)."""
    insync = min_insync_replicas or min(2, replication_factor)
    return {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": str(insync),
    }


@dataclass
class TopicCheck:
    """What is wrong with a topic's configuration."""

    forgets: list[str] = field(default_factory=list)
    """Settings that make the broker delete or compact events."""
    weak: list[str] = field(default_factory=list)
    """Settings that weaken what an acknowledged write promises."""


def _duration(milliseconds: int) -> str:
    days, rest = divmod(milliseconds, 86_400_000)
    return f"{days} days" if days and not rest else f"{milliseconds / 3_600_000:g} hours"


def _integer(config: Mapping[str, str], name: str) -> int | None:
    value = config.get(name)
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def check_topic(config: Mapping[str, str], replication_factor: int | None) -> TopicCheck:
    """Check a topic's configuration (name -> value, as DescribeConfigs reports it, all
    values, defaults included). A setting the broker does not report is not judged:
    Tansu, the test broker, reports only those given when the topic was created."""
    found = TopicCheck()
    retention_ms = _integer(config, "retention.ms")
    if retention_ms is not None and retention_ms >= 0:
        found.forgets.append(
            f"retention.ms={retention_ms} ({_duration(retention_ms)}): the broker deletes "
            "older events (set retention.ms=-1)"
        )
    retention_bytes = _integer(config, "retention.bytes")
    if retention_bytes is not None and retention_bytes >= 0:
        found.forgets.append(
            f"retention.bytes={retention_bytes}: the broker deletes a partition's oldest "
            "events beyond that size (set retention.bytes=-1)"
        )
    policy = config.get("cleanup.policy")
    if policy is not None and "compact" in policy:
        found.forgets.append(
            f"cleanup.policy={policy}: compaction keeps only the newest event of each "
            "customer (set cleanup.policy=delete)"
        )
    insync = _integer(config, "min.insync.replicas")
    if insync is not None and replication_factor is not None:
        wanted = min(2, replication_factor)
        if insync > replication_factor:
            found.weak.append(
                f"min.insync.replicas={insync} exceeds the replication factor "
                f"{replication_factor}: every acks=all write will fail"
            )
        elif insync < wanted:
            found.weak.append(
                f"min.insync.replicas={insync} with replication factor {replication_factor}: "
                f"an acknowledged event may be on one broker only (set {wanted})"
            )
    if config.get("unclean.leader.election.enable", "").lower() == "true":
        found.weak.append(
            "unclean.leader.election.enable=true: a stale replica may become leader and "
            "drop acknowledged events (set false)"
        )
    return found
