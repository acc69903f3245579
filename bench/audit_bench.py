"""Sealing and verifying speed, beside the raw read limit.

    python bench/audit_bench.py                   # 1,000,000 events, 100,000 customers
    python bench/audit_bench.py --events 200000   # a quicker look
    git archive COMMIT | tar -x -C /tmp/before && python bench/audit_bench.py --before /tmp/before
                                                  # the same figures by an older commit's code

Each figure comes from a fresh child process (its own peak RSS), on the same embedded log:

* ``raw read``: every record's stored parts read back (``EventLog.read_raw``), nothing else:
  the limit sealing cannot beat;
* ``seal``: digests, chain and checkpoint for every record, digests written to the audit
  store (a first seal of the whole log, signed);
* ``verify``: the whole log re-read and checked against the seals;
* ``read+digest, 1 process, CPU s``: reading and digesting every record in one process,
  rated per CPU second (steady when other work shares the machine; with ``--before``,
  also by the older code);
* ``digests, layout 1`` / ``layout 2``: only the reading and digesting of every record,
  in the record layout sealed before issue 15 (customer, id, type, time, state, append
  time) and in layout 2 (every column with its SQLite type), side by side in one run.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def child(args: argparse.Namespace) -> dict[str, Any]:
    if args.code:  # measure another tree's code (an older commit's: --before)
        sys.path.insert(0, str(args.code))
    from ledger.audit import AuditStore, Signer, seal, verify
    from ledger.audit.reader import read_digests
    from ledger.sqlite_log import SQLiteLog

    log = SQLiteLog(Path(args.log), create=False)
    started = time.perf_counter()
    if args.child == "read":
        events = sum(1 for _ in log.read_raw(0))
    elif args.child == "seal":
        report = seal(log, "embedded", AuditStore(Path(args.audit)), Signer(Path(args.key)))
        events = report.records
    elif args.child == "cpu":  # CPU time: robust when other processes share the machine
        started = time.process_time()
        events = sum(1 for _ in read_digests(log, 0, 1, 1))
        return {
            "events": events,
            "seconds": time.process_time() - started,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    elif args.child in ("digests1", "digests2"):
        legacy = log.end_position() if args.child == "digests1" else 0
        events = sum(1 for _ in read_digests(log, 0, 1, os.cpu_count() or 1, legacy))
    else:
        (checked,) = verify(log, "embedded", AuditStore(Path(args.audit)))
        assert checked.ok, checked
        events = checked.records
    return {
        "events": events,
        "seconds": time.perf_counter() - started,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def measure(kind: str, script: Path | None = None, **options: Any) -> dict[str, Any]:
    from bench.common import run_child

    return run_child(str(script or __file__), kind, **options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument("--child")
    parser.add_argument("--log")
    parser.add_argument("--audit")
    parser.add_argument("--key")
    parser.add_argument("--code", type=Path)
    parser.add_argument(
        "--before",
        type=Path,
        help="A copy of an older commit's tree: also seal and verify with its code, on the "
        "same log, for a before/after in one run.",
    )
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return

    from bench.import_bench import make_input
    from ledger.audit import generate_key
    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.sqlite_log import SQLiteLog

    args.work.mkdir(parents=True, exist_ok=True)
    source = args.work / f"history-{args.customers}c-{args.events}e.jsonl"
    if not source.exists():
        make_input(source, args.events, args.customers)
    with tempfile.TemporaryDirectory(dir=args.work) as scratch:
        log_path, audit = Path(scratch) / "log.db", Path(scratch) / "audit.db"
        with SQLiteLog(log_path) as log, source.open("rb") as stream:
            import_stream(log, candidates(stream, "jsonl"), RejectsFile(Path(scratch) / "r"))
        key = Path(scratch) / "seal.pem"
        generate_key(key)
        rows = [
            ("raw read (read_raw), embedded", measure("read", log=log_path)),
            ("seal (signed), embedded", measure("seal", log=log_path, audit=audit, key=key)),
            ("verify, embedded", measure("verify", log=log_path, audit=audit)),
            ("digests, layout 1", measure("digests1", log=log_path)),
            ("digests, layout 2", measure("digests2", log=log_path)),
        ]
        rows.append(("read+digest, 1 process, CPU s", measure("cpu", log=log_path)))
        if args.before:
            rows.append(
                (
                    "read+digest, CPU s, --before code",
                    measure("cpu", log=log_path, code=args.before),
                )
            )
            old = args.before / "bench" / "audit_bench.py"
            audit_before = Path(scratch) / "audit-before.db"
            rows += [
                (
                    "seal (signed), --before code",
                    measure("seal", old, log=log_path, audit=audit_before, key=key),
                ),
                ("verify, --before code", measure("verify", old, log=log_path, audit=audit_before)),
            ]
    print(f"\naudit seals over {args.events:,} events")
    print(f"{'what':34} {'events':>10} {'seconds':>8} {'events/s':>10} {'peak RSS MB':>12}")
    for name, r in rows:
        print(
            f"{name:34} {r['events']:>10,} {r['seconds']:>8.2f} {r['rate']:>10,.0f} "
            f"{r['peak_rss_mb']:>12.0f}"
        )
    read, sealed = rows[0][1]["rate"], rows[1][1]["rate"]
    print(f"seal / raw read = {sealed / read:.2f}")
    before, after = rows[3][1]["rate"], rows[4][1]["rate"]
    print(f"digests layout 2 / layout 1 = {after / before:.2f}")


if __name__ == "__main__":
    main()
