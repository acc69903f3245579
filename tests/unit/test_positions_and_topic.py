"""Pure checks: a stored position against a partition's bounds; a Kafka topic's configuration."""

from __future__ import annotations

import pytest

from ledger.errors import PositionBeyondEnd, RecordsDeleted
from ledger.kafka_topic import check_topic, keep_forever
from ledger.log import position_problem


@pytest.mark.parametrize(("position", "start", "end"), [(0, 0, 0), (5, 0, 5), (3, 0, 9), (7, 7, 9)])
def test_a_position_within_the_partition_is_fine(position: int, start: int, end: int) -> None:
    assert position_problem("topic t", 2, position, start, end) is None


def test_a_position_past_the_end_names_partition_both_positions_and_the_remedy() -> None:
    problem = position_problem("Kafka topic t", 3, 120, 0, 40)
    assert isinstance(problem, PositionBeyondEnd)
    message = str(problem)
    assert "Kafka topic t, partition 3" in message
    assert "120" in message
    assert "(40)" in message
    assert "ledger project rebuild" in message
    assert "ledger project reset --yes" in message
    assert "\n" not in message


def test_a_partition_starting_after_the_position_says_records_were_deleted() -> None:
    problem = position_problem("Kafka topic t", 1, 10, 500, 900)
    assert isinstance(problem, RecordsDeleted)
    assert "records 10..499" in str(problem)
    assert "starts at 500" in str(problem)


def test_the_ledger_creates_its_topic_to_keep_everything() -> None:
    assert keep_forever(3) == {
        "retention.ms": "-1",
        "retention.bytes": "-1",
        "cleanup.policy": "delete",
        "min.insync.replicas": "2",
    }
    assert keep_forever(1)["min.insync.replicas"] == "1"
    assert keep_forever(5, 3)["min.insync.replicas"] == "3"
    found = check_topic(keep_forever(3), 3)
    assert found.forgets == []
    assert found.weak == []


def test_kafkas_defaults_forget_events_after_seven_days() -> None:
    defaults = {"retention.ms": "604800000", "retention.bytes": "-1", "cleanup.policy": "delete"}
    found = check_topic(defaults, 3)
    assert found.forgets == [
        "retention.ms=604800000 (7 days): the broker deletes older events (set retention.ms=-1)"
    ]


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"retention.bytes": "1073741824"}, "retention.bytes=1073741824"),
        ({"cleanup.policy": "compact"}, "compaction"),
        ({"cleanup.policy": "compact,delete"}, "compaction"),
        ({"retention.ms": "0"}, "retention.ms=0"),
    ],
)
def test_size_limits_and_compaction_forget_events(config: dict[str, str], words: str) -> None:
    found = check_topic(config, 1)
    assert len(found.forgets) == 1
    assert words in found.forgets[0]


@pytest.mark.parametrize(
    ("insync", "replication", "words"),
    [
        ("1", 3, "one broker only (set 2)"),
        ("4", 3, "every acks=all write will fail"),
    ],
)
def test_too_few_or_too_many_in_sync_replicas_weaken_writes(
    insync: str, replication: int, words: str
) -> None:
    found = check_topic({"min.insync.replicas": insync}, replication)
    assert found.forgets == []
    assert len(found.weak) == 1
    assert words in found.weak[0]


def test_one_replica_needs_one_in_sync_and_unreported_settings_are_not_judged() -> None:
    assert check_topic({"min.insync.replicas": "1"}, 1).weak == []
    assert check_topic({}, None).forgets == []
    assert check_topic({}, None).weak == []
    unclean = check_topic({"unclean.leader.election.enable": "true"}, 3)
    assert "unclean.leader.election.enable=true" in unclean.weak[0]
