"""The engine process (model_server/engine*.py), observed from outside the real server.

``python -m model_server serve`` is a front end that speaks HTTP and an engine
process that owns the model. These tests kill, stop and inspect the engine the
way the operating system would (SIGKILL as the kernel's OOM killer sends it),
and check what SageMaker would see: answers on /invocations and /ping.
"""

from __future__ import annotations

import asyncio
import os
import pickle
import signal
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
import pytest
from model_server import transport
from model_server.engine_process import MAX_RESTARTS, RESTART_BACKOFF_S, describe_exit

from tests.processes import run_captured, wait_for

from .conftest import ServerProcess
from .test_batching import LONG, post

pytestmark = pytest.mark.slow


def engine_pid(server: ServerProcess) -> int:
    """The pid of the engine now serving (the front end logs each engine that becomes ready)."""
    return int(server.log_events("engine_ready")[-1]["pid"])


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie is dead too (its parent has not reaped it yet).
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


@pytest.fixture
def crash_server(tiny_model_dir: Path, start_server) -> ServerProcess:
    server = start_server(tiny_model_dir, MODEL_SERVER_MAX_BATCH_SIZE="8", MODEL_SERVER_LOG_LEVEL="DEBUG")
    server.wait_until(200)
    return server


def test_engine_killed_mid_batch_in_flight_500_ping_503_then_200_and_serves_again(crash_server: ServerProcess) -> None:
    server = crash_server
    first = engine_pid(server)
    assert first != server.proc.pid
    started = len(server.log_events("batch_start"))
    with ThreadPoolExecutor(max_workers=4) as pool:
        in_flight = [pool.submit(post, server, {"inputs": f"text {i}", "parameters": LONG}) for i in range(4)]
        wait_for(lambda: len(server.log_events("batch_start")) > started, timeout=30, what="a batch to start")
        # What the kernel's out-of-memory killer does: SIGKILL, no chance to clean up.
        os.kill(first, signal.SIGKILL)
        responses = [f.result(timeout=60) for f in in_flight]
    # Requests inside the engine when it died get 500 naming the signal; on a busy machine a
    # request may still be on its way when the kill lands: it was never in flight, and gets
    # 503 "restarting" (retryable) instead. Never a 200, never another error.
    failed = [r for r in responses if r.status_code == 500]
    for response in failed:
        assert "engine process killed by SIGKILL" in response.json()["message"], response.text
    for response in responses:
        if response.status_code != 500:
            assert response.status_code == 503 and "restarting" in response.json()["message"], response.text
    # The front end noticed at once: unhealthy while the new engine loads ...
    ping = server.ping()
    assert ping.status_code == 503 and ping.json()["status"] == "restarting", ping.text
    assert "SIGKILL" in ping.json()["error"]
    refused = server.client.post("/invocations", json={"inputs": "too early"})
    assert refused.status_code == 503, refused.text
    # ... and healthy again once it is ready, with a new engine process.
    server.wait_until(200)
    second = engine_pid(server)
    assert second != first and alive(second) and not alive(first)
    after = server.client.post("/invocations", json={"inputs": ["later", "requests"]})
    assert after.status_code == 200 and len(after.json()) == 2
    (exit_event,) = server.log_events("engine_exit")
    assert exit_event["returncode"] == -signal.SIGKILL and exit_event["in_flight"] >= 1
    assert len(failed) == exit_event["in_flight"], "exactly the requests in flight get 500"
    assert server.proc.poll() is None  # the front end never went down


def started_engines(server: ServerProcess) -> list[int]:
    """Every engine process the front end started, oldest first (ready or not)."""
    return [int(event["pid"]) for event in server.log_events("engine_start")]


def kill_while_loading(server: ServerProcess, pid: int) -> int:
    """SIGKILL ``pid`` and return the engine started after it, once that one is inside its load."""
    before = len(started_engines(server))
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: len(started_engines(server)) > before, timeout=30, what="another engine to start")
    return started_engines(server)[-1]


@pytest.fixture
def gated_server(user_model_dir: Path, start_server, tmp_path: Path) -> tuple[ServerProcess, Path]:
    """Ready once; the gate file is then removed, so every engine started after it waits inside model_fn."""
    gate = tmp_path / "load-gate"
    gate.touch()
    server = start_server(user_model_dir, TEST_LOAD_GATE=str(gate))
    server.wait_until(200)
    gate.unlink()
    return server, gate


def test_an_engine_that_dies_again_while_restarting_is_started_again(gated_server) -> None:
    """A replacement killed during its load (memory still tight after an OOM kill) gets another start."""
    server, gate = gated_server
    first = engine_pid(server)
    second = kill_while_loading(server, first)
    third = kill_while_loading(server, second)
    assert len({first, second, third}) == 3
    ping = server.ping()
    assert ping.status_code == 503 and ping.json()["status"] == "restarting", ping.text
    gate.touch()  # the load may finish now
    server.wait_until(200)
    assert engine_pid(server) == third
    assert server.client.post("/invocations", json={"inputs": "after two restarts"}).status_code == 200
    assert [event["returncode"] for event in server.log_events("engine_exit")] == [-signal.SIGKILL] * 2


def test_an_engine_that_keeps_dying_while_restarting_is_given_up_with_the_reason(gated_server) -> None:
    """Bounded: after MAX_RESTARTS starts in a row without a ready model, /ping stays 503 `failed`."""
    server, _gate = gated_server
    pid = engine_pid(server)
    for _ in range(MAX_RESTARTS):
        pid = kill_while_loading(server, pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: server.ping().json()["status"] == "failed", timeout=30, what="/ping to say failed")
    ping = server.ping()
    assert ping.status_code == 503, ping.text
    assert f"{MAX_RESTARTS} restarts in a row" in ping.json()["error"] and "SIGKILL" in ping.json()["error"]
    time.sleep(RESTART_BACKOFF_S * 2**MAX_RESTARTS)  # longer than the next pause would have been
    assert len(started_engines(server)) == 1 + MAX_RESTARTS, "no engine is started after giving up"
    assert server.proc.poll() is None  # the front end stays up: SageMaker's health check decides


def test_the_engine_runs_with_the_front_ends_environment(tiny_model_dir: Path, start_server) -> None:
    """What an operator sets on the model (OMP_WAIT_POLICY, HF_HOME, ...) reaches the process running torch."""
    server: ServerProcess = start_server(tiny_model_dir, OMP_WAIT_POLICY="ACTIVE", MODEL_SERVER_TORCH_THREADS="1")
    server.wait_until(200)
    environ = Path(f"/proc/{engine_pid(server)}/environ").read_bytes().split(b"\0")
    assert b"OMP_WAIT_POLICY=ACTIVE" in environ


def test_sigterm_stops_the_engine_after_the_front_end_and_exits_0(crash_server: ServerProcess) -> None:
    engine = engine_pid(crash_server)
    crash_server.proc.send_signal(signal.SIGTERM)
    assert crash_server.proc.wait(timeout=30) == 0
    wait_for(lambda: not alive(engine), timeout=5, what="the engine to exit")


def test_engine_ignores_sigterm_and_sigint_sent_to_it(crash_server: ServerProcess) -> None:
    """Ctrl-C in `make serve` signals the whole group; the front end decides when the engine stops."""
    engine = engine_pid(crash_server)
    os.kill(engine, signal.SIGINT)
    os.kill(engine, signal.SIGTERM)
    time.sleep(0.5)
    assert alive(engine)
    assert crash_server.client.post("/invocations", json={"inputs": "still here"}).status_code == 200


def test_engine_ends_when_the_front_end_is_killed(crash_server: ServerProcess) -> None:
    """No orphaned engine holding a GPU: its socket closes with the front end."""
    engine = engine_pid(crash_server)
    crash_server.proc.kill()
    crash_server.proc.wait(10)
    wait_for(lambda: not alive(engine), timeout=30, what="the orphaned engine to exit")


def test_engine_uses_torch_default_threads(server: ServerProcess) -> None:
    """Nothing but inference runs in the engine: every core torch would use, not CPUs - 1."""
    # torch's default as a fresh process sees it (this one may have set its own).
    fresh = run_captured(
        [sys.executable, "-c", "import torch; print(torch.get_num_threads())"], timeout=120, check=True
    )
    (ready,) = server.log_events("engine_ready")
    assert ready["torch_threads"] == int(fresh.stdout)


def test_user_code_runs_in_the_engine_process(tiny_model_dir: Path, start_server, tmp_path: Path) -> None:
    model_dir = tmp_path / "model"
    model_dir.mkdir()
    for item in tiny_model_dir.iterdir():
        (model_dir / item.name).symlink_to(item)
    (model_dir / "code").mkdir()
    (model_dir / "code" / "inference.py").write_text(
        "import os\n"
        "def model_fn(model_dir):\n    return {'loaded_in': os.getpid()}\n"
        "def predict_fn(data, model):\n    return {'loaded_in': model['loaded_in'], 'ran_in': os.getpid()}\n"
    )
    server = start_server(model_dir)
    server.wait_until(200)
    body = server.client.post("/invocations", json={"inputs": "x"}).json()
    assert body["loaded_in"] == body["ran_in"] == engine_pid(server) != server.proc.pid


# -- the transport -----------------------------------------------------------------------------
def test_describe_exit() -> None:
    assert describe_exit(-signal.SIGKILL).startswith("killed by SIGKILL (the out-of-memory killer")
    assert describe_exit(-signal.SIGSEGV) == "killed by SIGSEGV"
    assert describe_exit(3) == "exited with status 3"


def test_large_buffers_travel_out_of_band_and_arrive_intact() -> None:
    body = os.urandom(3 * 1024 * 1024)
    array = np.arange(100_000, dtype=np.float32)
    message = {"id": 1, "body": transport.out_of_band(body), "array": array, "text": "héllo"}
    parts = transport.encode(message)
    # The pickle itself stays small: the 3 MB body and the array are separate parts, not copied into it.
    assert len(parts) == 4 and len(parts[1]) < 1024
    assert sum(len(memoryview(p).cast("B")) for p in parts) > len(body) + array.nbytes

    async def round_trip() -> object:
        reader = asyncio.StreamReader()
        for part in parts:
            reader.feed_data(bytes(memoryview(part).cast("B")))
        reader.feed_eof()
        first = await transport.receive(reader)
        with pytest.raises(asyncio.IncompleteReadError):
            await transport.receive(reader)  # what the front end sees when an engine dies
        return first

    received = asyncio.run(round_trip())
    assert isinstance(received, dict)
    assert transport.as_bytes(received["body"]) == body
    assert np.array_equal(received["array"], array) and received["text"] == "héllo"


def test_small_messages_are_one_write() -> None:
    parts = transport.encode({"id": 7, "inputs": ["a short text"], "parameters": {}})
    assert len(parts) == 1
    decoded = pickle.loads(bytes(parts[0])[8:])  # noqa: S301 - our own encoder's bytes
    assert decoded == {"id": 7, "inputs": ["a short text"], "parameters": {}}


def test_ping_is_fast_while_the_engine_restarts(crash_server: ServerProcess) -> None:
    os.kill(engine_pid(crash_server), signal.SIGKILL)
    wait_for(lambda: crash_server.ping().status_code == 503, timeout=10, what="/ping 503")
    slowest, healthy = 0.0, False
    deadline = time.monotonic() + 90
    with httpx.Client(base_url=crash_server.url, timeout=5) as client:
        while not healthy and time.monotonic() < deadline:
            started = time.perf_counter()
            healthy = client.get("/ping").status_code == 200
            slowest = max(slowest, time.perf_counter() - started)
            time.sleep(0.02)
    assert healthy, "the engine never became ready again"
    assert slowest < 0.25, f"slowest /ping while the engine restarted: {slowest * 1000:.0f} ms"


def test_engine_memory_returns_near_idle_after_large_bodies(tiny_model_dir: Path, start_server) -> None:
    """The engine holds every decoded body too: its RSS comes back as the front end's does (test_memory.py)."""
    server: ServerProcess = start_server(tiny_model_dir, MODEL_SERVER_TORCH_THREADS="1")
    server.wait_until(200)
    assert server.client.post("/invocations", content=b"warm up", headers={"Content-Type": "text/plain"}).is_success
    engine = engine_pid(server)
    idle = rss(engine)
    words = b"the engine keeps only what it needs of a long text "
    big = (words * (50 * 2**20 // len(words) + 1))[: 50 * 2**20]
    response = server.client.post(
        "/invocations", content=big, headers={"Content-Type": "text/plain"}, timeout=httpx.Timeout(120)
    )
    assert response.status_code == 200, response.text
    with ThreadPoolExecutor(max_workers=4) as pool:
        responses = list(
            pool.map(
                lambda _: server.client.post(
                    "/invocations",
                    content=big[: 10 * 2**20],
                    headers={"Content-Type": "text/plain"},
                    timeout=httpx.Timeout(120),
                ),
                range(4),
            )
        )
    assert [r.status_code for r in responses] == [200] * 4
    # Less than the largest body stays: the engine keeps no body (measured: about 30 MiB of caches
    # and allocator slack stay after the first large request, out of 90 MiB of bodies).
    deadline = time.monotonic() + 10
    while rss(engine) - idle >= 50 * 2**20 and time.monotonic() < deadline:
        time.sleep(0.2)
    after = rss(engine)
    assert after - idle < 50 * 2**20, (
        f"engine RSS {after / 2**20:.0f} MiB after large bodies, idle {idle / 2**20:.0f} MiB"
    )
    assert engine_pid(server) == engine  # the same engine: nothing was restarted to get there


def rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


def test_sigterm_while_the_model_loads_stops_at_once(user_model_dir: Path, start_server, tmp_path: Path) -> None:
    """A stop during a long load (a hub download, a slow model_fn) does not wait for the load."""
    server = start_server(user_model_dir, TEST_LOAD_GATE=str(tmp_path / "never"))
    wait_for(lambda: bool(server.log_events("engine_start")), timeout=30, what="the engine to start")
    server.wait_until(503)
    engine = int(server.log_events("engine_start")[-1]["pid"])
    time.sleep(1.0)  # the engine is inside model_fn, waiting for a gate that never opens
    started = time.monotonic()
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(timeout=30) == 0
    wait_for(lambda: not alive(engine), timeout=10, what="the engine to exit")
    assert time.monotonic() - started < 10, "the stop waited for the load"
    assert not server.log_events("engine_kill"), "the engine had to be killed: it waited for the load"


def test_engine_process_interface_as_a_front_end_uses_it(tiny_model_dir: Path) -> None:
    """What engine.py promises a front end (the multi-model front end owns several of these)."""
    from model_server.engine_process import EngineProcess
    from model_server.errors import ServerError
    from model_server.settings import Settings

    async def scenario() -> None:
        engine = EngineProcess(Settings(_env_file=None, model_dir=tiny_model_dir, warmup=False), name="tiny")
        await engine.start()
        assert engine.status == "loading"
        try:
            assert await engine.wait_ready(120), engine.error
            pid = engine.pid
            assert pid is not None and pid != os.getpid() and alive(pid)
            memory = engine.memory_bytes()
            assert memory is not None and memory > 50 * 2**20  # torch and the model live there
            assert engine.task == "text2text-generation" and engine.user_code is False
            outputs, info = await engine.infer(["one", "two"], {"max_new_tokens": 2})
            assert len(outputs) == 2 and (info.size, info.requests) == (2, 1)
            with pytest.raises(ServerError) as bad:
                await engine.infer(["x"], {"no_such_option": 1})
            assert bad.value.status == 400 and "no_such_option" in bad.value.message
            assert await engine.echo({"inputs": ["é"]}) == {"inputs": ["é"]}
        finally:
            await engine.stop(10)
        assert engine.status == "stopped" and engine.pid is None
        wait_for(lambda: not alive(pid), timeout=10, what="the engine to exit")
        with pytest.raises(ServerError) as stopped:
            await engine.infer(["late"], {})
        assert stopped.value.status == 503

    asyncio.run(scenario())
