"""The cost of a rejected line in an import: every line of the input is refused (a
purchase without its amount), so the figure is validation plus writing the rejection.

    python bench/rejects_bench.py                          # 30,000 lines, 5 runs
    git worktree add /tmp/before 623865b && python bench/rejects_bench.py --before /tmp/before

Each rejection is written at once, under the rejects file's lock (``ledger erase`` may
redact the file meanwhile); before, they went through a buffered file. With ``--before``,
runs of the two trees alternate, each in a fresh child process, and the ratio of the
medians is printed.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import orjson

ROOT = Path(__file__).resolve().parent.parent


def refused_lines(count: int) -> bytes:
    return b"".join(
        orjson.dumps(
            {
                "specversion": "1.0",
                "id": f"e{number}",
                "source": "crm",
                "type": "touchpoint.purchase",
                "subject": f"C{number % 100}",
                "time": "2026-01-01T10:00:00Z",
                "data": {"channel": "web"},
            }
        )
        + b"\n"
        for number in range(count)
    )


def child(lines: int) -> None:
    """Import ``lines`` refused lines with the tree on ``sys.path``; print µs a line."""
    import io

    from ledger.importer import RejectsFile, candidates, import_stream
    from ledger.sqlite_log import SQLiteLog

    data = refused_lines(lines)
    with tempfile.TemporaryDirectory() as scratch:
        log = SQLiteLog(Path(scratch) / "ledger.db")
        started = time.perf_counter()
        summary = import_stream(
            log, candidates(io.BytesIO(data), "jsonl"), RejectsFile(Path(scratch) / "r.jsonl")
        )
        elapsed = time.perf_counter() - started
        log.close()
    assert summary.rejected == lines, summary
    print(elapsed / lines * 1e6)


def run(tree: Path, lines: int) -> float:
    """One child on ``tree``'s ledger (first on the path); this module from this tree."""
    path = [str(tree), str(ROOT / "bench")]
    code = f"import sys; sys.path[:0] = {path!r}; from rejects_bench import child; child({lines})"
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return float(out.stdout.strip())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=30_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--before", type=Path, help="a checkout of the baseline tree")
    args = parser.parse_args()
    trees = {"this tree": ROOT} | ({"before": args.before.resolve()} if args.before else {})
    figures: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(args.repeat):
        for name, tree in trees.items():
            figures[name].append(run(tree, args.lines))
    print(f"{args.lines:,} refused lines, {args.repeat} runs each (us a line, median)")
    for name, values in figures.items():
        shown = ", ".join(f"{v:.1f}" for v in values)
        print(f"  {name:<10} {statistics.median(values):6.1f}   ({shown})")
    if args.before:
        ratio = statistics.median(figures["this tree"]) / statistics.median(figures["before"])
        print(f"  this tree / before: {ratio:.2f}x the time a refused line")


if __name__ == "__main__":
    main()
