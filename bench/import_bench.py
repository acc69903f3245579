"""Import throughput and peak memory, side by side with the raw limits of each log.

    python bench/import_bench.py                    # 1,000,000 events, 100,000 customers
    python bench/import_bench.py --events 200000    # a quicker look
    git archive COMMIT | tar -x -C /tmp/before && python bench/import_bench.py --before /tmp/before

Each figure comes from a fresh child process, so its peak RSS is its own:

* ``validate only``: read and validate the JSON Lines, append nowhere (the contract's cost);
* ``ledger import -> sqlite``: the real import path (validate, batch, append) into a new file;
* ``raw sqlite``: plain ``executemany`` of the same rows into the same table, rows prepared
  before the clock starts -- the limit of the storage itself;
* ``ledger import -> kafka`` and ``raw kafka``: the same, with a Tansu broker and a
  kafka-python producer sending the same keys, headers and values.

Memory flatness: the ledger imports also run on a quarter of the events; peak RSS should
not grow with the number of events.
"""

from __future__ import annotations

import argparse
import gc
import itertools
import json
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))

BATCH = 20_000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def make_input(path: Path, events: int, customers: int) -> None:
    from ledger.generate import generated

    days = max(30, round(events / customers / 22.0 * 365) + 15)
    with path.open("wb") as out:
        for document in itertools.islice(generated(customers, days, seed=1), events):
            out.write(orjson.dumps(document) + b"\n")


# -- child measurements -----------------------------------------------------------------


def child_validate(source: Path, limit: int) -> dict[str, Any]:
    from ledger.importer import Rejection, candidates

    started = time.perf_counter()
    count = rejected = 0
    with source.open("rb") as stream:
        for _, item, _ in itertools.islice(candidates(stream, "jsonl"), limit):
            count += 1
            rejected += isinstance(item, Rejection)
    assert rejected == 0
    return {"events": count, "seconds": time.perf_counter() - started}


def child_import(source: Path, limit: int, log_url: str) -> dict[str, Any]:
    from application.wiring import open_log
    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.settings import Settings

    settings = Settings(log=log_url, kafka_partitions=12)
    with open_log(settings) as log, source.open("rb") as stream:
        started = time.perf_counter()
        lines = itertools.islice(candidates(stream, "jsonl"), limit)
        summary = import_stream(log, lines, RejectsFile(Path(tempfile.mktemp())), batch_size=BATCH)
        seconds = time.perf_counter() - started
    assert summary.accepted == limit, summary
    return {"events": summary.accepted, "seconds": seconds}


def child_raw_sqlite(source: Path, limit: int, db: Path) -> dict[str, Any]:
    import sqlite3

    from ledger.codec import event_from_json, event_to_json
    from ledger.settings import Settings
    from ledger.sqlite_log import SQLiteLog, connection_pragmas
    from ledger.timeutil import to_micros

    SQLiteLog(db).close()  # the same table and indexes as the ledger's
    rows = []
    with source.open("rb") as stream:
        for line in itertools.islice(stream, limit):
            event = event_from_json(line)
            rows.append(
                (
                    event.id,
                    1,
                    event.type,
                    event_to_json(event),
                    event.subject,
                    to_micros(event.time),
                    0,
                )
            )
    connection = sqlite3.connect(db, isolation_level=None)
    for pragma in connection_pragmas(Settings().sqlite_cache_mb):  # the ledger's own settings
        connection.execute(pragma)
    statement = (
        "INSERT INTO touchpoints (originator_id, originator_version, topic, state, "
        "subject, event_time, recorded_at) VALUES (?,?,?,?,?,?,?)"
    )
    started = time.perf_counter()
    for start in range(0, len(rows), BATCH):
        connection.execute("BEGIN")
        connection.executemany(statement, rows[start : start + BATCH])
        connection.execute("COMMIT")
    seconds = time.perf_counter() - started
    connection.close()
    return {"events": len(rows), "seconds": seconds}


def child_raw_kafka(source: Path, limit: int, bootstrap: str) -> dict[str, Any]:
    from kafka import KafkaAdminClient, KafkaProducer
    from kafka.admin import NewTopic

    from ledger.codec import event_from_json
    from ledger.kafka_binding import to_binary
    from ledger.kafka_log import PRODUCER_OPTIONS

    topic = f"raw-{uuid.uuid4().hex[:8]}"
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    admin.create_topics([NewTopic(topic, 12, 1)])
    admin.close()
    with source.open("rb") as stream:
        records = [to_binary(event_from_json(line)) for line in itertools.islice(stream, limit)]
    producer = KafkaProducer(bootstrap_servers=bootstrap, **PRODUCER_OPTIONS)
    started = time.perf_counter()
    futures = [producer.send(topic, value, key, headers) for key, value, headers in records]
    producer.flush()
    for future in futures:
        future.get(timeout=0)
    seconds = time.perf_counter() - started
    producer.close()
    return {"events": len(records), "seconds": seconds}


def child_main(args: argparse.Namespace) -> None:
    # The ledger pauses the cycle collector during imports (ledger.importer); the raw
    # baselines get the same, or their large in-memory row lists would be scanned over
    # and over and the ratio would flatter the ledger.
    gc.disable()
    source = Path(args.input)
    if args.child == "validate":
        result = child_validate(source, args.limit)
    elif args.child == "import":
        result = child_import(source, args.limit, args.target)
    elif args.child == "raw-sqlite":
        result = child_raw_sqlite(source, args.limit, Path(args.target))
    else:
        result = child_raw_kafka(source, args.limit, args.target)
    result["peak_rss_mb"] = peak_rss_mb()
    print(json.dumps(result))


# -- the parent: orchestrate, print the table -------------------------------------------


def measure(
    kind: str, source: Path, limit: int, target: str = "", script: Path | None = None
) -> dict[str, Any]:
    """Run one child measurement (of this tree's code, or of ``script``'s tree)."""
    command = [
        sys.executable,
        str(script or __file__),
        "--child",
        kind,
        "--input",
        str(source),
        "--limit",
        str(limit),
        "--target",
        target,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{kind} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["rate"] = result["events"] / result["seconds"]
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--logs", default="sqlite,kafka")
    parser.add_argument(
        "--before",
        type=Path,
        help="Another tree of this project (e.g. an older commit: git archive C | tar -x -C "
        "DIR): its validate and import rows run beside this tree's, on the same input.",
    )
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args)
        return

    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / f"history-{args.customers}c-{args.events}e.jsonl"
    if not source.exists():
        print(f"generating {args.events:,} events for {args.customers:,} customers -> {source}")
        started = time.perf_counter()
        make_input(source, args.events, args.customers)
        print(f"  {time.perf_counter() - started:.1f} s")
    quarter = args.events // 4
    rows: list[tuple[str, dict[str, Any]]] = []
    rows.append(("validate only (no log)", measure("validate", source, args.events)))
    old = args.before / "bench" / "import_bench.py" if args.before else None
    if old:
        rows.append(
            ("validate only, --before code", measure("validate", source, args.events, "", old))
        )
    logs = args.logs.split(",")
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        if "sqlite" in logs:
            for limit in (args.events, quarter):
                url = f"sqlite:///{Path(scratch) / uuid.uuid4().hex}.db"
                rows.append(
                    (f"ledger import -> sqlite ({limit:,})", measure("import", source, limit, url))
                )
            if old:
                url = f"sqlite:///{Path(scratch) / uuid.uuid4().hex}.db"
                rows.append(
                    (
                        f"ledger import -> sqlite, --before code ({args.events:,})",
                        measure("import", source, args.events, url, old),
                    )
                )
            raw = measure("raw-sqlite", source, args.events, f"{scratch}/raw.db")
            rows.append(("raw sqlite executemany, same rows", raw))
        if "kafka" in logs:
            from ledger.devbroker import TansuBroker

            with TansuBroker(Path(scratch) / "tansu.log") as broker:
                for limit in (args.events, quarter):
                    url = f"kafka://{broker.bootstrap}/bench-{uuid.uuid4().hex[:8]}"
                    rows.append(
                        (
                            f"ledger import -> kafka ({limit:,})",
                            measure("import", source, limit, url),
                        )
                    )
                if old:
                    url = f"kafka://{broker.bootstrap}/bench-{uuid.uuid4().hex[:8]}"
                    rows.append(
                        (
                            f"ledger import -> kafka, --before code ({args.events:,})",
                            measure("import", source, args.events, url, old),
                        )
                    )
                raw = measure("raw-kafka", source, args.events, broker.bootstrap)
                rows.append(("raw kafka-python produce, same bytes", raw))

    print(
        f"\nimport of {args.events:,} events, {args.customers:,} customers "
        f"(batches of {BATCH}), one process each"
    )
    print(f"{'what':44} {'events':>10} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12}")
    for name, result in rows:
        print(
            f"{name:44} {result['events']:>10,} {result['seconds']:>8.2f} "
            f"{result['rate']:>10,.0f} {result['peak_rss_mb']:>12.0f}"
        )
    by_name = dict(rows)
    for log, raw_name in (
        ("sqlite", "raw sqlite executemany, same rows"),
        ("kafka", "raw kafka-python produce, same bytes"),
    ):
        full = by_name.get(f"ledger import -> {log} ({args.events:,})")
        small = by_name.get(f"ledger import -> {log} ({quarter:,})")
        if full and small and raw_name in by_name:
            print(
                f"{log}: ledger import / raw limit = "
                f"{full['rate'] / by_name[raw_name]['rate']:.2f}; peak RSS at {args.events:,} "
                f"/ at {quarter:,} events = {full['peak_rss_mb'] / small['peak_rss_mb']:.2f}"
            )


if __name__ == "__main__":
    main()
