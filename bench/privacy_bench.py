"""The cost of encrypting personal data (issue 10), each figure beside its baseline in the
same run:

    python bench/privacy_bench.py                         # 200,000 events, 20,000 customers
    python bench/privacy_bench.py --events 1000000 --customers 100000 --due 100000

* ``import``: ``ledger import`` of one generated JSON Lines file into a new embedded log,
  encryption on (the default) and off (``LEDGER_ENCRYPT=false``), alternately, best of
  ``--rounds``; target: on >= 0.8 x off;
* ``project``: ``ledger project run`` (one process) over each of those logs; projections
  need no personal field and never decrypt, so the two should agree within noise;
* ``erase one``: ``ledger erase`` of single customers on the encrypted log (in-process:
  destroy the key, append ``customer.erased``), p50 and max of 50; target < 100 ms;
* ``erase --due``: ``customer.details`` of ``--due`` customers imported and projected,
  then everyone made due at once (the retention cutoff in the future): one
  :func:`application.privacy.due` + :func:`application.privacy.erase_many`; target < 60 s.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import sys
import tempfile
import time
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from application import privacy, service  # noqa: E402
from application.wiring import open_keys, open_log, open_store  # noqa: E402
from consumers.projector import Projector  # noqa: E402
from ledger.generate import generated  # noqa: E402
from ledger.settings import Settings  # noqa: E402


def make_input(path: Path, events: int, customers: int) -> None:
    days = max(30, round(events / customers / 22.0 * 365) + 15)
    with path.open("wb") as out:
        for document in itertools.islice(generated(customers, days, seed=1), events):
            out.write(orjson.dumps(document) + b"\n")


def settings_in(folder: Path, *, encrypt: bool) -> Settings:
    folder.mkdir(parents=True, exist_ok=True)
    return Settings(data_dir=folder, encrypt=encrypt, workers=1)


def timed_import(source: Path, settings: Settings) -> float:
    started = time.perf_counter()
    with open_log(settings) as log, source.open("rb") as lines:
        summary = service.import_file(
            log, lines, "jsonl", settings.data_dir / "rejects.jsonl", batch_size=20_000
        )
    elapsed = time.perf_counter() - started
    assert (summary.rejected, summary.failed) == (0, None), summary
    return elapsed


def timed_projection(settings: Settings) -> float:
    store = open_store(settings)
    started = time.perf_counter()
    with open_log(settings, create=False) as log:
        Projector(log, store, workers=1).catch_up()
    elapsed = time.perf_counter() - started
    store.close()
    return elapsed


def erase_one_timings(settings: Settings, customers: list[str]) -> list[float]:
    keys = open_keys(settings)
    timings = []
    request = privacy.ErasureRequest("benchmark")
    with open_log(settings) as log, closing(open_store(settings)) as store:
        for customer in customers:  # as `ledger erase` does: the person found in the views
            started = time.perf_counter()
            privacy.erase(
                log, keys, customer, request, rejects_dir=settings.data_dir / "rejects", store=store
            )
            timings.append(time.perf_counter() - started)
    keys.close()
    return timings


def erase_due(folder: Path, customers: int) -> tuple[float, float, int]:
    """Details of ``customers`` customers, imported and projected; then all erased as due.
    Returns (setup seconds, erase seconds, erased)."""
    settings = settings_in(folder, encrypt=True)
    source = folder / "details.jsonl"
    with source.open("wb") as out:
        for number in range(customers):
            document = {
                "specversion": "1.0",
                "id": f"d-{number}",
                "source": "bench",
                "type": "customer.details",
                "subject": f"C{number:07d}",
                "time": "2015-01-01T00:00:00Z",
                "data": {
                    "personal": {
                        "name": f"Customer {number}",
                        "email": f"c{number}@example.com",
                        "phone": f"+90532{number:07d}",
                    },
                    "country": "TR",
                },
            }
            out.write(orjson.dumps(document) + b"\n")
    started = time.perf_counter()
    timed_import(source, settings)
    timed_projection(settings)
    setup = time.perf_counter() - started
    keys = open_keys(settings)
    started = time.perf_counter()
    with open_log(settings) as log, closing(open_store(settings)) as store:
        due = privacy.due(store, keys, datetime.now(UTC) + timedelta(days=1))
        done = privacy.erase_many(
            log, keys, due, privacy.ErasureRequest("retention"), batch_size=20_000
        )
    elapsed = time.perf_counter() - started
    keys.close()
    return setup, elapsed, len(done)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--due", type=int, default=100_000)
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load average {load:.2f} at the start")
    with tempfile.TemporaryDirectory(prefix="privacy-bench-") as tmp:
        folder = Path(tmp)
        source = folder / "history.jsonl"
        make_input(source, args.events, args.customers)
        imports: dict[bool, list[float]] = {True: [], False: []}
        projections: dict[bool, list[float]] = {True: [], False: []}
        for round_ in range(args.rounds):
            for encrypt in (True, False) if round_ % 2 == 0 else (False, True):
                settings = settings_in(folder / f"r{round_}-{encrypt}", encrypt=encrypt)
                imports[encrypt].append(timed_import(source, settings))
                projections[encrypt].append(timed_projection(settings))
        rate = {k: args.events / min(v) for k, v in imports.items()}
        print(f"import, encryption on : {rate[True]:>10,.0f} events/s")
        print(f"import, encryption off: {rate[False]:>10,.0f} events/s")
        print(f"  on / off: {rate[True] / rate[False]:.2f} (target >= 0.80)")
        folds = {k: args.events / min(v) for k, v in projections.items()}
        print(f"project run, encrypted log: {folds[True]:>10,.0f} events/s")
        print(f"project run, plain log    : {folds[False]:>10,.0f} events/s")
        print(f"  encrypted / plain: {folds[True] / folds[False]:.2f} (target: 1 within noise)")
        encrypted = settings_in(folder / "r0-True", encrypt=True)
        customers = [f"C{n:07d}" for n in range(1, 51)]
        timings = erase_one_timings(encrypted, customers)
        print(
            f"erase one customer: p50 {statistics.median(timings) * 1000:.1f} ms, "
            f"max {max(timings) * 1000:.1f} ms over {len(timings)} (target < 100 ms)"
        )
        setup, elapsed, erased = erase_due(folder / "due", args.due)
        print(
            f"erase --due: {erased:,} customers in {elapsed:.1f} s "
            f"({erased / elapsed:,.0f}/s; setup {setup:.1f} s) (target < 60 s for 100,000)"
        )


if __name__ == "__main__":
    main()
