"""`make local` as a user runs it: starts, prints the API URL, serves; Ctrl-C, SIGINT or
SIGTERM to make stops it and every process it started; a model that cannot load or a
taken port ends it at once with an error that names the cause."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import time
from pathlib import Path

import pytest

from inference_client import InferenceClient
from local_stack.container import OMP_WAIT_POLICY, ModelContainer
from local_stack.processes import free_port
from tests.processes import run_captured

from .conftest import LOCAL_STACK, LocalRun, local_stack_env, local_stack_run

# `make local` without its install prerequisites (-o: "treat as old, do not remake"): `make
# test` installed the venv; the default model's package is not needed with MODEL_DIR.
MAKE_LOCAL = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.local-model", "local"]

pytestmark = pytest.mark.slow


def _descendants(pid: int) -> set[int]:
    """Every live process below ``pid`` (from /proc; children run in their own sessions)."""
    parents: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if fields[0] != "Z":
                    parents[int(entry.name)] = int(fields[1])
            except (OSError, IndexError, ValueError):
                continue
    found, frontier = set(), {pid}
    while frontier:
        frontier = {child for child, parent in parents.items() if parent in frontier} - found
        found |= frontier
    return found


def _command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:  # gone meanwhile
        return ""


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_local_pipeline_serves_and_ctrl_c_stops_everything(tiny_model_dir: Path, tmp_path: Path) -> None:
    api_port = free_port()
    settings = {"LOCAL_API_PORT": str(api_port), "MODEL_DIR": str(tiny_model_dir)}
    with local_stack_run(settings, tmp_path / "children.log") as run:
        assert run.url == f"http://127.0.0.1:{api_port}", run.output

        client = InferenceClient(run.url, sleep=time.sleep)
        accepted = client.submit(b"Hello from make local", "text/plain")
        document = client.wait(accepted["inferenceId"], initial_interval=0.1, max_interval=0.5, timeout=60)
        assert document["status"] == "Completed"
        assert "generated_text" in document["output"][0]  # one input: the toolkit's one-element list

        children = _descendants(run.process.pid)
        assert len(children) >= 3, children  # the model server and two Lambda environments
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=60) == 0, run.output
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "processes outlived Ctrl-C"
        assert "local pipeline: stopped" in run.output


def _local_env(model_dir: Path, tmp_path: Path, **extra: str) -> dict[str, str]:
    return local_stack_env({"MODEL_DIR": str(model_dir), **extra}, tmp_path / "children.log")


class _Run(LocalRun):
    """A `make local` process; what a failed test leaves of it is killed, down to its grandchildren."""

    def kill(self) -> None:
        """Whatever a failed test left: make and every process below it (they outlive make)."""
        left = _descendants(self.process.pid)
        self.stop()
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_model_that_cannot_load_ends_make_local_within_a_minute(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The model server stays up answering /ping 503 "failed": make local must not wait for it."""
    env = _local_env(tiny_model_dir, tmp_path, HF_TASK="bogus-task")
    started = time.monotonic()
    run = _Run(MAKE_LOCAL, env)
    children: set[int] = set()
    try:
        while run.process.poll() is None and time.monotonic() - started < 60:
            children |= _descendants(run.process.pid)
            time.sleep(0.2)
        assert run.process.poll() is not None, f"still running after 60 s:\n{run.output}"
        elapsed = time.monotonic() - started
    finally:
        run.kill()
    time.sleep(0.5)
    assert run.process.returncode != 0, run.output
    assert "could not load the model" in run.output and "'bogus-task'" in run.output, run.output
    assert f"model server log: {tmp_path / 'children.log'}" in run.output
    assert elapsed < 60
    assert len(children) >= 3, children  # the model server had started: the failure came from /ping
    assert not [pid for pid in children if _alive(pid)], "processes outlived the failed start"


@pytest.mark.parametrize("variable", ["LOCAL_API_PORT", "LOCAL_AWS_PORT", "LOCAL_CONTAINER_PORT", "LOCAL_RUNTIME_PORT"])
def test_a_taken_port_is_named_before_anything_starts(variable: str, tiny_model_dir: Path, tmp_path: Path) -> None:
    """Even a listener with SO_REUSEPORT (another `make local`'s API processes) counts as taken."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = _local_env(tiny_model_dir, tmp_path, **{variable: str(port)})
        completed = run_captured(LOCAL_STACK, env=env, timeout=60)
    assert completed.returncode == 1, completed.stdout + completed.stderr
    assert f"port {port} ({variable}) is already in use" in completed.stderr
    assert f"{variable}=" in completed.stderr.split("already in use", 1)[1]  # which setting to change
    assert "starting" not in completed.stdout  # nothing was started


def test_two_settings_on_one_port_are_refused(tiny_model_dir: Path, tmp_path: Path) -> None:
    port = free_port()
    env = _local_env(tiny_model_dir, tmp_path, LOCAL_API_PORT=str(port), LOCAL_CONTAINER_PORT=str(port))
    completed = run_captured(LOCAL_STACK, env=env, timeout=60)
    assert completed.returncode == 1
    assert f"LOCAL_CONTAINER_PORT={port} is also LOCAL_API_PORT" in completed.stderr


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
@pytest.mark.parametrize(
    ("signum", "to_group"),
    [(signal.SIGINT, False), (signal.SIGTERM, False), (signal.SIGINT, True)],
    ids=["SIGINT to make", "SIGTERM to make", "Ctrl-C (SIGINT to the terminal's group)"],
)
def test_a_signal_to_make_stops_everything(signum: int, to_group: bool, tiny_model_dir: Path, tmp_path: Path) -> None:
    """`kill -INT <make's pid>`: make does not pass SIGINT on (it expects the terminal to have sent it
    to the whole group), so make local must notice on its own; SIGTERM make forwards; Ctrl-C
    reaches make and the pipeline at once, and must still stop everything exactly once."""
    run = _Run(MAKE_LOCAL, _local_env(tiny_model_dir, tmp_path), own_group=to_group)
    try:
        assert run.ready.wait(120), run.output
        children = _descendants(run.process.pid)
        assert len(children) >= 4, children  # local_stack, the model server, two Lambda environments
        if to_group:
            os.killpg(run.process.pid, signum)
        else:
            run.process.send_signal(signum)  # to make's pid only, not its process group
        run.process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not [pid for pid in children if _alive(pid)], "processes outlived the signal to make"
        assert run.output.count("local pipeline: stopped") == 1, run.output
    finally:
        run.kill()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_sigint_to_make_while_the_pipeline_starts_still_stops_it(tiny_model_dir: Path, tmp_path: Path) -> None:
    """The signal may reach make before the pipeline's watcher runs: make has already reset its
    handler by then, and the watcher must read that as "interrupted", not as "make ignores SIGINT"."""
    run = _Run(MAKE_LOCAL, _local_env(tiny_model_dir, tmp_path))
    try:
        deadline = time.monotonic() + 30
        while not any("-m local_stack" in _command_line(pid) for pid in _descendants(run.process.pid)):
            assert time.monotonic() < deadline and run.process.poll() is None, run.output
            time.sleep(0.02)
        run.process.send_signal(signal.SIGINT)  # the pipeline has not even printed its banner yet
        started = time.monotonic()
        run.process.wait(timeout=60)
        assert time.monotonic() - started < 30, run.output
        assert "model ready" not in run.output
    finally:
        run.kill()


@pytest.mark.parametrize(("developer_set", "engine_gets"), [(None, "PASSIVE"), ("ACTIVE", "ACTIVE")])
def test_the_local_model_server_waits_passively_unless_the_developer_says_otherwise(
    developer_set: str | None, engine_gets: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """make local shares the machine's cores: OpenMP's spinning default is the image's, not this one's."""
    if developer_set is None:
        monkeypatch.delenv(OMP_WAIT_POLICY, raising=False)
    else:
        monkeypatch.setenv(OMP_WAIT_POLICY, developer_set)
    container = ModelContainer(port=free_port(), model_dir=tmp_path)
    assert container.env[OMP_WAIT_POLICY] == engine_gets
