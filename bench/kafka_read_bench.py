"""Where a validating Kafka read's time goes, record by record (issue 17).

    python bench/kafka_read_bench.py                 # 100,000 events, 10,000 customers

The events go once into a 12-partition Tansu topic; then, in one process and alternating
(best of ``--rounds``), each step is timed in CPU seconds of this process: the bare
kafka-python read (+ ``json.loads``, the first row of ``bench/scale_bench.py``), the
ledger's consumer alone (records not even looked at: the client's own cost), the same with
``json.loads``, with the validating decode to a fact's parts
(:func:`ledger.fast_decode.fast_fact_parts`), and the projector's items
(:func:`consumers.folding.read_items`); then the last two again with
``LEDGER_KAFKA_READER=confluent-kafka`` (librdkafka). One process, so no start-up, no import and no
other process's noise in the comparison: the differences are what each step costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--work", type=Path, default=HERE / "out")
    args = parser.parse_args()

    from application.wiring import open_log
    from bench.scale_bench import bare_kafka_python, history_file, load
    from consumers.folding import read_items
    from ledger.devbroker import TansuBroker
    from ledger.fast_decode import fast_fact_parts
    from ledger.kafka_log import KafkaLog
    from ledger.settings import Settings

    source = history_file(args.work, args.events, args.customers)
    with (
        tempfile.TemporaryDirectory(dir=args.work) as scratch,
        TansuBroker(Path(scratch) / "tansu.log") as broker,
    ):
        url = f"kafka://{broker.bootstrap}/read-{uuid.uuid4().hex[:8]}"
        load(url, source, Path(scratch))
        bootstrap, topic = url.removeprefix("kafka://").split("/", 1)
        kafka = open_log(Settings(log=url), create=False)
        librdkafka = open_log(Settings(log=url, kafka_reader="confluent-kafka"), create=False)
        assert isinstance(kafka, KafkaLog)
        assert isinstance(librdkafka, KafkaLog)

        def bare() -> int:
            return int(bare_kafka_python(bootstrap, topic, args.events)["events"])

        def client_only() -> int:
            return sum(1 for _ in kafka.consumer_records({}))

        def client_json() -> int:
            return sum(1 for _, record in kafka.consumer_records({}) if json.loads(record.value))

        def client_decode() -> int:
            return sum(
                1
                for _, r in kafka.consumer_records({})
                if fast_fact_parts(r.key, r.value, r.headers) is not None
            )

        def items() -> int:
            return sum(1 for item in read_items(kafka, {}) if item.fact is not None)

        def confluent_only() -> int:
            return sum(1 for _ in librdkafka.consumer_records({}))

        def confluent_items() -> int:
            return sum(1 for item in read_items(librdkafka, {}) if item.fact is not None)

        steps: list[tuple[str, Callable[[], int]]] = [
            ("bare kafka-python read + json.loads", bare),
            ("the ledger's consumer, records untouched", client_only),
            ("the ledger's consumer + json.loads", client_json),
            ("the ledger's consumer + validating decode to facts", client_decode),
            ("the projector's items (read_items)", items),
            ("confluent-kafka reader, records untouched", confluent_only),
            ("confluent-kafka reader: the projector's items", confluent_items),
        ]
        best: dict[str, float] = {}
        for _ in range(args.rounds):
            for name, step in steps:
                began = time.process_time()
                count = step()
                spent = time.process_time() - began
                assert count == args.events, (name, count)
                best[name] = min(best.get(name, float("inf")), spent)
        base = best[steps[0][0]]
        print(f"{args.events:,} events; CPU µs a record (best of {args.rounds}); ratio to bare")
        for name, _ in steps:
            seconds = best[name]
            print(f"{name:55} {seconds / args.events * 1e6:7.1f} µs {base / seconds:6.2f}")


if __name__ == "__main__":
    main()
