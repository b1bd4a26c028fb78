"""Real server processes on 127.0.0.1, sharing one tiny model built offline.

Each server is a separate ``python -m model_server serve`` process, exactly as
the image runs it. Start-up (importing torch) costs a few seconds, so the
model is built once per session and each server configuration is started once
and shared by every test that only reads from it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from devtools.tiny_model import build_tiny_seq2seq
from tests.processes import wait_for

ROOT = Path(__file__).resolve().parents[2]
CONTAINER = ROOT / "container"
USER_CODE = Path(__file__).parent / "user_code" / "inference.py"

STARTUP_TIMEOUT_S = 90


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One model server subprocess and its log."""

    def __init__(self, model_dir: Path, workdir: Path, **env: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = workdir / f"server-{self.port}.log"
        full_env = {
            **os.environ,
            "MODEL_DIR": str(model_dir),
            "SAGEMAKER_BIND_TO_PORT": str(self.port),
            "MODEL_SERVER_HOST": "127.0.0.1",
            # Offline: nothing may try a model hub.
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            **env,
        }
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "model_server", "serve"], env=full_env, stdout=self._log, stderr=subprocess.STDOUT
        )
        self.client = httpx.Client(base_url=self.url, timeout=60)

    def ping(self) -> httpx.Response:
        return self.client.get("/ping")

    def is_listening(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def wait_until(self, status: int, timeout: float = STARTUP_TIMEOUT_S) -> None:
        def reached() -> bool:
            if self.proc.poll() is not None:
                raise AssertionError(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                return self.ping().status_code == status
            except httpx.TransportError:
                return False

        wait_for(reached, timeout=timeout, what=f"/ping {status}")

    def log_text(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def log_events(self, event: str) -> list[dict]:
        events = []
        for line in self.log_text().splitlines():
            if line.startswith("{"):
                record = json.loads(line)
                if record.get("event") == event:
                    events.append(record)
        return events

    def stop(self) -> int:
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log.close()
        return self.proc.returncode


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_seq2seq(tmp_path_factory.mktemp("tiny-model"), max_new_tokens=6)


@pytest.fixture(scope="session")
def user_model_dir(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny model plus a toolkit-style code/inference.py."""
    model_dir = tmp_path_factory.mktemp("user-model")
    shutil.copytree(tiny_model_dir, model_dir, dirs_exist_ok=True)
    (model_dir / "code").mkdir()
    shutil.copy(USER_CODE, model_dir / "code" / "inference.py")
    return model_dir


@pytest.fixture(scope="session")
def start_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Callable[..., ServerProcess]]:
    started: list[ServerProcess] = []
    workdir = tmp_path_factory.mktemp("servers")

    def start(model_dir: Path, **env: str) -> ServerProcess:
        server = ServerProcess(model_dir, workdir, **env)
        started.append(server)
        return server

    yield start
    # SIGTERM them all first: each drains for a moment, and in parallel that is one moment.
    for server in started:
        if server.proc.poll() is None:
            server.proc.send_signal(signal.SIGTERM)
    for server in started:
        server.stop()


# Small limits so every error path is cheap to hit.
MAX_REQUEST_BYTES = 64 * 1024
MAX_BATCH_SIZE = 8


@pytest.fixture(scope="session")
def server(tiny_model_dir: Path, start_server: Callable[..., ServerProcess]) -> ServerProcess:
    """The default path: a seq2seq model served through generate, batched."""
    srv = start_server(
        tiny_model_dir,
        MODEL_SERVER_MAX_REQUEST_BYTES=str(MAX_REQUEST_BYTES),
        MODEL_SERVER_MAX_BATCH_SIZE=str(MAX_BATCH_SIZE),
        # DEBUG adds a "batch_start" event: tests poll it to know a batch is running.
        MODEL_SERVER_LOG_LEVEL="DEBUG",
    )
    srv.wait_until(200)
    return srv


@pytest.fixture(scope="session")
def user_server(user_model_dir: Path, start_server: Callable[..., ServerProcess], tmp_path_factory) -> ServerProcess:
    signals = tmp_path_factory.mktemp("user-signals")
    srv = start_server(user_model_dir, TEST_SIGNAL_DIR=str(signals))
    srv.wait_until(200)
    return srv
