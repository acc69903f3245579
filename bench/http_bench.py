"""``ledger serve`` under load, beside the same work done in-process (issue 14).

    python bench/http_bench.py [--customers 20000] [--days 60] [--seconds 20] [--workers 2]

Builds its own ledgers in a temporary folder from ``ledger generate`` output, then measures,
in one run:

* **ingest**: ``ledger import FILE`` (the baseline) against the same events POSTed as
  CloudEvents batches of ``--batch`` events by ``--ingest-clients`` keep-alive connections to
  a ``ledger serve`` on an empty ledger (target ≥ 0.5× the import's rate);
* **profile lookups** (``GET /v1/customers/{id}/profile``) and **single may-contact**
  (``GET /v1/may-contact``): ``--clients`` load-generator processes × ``--threads`` keep-alive
  connections for ``--seconds`` each, random customers, every request timed (targets:
  ≥ 2,000 req/s with p99 < 10 ms; ≥ 1,500 req/s with p99 < 15 ms); beside them the library
  doing the same in one thread (the limit per core);
* **memory**: the server's processes' total RSS, sampled every second over the whole run.

The load generator runs on the same 2-core machine as the server (it takes CPU from it).
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
LEDGER = str(Path(sys.executable).parent / "ledger")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def run(env: dict[str, str], *args: str) -> bytes:
    done = subprocess.run([LEDGER, *args], env=env, capture_output=True, check=False)
    if done.returncode not in (0, 5):
        raise SystemExit(f"ledger {' '.join(args)}: {done.stderr.decode()}")
    return done.stdout


class Server:
    def __init__(self, env: dict[str, str], workers: int) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                LEDGER,
                "serve",
                "--port",
                str(self.port),
                "--workers",
                str(workers),
                "--max-body-bytes",
                str(64 * 1024 * 1024),
            ],
            env=env,
            start_new_session=True,
        )
        self.samples: list[int] = []
        self._stop = threading.Event()
        for _ in range(300):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
                connection.request("GET", "/healthz")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.1)
        self._sampler = threading.Thread(target=self._sample, daemon=True)
        self._sampler.start()

    def rss_mb(self) -> int:
        """Total RSS (MB) of the server and its worker processes."""
        pids = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            pids += [int(p) for p in children.read_text().split()]
        except OSError:
            return 0
        total = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
            except OSError:
                continue
        return total // 1024

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.rss_mb())

    def stop(self) -> None:
        self._stop.set()
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def _client(
    port: int, token: str, paths: list[str], seconds: float, threads: int, out: Any
) -> None:
    """One load-generator process: ``threads`` keep-alive connections for ``seconds``."""
    latencies: list[float] = []
    errors = [0]
    lock = threading.Lock()
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}

    def loop(seed: int) -> None:
        chosen = random.Random(seed)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        mine: list[float] = []
        bad = 0
        while time.perf_counter() < deadline:
            path = chosen.choice(paths)
            started = time.perf_counter()
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            response.read()
            mine.append(time.perf_counter() - started)
            bad += response.status not in (200,)
        with lock:
            latencies.extend(mine)
            errors[0] += bad

    workers = [threading.Thread(target=loop, args=(os.getpid() * 100 + n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    out.put((latencies, errors[0]))


def load(
    port: int, token: str, paths: list[str], seconds: float, clients: int, threads: int
) -> dict[str, Any]:
    context = multiprocessing.get_context("fork")
    results = context.Queue()
    processes = [
        context.Process(target=_client, args=(port, token, paths, seconds, threads, results))
        for _ in range(clients)
    ]
    started = time.perf_counter()
    for process in processes:
        process.start()
    latencies: list[float] = []
    errors = 0
    for _ in processes:
        found, bad = results.get()
        latencies += found
        errors += bad
    for process in processes:
        process.join()
    elapsed = time.perf_counter() - started
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "errors": errors,
        "rate": n / elapsed,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[min(int(n * 0.99), n - 1)] * 1000,
    }


def library_rate(
    env: dict[str, str], kind: str, customers: list[str], seconds: float
) -> dict[str, Any]:
    """The same questions through the application functions in this process, one thread,
    log and store kept open as the server keeps them."""
    os.environ.update(env)
    from application import decisions, wiring
    from application.as_of import customer_profile
    from ledger.settings import Settings

    wiring.keep_open()
    settings = Settings()
    chosen = random.Random(1)
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        customer = chosen.choice(customers)
        started = time.perf_counter()
        if kind == "profile":
            customer_profile(
                settings, customer, at=None, until=None, recorded_by=None, fresh=None
            ).to_dict()
        else:
            decisions.may_contact(
                settings,
                customer,
                "email",
                "marketing",
                datetime.now(UTC),
                policy_file=None,
                record=False,
                requested_by=None,
            ).to_dict()
        latencies.append(time.perf_counter() - started)
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rate": n / seconds,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[int(n * 0.99)] * 1000,
    }


def ingest_over_http(port: int, token: str, lines: list[bytes], batch: int, clients: int) -> float:
    chunks = [lines[i : i + batch] for i in range(0, len(lines), batch)]
    queue = list(reversed(chunks))
    lock = threading.Lock()
    failures: list[str] = []
    retried = [0]

    def post() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        while True:
            with lock:
                if not queue:
                    return
                chunk = queue.pop()
            body = b"[" + b",".join(chunk) + b"]"
            connection.request(
                "POST",
                "/v1/events",
                body=body,
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/cloudevents-batch+json",
                },
            )
            response = connection.getresponse()
            answer = json.loads(response.read())
            if response.status != 200 or answer["accepted"] + answer["duplicates"] != len(chunk):
                failures.append(f"{response.status}: {str(answer)[:200]}")

    started = time.perf_counter()
    threads = [threading.Thread(target=post) for _ in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"ingest failed: {failures[:3]}")
    if retried[0]:
        print(f"  ({retried[0]} requests answered 503 and were sent again)")
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--clients", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ingest-clients", type=int, default=2)
    args = parser.parse_args()
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    with tempfile.TemporaryDirectory() as folder:
        root = Path(folder)
        source = root / "events.jsonl"
        run(
            {**base, "LEDGER_DATA_DIR": str(root / "gen")},
            "generate",
            "--customers",
            str(args.customers),
            "--days",
            str(args.days),
            "--seed",
            "1",
            "--start",
            "2026-09-01",
            "--out",
            str(source),
        )
        lines = [line.rstrip(b"\n") for line in source.read_bytes().splitlines() if line.strip()]
        customers = sorted({json.loads(line)["subject"] for line in lines[:200_000]})
        print(
            f"{len(lines):,} events of {args.customers:,} customers "
            f"({source.stat().st_size / 1e6:.0f} MB)"
        )

        imported = {**base, "LEDGER_DATA_DIR": str(root / "imported")}
        started = time.perf_counter()
        summary = json.loads(run(imported, "import", str(source), "--json"))
        import_seconds = time.perf_counter() - started
        import_rate = summary["accepted"] / import_seconds
        print(
            f"ledger import: {summary['accepted']:,} events in {import_seconds:.2f} s = "
            f"{import_rate:,.0f} events/s (process start included)"
        )

        served = {**base, "LEDGER_DATA_DIR": str(root / "served")}
        token = run(served, "api-keys", "create", "bench", "--scope", "admin").decode().strip()
        server = Server(served, args.workers)
        try:
            seconds = ingest_over_http(server.port, token, lines, args.batch, args.ingest_clients)
            rate = len(lines) / seconds
            print(
                f"HTTP batched ingest ({args.batch}/request, {args.ingest_clients} clients, "
                f"{args.workers} server workers): {len(lines):,} events in {seconds:.2f} s = "
                f"{rate:,.0f} events/s = {rate / import_rate:.2f}x ledger import (target >= 0.5x)"
            )
        finally:
            server.stop()
        ingest_rss = max(server.samples, default=0)

        run(imported, "project", "run")
        token = run(imported, "api-keys", "create", "bench", "--scope", "admin").decode().strip()
        server = Server(imported, args.workers)
        try:
            print(f"server RSS after start: {server.rss_mb()} MB")
            profile_paths = [f"/v1/customers/{c}/profile" for c in customers]
            check_paths = [
                f"/v1/may-contact?customer={c}&channel=email&purpose=marketing" for c in customers
            ]
            for name, paths, target in (
                ("profile", profile_paths, (2000, 10)),
                ("may-contact", check_paths, (1500, 15)),
            ):
                found = load(server.port, token, paths, args.seconds, args.clients, args.threads)
                print(
                    f"HTTP {name}: {found['rate']:,.0f} req/s, p50 {found['p50_ms']:.2f} ms, "
                    f"p99 {found['p99_ms']:.2f} ms, {found['requests']:,} requests, "
                    f"{found['errors']} errors ({args.clients}x{args.threads} connections, "
                    f"{args.seconds:.0f} s; target >= {target[0]:,} req/s, p99 < {target[1]} ms); "
                    f"RSS now {server.rss_mb()} MB"
                )
                limit = library_rate(imported, name, customers, min(args.seconds, 10))
                print(
                    f"library {name} (one thread, in process): {limit['rate']:,.0f}/s, "
                    f"p50 {limit['p50_ms']:.3f} ms, p99 {limit['p99_ms']:.3f} ms"
                )
        finally:
            server.stop()
        samples = server.samples
        print(
            f"memory (all server processes): ingest peak {ingest_rss} MB; queries: first "
            f"{samples[0] if samples else 0} MB, last {samples[-1] if samples else 0} MB, "
            f"peak {max(samples, default=0)} MB over {len(samples)} s"
        )


if __name__ == "__main__":
    main()
