"""Service levels: projection throughput with and without the service-level read model, and
the `ledger service-levels` query for a year by day.

    python bench/service_levels_bench.py                  # 1,000,000 events, one year
    python bench/service_levels_bench.py --events 200000  # a quicker look

The log: `ledger generate` output (seed 1, 42,000 customers over 365 days: a whole year),
cut at ``--events``, in an embedded log. Measured in one run, each figure in a fresh child
process, on the same log:

* ``catch-up without``: the projector in one process, with the service-level fold switched
  off in that process (``fact_row`` returns nothing: no rows, no writes) -- today's
  projections alone, the baseline;
* ``catch-up with``: the same, with the service-level rows folded and written (runs
  alternate without/with, three times; the best of each counts);
* ``raw limit``: the projector's read of the log alone (stored bytes to facts), to compare
  this run's machine with the documented runs;
* ``catch-up with, workers``: the projector's default (one worker process per core);
* ``query``: ``application.service_levels.service_levels`` for the whole year by day, and
  the CLI (``ledger service-levels --since ... --until ... --json``) as a subprocess,
  interpreter start included.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DOCUMENTED_READ = 281_758
"""BENCHMARKS.md, Projections: the projector's read of 1M events, events/s (a calibration:
this machine's speed varies several-fold with other sessions' load)."""
sys.path.insert(0, str(HERE.parent))


def child(args: argparse.Namespace) -> dict[str, Any]:
    from application.wiring import open_log, open_store
    from consumers.projector import Projector
    from ledger.settings import Settings

    settings = Settings(log=args.log, store=args.store)
    if args.child == "query":
        from datetime import UTC, datetime

        from application import service_levels as use_cases
        from application.policy_files import default_policy

        store = open_store(settings)
        policy = default_policy().policy
        cpu = time.process_time()
        started = time.perf_counter()
        report = use_cases.service_levels(
            store,
            policy,
            since=datetime(2025, 1, 1, tzinfo=UTC),
            until=datetime(2026, 1, 1, tzinfo=UTC),
            by="day",
            as_of=datetime(2026, 6, 1, tzinfo=UTC),
        )
        seconds = time.perf_counter() - started
        cpu = time.process_time() - cpu
        rows = store.recorder.select("SELECT COUNT(*) FROM {service_facts}")[0][0]
        return {"seconds": seconds, "cpu": cpu, "groups": len(report.groups), "rows": rows}
    if args.child == "read-facts":  # the projector's own read path: this machine, today
        from consumers.folding import read_items

        log = open_log(settings, create=False)
        started = time.perf_counter()
        count = sum(1 for _ in read_items(log, {}))
        return {"events": count, "seconds": time.perf_counter() - started}
    if args.child == "without":
        from projections import service_levels

        service_levels.fact_row = lambda fact: None
    log = open_log(settings, create=False)
    store = open_store(settings)
    started = time.perf_counter()
    run = Projector(log, store, workers=args.workers).catch_up()
    seconds = time.perf_counter() - started
    return {"events": run.records, "seconds": seconds}


def measure(kind: str, **options: Any) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", kind]
    for name, value in options.items():
        command += [f"--{name}", str(value)]
    output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
    result: dict[str, Any] = json.loads(output.splitlines()[-1])
    return result


def build_log(path: Path, events: int, customers: int) -> None:
    from ledger.codec import parse_event
    from ledger.generate import generated
    from ledger.sqlite_log import SQLiteLog

    log = SQLiteLog(path)
    documents = itertools.islice(generated(customers, 365, seed=1), events)
    while batch := [parse_event(d) for d in itertools.islice(documents, 20_000)]:
        log.append(batch)
    log.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=42_000)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--child")
    parser.add_argument("--log")
    parser.add_argument("--store")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    args.work.mkdir(parents=True, exist_ok=True)
    log_path = args.work / f"service-levels-{args.events}.db"
    if not log_path.exists():
        started = time.perf_counter()
        build_log(log_path, args.events, args.customers)
        print(f"log built in {time.perf_counter() - started:.1f}s: {log_path}", flush=True)
    log = f"sqlite:///{log_path}"
    scratch = Path(tempfile.mkdtemp(dir=args.work))

    def store() -> str:
        return f"sqlite:///{scratch / uuid.uuid4().hex}.db"

    rows: list[tuple[str, dict[str, Any]]] = []
    best: dict[str, float] = {}
    calibration = measure("read-facts", log=log, store=store())
    rows.append(("raw limit: the projector's read (stored bytes -> facts)", calibration))
    for kind in ("without", "with", "without", "with", "without", "with"):
        found = measure(kind, log=log, store=store(), workers=1)
        rate = found["events"] / found["seconds"]
        best[kind] = max(best.get(kind, 0.0), rate)
        rows.append((f"catch-up {kind}, one process", found))
        print(f"  {kind:<8} {found['events']:>9,} events {found['seconds']:7.2f}s {rate:>9,.0f}/s")
    last = store()
    workers = os.cpu_count() or 1
    found = measure("with", log=log, store=last, workers=workers)
    rows.append((f"catch-up with, {workers} workers", found))
    query = measure("query", log=log, store=last)
    started = time.perf_counter()
    env = {**os.environ, "LEDGER_LOG": log, "LEDGER_STORE": last}
    subprocess.run(
        [
            str(Path(sys.executable).with_name("ledger")),
            "service-levels",
            "--since",
            "2025-01-01",
            "--until",
            "2025-12-31",
            "--as-of",
            "2026-06-01",
            "--json",
        ],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
    cli_seconds = time.perf_counter() - started
    print()
    print("| what | events | seconds | events/s |")
    print("| --- | ---: | ---: | ---: |")
    for name, result in rows:
        rate = result["events"] / result["seconds"]
        print(f"| {name} | {result['events']:,} | {result['seconds']:.2f} | {rate:,.0f} |")
    print(
        f"| query: a year by day ({query['groups']} days, {query['rows']:,} rows) | | "
        f"{query['seconds']:.2f} (CPU {query['cpu']:.2f}) | |"
    )
    cli = "`ledger service-levels` CLI, the same, interpreter start included"
    print(f"| {cli} | | {cli_seconds:.2f} | |")
    ratio = best["with"] / best["without"]
    print(f"\nwith / without (best of three each, one process): {ratio:.2f} (target >= 0.8)")
    speed = calibration["events"] / calibration["seconds"]
    print(
        f"this machine now: the projector's read at {speed:,.0f} events/s "
        f"({DOCUMENTED_READ / speed:.1f}x slower than the {DOCUMENTED_READ:,} in BENCHMARKS.md's "
        "projection run)"
    )


if __name__ == "__main__":
    main()
