"""The Kafka log: touchpoints in a topic, keyed by customer, CloudEvents binary mode.

Writes use acks=all with the idempotent producer, and report success only after
the broker acknowledged every record. Kafka cannot refuse a second event with the
same id, so this adapter refuses duplicates within one batch only; projections
deduplicate by event id (docs/contract.md, "Duplicates").
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeAlias

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaError, OffsetOutOfRangeError, TopicAlreadyExistsError
from kafka.partitioner.default import murmur2

from ledger.confluent_reader import ConfluentConsumer
from ledger.errors import InvalidEvent, LogUnavailable, TopicForgets
from ledger.events import Touchpoint
from ledger.fast_decode import fast_from_record
from ledger.kafka_binding import Headers, from_record, to_binary
from ledger.kafka_topic import TopicCheck, check_topic, keep_forever
from ledger.log import (
    EVERYTHING,
    Appended,
    AppendOutcome,
    CustomerTail,
    Duplicate,
    EventLog,
    LogRecord,
    Position,
    Positions,
    RawRecord,
    ReadFilter,
    StoredEvent,
    check_positions,
)
from ledger.settings import KafkaLogTarget, Settings
from ledger.stopping import Stop

PRODUCER_OPTIONS: dict[str, Any] = {
    "acks": "all",
    "enable_idempotence": True,
    "linger_ms": 20,
    "batch_size": 1024 * 1024,
    "max_request_size": 8 * 1024 * 1024,
    "max_in_flight_requests_per_connection": 5,
}
CONSUMER_OPTIONS: dict[str, Any] = {
    "enable_auto_commit": False,
    "max_poll_records": 5000,
    "max_partition_fetch_bytes": 8 * 1024 * 1024,
    "fetch_max_bytes": 64 * 1024 * 1024,
    "fetch_min_bytes": 1,
    "fetch_max_wait_ms": 100,
    # Every read seeks to a position of its own: a position out of range must stop the
    # reader (see KafkaLog.out_of_range), never move it silently to the start or the end.
    "auto_offset_reset": "none",
}
READ_STALL_SECONDS = 30.0
Consumer: TypeAlias = "KafkaConsumer | ConfluentConsumer"
"""A reading client: kafka-python's, or librdkafka's behind the same interface
(``LEDGER_KAFKA_READER``)."""
TAIL_OPTIONS: dict[str, Any] = {"fetch_max_wait_ms": 5}
"""A customer's tail is read to the high watermark and no further: no waiting for news."""
LOGGER = logging.getLogger("ledger")


@dataclass(frozen=True, slots=True)
class EncodedRecords:
    """A batch as Kafka records; repeats of an id within the batch are sent once."""

    first: list[int]
    """For each event of the batch, the index of the first event with its id."""
    records: list[tuple[int, tuple[bytes, bytes, Headers]]]
    """``(batch index, (key, value, headers))`` of each first occurrence."""
    ids: list[str]


@lru_cache(maxsize=1_000_000)
def partition_for(customer: str, partition_count: int) -> int:
    """The partition Kafka's default partitioner (murmur2, like Java's) picks for a customer.

    Cached: kafka-python's murmur2 is pure Python, and a customer's partition never
    changes while the topic's partition count does not.
    """
    return int(murmur2(customer.encode()) & 0x7FFFFFFF) % partition_count


class KafkaLog(EventLog):
    """An :class:`EventLog` on a Kafka topic."""

    refuses_duplicates_across_batches = False
    placed_by_key = True

    def __init__(
        self, target: KafkaLogTarget, settings: Settings, *, check_config: bool = True
    ) -> None:
        self.target = target
        self.topic = target.topic
        self._settings = settings
        self._producer: KafkaProducer | None = None
        self._topic_checked = False
        self._check_on_read = check_config
        """Check the topic's configuration before the first read too (worker processes
        of a projector that checked it do not)."""
        self._config_found: TopicCheck | None = None
        """What :meth:`_check_config` found, once it looked."""
        self._topic_id: str | None = None

    # -- clients, created lazily and closed explicitly -------------------------------

    def client_options(self) -> dict[str, Any]:
        """Bootstrap servers, identity and security options for a kafka-python client."""
        return {
            "bootstrap_servers": list(self.target.bootstrap_servers),
            **self._settings.kafka_client_options(),
        }

    @property
    def settings(self) -> Settings:
        return self._settings

    def _unavailable(self, what: str, exc: Exception) -> LogUnavailable:
        servers = ",".join(self.target.bootstrap_servers)
        return LogUnavailable(f"Kafka at {servers}, topic {self.topic}: {what}: {exc}")

    def producer(self) -> KafkaProducer:
        if self._producer is None:
            try:
                self._producer = KafkaProducer(
                    **self.client_options(),
                    **PRODUCER_OPTIONS,
                    max_block_ms=int(self._settings.kafka_timeout_seconds * 1000),
                )
            except KafkaError as exc:
                raise self._unavailable("cannot connect", exc) from exc
        return self._producer

    def ensure_topic(self) -> None:
        """Create the topic to keep every event forever (:func:`keep_forever`) unless it
        exists, then check its configuration: refuses to write to a topic that deletes or
        compacts events unless ``kafka_allow_finite_retention`` (:class:`TopicForgets`)."""
        if self._topic_checked:
            return
        admin = self._admin()
        try:
            replication = self._settings.kafka_replication_factor
            topic = NewTopic(
                self.topic,
                self._settings.kafka_partitions,
                replication,
                topic_configs=keep_forever(replication, self._settings.kafka_min_insync_replicas),
            )
            with suppress(TopicAlreadyExistsError):
                admin.create_topics([topic])
            self._check_config(admin, for_write=True)
        except KafkaError as exc:
            raise self._unavailable("cannot create the topic", exc) from exc
        finally:
            admin.close()
        self._topic_checked = True

    def _admin(self) -> KafkaAdminClient:
        try:
            return KafkaAdminClient(**self.client_options())
        except KafkaError as exc:
            raise self._unavailable("cannot connect", exc) from exc

    def _check_config(self, admin: KafkaAdminClient, *, for_write: bool) -> None:
        """Check the topic's configuration (DescribeConfigs, every value; once per log
        object, warnings included): what makes it forget events refuses every write unless
        allowed, and is otherwise a warning (logger ``ledger``), as is what weakens
        acknowledged writes."""
        found, fresh = self._config_found, self._config_found is None
        if found is None:
            found = self._config_found = self._describe_config(admin)
        if found.forgets and for_write and not self._settings.kafka_allow_finite_retention:
            self._config_found = None  # the next write looks again (after a fix)
            raise TopicForgets(
                f"{self.name} does not keep every event: {'; '.join(found.forgets)}. The "
                "ledger refuses to write to it (LEDGER_KAFKA_ALLOW_FINITE_RETENTION=true "
                "writes anyway; see docs/kafka.md)"
            )
        if fresh:
            for problem in found.forgets:
                LOGGER.warning("%s does not keep every event: %s", self.name, problem)
            for problem in found.weak:
                LOGGER.warning("%s: %s", self.name, problem)

    def _describe_config(self, admin: KafkaAdminClient) -> TopicCheck:
        try:
            resource = ConfigResource(ConfigResourceType.TOPIC, self.topic)
            described = admin.describe_configs([resource], config_filter="all")
            entries = described.get("topic", {}).get(self.topic, {})
            topics = admin.describe_topics([self.topic])
        except KafkaError as exc:
            LOGGER.warning(
                "%s: cannot check its configuration (%s): see docs/kafka.md", self.name, exc
            )
            return TopicCheck()
        config = {
            name: str(entry["value"])
            for name, entry in entries.items()
            if isinstance(entry, dict) and entry.get("value") is not None
        }
        partitions = topics[0].get("partitions") if topics else None
        replication = len(partitions[0].get("replica_nodes") or ()) if partitions else None
        return check_topic(config, replication or None)

    def _consumer(self) -> KafkaConsumer:
        try:
            return KafkaConsumer(**self.client_options(), group_id=None, **CONSUMER_OPTIONS)
        except KafkaError as exc:
            raise self._unavailable("cannot connect", exc) from exc

    def _reader(self) -> Consumer:
        """A consumer for reading records in bulk (the validating read, a projector's
        worker processes), of the client ``LEDGER_KAFKA_READER`` names."""
        if self._settings.kafka_reader == "kafka-python":
            return self._consumer()
        try:
            return ConfluentConsumer(self.client_options())
        except KafkaError as exc:
            raise self._unavailable("cannot connect", exc) from exc

    def group_consumer(
        self, group_id: str, session_timeout_ms: int, max_poll_records: int
    ) -> Consumer:
        """A member of the consumer group ``group_id``, of the client
        ``LEDGER_KAFKA_READER`` names; nothing commits for it automatically and a
        position out of range is never reset (see :data:`CONSUMER_OPTIONS`)."""
        heartbeat_ms = max(1000, session_timeout_ms // 5)
        try:
            if self._settings.kafka_reader == "confluent-kafka":
                return ConfluentConsumer(
                    self.client_options(),
                    group_id=group_id,
                    session_timeout_ms=session_timeout_ms,
                    heartbeat_interval_ms=heartbeat_ms,
                    max_poll_records=max_poll_records,
                )
            return KafkaConsumer(
                **{
                    **self.client_options(),
                    **CONSUMER_OPTIONS,
                    "max_poll_records": max_poll_records,
                },
                group_id=group_id,
                session_timeout_ms=session_timeout_ms,
                heartbeat_interval_ms=heartbeat_ms,
            )
        except KafkaError as exc:
            raise LogUnavailable(f"cannot join group {group_id}: {exc}") from exc

    # -- the port ----------------------------------------------------------------------

    def encode(self, events: Sequence[Touchpoint]) -> EncodedRecords:
        events = self.protected(events)
        first_index: dict[str, int] = {}
        first = [first_index.setdefault(event.id, index) for index, event in enumerate(events)]
        records = [(index, to_binary(events[index])) for index in first_index.values()]
        return EncodedRecords(first, records, [event.id for event in events])

    def write(self, encoded: EncodedRecords) -> list[AppendOutcome]:
        self.ensure_topic()
        producer = self.producer()
        futures: list[tuple[int, Any]] = []
        try:
            count = len(producer.partitions_for(self.topic))
            for index, (key, value, headers) in encoded.records:
                partition = partition_for(key.decode(), count)
                future = producer.send(self.topic, value, key, headers, partition=partition)
                futures.append((index, future))
            producer.flush()
            positions: dict[int, Position] = {}
            for index, future in futures:
                metadata = future.get(timeout=0)
                positions[index] = Position(metadata.partition, metadata.offset)
        except KafkaError as exc:
            acknowledged = sum(1 for _, f in futures if f.succeeded())
            raise self._unavailable(
                f"{acknowledged} of {len(encoded.records)} events acknowledged, the rest "
                "were not (appending the batch again is safe: consumers deduplicate by id)",
                exc,
            ) from exc
        return [
            Appended(event_id, positions[index])
            if first == index
            else Duplicate(event_id, positions[first])
            for index, (event_id, first) in enumerate(zip(encoded.ids, encoded.first, strict=True))
        ]

    def partitions(self) -> list[int]:
        if self._check_on_read and self._config_found is None:
            admin = self._admin()
            try:
                self._check_config(admin, for_write=False)
            finally:
                admin.close()
        consumer = self._consumer()
        try:
            found = consumer.partitions_for_topic(self.topic)
            # The topic id (KIP-516) came with the metadata: a recreated topic gets a new one.
            cluster = getattr(getattr(consumer, "_client", None), "cluster", None)
            topic_id = cluster.topic_id(self.topic) if cluster is not None else None
            self._topic_id = str(topic_id) if topic_id and topic_id.int else None
        except KafkaError as exc:
            raise self._unavailable("cannot read metadata", exc) from exc
        finally:
            consumer.close()
        if not found:
            servers = ",".join(self.target.bootstrap_servers)
            raise LogUnavailable(
                f"no topic {self.topic} on Kafka at {servers} yet: append or import events first"
            )
        return sorted(found)

    def record_at(self, position: Position) -> LogRecord | None:
        tp = TopicPartition(self.topic, position.partition)
        consumer = self._consumer()
        try:
            consumer.assign([tp])
            consumer.seek(tp, position.offset)
            deadline = time.monotonic() + self._settings.kafka_timeout_seconds
            while time.monotonic() < deadline:
                for record in consumer.poll(timeout_ms=200, max_records=1).get(tp, []):
                    return (
                        decode_record(position.partition, record)
                        if (record.offset == position.offset)
                        else None
                    )
                highwater = consumer.highwater(tp)
                if highwater is not None and highwater <= position.offset:
                    return None
        except OffsetOutOfRangeError:
            return None  # deleted by retention, or past the end: no record there
        except KafkaError as exc:
            raise self._unavailable("cannot read", exc) from exc
        finally:
            consumer.close()
        return None

    def end_positions(self) -> dict[int, int]:
        # Tansu answers end_offsets() wrongly; the high watermark of a fetch is right.
        assigned = [TopicPartition(self.topic, p) for p in self.partitions()]
        consumer = self._consumer()
        try:
            consumer.assign(assigned)
            consumer.seek_to_beginning()
            return self._highwaters(consumer, assigned)
        except KafkaError as exc:
            raise self._unavailable("cannot read the end of the log", exc) from exc
        finally:
            consumer.close()

    def _highwaters(
        self, consumer: KafkaConsumer, assigned: list[TopicPartition]
    ) -> dict[int, int]:
        """The high watermark of each assigned partition, from fetches."""
        deadline = time.monotonic() + self._settings.kafka_timeout_seconds
        while time.monotonic() < deadline:
            consumer.poll(timeout_ms=200, max_records=1)
            marks = {tp.partition: consumer.highwater(tp) for tp in assigned}
            if all(mark is not None for mark in marks.values()):
                return {p: int(mark) for p, mark in marks.items() if mark is not None}
        raise LogUnavailable(f"topic {self.topic}: no high watermark within the timeout")

    @property
    def name(self) -> str:
        return f"Kafka topic {self.topic}"

    def identity(self) -> str | None:
        self.partitions()
        return None if self._topic_id is None else f"topic id {self._topic_id}"

    def bounds(self, partitions: Iterable[int]) -> dict[int, tuple[int, int]]:
        # The start is the log start offset (ListOffsets, earliest): Tansu and Kafka agree
        # on it. The end is the high watermark a fetch brings back, not end_offsets()
        # (wrong on Tansu; on Apache Kafka both are the same number).
        wanted = sorted(set(partitions))
        existing = set(self.partitions())
        assigned = [TopicPartition(self.topic, p) for p in wanted if p in existing]
        found = dict.fromkeys(wanted, (0, 0))
        if not assigned:
            return found
        consumer = self._consumer()
        try:
            consumer.assign(assigned)
            starts = consumer.beginning_offsets(
                assigned, timeout_ms=int(self._settings.kafka_timeout_seconds * 1000)
            )
            consumer.seek_to_beginning()
            ends = self._highwaters(consumer, assigned)
        except KafkaError as exc:
            raise self._unavailable("cannot read the bounds of the log", exc) from exc
        finally:
            consumer.close()
        for tp in assigned:
            found[tp.partition] = (int(starts[tp]), ends[tp.partition])
        return found

    def out_of_range(self, exc: OffsetOutOfRangeError) -> LogUnavailable:
        """Turn a fetch refused as out of range into the precise error: raises
        :class:`~ledger.errors.PositionLost` when the bounds confirm it, and otherwise
        returns a :class:`LogUnavailable` for the caller to raise."""
        offsets = exc.args[0] if exc.args and isinstance(exc.args[0], dict) else {}
        check_positions(self, {tp.partition: int(offset) for tp, offset in offsets.items()})
        return self._unavailable("a fetch position is out of range", exc)

    def check_overrun(self, consumer: Consumer, assigned: Iterable[TopicPartition]) -> None:
        """Raise :class:`~ledger.errors.PositionBeyondEnd` if a partition's position is past
        the high watermark its last fetch brought back (Tansu answers such a fetch with no
        records instead of OFFSET_OUT_OF_RANGE). A suspicion is confirmed with fresh
        bounds first, so a stale high watermark raises nothing."""
        suspects = {}
        for tp in assigned:
            mark = consumer.highwater(tp)
            if mark is not None and (position := consumer.position(tp)) > mark:
                suspects[tp.partition] = position
        check_positions(self, suspects)

    def read(
        self, start: Positions | None = None, where: ReadFilter = EVERYTHING
    ) -> Iterator[LogRecord]:
        return self._consume(start, where, stop=None, poll_seconds=0.5)

    def follow(
        self,
        start: Positions | None = None,
        where: ReadFilter = EVERYTHING,
        stop: Stop | None = None,
        poll_seconds: float = 0.2,
    ) -> Iterator[LogRecord]:
        return self._consume(
            start, where, stop=stop or threading.Event(), poll_seconds=poll_seconds
        )

    def _consume(
        self,
        start: Positions | None,
        where: ReadFilter,
        stop: Stop | None,
        poll_seconds: float,
    ) -> Iterator[LogRecord]:
        # A customer's records are looked for in every partition, not only in the one
        # murmur2 gives their key: a producer with another partitioner (librdkafka's
        # default, sarama's) puts them elsewhere, and they must not go missing (see
        # docs/kafka.md, "Records outside their key's partition").
        wanted_key = where.customer.encode() if where.customer is not None else None
        wanted_types = {t.encode() for t in where.types}
        for partition, record in self._records(start, stop, poll_seconds):
            decoded = _decode(partition, record, wanted_key, wanted_types, where)
            if decoded is not None:
                yield decoded

    def consumer_records(self, start: Positions | None = None) -> Iterator[tuple[int, Any]]:
        """Every record from ``start`` to the current end as the Kafka client gives it
        (with its partition), undecoded: for a reader that decodes and validates records
        its own way (a projector makes facts of them: ``consumers.folding``)."""
        return self._records(start, None, 0.5)

    def _records(
        self, start: Positions | None, stop: Stop | None, poll_seconds: float
    ) -> Iterator[tuple[int, Any]]:
        partitions = self.partitions()
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer = self._reader()
        try:
            consumer.assign(assigned)
            for tp in assigned:
                offset = (start or {}).get(tp.partition)
                if offset is None:
                    consumer.seek_to_beginning(tp)
                else:
                    consumer.seek(tp, offset)
            # The broker's end offsets are not trusted (Tansu reports them wrong): a
            # partition is finished when our position reaches the high watermark that
            # came back with a fetch.
            unfinished = set(assigned)
            last_progress = time.monotonic()
            while True:
                batch = consumer.poll(timeout_ms=int(poll_seconds * 1000))
                for tp, records in batch.items():
                    partition = tp.partition
                    for record in records:
                        yield partition, record
                self.check_overrun(consumer, assigned)
                if stop is not None:
                    if stop.is_set():
                        return
                    continue
                if batch:
                    last_progress = time.monotonic()
                for tp in list(unfinished):
                    highwater = consumer.highwater(tp)
                    if highwater is not None and consumer.position(tp) >= highwater:
                        unfinished.discard(tp)
                if not unfinished:
                    return
                if time.monotonic() - last_progress > READ_STALL_SECONDS:
                    raise LogUnavailable(
                        f"topic {self.topic}: no progress for {READ_STALL_SECONDS:.0f}s on "
                        f"partitions {sorted(tp.partition for tp in unfinished)}"
                    )
        except OffsetOutOfRangeError as exc:
            raise self.out_of_range(exc) from exc
        except KafkaError as exc:
            raise self._unavailable("cannot read", exc) from exc
        finally:
            consumer.close()

    def customers_tail(
        self,
        customers: Sequence[str],
        start: Positions,
        *,
        limit: int,
        kept_types: frozenset[str] = frozenset(),
        kept_since: datetime | None = None,
    ) -> dict[str, CustomerTail]:
        """Every partition from ``start`` to its high watermark, read once by one consumer
        and filtered by key (``kept_types`` are not looked for before ``start``: that would
        mean reading the partitions from their beginning). Every partition, not only the
        customers' murmur2 ones: a producer with another partitioner puts a customer's
        records elsewhere (see docs/kafka.md); past the views' positions the tails are
        short, so this costs a fetch per partition, not a scan."""
        try:
            # A fetch at the end of a partition waits fetch_max_wait_ms for news: keep it
            # short, a decision waits for it.
            consumer = KafkaConsumer(
                **self.client_options(), group_id=None, **{**CONSUMER_OPTIONS, **TAIL_OPTIONS}
            )
        except KafkaError as exc:
            raise self._unavailable("cannot connect", exc) from exc
        try:
            found = consumer.partitions_for_topic(self.topic)
            if not found:
                raise LogUnavailable(f"no topic {self.topic} on Kafka yet")
            return self._read_tails(consumer, customers, sorted(found), start, limit)
        except KafkaError as exc:
            raise self._unavailable("cannot read", exc) from exc
        finally:
            consumer.close()

    def _read_tails(
        self,
        consumer: KafkaConsumer,
        customers: Sequence[str],
        partitions: Sequence[int],
        start: Positions,
        limit: int,
    ) -> dict[str, CustomerTail]:
        records: dict[bytes, list[StoredEvent | LogRecord]] = {c.encode(): [] for c in customers}
        complete = dict.fromkeys(records, True)
        assigned = [TopicPartition(self.topic, p) for p in partitions]
        consumer.assign(assigned)
        for tp in assigned:
            offset = start.get(tp.partition)
            if offset is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, offset)
        patience = self._settings.kafka_timeout_seconds
        deadline = time.monotonic() + patience
        ends: dict[int, int] = {}
        while len(ends) < len(assigned):
            for tp, polled in consumer.poll(timeout_ms=5).items():
                deadline = time.monotonic() + patience
                for record in polled:
                    found = records.get(record.key)
                    if found is None or not complete[record.key]:
                        continue
                    if len(found) >= limit:
                        complete[record.key] = False
                        continue
                    decoded = _decode(tp.partition, record, record.key, set(), EVERYTHING)
                    if decoded is not None:
                        found.append(decoded)
            for tp in assigned:
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    ends.setdefault(tp.partition, int(highwater))
            if time.monotonic() > deadline:
                raise LogUnavailable(f"topic {self.topic}: no high watermark in time")
        return {
            customer: CustomerTail(
                dict(ends), records[customer.encode()], complete[customer.encode()]
            )
            for customer in customers
        }

    def customer_tail(
        self,
        customer: str,
        start: Positions,
        *,
        limit: int,
        kept_types: frozenset[str] = frozenset(),
        kept_since: datetime | None = None,
    ) -> CustomerTail:
        """Every partition from ``start`` to its high watermark, filtered by key."""
        return self.customers_tail([customer], start, limit=limit)[customer]

    def read_raw(self, partition: int, start: int = 0) -> Iterator[RawRecord]:
        tp = TopicPartition(self.topic, partition)
        consumer = self._consumer()
        try:
            consumer.assign([tp])
            consumer.seek(tp, start)
            last_progress = time.monotonic()
            while True:
                for record in consumer.poll(timeout_ms=500).get(tp, []):
                    last_progress = time.monotonic()
                    yield RawRecord(
                        Position(partition, record.offset),
                        record.key,
                        tuple((name, value or b"") for name, value in record.headers),
                        record.value,
                        record.timestamp * 1000,
                    )
                self.check_overrun(consumer, [tp])
                highwater = consumer.highwater(tp)
                if highwater is not None and consumer.position(tp) >= highwater:
                    return
                if time.monotonic() - last_progress > READ_STALL_SECONDS:
                    raise LogUnavailable(
                        f"topic {self.topic}: no progress on partition {partition}"
                    )
        except OffsetOutOfRangeError as exc:
            raise self.out_of_range(exc) from exc
        except KafkaError as exc:
            raise self._unavailable("cannot read", exc) from exc
        finally:
            consumer.close()

    def close(self) -> None:
        if self._producer is not None:
            self._producer.close()
            self._producer = None


class PartitionReader:
    """Reads some partitions of the topic batch after batch, with one consumer kept open
    (a projector's worker process folds its partitions' records: see consumers.shards).

    Positions are the reader's own, not Kafka's committed offsets, and a partition is
    caught up when its position reaches the high watermark a fetch brought back.
    """

    def __init__(self, log: KafkaLog, partitions: Sequence[int]) -> None:
        self.log = log
        self.assigned = [TopicPartition(log.topic, p) for p in sorted(partitions)]
        self.consumer = log._reader()
        self.consumer.assign(self.assigned)
        self._at: dict[int, int] = {}
        """Where the consumer stands, per partition, as far as this reader moved it."""
        self.moved: dict[int, int] = {}
        self.caught_up = False

    def take(self, start: dict[int, int], limit: int, chunk: int = 5000) -> Iterator[LogRecord]:
        """Up to ``limit`` records from ``start`` (per partition; absent: the beginning),
        fetched ``chunk`` at a time as they are iterated. Once the iterator is exhausted,
        :attr:`moved` holds the next position of each partition that moved, and
        :attr:`caught_up` whether every partition has reached its high watermark."""
        for partition, record in self.take_records(start, limit, chunk):
            yield decode_record(partition, record)

    def take_records(
        self, start: dict[int, int], limit: int, chunk: int = 5000
    ) -> Iterator[tuple[int, Any]]:
        """As :meth:`take`, the records as the Kafka client gives them (with their
        partition), undecoded."""
        consumer = self.consumer
        self.moved = {}
        self.caught_up = False
        taken = 0
        try:
            for tp in self.assigned:
                wanted = start.get(tp.partition)
                if wanted is None:
                    if self._at.get(tp.partition) != -1:
                        consumer.seek_to_beginning(tp)
                        self._at[tp.partition] = -1
                elif self._at.get(tp.partition) != wanted:
                    consumer.seek(tp, wanted)
                    self._at[tp.partition] = wanted
            last_progress = time.monotonic()
            while taken < limit:
                polled = consumer.poll(timeout_ms=500, max_records=min(chunk, limit - taken))
                for tp, batch in polled.items():
                    partition = tp.partition
                    for record in batch:
                        yield partition, record
                    if batch:
                        taken += len(batch)
                        self.moved[tp.partition] = self._at[tp.partition] = batch[-1].offset + 1
                        last_progress = time.monotonic()
                self.log.check_overrun(consumer, self.assigned)
                self.caught_up = all(
                    (mark := consumer.highwater(tp)) is not None and consumer.position(tp) >= mark
                    for tp in self.assigned
                )
                if self.caught_up:
                    break
                if time.monotonic() - last_progress > READ_STALL_SECONDS:
                    raise LogUnavailable(f"topic {self.log.topic}: no progress on a partition")
        except OffsetOutOfRangeError as exc:
            raise self.log.out_of_range(exc) from exc
        except KafkaError as exc:
            raise self.log._unavailable("cannot read", exc) from exc

    def close(self) -> None:
        self.consumer.close()


def decode_record(partition: int, record: Any) -> LogRecord:
    """A consumer record as a :class:`LogRecord` (with ``error`` if it is no touchpoint)."""
    decoded = _decode(partition, record, None, set(), EVERYTHING)
    assert decoded is not None  # nothing is filtered out without a filter
    return decoded


def _decode(
    partition: int,
    record: Any,
    wanted_key: bytes | None,
    wanted_types: set[bytes],
    where: ReadFilter,
) -> LogRecord | None:
    """Decode one consumer record, or ``None`` if the filter excludes it."""
    if wanted_key is not None and record.key != wanted_key:
        return None
    if wanted_types:
        type_header = next((v for k, v in record.headers if k == "ce_type"), None)
        if type_header is not None and type_header not in wanted_types:
            return None
    position = Position(partition, record.offset)
    recorded_at = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    headers = tuple(record.headers)  # (name, value) pairs; a value may be None
    try:
        event = fast_from_record(record.key, record.value, record.headers) or from_record(
            record.key, record.value, record.headers
        )
    except InvalidEvent as exc:
        reasons = "; ".join(exc.reasons)
        value = record.value or b""
        return LogRecord(position, recorded_at, None, reasons, value, record.key, headers)
    if not where.matches(event):
        return None
    return LogRecord(position, recorded_at, event, None, record.value, record.key, headers)
