"""Contact-policy decision speed: single decisions (p50/p99) and campaign batches.

    python bench/policy_bench.py --log PATH/ledger.db --store PATH/views.db

Needs a projected ledger (e.g. the import benchmark's 1,000,000 events after
``ledger project run``); decisions read only the views. Uses the built-in policy.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--log", required=True)
    parser.add_argument("--store", required=True)
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--decisions", type=int, default=10_000)
    parser.add_argument("--at", default="2025-09-01T12:00:00+00:00")
    args = parser.parse_args()

    from application.api import Ledger
    from ledger.settings import Settings

    settings = Settings(log=f"sqlite:///{args.log}", store=f"sqlite:///{args.store}")
    at = datetime.fromisoformat(args.at).astimezone(UTC)
    rng = random.Random(1)
    channels = ["sms", "email", "phone"]
    requests = [
        (f"C{rng.randint(1, args.customers):07d}", rng.choice(channels), "marketing")
        for _ in range(args.decisions)
    ]
    with Ledger(settings) as ledger:
        ledger.may_contact(*requests[0], at=at)  # open the store
        timings = []
        for request in requests:
            started = time.perf_counter()
            ledger.may_contact(*request, at=at)
            timings.append(time.perf_counter() - started)
        timings.sort()
        started = time.perf_counter()
        decisions = list(ledger.may_contact_many(requests, at))
        batch_seconds = time.perf_counter() - started
    allowed = sum(d.allowed for d in decisions)
    n = len(timings)
    print(f"\ncontact-policy decisions on {args.customers:,} customers (built-in policy)")
    print(
        f"single decisions: p50 {timings[n // 2] * 1000:.3f} ms, p99 "
        f"{timings[int(n * 0.99)] * 1000:.3f} ms ({n:,} random customers)"
    )
    print(
        f"batch (may_contact_many): {len(decisions):,} in {batch_seconds:.2f} s = "
        f"{len(decisions) / batch_seconds:,.0f} decisions/s; {allowed:,} allowed"
    )


if __name__ == "__main__":
    main()
