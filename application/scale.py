"""Running the projectors at scale: what a consumer group looks like, and copying a log
into another (a topic with more partitions).

Parallelism on Kafka comes from partitions: each partition is read by one member of the
projector group at a time, so a group of more members than the topic has partitions leaves
some members idle (docs/kafka.md, "More partitions"). ``ledger project status`` says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kafka import KafkaAdminClient
from kafka.errors import KafkaError

from ledger.events import Touchpoint
from ledger.kafka_log import KafkaLog
from ledger.log import Appended, EventLog, Positions
from ledger.stopping import Stop


@dataclass(frozen=True, slots=True)
class GroupMember:
    member_id: str
    client_id: str
    host: str
    partitions: tuple[int, ...] | None
    """``None``: the broker did not say (Tansu does not return assignments)."""


@dataclass(frozen=True, slots=True)
class GroupStatus:
    """A projector group as the broker sees it, and what is wrong with its shape."""

    group_id: str
    state: str
    partitions: int
    members: list[GroupMember] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "group": self.group_id,
            "state": self.state,
            "partitions": self.partitions,
            "members": [
                {
                    "member_id": m.member_id,
                    "client_id": m.client_id,
                    "host": m.host,
                    "partitions": None if m.partitions is None else list(m.partitions),
                }
                for m in self.members
            ],
            "warnings": self.warnings,
            "error": self.error,
        }


def group_status(log: KafkaLog, group_id: str) -> GroupStatus:
    """The members of ``group_id`` and their partitions (DescribeGroups), with a warning
    when the group has more members than the topic has partitions, or a member holds
    none: those members stay idle, and adding machines adds nothing."""
    partitions = len(log.partitions())
    try:
        admin = KafkaAdminClient(**log.client_options())
    except KafkaError as exc:
        return GroupStatus(group_id, "unknown", partitions, error=f"cannot describe: {exc}")
    try:
        # Tansu answers authorized operations kafka-python cannot map: not needed here.
        admin._process_acl_operations = _without_acl
        described = admin.describe_groups([group_id]).get(group_id, {})
    except (KafkaError, ValueError) as exc:
        return GroupStatus(group_id, "unknown", partitions, error=f"cannot describe: {exc}")
    finally:
        admin.close()
    members = [_member(m, log.topic) for m in described.get("members") or []]
    return GroupStatus(
        group_id,
        str(described.get("group_state") or "unknown"),
        partitions,
        members,
        group_warnings(group_id, partitions, members),
    )


def group_warnings(group_id: str, partitions: int, members: list[GroupMember]) -> list[str]:
    """What is wrong with the shape of a group (see :func:`group_status`)."""
    warnings = []
    if len(members) > partitions:
        warnings.append(
            f"group {group_id} has {len(members)} members but the topic has {partitions} "
            f"partition(s): {len(members) - partitions} member(s) hold no partition and stay "
            "idle; to use them, move to a topic with more partitions (docs/kafka.md, "
            '"More partitions")'
        )
    idle = [m for m in members if m.partitions is not None and not m.partitions]
    if idle and len(members) <= partitions:
        names = ", ".join(m.client_id or m.member_id for m in idle)
        warnings.append(f"group {group_id}: member(s) {names} hold no partition")
    return warnings


def _without_acl(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k != "authorized_operations"}


def _member(member: dict[str, Any], topic: str) -> GroupMember:
    assignment: Any = member.get("member_assignment")
    partitions: tuple[int, ...] | None = None
    if callable(getattr(assignment, "partitions", None)):  # decoded by kafka-python
        partitions = tuple(
            sorted(tp.partition for tp in assignment.partitions() if tp.topic == topic)
        )
    elif isinstance(assignment, dict) and "assigned_partitions" in assignment:  # as a dict
        partitions = tuple(sorted(_partitions(assignment["assigned_partitions"], topic)))
    return GroupMember(
        str(member.get("member_id") or ""),
        str(member.get("client_id") or ""),
        str(member.get("client_host") or ""),
        partitions,
    )


def _partitions(assigned: Any, topic: str) -> list[int]:
    """The partitions of ``topic`` in an assignment's ``assigned_partitions``, as
    ``(topic, partitions)`` pairs or ``{"topic", "partitions"}`` dicts."""
    found: list[int] = []
    for entry in assigned or []:
        name, numbers = (
            (entry.get("topic"), entry.get("partitions"))
            if isinstance(entry, dict)
            else (entry[0], entry[1])
        )
        if name == topic:
            found += [int(p) for p in numbers or []]
    return found


@dataclass
class CopyReport:
    """What :func:`copy_log` did."""

    read: int = 0
    appended: int = 0
    duplicates: int = 0
    """Events the target already held (ids are idempotency keys): a copy run again."""
    unreadable: list[tuple[int, int, str]] = field(default_factory=list)
    """``(partition, offset, reason)`` of source records that are no touchpoint: not copied."""
    next_positions: dict[int, int] = field(default_factory=dict)
    """Per source partition, where a later copy goes on from (``--from-position``)."""


def copy_log(
    source: EventLog,
    target: EventLog,
    start: Positions | None = None,
    *,
    batch_size: int = 20_000,
    stop: Stop | None = None,
) -> CopyReport:
    """Append the events of ``source`` (from ``start``) to ``target``, in order per
    partition, in batches: the way to a topic with more partitions (docs/kafka.md, "More
    partitions"). The target places each event by its own rule (on Kafka, its key's
    murmur2 partition of the new count), so each customer's events stay together and in
    order; ids are kept, so copying again appends nothing twice."""
    report = CopyReport(next_positions=dict(start or {}))
    batch: list[Touchpoint] = []
    moved: dict[int, int] = {}

    def flush() -> None:
        for outcome in target.append(batch) if batch else []:
            if isinstance(outcome, Appended):
                report.appended += 1
            else:
                report.duplicates += 1
        batch.clear()
        report.next_positions.update(moved)

    for record in source.read(start):
        report.read += 1
        position = record.position
        moved[position.partition] = position.offset + 1
        if record.event is None:
            reason = record.error or "cannot be decoded"
            report.unreadable.append((position.partition, position.offset, reason))
        else:
            batch.append(record.event)
        if len(batch) >= batch_size:
            flush()
            if stop is not None and stop.is_set():
                return report
    flush()
    return report
