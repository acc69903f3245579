"""Projection throughput, memory and profile lookup latency, beside the baseline and the limit.

    python bench/projection_bench.py                   # 1,000,000 events, 100,000 customers
    python bench/projection_bench.py --events 200000   # a quicker look
    python bench/projection_bench.py --identities 0.1  # 10 % of customers with 2-4 identifiers

Each figure comes from a fresh child process (its own peak RSS). Measured in one run:

* ``raw limit``: read and decode the log, no projection: validated (pydantic), and the
  projector's own path (facts from the embedded log's stored bytes);
* ``catch-up`` (both projections, the projector's default batches) from the embedded log
  and from Kafka, into a SQLite view store: with worker processes (``--workers``, default
  one per core) and in one process, side by side;
* ``rebuild``: the same from position 0 into fresh tables, then the swap;
* ``group member``: the CLI's path on Kafka (``ledger project run``): one consumer-group
  member catching up, joining included (Tansu takes half the 6 s session timeout);
* ``baseline``: the straightforward eventsourcing-style loop -- one event per transaction
  through the tracking recorder (the projector with batches of 1), on the first
  ``--baseline-events`` events (it is too slow for the whole log);
* ``profile lookup``: p50/p99 of ``ViewStore.profile`` for random customers.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(args: argparse.Namespace) -> dict[str, Any]:
    from application.wiring import open_log, open_store
    from consumers.folding import PROJECTOR_BATCH
    from consumers.projector import Projector, rebuild
    from ledger.settings import Settings

    settings = Settings(log=args.log, store=args.store)
    log = open_log(settings, create=False)
    if args.child == "read":
        started = time.perf_counter()
        count = sum(1 for _ in itertools.islice(log.read(), args.limit or None))
        return {"events": count, "seconds": time.perf_counter() - started}
    if args.child == "read-facts":  # the projector's own read path, no projection
        from consumers.folding import read_items

        started = time.perf_counter()
        count = sum(1 for _ in itertools.islice(read_items(log, {}), args.limit or None))
        return {"events": count, "seconds": time.perf_counter() - started}
    store = open_store(settings)
    if args.child == "lookup":
        customers = [f"C{i:07d}" for i in range(1, args.customers + 1)]
        rng = random.Random(1)
        timings = []
        for _ in range(10_000):
            started = time.perf_counter()
            store.profile(rng.choice(customers))
            timings.append(time.perf_counter() - started)
        timings.sort()
        return {
            "p50_ms": timings[5000] * 1000,
            "p99_ms": timings[9900] * 1000,
            "events": 10_000,
            "seconds": sum(timings),
        }
    started = time.perf_counter()
    if args.child == "group":  # the CLI's path on Kafka: a consumer-group member
        import threading

        from consumers.kafka_group import GroupProjector
        from ledger.kafka_log import KafkaLog

        assert isinstance(log, KafkaLog)
        member = GroupProjector(
            log,
            store,
            group_id=f"bench-{os.getpid()}",
            batch_size=args.batch or PROJECTOR_BATCH,
            session_timeout_ms=6000,
            workers=args.workers,
        )
        report = member.run(threading.Event(), until_caught_up=True)
    elif args.child == "rebuild":
        report = rebuild(log, store, batch_size=args.batch or PROJECTOR_BATCH, workers=args.workers)
    elif args.limit:
        projector = Projector(log, store, batch_size=args.batch or PROJECTOR_BATCH)
        records = list(itertools.islice(log.read(), args.limit))
        from consumers.folding import RunReport

        report = RunReport()
        for start in range(0, len(records), args.batch):
            projector.apply(records[start : start + args.batch], report)
    else:
        report = Projector(
            log,
            store,
            batch_size=args.batch or PROJECTOR_BATCH,
            validate=args.validate,
            workers=args.workers,
        ).catch_up()
    return {
        "events": report.records,
        "seconds": time.perf_counter() - started,
        "workers": report.workers,
        "worker_peak_rss_mb": report.worker_peak_rss_mb,
    }


def measure(kind: str, **options: Any) -> dict[str, Any]:
    from bench.common import run_child

    return run_child(__file__, kind, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--baseline-events", type=int, default=20_000)
    parser.add_argument(
        "--identities",
        type=float,
        default=0.0,
        help="share of customers known to several systems (issue 12; bench/identity_bench.py "
        "compares with and without in one run)",
    )
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--child")
    parser.add_argument("--log")
    parser.add_argument("--store")
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--batch", type=int, default=0, help="default: the projector's")
    parser.add_argument("--validate", action="store_true")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="default: one per CPU core"
    )
    args = parser.parse_args()
    if args.child:
        # The collector stays on, as in the CLI: the projector keeps its long-lived
        # profiles out of the collector's way itself (consumers.projector.settle_garbage).
        result = child(args)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
        return

    from application.wiring import open_log
    from bench.import_bench import make_input
    from ledger.devbroker import TansuBroker
    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.settings import Settings

    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / f"history-{args.customers}c-{args.events}e.jsonl"
    if args.identities:
        from bench.identity_bench import make_input as make_identities

        source = source.with_name(f"identities-{args.identities}-{source.name}")
        if not source.exists():
            make_identities(source, args.events, args.customers, args.identities)
    elif not source.exists():
        make_input(source, args.events, args.customers)
    rows: list[tuple[str, dict[str, Any]]] = []
    with (
        tempfile.TemporaryDirectory(dir=args.work) as scratch,
        TansuBroker(Path(scratch) / "tansu.log") as broker,
    ):
        embedded = f"sqlite:///{scratch}/log.db"
        kafka = f"kafka://{broker.bootstrap}/bench-{uuid.uuid4().hex[:8]}"
        for url in (embedded, kafka):
            with open_log(Settings(log=url)) as log, source.open("rb") as stream:
                import_stream(
                    log,
                    candidates(stream, "jsonl"),
                    RejectsFile(Path(scratch) / "rejects"),
                    batch_size=20_000,
                )

        def store() -> str:
            return f"sqlite:///{scratch}/{uuid.uuid4().hex}.db"

        rows.append(
            ("raw limit: read + decode, embedded", measure("read", log=embedded, store=store()))
        )
        rows.append(
            (
                "raw limit: projector's read (facts), embedded",
                measure("read-facts", log=embedded, store=store()),
            )
        )
        caught_up, n = store(), args.workers
        rows.append(
            (
                f"catch-up, embedded -> SQLite, {n} workers",
                measure("catch-up", log=embedded, store=caught_up, workers=n),
            )
        )
        rows.append(
            (
                "catch-up, embedded -> SQLite, one process",
                measure("catch-up", log=embedded, store=store(), workers=1),
            )
        )
        rows.append(
            (
                f"catch-up --validate, embedded -> SQLite, {n} workers",
                measure("catch-up", log=embedded, store=store(), validate=True, workers=n),
            )
        )
        rows.append(
            (
                f"rebuild + swap, embedded -> SQLite, {n} workers",
                measure("rebuild", log=embedded, store=caught_up, workers=n),
            )
        )
        rows.append(
            (
                f"baseline: 1 event per transaction ({args.baseline_events:,})",
                measure(
                    "catch-up",
                    log=embedded,
                    store=store(),
                    batch=1,
                    limit=args.baseline_events,
                    workers=1,
                ),
            )
        )
        rows.append(("raw limit: read + decode, Kafka", measure("read", log=kafka, store=store())))
        rows.append(
            (
                f"catch-up, Kafka -> SQLite, {n} workers",
                measure("catch-up", log=kafka, store=store(), workers=n),
            )
        )
        kafka_views = store()
        rows.append(
            (
                "catch-up, Kafka -> SQLite, one process",
                measure("catch-up", log=kafka, store=kafka_views, workers=1),
            )
        )
        rows.append(
            (
                f"rebuild + swap, Kafka -> SQLite, {n} workers",
                measure("rebuild", log=kafka, store=kafka_views, workers=n),
            )
        )
        rows.append(
            (
                f"group member (CLI), Kafka -> SQLite, {n} workers",
                measure("group", log=kafka, store=store(), workers=n),
            )
        )
        lookup = measure("lookup", log=embedded, store=caught_up, customers=args.customers)

    print(f"\nprojections over {args.events:,} events, {args.customers:,} customers")
    print(
        f"{'what':52} {'events':>10} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12} "
        f"{'per worker':>11}"
    )
    for name, result in rows:
        worker = result.get("worker_peak_rss_mb") or 0
        print(
            f"{name:52} {result['events']:>10,} {result['seconds']:>8.2f} "
            f"{result['rate']:>10,.0f} {result['peak_rss_mb']:>12.0f} "
            f"{(f'{worker:.0f}' if worker else '-'):>11}"
        )
    by_name = dict(rows)
    catch_up = by_name[f"catch-up, embedded -> SQLite, {n} workers"]["rate"]
    one = by_name["catch-up, embedded -> SQLite, one process"]["rate"]
    baseline = next(r for name, r in rows if name.startswith("baseline"))["rate"]
    limit = by_name["raw limit: read + decode, embedded"]["rate"]
    kafka_rates = [
        by_name[f"catch-up, Kafka -> SQLite, {w}"]["rate"] for w in (f"{n} workers", "one process")
    ]
    print(
        f"embedded catch-up: / baseline = {catch_up / baseline:.1f}x, / one process = "
        f"{catch_up / one:.2f}x, / validating read limit = {catch_up / limit:.2f}; "
        f"Kafka catch-up / one process = {kafka_rates[0] / kafka_rates[1]:.2f}x"
    )
    print(
        f"profile lookup: p50 {lookup['p50_ms']:.3f} ms, p99 {lookup['p99_ms']:.3f} ms "
        f"(10,000 random customers)"
    )


if __name__ == "__main__":
    main()
