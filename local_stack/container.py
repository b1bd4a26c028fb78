"""The real inference server (``container/model_server``) as a child process.

Run exactly as the image runs it (``python -m model_server serve``), without the
image: the ``model_server`` package (the editable install maps it to container/), the model
from ``MODEL_DIR`` or ``HF_MODEL_ID``,
the port from ``SAGEMAKER_BIND_TO_PORT``, bound to 127.0.0.1 only.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any

import httpx
from model_server import contract as container_contract

from local_stack.processes import spawn, terminate

REPO_ROOT = Path(__file__).resolve().parents[1]
# Read by the OpenMP runtime torch links (https://www.openmp.org/spec-html/5.0/openmpse55.html).
OMP_WAIT_POLICY = "OMP_WAIT_POLICY"
_DECIDED_HERE = frozenset(
    {
        container_contract.MODEL_DIR,
        container_contract.HF_MODEL_ID,
        container_contract.HF_TASK,
        container_contract.BIND_TO_PORT,
        container_contract.HOST,
    }
)


class ModelLoadFailed(RuntimeError):
    """The model server is up but could not load the model (its /ping says "failed")."""

    def __init__(self, error: str) -> None:
        self.error = error
        super().__init__(f"the model server could not load the model: {error}")


class ModelContainer:
    """Start, stop, kill and restart the model server; ask whether it is healthy."""

    def __init__(
        self,
        *,
        port: int,
        model_dir: str | os.PathLike[str] | None = None,
        hf_model_id: str | None = None,
        hf_task: str | None = None,
        extra_env: Mapping[str, str] | None = None,
        log_file: IO[Any] | None = None,
        host: str = "127.0.0.1",
    ) -> None:
        if model_dir is None and not hf_model_id:
            raise ValueError("ModelContainer needs model_dir (MODEL_DIR) or hf_model_id (HF_MODEL_ID)")
        self.host, self.port = host, port
        self.url = f"http://{host}:{port}"
        # The user's other knobs (MODEL_SERVER_TORCH_THREADS, HF_HOME, ...) pass through;
        # the ones this class decides are never inherited.
        env = {k: v for k, v in os.environ.items() if k not in _DECIDED_HERE}
        # The image keeps OpenMP's default (spin at each barrier): right on an instance of its own.
        # Here the server shares the cores with moto, the Lambda processes and the developer's own
        # work, and torch's threads spinning while one of them is preempted made inference tens of
        # times slower (docs/benchmarks.md, "OpenMP's wait policy"). A value the developer set wins.
        env.setdefault(OMP_WAIT_POLICY, "PASSIVE")
        env[container_contract.BIND_TO_PORT] = str(port)
        env[container_contract.HOST] = host  # never 0.0.0.0 on a developer's machine
        if model_dir is not None:
            env[container_contract.MODEL_DIR] = str(model_dir)
        if hf_model_id:
            env[container_contract.HF_MODEL_ID] = hf_model_id
        if hf_task:
            env[container_contract.HF_TASK] = hf_task
        env.update(extra_env or {})
        self.env = env
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        if self.running:
            return
        self.process = spawn(
            [sys.executable, "-m", "model_server", "serve"],
            env=self.env,
            cwd=REPO_ROOT,
            stdout=self.log_file,
            stderr=subprocess.STDOUT if self.log_file is not None else None,
        )

    def stop(self, *, grace_seconds: float = 30.0) -> int | None:
        """SIGTERM (the server drains in-flight requests), SIGKILL after the grace period."""
        if self.process is None:
            return None
        return terminate(self.process, grace_seconds=grace_seconds)

    def kill(self) -> None:
        """SIGKILL: an instance lost mid-request, with no chance to drain."""
        if self.running:
            assert self.process is not None
            self.process.kill()
            self.process.wait(timeout=10)

    def ping(self, timeout: float = 2.0) -> int | None:
        return self.ping_document(timeout)[0]

    def ping_document(self, timeout: float = 2.0) -> tuple[int | None, dict[str, Any]]:
        """(status code, JSON body) of GET /ping; (None, {}) while nothing answers.

        The model server answers 503 ``{"status": "loading"}`` while it loads and 503
        ``{"status": "failed", "error": "..."}`` once loading failed: it stays up, so
        only the body tells a failed load from a slow one.
        """
        try:
            response = httpx.get(f"{self.url}/ping", timeout=timeout, trust_env=False)
        except httpx.HTTPError:
            return None, {}
        try:
            body = response.json()
        except ValueError:
            body = {}
        return response.status_code, body if isinstance(body, dict) else {}

    def wait_healthy(self, *, timeout: float = 300.0) -> None:
        """Until /ping says 200. Fails early if the process exits, or /ping reports a failed load."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"the model server exited with status {self.process.returncode}; see its log")
            status, body = self.ping_document()
            if status == 200:
                return
            if body.get("status") == "failed":
                raise ModelLoadFailed(str(body.get("error") or "no error message"))
            time.sleep(0.1)
        raise TimeoutError(f"the model server at {self.url} was not healthy within {timeout:.0f} s")

    def invoke(self, body: bytes, content_type: str = "application/json", timeout: float = 60.0) -> httpx.Response:
        """POST /invocations directly, bypassing the pipeline: the reference answer for tests."""
        return httpx.post(
            f"{self.url}/invocations",
            content=body,
            headers={"Content-Type": content_type},
            timeout=timeout,
            trust_env=False,
        )
