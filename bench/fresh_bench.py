"""Read-your-writes decisions (issue 18): single-decision p50/p99 with the views current,
and with 1,000 unprojected records of the customer asked about; embedded log, and Kafka
(a Tansu broker started for the run) with ``--kafka``.

    python bench/fresh_bench.py [--customers 20000] [--days 180] [--kafka]

Builds its own ledger in a temporary folder (generated history, projected), then times
``Ledger.may_contact`` for random customers (views current) and for one customer with
1,000 records appended after the last projection. Uses the built-in policy.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from application.api import Ledger  # noqa: E402
from application.service import generate_into  # noqa: E402
from application.wiring import open_log, open_store  # noqa: E402
from consumers.projector import Projector  # noqa: E402
from ledger.codec import parse_event  # noqa: E402
from ledger.settings import Settings  # noqa: E402

START = datetime(2025, 1, 1, tzinfo=UTC)


def percentiles(timings: list[float]) -> str:
    timings = sorted(timings)
    n = len(timings)
    return (
        f"p50 {timings[n // 2] * 1000:.3f} ms, p99 {timings[min(int(n * 0.99), n - 1)] * 1000:.3f}"
        f" ms ({n:,} decisions)"
    )


def timed(ask: Callable[[], object], times: int) -> list[float]:
    ask()  # warm up: open the log and the store
    timings = []
    for _ in range(times):
        started = time.perf_counter()
        ask()
        timings.append(time.perf_counter() - started)
    return timings


def hot_records(customer: str, count: int, end: datetime) -> list[object]:
    """``count`` records of one customer: e-mails in and out, service SMS."""
    kinds = [
        ("touchpoint.email", {"direction": "inbound"}),
        ("touchpoint.email", {"direction": "outbound", "purpose": "transactional"}),
        ("touchpoint.sms", {"direction": "outbound", "purpose": "service"}),
    ]
    events: list[object] = []
    for number in range(count):
        kind, data = kinds[number % len(kinds)]
        moment = end - timedelta(minutes=count - number)
        events.append(
            parse_event(
                {
                    "id": str(uuid.uuid4()),
                    "source": "bench",
                    "type": kind,
                    "subject": customer,
                    "time": moment.isoformat(),
                    "data": data,
                }
            )
        )
    return events


def measure(settings: Settings, label: str, customers: int, days: int, decisions: int) -> None:
    folder = settings.data_dir
    with open_log(settings) as log:
        summary = generate_into(
            log,
            customers=customers,
            days=days,
            seed=18,
            start=START,
            rejects_path=folder / "rejects.jsonl",
            batch_size=10_000,
        )
        store = open_store(settings)
        Projector(log, store, workers=1).catch_up()
        store.close()
    at = START + timedelta(days=days, hours=12)
    rng = random.Random(1)
    print(f"\n{label}: {summary.accepted:,} events, {customers:,} customers, views current")
    with Ledger(settings) as ledger:
        ids = [f"C{rng.randint(1, customers):07d}" for _ in range(decisions)]
        asks = iter(ids * 2)
        current = timed(lambda: ledger.may_contact(next(asks), "sms", "marketing", at), decisions)
        print(f"  single decision, views current: {percentiles(current)}")
        requests = [(c, "sms", "marketing") for c in ids * 5]
        started = time.perf_counter()
        decided = list(ledger.may_contact_many(requests, at))
        seconds = time.perf_counter() - started
        print(f"  batch, views current: {len(decided) / seconds:,.0f} decisions/s")
        hot = ids[0]
        with open_log(settings) as log:
            log.append(hot_records(hot, 1000, at))  # type: ignore[arg-type]
        decision = ledger.may_contact(hot, "sms", "marketing", at)
        assert decision.freshness is not None
        folded = decision.freshness.folded
        behind = timed(lambda: ledger.may_contact(hot, "sms", "marketing", at), decisions)
        print(f"  single decision, {folded:,} unprojected records of it: {percentiles(behind)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--kafka", action="store_true", help="also on Kafka (Tansu)")
    parser.add_argument("--kafka-decisions", type=int, default=100)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        embedded = Settings(data_dir=Path(folder) / "embedded")
        measure(embedded, "embedded log", args.customers, args.days, args.decisions)
        if not args.kafka:
            return
        from ledger.devbroker import TansuBroker

        broker = TansuBroker(Path(folder) / "broker.log")
        broker.start()
        try:
            kafka = Settings(
                data_dir=Path(folder) / "kafka",
                log=f"kafka://{broker.bootstrap}/bench-{uuid.uuid4().hex[:8]}",
                kafka_partitions=4,
            )
            measure(kafka, "Kafka (Tansu, 4 partitions)", 2_000, 90, args.kafka_decisions)
        finally:
            broker.stop()


if __name__ == "__main__":
    main()
