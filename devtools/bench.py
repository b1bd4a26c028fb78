"""`make bench`: the model server against a naive server and against no server at all.

One run, one machine, one random-weight seq2seq model (d_model 256, 2+2 layers,
16 new tokens: compute dominates HTTP overhead, as with real models):

  (a) ours   - python -m model_server (HTTP front end + engine process with the
               model, dynamic batching and every torch thread)
  (b) naive  - devtools/naive_server.py (the tutorial: inference on the event loop)
  (c) raw    - tokenize + generate + decode of a batch of N in-process (the limit)

All three use torch's default thread count (every core) unless --torch-threads
says otherwise. For (a) and (b), N closed-loop clients (concurrency 1, 4, 16,
64) send requests for a fixed time while a separate process pings /ping every
50 ms. Then (a) again with 64 clients behind a concurrency cap (4, 8, 16, 32):
what SageMaker's MaxConcurrentInvocationsPerInstance does to an async
endpoint's container. Last, the front end <-> engine hop alone (an echo through
the engine's message loop, no model), in microseconds. Prints markdown tables
and checks the targets. Load goes to 127.0.0.1 only and every loop is bounded
in time and count.

    python -m devtools.bench [--seconds 5] [--levels 1,4,16,64] [--caps 4,8,16,32] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import multiprocessing as mp
import os
import pickle
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import Any

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


def _raw_worker(model_dir: Path, threads: int, conn: Any) -> None:  # runs in its own process
    raw = RawGenerate(model_dir, threads)
    for _ in range(1000):  # bounded; "stop" ends it
        command = conn.recv()
        if command == "stop":
            break
        n, seconds = command
        result = raw.measure(n, seconds)
        conn.send((result.latencies, result.elapsed))


class RawGenerateProcess:
    """(c) again in a process of its own, with extra environment read before torch starts.

    OpenMP reads OMP_WAIT_POLICY once, when torch initialises it: a server given another
    policy can only be compared with a fresh process.
    """

    def __init__(self, label: str, model_dir: Path, threads: int, env: dict[str, str]) -> None:
        self.label = label
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        saved = {key: os.environ.get(key) for key in env}
        os.environ.update(env)  # the spawned interpreter copies the environment at start
        try:
            self.proc = ctx.Process(target=_raw_worker, args=(model_dir, threads, child), daemon=True)
            self.proc.start()
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    def measure(self, n: int, seconds: float) -> Result:
        self.conn.send((n, seconds))
        result = Result(self.label, n)
        result.latencies, result.elapsed = self.conn.recv()
        return result

    def close(self) -> None:
        self.conn.send("stop")
        self.proc.join(30)


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
        env |= {
            "SAGEMAKER_BIND_TO_PORT": str(port),
            "MODEL_SERVER_HOST": "127.0.0.1",
            "MODEL_SERVER_LOG_LEVEL": "WARNING",
        }
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


def ping_probe(port: int, stop: EventType, out: mp.Queue) -> None:  # runs in its own process
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


async def load(
    port: int, concurrency: int, seconds: float, result: Result, warmup: float, cap: int | None = None
) -> None:
    # aiohttp, not httpx: httpx's async pool tops out near 150 req/s at 64
    # connections on this machine (measured against /ping), which would make
    # the client, not the server, the bottleneck. aiohttp does over 10,000.
    import aiohttp

    connector = aiohttp.TCPConnector(limit=concurrency)
    # SageMaker's dispatcher: at most `cap` requests reach the container at once; the other
    # clients wait in its queue (their wait counts in the latency, as an async request's would).
    gate = asyncio.Semaphore(cap or concurrency)
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
                    async with gate, client.post("/invocations", data=body, headers=JSON_HEADERS) as response:
                        await response.read()
                        ok = response.status == 200
                except (TimeoutError, aiohttp.ClientError):
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

    def measure(self, concurrency: int, seconds: float, cap: int | None = None) -> Result:
        ctx = mp.get_context("spawn")
        result = Result(self.label if cap is None else f"{self.label}, cap {cap}", concurrency)
        stop, out = ctx.Event(), ctx.Queue()
        probe = ctx.Process(target=ping_probe, args=(self.port, stop, out), daemon=True)
        probe.start()
        asyncio.run(load(self.port, concurrency, seconds, result, warmup=1.5, cap=cap))
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


# ------------------------------------------------------------------ the hop
@dataclass
class Hop:
    label: str
    micros: list[float]


def measure_hop(model_dir: Path, count: int) -> list[Hop]:
    """Round trips front end -> engine -> front end through the engine's message loop, no model.

    One real EngineProcess (the served transport and loop), one request at a
    time: the figure is what a lone request pays for the engine being a process.
    """
    from model_server.engine_process import EngineProcess
    from model_server.settings import Settings

    async def run() -> list[Hop]:
        engine = EngineProcess(
            Settings(
                _env_file=None,
                model_dir=model_dir,
                warmup=False,
                log_level="WARNING",
            )
        )
        await engine.start()
        try:
            if not await engine.wait_ready(180):
                raise SystemExit(f"engine did not become ready: {engine.error}")
            hops = []
            payloads = {
                "front end -> engine -> front end, a request and its result (~200 bytes)": {
                    "inputs": [SENTENCES[0]],
                    "parameters": PARAMETERS,
                },
                "front end -> engine -> front end, a 1 MiB body out of band (both ways)": {
                    "body": pickle.PickleBuffer(os.urandom(2**20))
                },
            }
            for label, payload in payloads.items():
                for _ in range(50):
                    await engine.echo(payload)
                micros = []
                for _ in range(count):
                    started = time.perf_counter()
                    await engine.echo(payload)
                    micros.append((time.perf_counter() - started) * 1e6)
                hops.append(Hop(label, micros))
            return hops
        finally:
            await engine.stop(10)

    return asyncio.run(run())


def _transport_peer(kind: str, sock: socket.socket, size: int) -> None:  # runs in its own process
    """The receiving end of measure_transports: takes each payload whole, as bytes, and acknowledges it."""
    import mmap

    for _ in range(1_000_000):  # bounded; an empty read (the sender closed) ends it
        if kind == "socket":
            received = bytearray(size)
            view, got = memoryview(received), 0
            while got < size:
                n = sock.recv_into(view[got:])
                if not n:
                    return
                got += n
            payload = bytes(received)
        else:
            path = sock.recv(4096).decode()
            if not path:
                return
            with open(path, "rb") as file:
                mapped = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_READ)
            os.unlink(path)
            payload = bytes(mapped)
            mapped.close()
        assert len(payload) == size
        sock.sendall(b"k")


def measure_transports(size: int, count: int) -> list[Hop]:
    """One payload of `size` bytes to another process, both ways the issue named: a socket pair
    (the payload through the kernel) and shared memory (written once into /dev/shm, mapped by
    the receiver), each ending as `bytes` there, as a user script's body must."""
    payload = os.urandom(size)
    hops = []
    for kind in ("socket", "shm"):
        if kind == "shm" and not os.path.isdir("/dev/shm"):  # noqa: S108 - only checks the mount exists
            continue
        ours, theirs = socket.socketpair()
        ctx = mp.get_context("spawn")
        # multiprocessing hands the socket to the child (it duplicates the descriptor).
        peer = ctx.Process(target=_transport_peer, args=(kind, theirs, size), daemon=True)
        peer.start()
        micros = []
        for i in range(count + 20):
            started = time.perf_counter()
            if kind == "socket":
                ours.sendall(payload)
            else:
                fd, path = tempfile.mkstemp(dir="/dev/shm", prefix="bench-")
                with os.fdopen(fd, "wb") as file:
                    file.write(payload)
                ours.sendall(path.encode())
            ours.recv(1)
            if i >= 20:  # the first ones warm up
                micros.append((time.perf_counter() - started) * 1e6)
        ours.close()
        peer.join(10)
        theirs.close()
        label = "socket pair" if kind == "socket" else "shared memory (/dev/shm, mmap)"
        hops.append(Hop(f"{size // 2**20} MiB to another process as bytes, one-byte ack: {label}", micros))
    return hops


def hop_table(hops: list[Hop]) -> str:
    lines = ["| round trip | p50 µs | p99 µs | mean µs |", "| --- | ---: | ---: | ---: |"]
    for hop in hops:
        ordered = sorted(hop.micros)
        p50, p99 = ordered[len(ordered) // 2], ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))]
        lines.append(f"| {hop.label} | {p50:.0f} | {p99:.0f} | {sum(ordered) / len(ordered):.0f} |")
    return "\n".join(lines)


# ------------------------------------------------------------------ report
def table(results: list[Result]) -> str:
    lines = [
        "| system | concurrency | req/s | p50 ms | p99 ms | errors | /ping p50 ms | /ping p99 ms |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        raw = r.system.startswith("raw generate")
        ping50 = f"{r.pct(r.pings, 0.5):.1f}" if r.pings else "-"
        ping99 = f"{r.pct(r.pings, 0.99):.1f}" if r.pings else "-"
        if r.ping_failures:
            ping99 += f" ({r.ping_failures} failed)"
        lines.append(
            f"| {r.system} | {r.concurrency} | {r.rate:.1f} | {r.pct(r.latencies, 0.5):.1f} | "
            f"{r.pct(r.latencies, 0.99):.1f} | {'-' if raw else r.errors} | {ping50} | {ping99} |"
        )
    return "\n".join(lines)


def check_targets(
    ours: list[Result], naive: list[Result], raw: list[Result], capped: list[Result] | None = None
) -> list[str]:
    by = lambda rs: {r.concurrency: r for r in rs}  # noqa: E731
    o, n, r = by(ours), by(naive), by(raw)
    checks = []
    if 16 in o and 16 in r and r[16].rate:
        share = o[16].rate / r[16].rate
        checks.append(
            f"{'PASS' if share >= 0.7 else 'MISS'}: concurrency 16 = {share:.0%} of raw batch-16 (target >= 70%)"
        )
    if 1 in o and 1 in n and n[1].rate:
        ratio = o[1].rate / n[1].rate
        checks.append(f"{'PASS' if ratio >= 0.9 else 'MISS'}: concurrency 1 = {ratio:.0%} of naive (target >= 90%)")
    every = ours + (capped or [])
    worst = max((x.pct(x.pings, 0.99) for x in every if x.pings), default=float("nan"))
    failed = sum(x.ping_failures for x in every)
    checks.append(
        f"{'PASS' if worst < 100 and not failed else 'MISS'}: /ping p99 worst level {worst:.1f} ms, "
        f"{failed} failed (target < 100 ms)"
    )
    at_64 = [x for x in every if x.concurrency == 64]
    if at_64:
        errors = sum(x.errors for x in at_64)
        checks.append(
            f"{'PASS' if errors == 0 else 'MISS'}: {errors} errors at 64 clients, every cap included (target 0)"
        )
    return checks


def progress(round_: int, result: Result) -> None:
    print(
        f"  round {round_ + 1} {result.system} at {result.concurrency}: {result.rate:.1f} req/s, "
        f"errors {result.errors}, ping p99 {result.pct(result.pings, 0.99):.0f} ms",
        file=sys.stderr,
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per level (after 1.5 s warm-up)")
    parser.add_argument("--levels", default="1,4,16,64")
    parser.add_argument(
        "--caps",
        default="4,8,16,32",
        help="concurrency caps (MaxConcurrentInvocationsPerInstance) to measure the model server at; '' to skip",
    )
    parser.add_argument("--cap-clients", type=int, default=64, help="clients behind the cap")
    parser.add_argument("--hop-count", type=int, default=2000, help="round trips per hop measurement (0: skip)")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra environment for the model server (e.g. MODEL_SERVER_MAX_BATCH_SIZE=16)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="repeat the whole sweep; each cell reports its best round (less noise on a shared machine)",
    )
    parser.add_argument(
        "--torch-threads",
        type=int,
        help="torch threads for all systems (default: torch's default, every core, as the engine uses)",
    )
    parser.add_argument(
        "--only",
        choices=["raw", "ours", "naive"],
        action="append",
        help="run only these systems (repeatable); default all three",
    )
    args = parser.parse_args(argv)
    server_env = dict(item.split("=", 1) for item in args.server_env)
    only = set(args.only or ["raw", "ours", "naive"])
    levels = [int(x) for x in args.levels.split(",")]
    import torch

    from devtools.tiny_model import build_tiny_seq2seq

    # The engine's own default (torch's: every core), given to all three systems alike.
    threads = args.torch_threads or torch.get_num_threads()
    caps = [int(x) for x in args.caps.split(",") if x.strip()]
    load_before = os.getloadavg()
    # Each system has measure(level, seconds) and close(); they share no base class.
    systems: dict[str, Any] = {}
    best: dict[tuple[str, int], Result] = {}
    with tempfile.TemporaryDirectory() as tmp:
        model_dir = build_tiny_seq2seq(Path(tmp) / "model", d_model=256, layers=2, heads=4, max_new_tokens=16)
        # OpenMP's own wait policy for all three, as the engine leaves it (engine_process.py); an
        # OMP_WAIT_POLICY in --server-env goes to both servers and to a second raw baseline below.
        omp = {k: v for k, v in server_env.items() if k == "OMP_WAIT_POLICY"}
        common = {"TORCH_THREADS": str(threads)} | omp
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
                if omp:
                    # The same call under the servers' OpenMP setting, in a fresh process: fair to both.
                    systems["raw-omp"] = RawGenerateProcess(
                        f"raw generate, OMP {omp['OMP_WAIT_POLICY'].lower()}", model_dir, threads, omp
                    )
            for round_ in range(args.rounds):
                for level in levels:
                    # Rotate who goes first each round: no system always measures right after a level change.
                    names = list(systems)
                    names = names[round_ % len(names) :] + names[: round_ % len(names)]
                    for name in names:
                        system = systems[name]
                        result = system.measure(level, args.seconds)
                        key = (name, level)
                        if key not in best or result.rate > best[key].rate:
                            best[key] = result
                        progress(round_, result)
                if "ours" in systems:
                    for cap in caps:
                        server = systems["ours"]
                        assert isinstance(server, Server)
                        result = server.measure(args.cap_clients, args.seconds, cap=cap)
                        key = (f"cap{cap}", args.cap_clients)
                        if key not in best or result.rate > best[key].rate:
                            best[key] = result
                        progress(round_, result)
            hops = measure_hop(model_dir, args.hop_count) if args.hop_count and "ours" in only else []
            if args.hop_count:
                hops += measure_transports(2**20, min(args.hop_count, 500))
        finally:
            for system in systems.values():
                system.close()
    ours = [best[("ours", n)] for n in levels if ("ours", n) in best]
    naive = [best[("naive", n)] for n in levels if ("naive", n) in best]
    raw = [best[("raw", n)] for n in levels if ("raw", n) in best]
    raw_omp = [best[("raw-omp", n)] for n in levels if ("raw-omp", n) in best]
    capped = [best[(f"cap{c}", args.cap_clients)] for c in caps if (f"cap{c}", args.cap_clients) in best]

    print(
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {platform.processor() or platform.platform()}, "
        f"Python {platform.python_version()}, torch {torch.__version__}, {threads} torch thread(s) in every system"
    )
    loads = " / ".join(f"{x[0]:.2f}" for x in (load_before, os.getloadavg()))
    print(f"1-minute load average before / after: {loads} (other processes on the machine skew results)")
    if server_env:
        print(f"Model server environment: {server_env}")
    print(
        f"Model: random-weight BART, d_model 256, 2+2 layers, {PARAMETERS['max_new_tokens']} new tokens; "
        f"{args.seconds:g} s per level after 1.5 s warm-up; best of {args.rounds} round(s)\n"
    )
    print(table(ours + naive + raw + raw_omp))
    if capped:
        print(
            f"\nModel server behind a concurrency cap (MaxConcurrentInvocationsPerInstance), "
            f"{args.cap_clients} clients; latency includes the wait for a slot:\n"
        )
        print(table(capped))
    if hops:
        print(f"\nThe hop alone ({args.hop_count} sequential echoes through the engine, no model):\n")
        print(hop_table(hops))
    print()
    for line in check_targets(ours, naive, raw, capped):
        print(line)
    if raw_omp:
        o16 = [x for x in ours if x.concurrency == 16]
        p16 = [x for x in raw_omp if x.concurrency == 16]
        if o16 and p16 and p16[0].rate:
            share = o16[0].rate / p16[0].rate
            print(
                f"{'PASS' if share >= 0.7 else 'MISS'}: concurrency 16 = {share:.0%} of raw batch-16 with the "
                f"same OMP_WAIT_POLICY={omp['OMP_WAIT_POLICY']} (same target)"
            )


if __name__ == "__main__":
    main()
