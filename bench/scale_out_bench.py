"""Adding machines adds throughput (issue 17): Kafka -> PostgreSQL group members, each with a
CPU budget of its own, as separate machines would have.

    sudo python bench/scale_out_bench.py                          # 100,000 events, 1,2,3,4 members
    sudo python bench/scale_out_bench.py --cores 0.3 --members 1,2,4

On a 2-core machine, N projector processes share the same two cores with each other, the
broker and PostgreSQL, so "2 processes" cannot run faster than one process that already had
a core: what scale_bench.py measures there is the machine, not the ledger. Separate machines
differ in one way that matters: each member has CPU of its own. This benchmark gives each
member exactly that -- a Linux cgroup with a CPU quota of ``--cores`` of a core (cgroup v1
``cpu.cfs_quota_us`` or v2 ``cpu.max``; needs root) -- and leaves the broker (Tansu) and
PostgreSQL outside the quotas, on what is left of the machine. Then N members have N times
the CPU of one, as N machines would, and the rate of N members over one shows whether the
shared parts (the group protocol, the broker, the store's locks and commits) let throughput
grow with them. ``--cores`` times the largest group must leave room for the broker and
PostgreSQL (with 0.3 and 4 members: 1.2 of the 2 cores).

Each row is a fresh group on a fresh PostgreSQL schema, reading the same 12-partition topic
from the start; a member is timed from its first assignment (a Tansu group join takes half
the 6 s session timeout), the group from its first member's first assignment to its last
member's end, so the rebalances as the others join are inside the figure. The members are
bench/scale_bench.py's ``--child group`` (``ledger project run --group`` as the CLI runs it).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.scale_bench import (
    HERE,
    PARTITIONS,
    command,
    drop_schemas,
    history_file,
    load,
    postgres_store,
)

V1 = Path("/sys/fs/cgroup/cpu")
V2 = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


class CpuBudget:
    """A cgroup capped at ``cores`` of one core; processes put in it (and their children)
    get no more CPU than that, whatever the machine has free."""

    def __init__(self, name: str, cores: float) -> None:
        quota = round(cores * PERIOD_US)
        if (V1 / "cpu.cfs_quota_us").exists():
            self.path = V1 / name
            self.path.mkdir()
            (self.path / "cpu.cfs_period_us").write_text(str(PERIOD_US))
            (self.path / "cpu.cfs_quota_us").write_text(str(quota))
        elif (V2 / "cgroup.controllers").exists():
            self.path = V2 / name
            self.path.mkdir()
            (self.path / "cpu.max").write_text(f"{quota} {PERIOD_US}")
        else:
            raise SystemExit("no writable cgroup cpu controller (v1 or v2): run as root on Linux")

    def enter(self) -> None:
        """Put the calling process in the budget (called in the child before exec)."""
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def throttled_seconds(self) -> float:
        """How long the kernel held the group's processes back for their quota."""
        stat = dict(
            line.split() for line in (self.path / "cpu.stat").read_text().splitlines() if line
        )
        if "throttled_time" in stat:  # v1: nanoseconds
            return int(stat["throttled_time"]) / 1e9
        return int(stat.get("throttled_usec", 0)) / 1e6

    def remove(self) -> None:
        for _ in range(50):
            try:
                self.path.rmdir()
                return
            except OSError:  # a process of it has not been reaped yet
                time.sleep(0.1)


def group_of(
    members: int, cores: float, log: str, store: str, reader: str = "kafka-python"
) -> dict[str, Any]:
    """``members`` group members on one store, each in its own CPU budget."""
    group = f"scale-out-{uuid.uuid4().hex[:8]}"
    budgets = [CpuBudget(f"ledger-bench-{uuid.uuid4().hex[:8]}", cores) for _ in range(members)]
    try:
        processes = [
            subprocess.Popen(
                command("group", log=log, store=store, group=group, workers=1, reader=reader),
                stdout=subprocess.PIPE,
                text=True,
                cwd=HERE.parent,
                preexec_fn=budget.enter,  # noqa: PLW1509  (no threads in this process)
            )
            for budget in budgets
        ]
        results = []
        for process in processes:
            out, _ = process.communicate()
            if process.returncode != 0:
                raise SystemExit(f"a member failed (exit {process.returncode})")
            results.append(json.loads(out.strip().splitlines()[-1]))
        throttled = sum(b.throttled_seconds() for b in budgets)
    finally:
        for budget in budgets:
            budget.remove()
    began = min(r["first"] for r in results)
    seconds = max(r["end"] for r in results) - began
    events = sum(r["events"] for r in results)
    return {
        "members": members,
        "events": events,
        "seconds": seconds,
        "rate": events / seconds,
        "cpu": sum(r["cpu"] for r in results),
        "lock_wait": sum(r.get("lock_wait", 0.0) for r in results),
        "commit": sum(r.get("commit", 0.0) for r in results),
        "throttled": throttled,
        "conflicts": sum(r.get("conflicts", 0) for r in results),
        "batches": sum(r.get("batches", 0) for r in results),
        "shares": [r["events"] for r in results],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--customers", type=int, default=10_000)
    parser.add_argument("--members", default="1,2,3,4", help="group sizes")
    parser.add_argument("--cores", type=float, default=0.3, help="CPU budget of each member")
    parser.add_argument("--work", type=Path, default=HERE / "out")
    parser.add_argument(
        "--reader", default="kafka-python", help="LEDGER_KAFKA_READER of the members"
    )
    args = parser.parse_args()
    sizes = [int(n) for n in args.members.split(",")]
    if max(sizes) * args.cores > 1.5:
        raise SystemExit("the members' budgets would leave the broker and PostgreSQL too little")

    from ledger.devbroker import TansuBroker

    source = history_file(args.work, args.events, args.customers)
    rows = []
    schemas: list[str] = []
    with (
        tempfile.TemporaryDirectory(dir=args.work) as scratch,
        TansuBroker(Path(scratch) / "tansu.log") as broker,
    ):
        kafka = f"kafka://{broker.bootstrap}/scale-out-{uuid.uuid4().hex[:8]}"
        load(kafka, source, Path(scratch))
        try:
            for members in sizes:
                schemas.append(postgres_store())
                rows.append(group_of(members, args.cores, kafka, schemas[-1], args.reader))
                print(json.dumps(rows[-1]), flush=True)
        finally:
            drop_schemas(schemas)

    one = next((r for r in rows if r["members"] == 1), rows[0])
    print(
        f"\n{args.events:,} events, {args.customers:,} customers, {PARTITIONS} partitions; "
        f"each member capped at {args.cores:g} of a core, reading with {args.reader}; "
        "load average before: "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'members':>7} {'events/s':>9} {'x one':>6} {'per member':>10} {'CPU s':>6} "
        f"{'events/CPU s':>12} {'throttled s':>11} {'lock wait s':>11} {'commit s':>8}  shares"
    )
    for row in rows:
        print(
            f"{row['members']:>7} {row['rate']:>9,.0f} {row['rate'] / one['rate']:>6.2f} "
            f"{row['rate'] / row['members']:>10,.0f} {row['cpu']:>6.1f} "
            f"{row['events'] / row['cpu']:>12,.0f} {row['throttled']:>11.1f} "
            f"{row['lock_wait']:>11.2f} {row['commit']:>8.1f}  {row['shares']}"
        )


if __name__ == "__main__":
    main()
