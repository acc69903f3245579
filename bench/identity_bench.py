"""Identity (issue 12): projection throughput with multi-identifier customers, beside the same
history without them, and what a merge or an unmerge costs.

    python bench/identity_bench.py                    # 1,000,000 events, 100,000 customers
    python bench/identity_bench.py --events 200000 --customers 20000   # a quicker look

Measured in one run, each catch-up in a fresh child process (bench/projection_bench.py's):

* ``catch-up`` (both projections plus the identity rows) from the embedded log into a
  SQLite view store, with worker processes and in one process, over the generated history
  with ``--identities`` of its customers known to several systems, and over the same
  history without (same seed: the same events, the identity events and rewritten
  subjects aside) -- the BENCHMARKS.md figure, measured again beside it;
* ``merge`` / ``unmerge``: ``application.identity.merge`` and ``unmerge`` of random pairs of
  customers (reading the graph, checking, appending one event), then the rows a projector
  writes for them (one per event: nothing is re-folded);
* ``profile``: ``customer_fresh`` (what ``ledger profile`` / ``contacts`` read) for a customer
  alone, for a person of several identifiers, and for a merged person, p50/p99.
"""

from __future__ import annotations

import argparse
import itertools
import os
import random
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def make_input(path: Path, events: int, customers: int, identities: float) -> int:
    from ledger.generate import generated

    days = max(30, round(events / customers / 22.0 * 365) + 15)
    count = 0
    with path.open("wb") as out:
        history = generated(customers, days, seed=1, identities=identities)
        for document in itertools.islice(history, events):
            out.write(orjson.dumps(document) + b"\n")
            count += 1
    return count


def percentiles(timings: list[float]) -> str:
    timings = sorted(timings)
    p50, p99 = timings[len(timings) // 2], timings[min(len(timings) - 1, len(timings) * 99 // 100)]
    return f"p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms ({len(timings)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--identities", type=float, default=0.1)
    parser.add_argument("--merges", type=int, default=200)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1, help="default: one per CPU core"
    )
    args = parser.parse_args()

    from application import identity
    from application.fresh import customer_fresh
    from application.wiring import open_log, open_store
    from bench.projection_bench import measure
    from consumers.projector import Projector
    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.settings import Settings
    from projections.frequency import Window

    args.work.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        logs = {}
        for share in (0.0, args.identities):
            source = args.work / f"identities-{share}-{args.customers}c-{args.events}e.jsonl"
            if not source.exists():
                make_input(source, args.events, args.customers, share)
            logs[share] = f"sqlite:///{scratch}/log-{share}.db"
            with open_log(Settings(log=logs[share])) as log, source.open("rb") as stream:
                rejects = RejectsFile(Path(scratch) / "rejects")
                import_stream(log, candidates(stream, "jsonl"), rejects, batch_size=20_000)
        stores: dict[float, str] = {}
        for share in (0.0, args.identities):  # alternating, so drift hits both alike
            for workers in (args.workers, 1):
                views = f"sqlite:///{scratch}/views-{share}-{workers}.db"
                stores.setdefault(share, views)
                label = f"{args.workers} workers" if workers > 1 else "one process"
                result = measure("catch-up", log=logs[share], store=views, workers=workers)
                rows.append((f"catch-up, {share:.0%} multi-identifier, {label}", result))

        settings = Settings(log=logs[args.identities], store=stores[args.identities])
        rng = random.Random(5)
        customers = [f"C{n:07d}" for n in range(1, args.customers + 1)]
        merge_times, unmerge_times = [], []
        merged: list[str] = []
        at = datetime(2030, 1, 1, tzinfo=UTC)
        with open_log(settings) as log, closing(open_store(settings)) as store:
            people: dict[str, set[str]] = {}
            facts = store.all_identity_facts()
            for fact in facts:
                if fact.type == "identity.linked":
                    people.setdefault(fact.customer, set()).add(fact.other)
            multi = sorted(c for c, ids in people.items() if len(ids) >= 2)
            for n in range(args.merges):
                first, second = rng.sample(customers, 2)
                started = time.perf_counter()
                document, _ = identity.merge(
                    log, store, first, second, reason="bench", at=at + timedelta(seconds=n)
                )
                merge_times.append(time.perf_counter() - started)
                merged.append(document["subject"])
            before = store.counts()
            started = time.perf_counter()
            report = Projector(log, store, workers=1).catch_up()
            project_merges = time.perf_counter() - started
            after = store.counts()
            window = Window.rolling(at, timedelta(days=90))
            lookups: dict[str, list[float]] = {"alone": [], "several identifiers": [], "merged": []}
            samples = {
                "alone": rng.sample([c for c in customers if c not in people], 500),
                "several identifiers": rng.sample(multi, min(500, len(multi))),
                "merged": merged,
            }
            for name, keys in samples.items():
                for key in keys:
                    started = time.perf_counter()
                    customer_fresh(log, store, key, window)
                    lookups[name].append(time.perf_counter() - started)
            for n, customer in enumerate(merged):
                started = time.perf_counter()
                identity.unmerge(
                    log, store, customer, reason="bench", at=at + timedelta(hours=1, seconds=n)
                )
                unmerge_times.append(time.perf_counter() - started)
            started = time.perf_counter()
            unmerge_report = Projector(log, store, workers=1).catch_up()
            project_unmerges = time.perf_counter() - started

    print(
        f"\nidentity: {args.events:,} events, {args.customers:,} customers, "
        f"{args.identities:.0%} known to several systems"
    )
    print(f"{'what':52} {'events':>10} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12}")
    for name, result in rows:
        print(
            f"{name:52} {result['events']:>10,} {result['seconds']:>8.2f} "
            f"{result['rate']:>10,.0f} {result['peak_rss_mb']:>12.0f}"
        )
    by_name = dict(rows)
    for label in (f"{args.workers} workers", "one process"):
        plain = by_name[f"catch-up, 0% multi-identifier, {label}"]["rate"]
        multi_rate = by_name[f"catch-up, {args.identities:.0%} multi-identifier, {label}"]["rate"]
        print(f"{label}: with identities / without = {multi_rate / plain:.2f}")
    print(f"merge (read graph, check, append one event): {percentiles(merge_times)}")
    print(f"unmerge: {percentiles(unmerge_times)}")
    changed = {table: after[table] - before[table] for table in after}
    print(
        f"projecting {report.records} merges: {project_merges:.3f} s, rows added per table: "
        f"{changed}; {unmerge_report.records} unmerges: {project_unmerges:.3f} s"
    )
    for name, timings in lookups.items():
        print(f"profile/contacts of a person ({name}): {percentiles(timings)}")


if __name__ == "__main__":
    main()
