"""``ledger serve`` under load, beside the same work done in-process (issue 14).

    python bench/http_bench.py [--customers 20000] [--days 60] [--seconds 20] [--workers 2]
                               [--generator wrk|python] [--connections 4]
    python bench/http_bench.py --memory-minutes 10     # RSS every 30 s under a mixed load

Builds its own ledgers in a temporary folder from ``ledger generate`` output, then measures,
in one run:

* **ingest**: ``ledger import FILE`` (the baseline) against the same events POSTed as
  CloudEvents batches of ``--batch`` events by ``--ingest-clients`` keep-alive connections to
  a ``ledger serve`` on an empty ledger (target ≥ 0.5× the import's rate);
* **profile lookups** (``GET /v1/customers/{id}/profile``) and **single may-contact**
  (``GET /v1/may-contact``, random channel and purpose): ``--connections`` keep-alive
  connections for ``--seconds`` each, random customers (targets: ≥ 2,000 req/s with p99 <
  10 ms; ≥ 1,500 req/s with p99 < 15 ms); beside them the library doing the same questions in
  one thread (the limit per core), and the server's CPU per request (user + sys of its
  processes over the run: robust to other load on the machine, unlike the rates);
* **memory**: the server's processes' total RSS, sampled every second over the whole run.

The load generator is ``wrk`` (C, one thread; Debian's package ``wrk``, installed with
``apt-get install -y wrk`` when missing and allowed) with a Lua script that picks a random
path per request and reports the latency percentiles of wrk's histogram and the non-2xx
answers, which must be 0. ``--generator python`` is the old generator (processes of
``http.client`` threads, every request timed), which takes far more of the CPU the server
needs on the same 2-core machine.

``--memory-minutes N`` skips the rest: one server on the imported ledger, a mixed load
(profiles, decisions, contacts, histories) for N minutes, the RSS of each server process
every 30 s and the growth over the second half.
"""

from __future__ import annotations

import argparse
import http.client
import json
import multiprocessing
import os
import random
import shutil
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


CHANNELS = ("email", "sms", "phone", "post")
PURPOSES = ("marketing", "service", "transactional")

WRK_SCRIPT = """
-- A random path of the file args[1] per request, the API key args[2]; one JSON line at the end.
local paths = {}
function init(args)
  for line in io.lines(args[1]) do paths[#paths + 1] = line end
  wrk.headers["Authorization"] = "Bearer " .. args[2]
  math.randomseed(tonumber(args[3]))
end
function request()
  return wrk.format("GET", paths[math.random(#paths)])
end
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRK {"requests": %d, "seconds": %f, "p50_ms": %f, "p90_ms": %f, "p99_ms": %f, '
    .. '"max_ms": %f, "non2xx": %d, "socket_errors": %d}\\n',
    summary.requests, summary.duration / 1e6, latency:percentile(50) / 1e3,
    latency:percentile(90) / 1e3, latency:percentile(99) / 1e3, latency.max / 1e3,
    e.status, e.connect + e.read + e.write + e.timeout))
end
"""


def load_average() -> str:
    return "{:.1f} {:.1f} {:.1f}".format(*os.getloadavg())


class Server:
    def __init__(self, env: dict[str, str], workers: int, *options: str) -> None:
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
                *options,
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

    def pids(self) -> list[int]:
        """The server process and its worker processes."""
        found = [self.process.pid]
        try:
            children = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
            found += [int(p) for p in children.read_text().split()]
        except OSError:
            pass
        return found

    def rss_by_process(self) -> list[int]:
        """RSS (MB) of each server process."""
        sizes = []
        for pid in self.pids():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        sizes.append(int(line.split()[1]) // 1024)
            except OSError:
                continue
        return sizes

    def rss_mb(self) -> int:
        """Total RSS (MB) of the server and its worker processes."""
        return sum(self.rss_by_process())

    def cpu_seconds(self) -> float:
        """User + sys CPU seconds the server's processes have used so far."""
        total = 0
        for pid in self.pids():
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += int(fields[11]) + int(fields[12])
            except OSError:
                continue
        return total / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            self.samples.append(self.rss_mb())

    def stop(self) -> None:
        self._stop.set()
        os.killpg(self.process.pid, signal.SIGTERM)
        self.process.wait(30)


def find_wrk() -> str | None:
    """``wrk``, installed with apt-get when missing (as root), or None."""
    found = shutil.which("wrk")
    if found or not shutil.which("apt-get") or os.geteuid() != 0:
        return found
    print("wrk not found: apt-get install -y wrk")
    subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False, capture_output=True)
    return shutil.which("wrk")


def wrk_load(
    wrk: str, port: int, token: str, paths: list[str], seconds: float, connections: int
) -> dict[str, Any]:
    """``connections`` keep-alive connections from one wrk thread for ``seconds``."""
    with tempfile.TemporaryDirectory() as folder:
        script, listed = Path(folder) / "paths.lua", Path(folder) / "paths.txt"
        script.write_text(WRK_SCRIPT)
        listed.write_text("\n".join(paths) + "\n")
        done = subprocess.run(
            [
                wrk,
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(seconds))}s",
                "--timeout",
                "30s",
                "--latency",
                "-s",
                str(script),
                f"http://127.0.0.1:{port}",
                "--",
                str(listed),
                token,
                str(random.randrange(1 << 30)),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
    lines = [line for line in done.stdout.splitlines() if line.startswith("WRK ")]
    if not lines:
        raise SystemExit(f"wrk failed: {done.stdout}\n{done.stderr}")
    found: dict[str, Any] = json.loads(lines[-1][4:])
    found["rate"] = found["requests"] / found["seconds"]
    found["errors"] = found["non2xx"] + found["socket_errors"]
    return found


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
    env: dict[str, str], kind: str, questions: list[tuple[str, str, str]], seconds: float
) -> dict[str, Any]:
    """The same questions through the application functions in this process, one thread,
    log and store kept open as the server keeps them, the answer serialised as the server
    does (orjson)."""
    os.environ.update(env)
    import orjson

    from application import decisions, wiring
    from application.as_of import customer_profile
    from ledger.settings import Settings

    wiring.keep_open()
    settings = Settings()
    chosen = random.Random(1)
    latencies: list[float] = []
    cpu = time.process_time()
    deadline = time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        customer, channel, purpose = chosen.choice(questions)
        started = time.perf_counter()
        if kind == "profile":
            answer = customer_profile(
                settings, customer, at=None, until=None, recorded_by=None, fresh=None
            ).to_dict()
        else:
            answer = decisions.may_contact(
                settings,
                customer,
                channel,
                purpose,
                datetime.now(UTC),
                policy_file=None,
                record=False,
                requested_by=None,
            ).to_dict()
        orjson.dumps(answer)
        latencies.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu
    latencies.sort()
    n = len(latencies)
    return {
        "requests": n,
        "rate": n / seconds,
        "p50_ms": latencies[n // 2] * 1000,
        "p99_ms": latencies[int(n * 0.99)] * 1000,
        "cpu_ms": cpu / n * 1000,
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


def questions_of(customers: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """Per kind, the questions asked (a customer, and for decisions a random channel and
    purpose, the same for HTTP and the library)."""
    chosen = random.Random(2)
    checks = [
        (c, chosen.choice(CHANNELS), chosen.choice(PURPOSES)) for c in customers for _ in (1, 2)
    ]
    return {"profile": [(c, "", "") for c in customers], "may-contact": checks}


def path_of(kind: str, question: tuple[str, str, str]) -> str:
    customer, channel, purpose = question
    if kind == "profile":
        return f"/v1/customers/{customer}/profile"
    return f"/v1/may-contact?customer={customer}&channel={channel}&purpose={purpose}"


def mixed_paths(customers: list[str]) -> list[str]:
    """The memory run's load: profiles and decisions, a quarter as many contacts answers
    and an eighth as many histories."""
    chosen = random.Random(3)
    paths = []
    for number, customer in enumerate(customers):
        paths.append(f"/v1/customers/{customer}/profile")
        channel, purpose = chosen.choice(CHANNELS), chosen.choice(PURPOSES)
        paths.append(f"/v1/may-contact?customer={customer}&channel={channel}&purpose={purpose}")
        if number % 4 == 0:
            paths.append(f"/v1/customers/{customer}/contacts")
        if number % 8 == 0:
            paths.append(f"/v1/customers/{customer}/history")
    return paths


def measure(
    args: argparse.Namespace,
    wrk: str | None,
    server: Server,
    token: str,
    paths: list[str],
    seconds: float,
) -> dict[str, Any]:
    """One load on ``server``: the generator's figures, the server's CPU per request and
    the load average at the end."""
    cpu = server.cpu_seconds()
    if wrk:
        found = wrk_load(wrk, server.port, token, paths, seconds, args.connections)
    else:
        found = load(server.port, token, paths, seconds, args.clients, args.threads)
    found["cpu_ms"] = (server.cpu_seconds() - cpu) / max(found["requests"], 1) * 1000
    found["load"] = load_average()
    return found


def connections_text(args: argparse.Namespace, wrk: str | None) -> str:
    if wrk:
        return f"wrk, {args.connections} connections"
    return f"python, {args.clients}x{args.threads} connections"


def memory_run(
    args: argparse.Namespace, wrk: str | None, env: dict[str, str], customers: list[str]
) -> None:
    """A mixed load for ``--memory-minutes``; the RSS of each server process every 30 s."""
    token = run(env, "api-keys", "create", "bench", "--scope", "admin").decode().strip()
    server = Server(env, args.workers)
    paths = mixed_paths(customers)
    chunks = max(2, round(args.memory_minutes * 2))
    try:
        sizes = server.rss_by_process()
        print(
            f"memory run: {args.workers} workers, {connections_text(args, wrk)}, mixed load "
            f"of {len(paths):,} paths, {chunks * 30} s; load average {load_average()}"
        )
        print(f"    0 s  RSS {sum(sizes):4d} MB  ({' + '.join(map(str, sizes))})")
        curve = [sum(sizes)]
        for chunk in range(1, chunks + 1):
            found = measure(args, wrk, server, token, paths, 30)
            sizes = server.rss_by_process()
            curve.append(sum(sizes))
            print(
                f"{chunk * 30:5d} s  RSS {sum(sizes):4d} MB  ({' + '.join(map(str, sizes))})  "
                f"{found['rate']:,.0f} req/s, p99 {found['p99_ms']:.1f} ms, "
                f"{found['errors']} errors, load {found['load']}",
                flush=True,
            )
    finally:
        server.stop()
    half = chunks // 2
    print(
        f"RSS growth over the second half ({half * 30} s -> {chunks * 30} s): "
        f"{curve[-1] - curve[half]:+d} MB ({curve[half]} -> {curve[-1]} MB); "
        f"over the whole run {curve[-1] - curve[0]:+d} MB; peak {max(curve)} MB"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", type=int, default=20_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--generator", choices=("wrk", "python"), default="wrk")
    parser.add_argument("--connections", type=int, default=4, help="wrk's connections")
    parser.add_argument("--clients", type=int, default=2, help="python generator processes")
    parser.add_argument("--threads", type=int, default=2, help="connections per process")
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--ingest-clients", type=int, default=2)
    parser.add_argument("--memory-minutes", type=float, default=0)
    parser.add_argument(
        "--no-fast-path",
        action="store_true",
        help="serve the lookups through FastAPI's router (the reference, to compare)",
    )
    args = parser.parse_args()
    wrk = find_wrk() if args.generator == "wrk" else None
    if args.generator == "wrk" and wrk is None:
        print("wrk is not installed and could not be: the python generator instead")
    base = {k: v for k, v in os.environ.items() if not k.startswith("LEDGER_")}
    print(f"load average at the start: {load_average()} ({os.cpu_count()} cores)")
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
        if args.memory_minutes:
            run(imported, "project", "run")
            memory_run(args, wrk, imported, customers)
            return

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
        server = Server(imported, args.workers, *(["--no-fast-path"] if args.no_fast_path else []))
        asked = questions_of(customers)
        try:
            print(f"server RSS after start: {server.rss_mb()} MB")
            for name, target in (("profile", (2000, 10)), ("may-contact", (1500, 15))):
                paths = [path_of(name, q) for q in asked[name]]
                measure(args, wrk, server, token, paths, 3)  # warm-up
                found = measure(args, wrk, server, token, paths, args.seconds)
                print(
                    f"HTTP {name}: {found['rate']:,.0f} req/s, p50 {found['p50_ms']:.2f} ms, "
                    f"p99 {found['p99_ms']:.2f} ms, {found['requests']:,} requests, "
                    f"{found['errors']} errors or non-2xx ({connections_text(args, wrk)}, "
                    f"{args.seconds:.0f} s; target >= {target[0]:,} req/s, p99 < {target[1]} "
                    f"ms); server CPU {found['cpu_ms']:.3f} ms/request; load average "
                    f"{found['load']}; RSS now {server.rss_mb()} MB",
                    flush=True,
                )
                limit = library_rate(imported, name, asked[name], min(args.seconds, 10))
                print(
                    f"library {name} (one thread, in process): {limit['rate']:,.0f}/s, "
                    f"p50 {limit['p50_ms']:.3f} ms, p99 {limit['p99_ms']:.3f} ms, "
                    f"CPU {limit['cpu_ms']:.3f} ms/question; load average {load_average()}",
                    flush=True,
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
