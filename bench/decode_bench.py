"""The validating decode of a Kafka record alone, in CPU µs a record (issue 17).

    python bench/decode_bench.py                     # 20,000 records, best of 7 rounds
    python bench/decode_bench.py --general           # the general path too (slow)
    git show HEAD~1:ledger/fast_decode.py > /tmp/old_decode.py
    python bench/decode_bench.py --baseline /tmp/old_decode.py   # an older decode beside it

No broker: the generated history (:func:`ledger.generate.generated`) is encoded in memory
as the ledger writes it to Kafka (:func:`ledger.kafka_binding.to_binary`, what
``KafkaLog.encode`` sends), and each step is timed over all of it in CPU seconds of this
process (``time.process_time``: the machine is shared, so wall time would measure the
neighbours), the steps alternating round by round, the best round kept. ``json.loads``
and ``orjson.loads`` of the value alone are the floor a validating decode is compared to
(a bare Kafka read + ``json.loads`` is the issue's reference).
"""

from __future__ import annotations

import argparse
import importlib.util
import itertools
import json
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

Record = tuple[bytes, bytes, list[tuple[str, bytes]]]


def records_of(events: int, customers: int, seed: int) -> list[Record]:
    """``events`` generated events as Kafka records in the ledger's binary mode."""
    from ledger.codec import parse_event
    from ledger.generate import generated
    from ledger.kafka_binding import to_binary

    days = max(30, round(events / customers / 22.0 * 365) + 15)  # as bench/import_bench.py
    documents = itertools.islice(generated(customers, days, seed=seed), events)
    return [to_binary(parse_event(document)) for document in documents]


def as_received(records: Sequence[Record]) -> list[Record]:
    """``records`` as a client hands them over: every header name a string of its own,
    decoded for this record (not the constants ``to_binary`` writes, whose hash Python
    has computed once and kept)."""
    return [
        (key, value, [(name.encode().decode(), raw) for name, raw in headers])
        for key, value, headers in records
    ]


def decode_from(path: Path) -> Callable[..., Any]:
    """``fast_fact_parts`` of a saved copy of ``ledger/fast_decode.py`` (an older version
    to compare with, loaded beside the current one)."""
    spec = importlib.util.spec_from_file_location("baseline_fast_decode", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"{path}: not a Python module")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    decode: Callable[..., Any] = module.fast_fact_parts
    return decode


def timed(step: Callable[[Sequence[Record]], int], records: Sequence[Record]) -> float:
    """CPU seconds of one pass of ``step`` over ``records`` as a client receives them."""
    received = as_received(records)
    began = time.process_time()
    step(received)
    return time.process_time() - began


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--customers", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=7, help="best of this many passes")
    parser.add_argument("--baseline", type=Path, help="a saved fast_decode.py to compare with")
    parser.add_argument("--general", action="store_true", help="time the general path too")
    args = parser.parse_args()

    import orjson

    from ledger.fast_decode import fast_fact_parts
    from ledger.kafka_binding import from_record

    records = records_of(args.events, args.customers, args.seed)

    def decoder(decode: Callable[..., Any]) -> Callable[[Sequence[Record]], int]:
        def step(records: Sequence[Record]) -> int:
            return sum(1 for key, value, headers in records if decode(key, value, headers))

        return step

    steps: dict[str, Callable[[Sequence[Record]], int]] = {
        "json.loads(value)": lambda rs: sum(1 for _, value, _ in rs if json.loads(value)),
        "orjson.loads(value)": lambda rs: sum(1 for _, value, _ in rs if orjson.loads(value)),
        "fast_fact_parts": decoder(fast_fact_parts),
    }
    if args.baseline:
        steps[f"fast_fact_parts of {args.baseline.name}"] = decoder(decode_from(args.baseline))
    if args.general:
        steps["from_record (the general path)"] = decoder(from_record)
    for name, step in steps.items():  # every record decodes: the figures are comparable
        assert step(records) == len(records), name
    best: dict[str, float] = {}
    for _ in range(args.rounds):
        for name, step in steps.items():
            best[name] = min(best.get(name, float("inf")), timed(step, records))
    floor = best["json.loads(value)"]
    print(f"{len(records):,} records; CPU µs a record (best of {args.rounds}); x json.loads")
    for name, seconds in best.items():
        print(f"{name:45} {seconds / len(records) * 1e6:7.2f} µs {seconds / floor:6.2f}")


if __name__ == "__main__":
    main()
