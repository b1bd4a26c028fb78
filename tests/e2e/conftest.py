"""One local pipeline for the whole e2e package: real model server (tiny model), moto,
the SageMaker async runtime stand-in and the real API Lambda behind the local gateway.

Tests that stop the model server restart it before they return, so the next test
finds the pipeline healthy (the ``healthy_pipeline`` fixture checks).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from local_stack.aws import INPUT_PREFIX, aws_client, drain_notifications
from local_stack.pipeline import LocalPipeline, PipelineConfig

MAX_CONCURRENCY = 4  # the dev environment's MaxConcurrentInvocationsPerInstance
FINAL = ("Completed", "Failed")
INLINE_RESULT_MAX_BYTES = 4096
# Small, so a test can post a form over the upload limit (moto stores it; the submit refuses it).
MAX_UPLOAD_BYTES = 256 * 1024
# Generation that fails inside the model (an out-of-vocabulary forced token): the model
# server answers 5xx with a JSON error body; the parameters pass its validation.
MODEL_ERROR = {"inputs": "this fails inside generate", "parameters": {"forced_bos_token_id": 99999}}


@contextlib.contextmanager
def started(local: LocalPipeline, log_path: Path) -> Iterator[LocalPipeline]:
    """Start ``local`` with its model loaded, stop it afterwards; a failed start prints the log's tail."""
    try:
        local.start(wait_for_model=True, model_timeout=120)
    except BaseException:
        print(log_path.read_text()[-5000:])
        raise
    try:
        yield local
    finally:
        local.stop()


@pytest.fixture(scope="package")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devtools.tiny_model import build_tiny_seq2seq

    return build_tiny_seq2seq(tmp_path_factory.mktemp("e2e-model") / "tiny")


@pytest.fixture(scope="package")
def pipeline(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    log_path = tmp_path_factory.mktemp("e2e-logs") / "pipeline.log"
    with open(log_path, "w", buffering=1) as log_file:
        config = PipelineConfig(
            model_dir=tiny_model_dir,
            api_port=0,
            aws_port=0,
            runtime_port=0,
            container_port=0,
            max_concurrent_invocations=MAX_CONCURRENCY,
            lambda_environments=2,
            log_file=log_file,
            # One torch thread: on a 2-core machine shared with moto, two Lambda
            # processes and the test's threads, torch's spinning intra-op threads
            # made inference about 10x slower (measured with 2 threads).
            container_env={"MODEL_SERVER_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"},
            # Small, so a test can get a result too large to inline (a presigned URL instead).
            lambda_env={
                "INLINE_RESULT_MAX_BYTES": str(INLINE_RESULT_MAX_BYTES),
                "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
            },
        )
        local = LocalPipeline(config)
        with started(local, log_path):
            yield local


@pytest.fixture
def healthy_pipeline(pipeline: LocalPipeline) -> LocalPipeline:
    """The pipeline with its model server up and the runtime dispatching."""
    if not pipeline.container.running:
        pipeline.container.start()
    pipeline.container.wait_healthy(timeout=120)
    wait_for(lambda: pipeline.runtime is not None and pipeline.runtime.healthy, timeout=10, what="runtime healthy")
    return pipeline


def wait_for(predicate: Any, *, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


class Api:
    """Plain HTTP to the local API, as any client would call it."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(
            base_url=base_url, timeout=30, trust_env=False, limits=httpx.Limits(max_connections=64)
        )

    def submit(
        self,
        body: bytes | dict[str, Any],
        *,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> httpx.Response:
        payload = json.dumps(body).encode() if isinstance(body, dict) else body
        return self.http.post(
            "/invocations", content=payload, headers={"Content-Type": content_type, **(headers or {})}
        )

    def submit_ok(self, body: bytes | dict[str, Any], **kwargs: Any) -> str:
        response = self.submit(body, **kwargs)
        assert response.status_code == 202, response.text
        return str(response.json()["inferenceId"])

    def status(self, inference_id: str) -> httpx.Response:
        return self.http.get(f"/invocations/{inference_id}")

    def wait(self, inference_id: str, *, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.status(inference_id)
            assert response.status_code in (200, 202), response.text
            document = response.json()
            if document["status"] in FINAL:
                return document
            time.sleep(0.1)
        raise AssertionError(f"{inference_id} not finished after {timeout} s: {document}")


@pytest.fixture(scope="package")
def api(pipeline: LocalPipeline) -> Iterator[Api]:
    assert pipeline.api_url is not None
    client = Api(pipeline.api_url)
    yield client
    client.http.close()


class Notifications:
    """SageMaker's notifications as the observer queues received them, keyed by inferenceId."""

    def __init__(self, pipeline: LocalPipeline) -> None:
        assert pipeline.resources is not None and pipeline.aws_endpoint_url is not None
        self.endpoint = pipeline.aws_endpoint_url
        self.resources = pipeline.resources
        self.seen: dict[str, list[dict[str, Any]]] = {"success": [], "error": []}

    def collect(self) -> dict[str, list[dict[str, Any]]]:
        self.seen["success"] += drain_notifications(self.endpoint, self.resources.success_queue_url)
        self.seen["error"] += drain_notifications(self.endpoint, self.resources.error_queue_url)
        return self.seen

    def for_id(self, kind: str, inference_id: str) -> list[dict[str, Any]]:
        return [n for n in self.collect()[kind] if n.get("inferenceId") == inference_id]

    def wait_for(self, kind: str, inference_id: str, *, timeout: float = 10) -> dict[str, Any]:
        wait_for(
            lambda: bool(self.for_id(kind, inference_id)),
            timeout=timeout,
            what=f"{kind} notification for {inference_id}",
            interval=0.1,
        )
        return self.for_id(kind, inference_id)[0]


@pytest.fixture(scope="package")
def notifications(pipeline: LocalPipeline) -> Notifications:
    return Notifications(pipeline)


@pytest.fixture(scope="package")
def s3(pipeline: LocalPipeline) -> Any:
    assert pipeline.aws_endpoint_url is not None
    return aws_client("s3", pipeline.aws_endpoint_url)


def s3_uri(uri: str) -> tuple[str, str]:
    match = re.match(r"^s3://([^/]+)/(.+)$", uri)
    assert match, uri
    return match.group(1), match.group(2)


def receipt_of(s3: Any, pipeline: LocalPipeline, inference_id: str) -> dict[str, Any]:
    """The API's receipt object for an inference (what it got back from InvokeEndpointAsync)."""
    assert pipeline.resources is not None
    body = s3.get_object(Bucket=pipeline.resources.input_bucket, Key=f"{INPUT_PREFIX}{inference_id}/receipt.json")
    return json.loads(body["Body"].read())


def unique_text(prefix: str = "input") -> str:
    return f"{prefix} {uuid.uuid4().hex[:12]}"


@dataclasses.dataclass
class LocalRun:
    """A running `python -m local_stack`: its process, its output lines so far, the API URL."""

    process: subprocess.Popen[str]
    lines: list[str]
    url: str

    @property
    def output(self) -> str:
        return "".join(self.lines)


@contextlib.contextmanager
def local_stack_run(settings: dict[str, str], log_file: Path) -> Iterator[LocalRun]:
    """`python -m local_stack` (what `make local` runs) with `settings` on free ports, until its banner
    says the model is ready; killed on the way out if still running."""
    from local_stack.container import REPO_ROOT
    from local_stack.processes import free_port

    env = {
        **os.environ,
        "LOCAL_API_PORT": str(free_port()),
        "LOCAL_AWS_PORT": str(free_port()),
        "LOCAL_CONTAINER_PORT": str(free_port()),
        "LOCAL_LOG_FILE": str(log_file),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "local_stack"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    ready = threading.Event()

    def read() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if "model ready" in line:
                ready.set()

    threading.Thread(target=read, daemon=True).start()
    try:
        assert ready.wait(120), "".join(lines)
        url = re.search(r"API \(no auth\)\s+(http://127\.0\.0\.1:\d+)", "".join(lines))
        assert url, "".join(lines)
        yield LocalRun(process, lines, url.group(1))
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@contextlib.contextmanager
def make_local_process(settings: dict[str, str], log_file: Path) -> Iterator[tuple[str, str]]:
    """local_stack_run, yielding (API URL, output so far); SIGINT must then stop it with status 0."""
    with local_stack_run(settings, log_file) as run:
        yield run.url, run.output
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=60) == 0, run.output
