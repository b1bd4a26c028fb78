"""`make bench`: the model server against a naive server and against no server at all.

One run, one machine, one random-weight seq2seq model (d_model 256, 2+2 layers,
16 new tokens: compute dominates HTTP overhead, as with real models):

  (a) ours   - python -m model_server (dynamic batching, inference off the loop)
  (b) naive  - devtools/naive_server.py (the tutorial: inference on the event loop)
  (c) raw    - tokenize + generate + decode of a batch of N in-process (the limit)

For (a) and (b), N closed-loop clients (concurrency 1, 4, 16, 64) send requests
for a fixed time while a separate process pings /ping every 50 ms. Prints a
markdown table and checks the targets. Load goes to 127.0.0.1 only and every
loop is bounded in time and count.

    python -m devtools.bench [--seconds 5] [--levels 1,4,16,64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
PARAMETERS = {"max_new_tokens": 16, "min_new_tokens": 16}
SENTENCES = [
    "Amazon SageMaker asynchronous inference queues requests and scales to zero.",
    "A model server answers health checks while the model is busy.",
    "Dynamic batching groups concurrent requests into one model call.",
    "The quick brown fox jumps over the lazy dog.",
]
MAX_REQUESTS_PER_LEVEL = 20_000  # a hard bound on top of the time bound
PING_INTERVAL_S = 0.05
JSON_HEADERS = {"Content-Type": "application/json"}


@dataclass
class Result:
    system: str
    concurrency: int
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    elapsed: float = 0.0
    pings: list[float] = field(default_factory=list)
    ping_failures: int = 0

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.elapsed if self.elapsed else 0.0

    def pct(self, values: list[float], q: float) -> float:
        if not values:
            return float("nan")
        ordered = sorted(values)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


# ------------------------------------------------------------------ (c) raw
class RawGenerate:
    """tokenize + generate + decode of a batch of N, in this process: the limit."""

    label = "raw generate"

    def __init__(self, model_dir: Path, threads: int) -> None:
        import torch
        from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

        torch.set_num_threads(threads)
        self.torch = torch
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        self.model = AutoModelForSeq2SeqLM.from_pretrained(model_dir).eval()

    def measure(self, n: int, seconds: float) -> Result:
        batch = [SENTENCES[i % len(SENTENCES)] for i in range(n)]

        def call() -> None:
            encoded = self.tokenizer(batch, return_tensors="pt", padding=True, truncation=True)
            with self.torch.inference_mode():
                out = self.model.generate(**encoded, **PARAMETERS)
            self.tokenizer.batch_decode(out, skip_special_tokens=True)

        call()  # warm-up
        result = Result(self.label, n)
        started = time.perf_counter()
        while time.perf_counter() - started < seconds:
            t = time.perf_counter()
            call()
            # One call serves n "requests", each with the call's latency.
            result.latencies.extend([time.perf_counter() - t] * n)
        result.elapsed = time.perf_counter() - started
        return result

    def close(self) -> None:
        pass


# ------------------------------------------------------------------ servers
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(kind: str, model_dir: Path, port: int, extra_env: dict[str, str]) -> subprocess.Popen:
    env = {**os.environ, **extra_env, "MODEL_DIR": str(model_dir), "HF_HUB_OFFLINE": "1"}
    if kind == "ours":
        if "TORCH_THREADS" in extra_env:
            env.setdefault("MODEL_SERVER_TORCH_THREADS", extra_env["TORCH_THREADS"])
        env |= {"SAGEMAKER_BIND_TO_PORT": str(port), "MODEL_SERVER_HOST": "127.0.0.1", "MODEL_SERVER_LOG_LEVEL": "WARNING"}
        cmd = [sys.executable, "-m", "model_server", "serve"]
    else:
        env |= {"PORT": str(port)}
        cmd = [sys.executable, "-m", "devtools.naive_server"]
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"{kind} server exited with {proc.returncode}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2).status_code == 200:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    proc.kill()
    raise SystemExit(f"{kind} server did not become healthy")


def ping_probe(port: int, stop: mp.Event, out: mp.Queue) -> None:  # runs in its own process
    """Ping on a fresh connection every 50 ms, as a health checker would."""
    latencies, failures = [], 0
    for _ in range(100_000):  # bounded; stop ends it long before
        if stop.is_set():
            break
        started = time.perf_counter()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", "/ping")
            ok = conn.getresponse().status == 200
            conn.close()
        except OSError:
            ok = False
        elapsed = time.perf_counter() - started
        if ok:
            latencies.append(elapsed)
        else:
            failures += 1
        time.sleep(max(0.0, PING_INTERVAL_S - elapsed))
    out.put((latencies, failures))


async def load(port: int, concurrency: int, seconds: float, result: Result, warmup: float) -> None:
    # aiohttp, not httpx: httpx's async pool tops out near 150 req/s at 64
    # connections on this machine (measured against /ping), which would make
    # the client, not the server, the bottleneck. aiohttp does over 10,000.
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", connector=connector, timeout=timeout) as client:
        measuring_from = time.perf_counter() + warmup
        stop_at = measuring_from + seconds
        sent = 0

        async def worker(index: int) -> None:
            nonlocal sent
            i = index
            while time.perf_counter() < stop_at and sent < MAX_REQUESTS_PER_LEVEL:
                sent += 1
                body = json.dumps({"inputs": SENTENCES[i % len(SENTENCES)], "parameters": PARAMETERS})
                i += concurrency
                started = time.perf_counter()
                try:
                    async with client.post("/invocations", data=body, headers=JSON_HEADERS) as response:
                        await response.read()
                        ok = response.status == 200
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    ok = False
                done = time.perf_counter()
                # Throughput counts completions inside the window (a request may
                # have started during warm-up: at 64 clients the naive server's
                # queue alone is seconds long).
                if measuring_from <= done <= stop_at:
                    if ok:
                        result.latencies.append(done - started)
                    else:
                        result.errors += 1

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        result.elapsed = seconds


class Server:
    """(a) or (b): a server process, loaded by closed-loop clients, pinged meanwhile."""

    def __init__(self, kind: str, label: str, model_dir: Path, extra_env: dict[str, str]) -> None:
        self.label = label
        self.port = free_port()
        self.proc = start_server(kind, model_dir, self.port, extra_env)

    def measure(self, concurrency: int, seconds: float) -> Result:
        ctx = mp.get_context("spawn")
        result = Result(self.label, concurrency)
        stop, out = ctx.Event(), ctx.Queue()
        probe = ctx.Process(target=ping_probe, args=(self.port, stop, out), daemon=True)
        probe.start()
        asyncio.run(load(self.port, concurrency, seconds, result, warmup=1.5))
        stop.set()
        result.pings, result.ping_failures = out.get(timeout=30)
        probe.join(10)
        return result

    def close(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()


# ------------------------------------------------------------------ report
def table(results: list[Result]) -> str:
    lines = [
        "| system | concurrency | req/s | p50 ms | p99 ms | errors | /ping p50 ms | /ping p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        ping50 = f"{r.pct(r.pings, 0.5):.1f}" if r.pings else "-"
        ping99 = f"{r.pct(r.pings, 0.99):.1f}" if r.pings else "-"
        if r.ping_failures:
            ping99 += f" ({r.ping_failures} failed)"
        lines.append(
            f"| {r.system} | {r.concurrency} | {r.rate:.1f} | {r.pct(r.latencies, 0.5):.1f} | "
            f"{r.pct(r.latencies, 0.99):.1f} | {r.errors if r.system != 'raw generate' else '-'} | {ping50} | {ping99} |"
        )
    return "\n".join(lines)


def check_targets(ours: list[Result], naive: list[Result], raw: list[Result]) -> list[str]:
    by = lambda rs: {r.concurrency: r for r in rs}  # noqa: E731
    o, n, r = by(ours), by(naive), by(raw)
    checks = []
    if 16 in o and 16 in r:
        share = o[16].rate / r[16].rate
        checks.append(f"{'PASS' if share >= 0.7 else 'MISS'}: concurrency 16 = {share:.0%} of raw batch-16 (target >= 70%)")
    if 1 in o and 1 in n:
        ratio = o[1].rate / n[1].rate
        checks.append(f"{'PASS' if ratio >= 0.9 else 'MISS'}: concurrency 1 = {ratio:.0%} of naive (target >= 90%)")
    worst = max((x.pct(x.pings, 0.99) for x in ours if x.pings), default=float("nan"))
    failed = sum(x.ping_failures for x in ours)
    checks.append(f"{'PASS' if worst < 100 and not failed else 'MISS'}: /ping p99 worst level {worst:.1f} ms, "
                  f"{failed} failed (target < 100 ms)")
    if 64 in o:
        checks.append(f"{'PASS' if o[64].errors == 0 else 'MISS'}: {o[64].errors} errors at concurrency 64 (target 0)")
    return checks


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level (after 1.5 s warm-up)")
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument("--server-env", action="append", default=[], metavar="KEY=VALUE",
                        help="extra environment for the model server (e.g. MODEL_SERVER_MAX_BATCH_SIZE=16)")
    parser.add_argument("--rounds", type=int, default=3,
                        help="repeat the whole sweep; each cell reports its best round (less noise on a shared machine)")
    parser.add_argument("--torch-threads", type=int, help="torch threads for all systems (default: the server's default)")
    parser.add_argument("--only", choices=["raw", "ours", "naive"], action="append",
                        help="run only these systems (repeatable); default all three")
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    only = set(args.only or ["raw", "ours", "naive"])
    levels = [int(x) for x in args.levels.split(",")]
    import torch

    from devtools.tiny_model import build_tiny_seq2seq

    from model_server.loader import cpu_threads

    # The server's own default, given to all three systems alike.
    threads = args.torch_threads or cpu_threads(None, torch.get_num_threads())
    load_before = os.getloadavg()
    systems: dict[str, object] = {}
    best: dict[tuple[str, int], Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_seq2seq(Path(tmp) / "model", d_model=256, layers=2, heads=4, max_new_tokens=16)
        common = {"TORCH_THREADS": str(threads)}
        try:
            # All three are up at once (idle ones cost nothing) and measured
            # level by level, back to back: other load on the machine then
            # hits the systems being compared alike.
            if "ours" in only:
                systems["ours"] = Server("ours", "model server", model_dir, common | server_env)
            if "naive" in only:
                systems["naive"] = Server("naive", "naive FastAPI", model_dir, common)
            if "raw" in only:
                systems["raw"] = RawGenerate(model_dir, threads)
            for round_ in range(args.rounds):
                for level in levels:
                    # Rotate who goes first each round: no system always measures right after a level change.
                    names = list(systems)
                    names = names[round_ % len(names):] + names[: round_ % len(names)]
                    for name in names:
                        system = systems[name]
                        result = system.measure(level, args.seconds)
                        key = (name, level)
                        if key not in best or result.rate > best[key].rate:
                            best[key] = result
                        print(f"  round {round_ + 1} {result.system} at {level}: {result.rate:.1f} req/s, "
                              f"errors {result.errors}, ping p99 {result.pct(result.pings, 0.99):.0f} ms",
                              file=sys.stderr)
        finally:
            for system in systems.values():
                system.close()
    ours = [best[("ours", n)] for n in levels if ("ours", n) in best]
    naive = [best[("naive", n)] for n in levels if ("naive", n) in best]
    raw = [best[("raw", n)] for n in levels if ("raw", n) in best]

    print(f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}, "
          f"Python {platform.python_version()}, torch {torch.__version__}, {threads} torch thread(s) in every system")
    loads = " / ".join(f"{x[0]:.2f}" for x in (load_before, os.getloadavg()))
    print(f"1-minute load average before / after: {loads} (other processes on the machine skew results)")
    if server_env:
        print(f"Model server environment: {server_env}")
    print(f"Model: random-weight BART, d_model 256, 2+2 layers, {PARAMETERS['max_new_tokens']} new tokens; "
          f"{args.seconds:g} s per level after 1.5 s warm-up; best of {args.rounds} round(s)\n")
    print(table(ours + naive + raw))
    print()
    for line in check_targets(ours, naive, raw):
        print(line)


if __name__ == "__main__":
    main()
