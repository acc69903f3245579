"""confluent-kafka (librdkafka) as the read client of a Kafka log: ``LEDGER_KAFKA_READER=
confluent-kafka``.

kafka-python, the ledger's Kafka adapter, unpacks record batches in pure Python: about
two thirds of a bare read's time (BENCHMARKS.md, issue 17). librdkafka does it in C, four
times cheaper. :class:`ConfluentConsumer` puts librdkafka behind the part of
kafka-python's ``KafkaConsumer`` that the ledger's readers use -- assign, seek, poll by
partition, high watermarks, group subscription with a rebalance listener, pause, commit
-- so the group member (:mod:`consumers.kafka_group`), the projector's worker processes
and the validating read keep one implementation, and one test suite, for both clients.
Producing, the admin client and the occasional lookups stay on kafka-python.

What the ledger relies on, kept the same:

- **Positions are the reader's own.** Nothing is read from Kafka's committed offsets or
  reset: a partition starts where the caller seeks it (in a rebalance, inside the
  listener), and a position out of range raises kafka-python's ``OffsetOutOfRangeError``
  (``auto.offset.reset`` is ``error``), which :meth:`ledger.kafka_log.KafkaLog.out_of_range`
  turns into the precise error.
- **Caught up means the position reached the high watermark a fetch brought back**
  (librdkafka keeps it per partition from every fetch; Tansu's list-offsets answers are
  not trusted, as with kafka-python).
- **The rebalance listener runs on the caller's thread, inside ``poll``** (librdkafka
  calls it from ``consume``), before the partitions move: a batch in hand is committed
  there. Its exceptions are raised by ``poll`` after the assignment has been made, so a
  failing store stops the member instead of being lost.
- **Errors are kafka-python's** (``kafka.errors``), so callers catch one family.
"""

from __future__ import annotations

import importlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

from kafka import OffsetAndMetadata, TopicPartition
from kafka.errors import KafkaError, OffsetOutOfRangeError

from ledger.errors import ConfigurationError

_ck: Any  # the module, typed or not by its version (the extra allows >=2.6); None without
try:
    _ck = importlib.import_module("confluent_kafka")
except ImportError:  # the extra is not installed
    _ck = None

INSTALL_HINT = "pip install 'touchpoint-ledger[confluent]' (or confluent-kafka>=2.6)"
PARTITION_OPTIONS: dict[str, Any] = {
    "enable.auto.commit": False,
    "enable.auto.offset.store": False,
    # An end-of-partition event tells that a fetch answered for the partition (its high
    # watermark is fresh) even when it brought no record: see ConfluentConsumer.highwater.
    "enable.partition.eof": True,
    "auto.offset.reset": "error",
    # kafka-python reads every record, aborted transactions' too; so must a member of the
    # same group (librdkafka's default, read_committed, would stop at an open transaction).
    "isolation.level": "read_uncommitted",
    "fetch.max.bytes": 64 * 1024 * 1024,
    "max.partition.fetch.bytes": 8 * 1024 * 1024,
    "fetch.min.bytes": 1,
    "fetch.wait.max.ms": 100,
    # kafka-python's assignors by name, so members of either client can share a group.
    "partition.assignment.strategy": "range,roundrobin",
}
"""librdkafka's settings matching :data:`ledger.kafka_log.CONSUMER_OPTIONS`."""
_TRANSIENT = (
    frozenset(
        getattr(_ck.KafkaError, name)
        for name in (
            "_TRANSPORT",
            "_ALL_BROKERS_DOWN",
            "_TIMED_OUT",
            "_RESOLVE",
            "_MAX_POLL_EXCEEDED",  # librdkafka rejoins the group at the next poll
            "UNKNOWN_TOPIC_OR_PART",  # a broker restarting; a topic gone is found by bounds
        )
    )
    if _ck is not None
    else frozenset()
)
"""librdkafka's local errors it recovers from by itself (reconnecting, retrying)."""
FRESH_AFTER_SECONDS = 2.0
"""How long after an assignment a high watermark equal to the one before counts as
fresh all the same: librdkafka refreshes it with every fetch response, records or not,
and fetches every ``fetch.wait.max.ms`` (100 ms) while the broker answers."""
_GROUP_STATS_MS = 1000
"""How often librdkafka reports the group coordinator's state (see :meth:`coordinator_unknown`)."""


def librdkafka_options(options: dict[str, Any]) -> dict[str, Any]:
    """kafka-python client options (``KafkaLog.client_options``) as librdkafka's."""
    config: dict[str, Any] = {
        "bootstrap.servers": ",".join(options["bootstrap_servers"]),
        "client.id": options.get("client_id", "touchpoint-ledger"),
        "security.protocol": options.get("security_protocol", "PLAINTEXT"),
        "socket.connection.setup.timeout.ms": options.get("bootstrap_timeout_ms", 15_000),
    }
    if "sasl_mechanism" in options:
        config["sasl.mechanism"] = options["sasl_mechanism"]
        for ours, theirs in (
            ("sasl_plain_username", "sasl.username"),
            ("sasl_plain_password", "sasl.password"),
        ):
            if options.get(ours) is not None:
                config[theirs] = options[ours]
    for ours, theirs in (
        ("ssl_cafile", "ssl.ca.location"),
        ("ssl_certfile", "ssl.certificate.location"),
        ("ssl_keyfile", "ssl.key.location"),
        ("ssl_password", "ssl.key.password"),
    ):
        if options.get(ours) is not None:
            config[theirs] = options[ours]
    if "ssl_check_hostname" in options:
        config["ssl.endpoint.identification.algorithm"] = (
            "https" if options["ssl_check_hostname"] else "none"
        )
    return config


class Record:
    """A consumed record with the attributes of kafka-python's ``ConsumerRecord`` that
    the ledger reads."""

    __slots__ = ("headers", "key", "offset", "timestamp", "value")

    def __init__(
        self,
        key: bytes | None,
        value: bytes | None,
        headers: list[tuple[str, bytes | None]],
        offset: int,
        timestamp: int,
    ) -> None:
        self.key = key
        self.value = value
        self.headers = headers
        self.offset = offset
        self.timestamp = timestamp


class _Coordinator:
    """What :meth:`consumers.kafka_group.GroupProjector._watch_broker` asks kafka-python's
    coordinator: whether the group's coordinator is unknown (the broker is down)."""

    def __init__(self) -> None:
        self.state = "up"

    def coordinator_unknown(self) -> bool:
        return self.state != "up"


class ConfluentConsumer:
    """A librdkafka consumer behind the part of kafka-python's ``KafkaConsumer`` that the
    ledger uses (see the module's docstring). ``group_id`` ``None``: partitions are only
    assigned by hand (librdkafka still wants a group id; nothing is committed to it)."""

    def __init__(
        self,
        options: dict[str, Any],
        *,
        group_id: str | None = None,
        session_timeout_ms: int | None = None,
        heartbeat_interval_ms: int | None = None,
        max_poll_records: int = 5000,
    ) -> None:
        if _ck is None:
            raise ConfigurationError(
                f"LEDGER_KAFKA_READER=confluent-kafka needs confluent-kafka: {INSTALL_HINT}"
            )
        config = {**librdkafka_options(options), **PARTITION_OPTIONS}
        config["group.id"] = group_id or "touchpoint-ledger-reader"
        config["error_cb"] = self._on_error
        config["logger"] = logging.getLogger("ledger.librdkafka")
        self._coordinator: _Coordinator | None = None
        if group_id is not None:
            self._coordinator = _Coordinator()
            config["statistics.interval.ms"] = _GROUP_STATS_MS
            config["stats_cb"] = self._on_stats
            if session_timeout_ms is not None:
                config["session.timeout.ms"] = session_timeout_ms
            if heartbeat_interval_ms is not None:
                config["heartbeat.interval.ms"] = heartbeat_interval_ms
        try:
            self._consumer = _ck.Consumer(config)
        except _ck.KafkaException as exc:
            raise KafkaError(str(exc)) from exc
        self.max_poll_records = max_poll_records
        self._assignment: set[TopicPartition] = set()
        self._positions: dict[TopicPartition, int] = {}
        """The next offset of each assigned partition, as far as this reader knows (a seek
        or the last record returned); absent: not known yet."""
        self._fetched: set[TopicPartition] = set()
        """Assigned partitions a fetch has answered for since the assignment (a record, an
        end-of-partition event, or a high watermark other than the one before): only
        theirs is a high watermark of this assignment (librdkafka keeps the last one
        across assignments)."""
        self._before: dict[TopicPartition, int] = {}
        """The high watermark librdkafka held for each partition when it was assigned."""
        self._assigned_at = 0.0
        self._starting: dict[TopicPartition, int] | None = None
        """An assignment not yet given to librdkafka: the offsets sought meanwhile, given
        to it with the assignment (librdkafka seeks only partitions it already fetches)."""
        self._listener: Any = None
        self._callback_error: BaseException | None = None
        self._fatal: KafkaError | None = None

    # -- callbacks, run by librdkafka inside consume() on this thread ------------------

    def _on_error(self, error: Any) -> None:
        if error.fatal():
            self._fatal = KafkaError(error.str())

    def _on_stats(self, report: str) -> None:
        assert self._coordinator is not None
        group = json.loads(report).get("cgrp") or {}
        self._coordinator.state = group.get("state", "up")

    def _on_assign(self, consumer: Any, partitions: list[Any]) -> None:
        assigned = [TopicPartition(p.topic, p.partition) for p in partitions]
        self._begin(assigned)
        try:
            if self._listener is not None:
                self._listener.on_partitions_assigned(assigned)
        except BaseException as exc:  # raised by poll, after the assignment is made
            self._callback_error = exc
        finally:
            self._start()

    def _on_revoke(self, consumer: Any, partitions: list[Any]) -> None:
        revoked = [TopicPartition(p.topic, p.partition) for p in partitions]
        try:
            if self._listener is not None:
                self._listener.on_partitions_revoked(revoked)
        except BaseException as exc:
            self._callback_error = exc
        finally:
            consumer.unassign()
            self._begin([])
            self._starting = None

    def _begin(self, partitions: Iterable[TopicPartition]) -> None:
        self._assignment = set(partitions)
        self._positions = {}
        self._fetched = set()
        self._before = {}
        self._starting = {}

    def _start(self) -> None:
        """Give librdkafka the assignment with the offsets sought since it was made, every
        partition unpaused, as kafka-python starts a new assignment (librdkafka keeps an
        application's pause of a partition across assignments: a member paused for its
        worker processes would otherwise never read a partition given back to it). Every
        reader of the ledger seeks each partition it assigns; one not sought would start
        at Kafka's committed offset, or fail as out of range without one."""
        starting, self._starting = self._starting, None
        if starting is None:
            return
        partitions = [
            _ck.TopicPartition(tp.topic, tp.partition, starting.get(tp, _ck.OFFSET_INVALID))
            for tp in sorted(self._assignment)
        ]
        try:
            self._consumer.assign(partitions)
            if partitions:
                self._consumer.resume(partitions)
        except _ck.KafkaException as exc:
            raise KafkaError(f"cannot assign {sorted(self._assignment)}: {exc}") from exc
        self._before = {tp: self._cached_highwater(tp) for tp in self._assignment}
        self._assigned_at = time.monotonic()
        self._positions.update((tp, offset) for tp, offset in starting.items() if offset >= 0)

    # -- kafka-python's interface --------------------------------------------------------

    def subscribe(self, topics: Sequence[str], listener: Any = None) -> None:
        self._listener = listener
        self._consumer.subscribe(list(topics), on_assign=self._on_assign, on_revoke=self._on_revoke)

    def assign(self, partitions: Iterable[TopicPartition]) -> None:
        self._begin(partitions)  # given to librdkafka by the first poll, with the seeks

    def assignment(self) -> set[TopicPartition]:
        return set(self._assignment)

    def seek(self, partition: TopicPartition, offset: int) -> None:
        self._seek(partition, offset)

    def seek_to_beginning(self, *partitions: TopicPartition) -> None:
        for tp in partitions or tuple(self._assignment):
            self._seek(tp, _ck.OFFSET_BEGINNING)

    def _seek(self, tp: TopicPartition, offset: int) -> None:
        if self._starting is not None:
            self._starting[tp] = offset
        else:
            try:
                self._consumer.seek(_ck.TopicPartition(tp.topic, tp.partition, offset))
            except _ck.KafkaException as exc:
                raise KafkaError(f"cannot seek {tp}: {exc}") from exc
        if offset >= 0:
            self._positions[tp] = offset
        else:
            self._positions.pop(tp, None)

    def position(self, partition: TopicPartition) -> int:
        known = self._positions.get(partition)
        if known is not None:
            return known
        # Sought to the beginning, nothing read yet: where the partition begins, as the
        # fetcher found it (no request: Tansu answers list-offsets wrong); before that,
        # 0, while its high watermark is unknown too (so it is not caught up).
        try:
            low, _ = self._consumer.get_watermark_offsets(
                _ck.TopicPartition(partition.topic, partition.partition), cached=True
            )
        except _ck.KafkaException:
            return 0
        return int(max(low, 0))

    def highwater(self, partition: TopicPartition) -> int | None:
        """The high watermark the last fetch of ``partition`` brought back (``None``:
        none since it was assigned). A fetch that brings no record says nothing when the
        partition's position is beyond its end (Tansu), so a high watermark other than
        the one librdkafka held at the assignment counts as fresh too, and so does the
        same one :data:`FRESH_AFTER_SECONDS` after the assignment: a safety net (twice in
        some fifteen benchmark runs before it, a group member stayed waiting after a
        rebalance with every event applied; the cause was not pinned down, and a member
        must never wait for a sign that may not come)."""
        if self._starting is not None:
            return None
        high = self._cached_highwater(partition)
        if high < 0:
            return None
        if partition not in self._fetched:
            if (
                high == self._before.get(partition, -1)
                and time.monotonic() - self._assigned_at < FRESH_AFTER_SECONDS
            ):
                return None
            self._fetched.add(partition)
        return high

    def _cached_highwater(self, partition: TopicPartition) -> int:
        try:
            _, high = self._consumer.get_watermark_offsets(
                _ck.TopicPartition(partition.topic, partition.partition), cached=True
            )
        except _ck.KafkaException:
            return -1
        return int(high)

    def poll(
        self, timeout_ms: int = 0, max_records: int | None = None
    ) -> dict[TopicPartition, list[Record]]:
        """Up to ``max_records`` records, by partition, in offset order within each."""
        self._start()
        wanted = max_records or self.max_poll_records
        consume = self._consumer.consume
        try:
            # What is fetched already; else wait for the first record and take what came
            # with it (librdkafka's consume waits for all ``wanted`` or the timeout, where
            # kafka-python's poll returns what it has).
            messages = consume(num_messages=wanted, timeout=0)
            if not messages and timeout_ms > 0:
                messages = consume(num_messages=1, timeout=timeout_ms / 1000)
                if messages and wanted > 1:
                    messages.extend(consume(num_messages=wanted - 1, timeout=0))
        except _ck.KafkaException as exc:
            raise KafkaError(str(exc)) from exc
        error, self._callback_error = self._callback_error, None
        if error is not None:
            raise error
        if self._fatal is not None:
            raise self._fatal
        by_partition: dict[int, list[Record]] = {}
        ends: dict[TopicPartition, int] = {}
        topic = ""
        for message in messages:
            problem = message.error()
            if problem is not None:
                if problem.code() == _ck.KafkaError._PARTITION_EOF:
                    ends[TopicPartition(message.topic(), message.partition())] = message.offset()
                else:
                    self._raise(message, problem)
                continue
            topic = message.topic()
            batch = by_partition.get(partition := message.partition())
            if batch is None:
                batch = by_partition[partition] = []
            batch.append(
                Record(
                    message.key(),
                    message.value(),
                    message.headers() or [],
                    message.offset(),
                    message.timestamp()[1],
                )
            )
        found: dict[TopicPartition, list[Record]] = {}
        assigned, positions, fetched = self._assignment, self._positions, self._fetched
        for partition, batch in by_partition.items():
            tp = TopicPartition(topic, partition)
            if tp in assigned:  # else revoked meanwhile: another member reads them
                found[tp] = batch
                positions[tp] = batch[-1].offset + 1
                fetched.add(tp)
        for tp, end in ends.items():
            if tp in assigned:
                fetched.add(tp)
                # At the end: past any transaction markers after the last record too.
                positions[tp] = max(positions.get(tp, end), end)
        return found

    def _raise(self, message: Any, problem: Any) -> None:
        """Raise what a record-level error means; transient ones librdkafka retries."""
        code = problem.code()
        if code in (_ck.KafkaError.OFFSET_OUT_OF_RANGE, _ck.KafkaError._AUTO_OFFSET_RESET):
            tp = TopicPartition(message.topic(), message.partition())
            raise OffsetOutOfRangeError({tp: self._positions.get(tp, message.offset())})
        if problem.fatal() or not (problem.retriable() or code in _TRANSIENT):
            raise KafkaError(problem.str())

    def pause(self, *partitions: TopicPartition) -> None:
        try:
            self._consumer.pause([_ck.TopicPartition(tp.topic, tp.partition) for tp in partitions])
        except _ck.KafkaException as exc:
            raise KafkaError(str(exc)) from exc

    def resume(self, *partitions: TopicPartition) -> None:
        try:
            self._consumer.resume([_ck.TopicPartition(tp.topic, tp.partition) for tp in partitions])
        except _ck.KafkaException as exc:
            raise KafkaError(str(exc)) from exc

    def commit(self, offsets: dict[TopicPartition, OffsetAndMetadata]) -> None:
        if not offsets:
            return
        try:
            self._consumer.commit(
                offsets=[
                    _ck.TopicPartition(tp.topic, tp.partition, meta.offset)
                    for tp, meta in offsets.items()
                ],
                asynchronous=False,
            )
        except _ck.KafkaException as exc:
            raise KafkaError(str(exc)) from exc

    def close(self, timeout_ms: int | None = None) -> None:
        self._consumer.close()
