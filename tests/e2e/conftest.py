"""One local pipeline for the whole e2e package: real model server (tiny model), moto,
the SageMaker async runtime stand-in and the real API Lambda behind the local gateway.

Tests that stop the model server restart it before they return, so the next test
finds the pipeline healthy (the ``healthy_pipeline`` fixture checks).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from app_config import load_environment
from local_stack.aws import INPUT_PREFIX, aws_client, drain_notifications
from local_stack.pipeline import LocalPipeline, PipelineConfig
from tests.processes import wait_for

# What `make local` runs by default: the dev environment's MaxConcurrentInvocationsPerInstance.
MAX_CONCURRENCY = load_environment("dev").max_concurrent_invocations_per_instance
FINAL = ("Completed", "Failed")
INLINE_RESULT_MAX_BYTES = 4096
# Small, so a test can post a form over the upload limit (moto stores it; the submit refuses it).
MAX_UPLOAD_BYTES = 256 * 1024
# Generation that fails inside the model (an out-of-vocabulary forced token): the model
# server answers 5xx with a JSON error body; the parameters pass its validation.
MODEL_ERROR = {"inputs": "this fails inside generate", "parameters": {"forced_bos_token_id": 99999}}
# One torch thread: on a 2-core machine shared with moto, two Lambda processes and the test's
# threads, torch's spinning intra-op threads made inference about 10x slower (measured with 2 threads).
ONE_TORCH_THREAD = {"MODEL_SERVER_TORCH_THREADS": "1", "OMP_NUM_THREADS": "1"}


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


@contextlib.contextmanager
def running_pipeline(
    *, model_dir: Path, log_dir: Path, container_env: Mapping[str, str] | None = None, **settings: Any
) -> Iterator[LocalPipeline]:
    """A local pipeline serving ``model_dir`` with its model loaded, on free ports, one torch thread.

    ``settings`` are the other PipelineConfig fields a test chooses (hosting mode, Lambda
    environment...); ``container_env`` adds to the model server's environment. The pipeline's
    processes write to ``log_dir``/pipeline.log (its tail is printed on a failed start)."""
    log_path = log_dir / "pipeline.log"
    with open(log_path, "w", buffering=1) as log_file:
        config = PipelineConfig(
            model_dir=model_dir,
            # The API's port too (PipelineConfig's default is make local's 3000): tests run side by side.
            api_port=0,
            log_file=log_file,
            container_env={**ONE_TORCH_THREAD, **(container_env or {})},
            **settings,
        )
        with started(LocalPipeline(config), log_path) as local:
            yield local


@pytest.fixture(scope="package")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from devtools.tiny_model import build_tiny_seq2seq

    return build_tiny_seq2seq(tmp_path_factory.mktemp("e2e-model") / "tiny")


@pytest.fixture(scope="package")
def pipeline(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPipeline]:
    with running_pipeline(
        model_dir=tiny_model_dir,
        log_dir=tmp_path_factory.mktemp("e2e-logs"),
        max_concurrent_invocations=MAX_CONCURRENCY,
        lambda_environments=2,
        # Small, so a test can get a result too large to inline (a presigned URL instead).
        lambda_env={
            "INLINE_RESULT_MAX_BYTES": str(INLINE_RESULT_MAX_BYTES),
            "MAX_UPLOAD_BYTES": str(MAX_UPLOAD_BYTES),
        },
    ) as local:
        yield local


@pytest.fixture
def healthy_pipeline(pipeline: LocalPipeline) -> LocalPipeline:
    """The pipeline with its model server up and the runtime dispatching."""
    if not pipeline.container.running:
        pipeline.container.start()
    pipeline.container.wait_healthy(timeout=120)
    wait_for(lambda: pipeline.runtime is not None and pipeline.runtime.healthy, timeout=10, what="runtime healthy")
    return pipeline


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


def run_cli(*argv: str, stdin: bytes = b"") -> tuple[int, str, str]:
    """The client CLI in this process, as a user runs it: (exit status, stdout, stderr)."""
    from inference_client.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), stdin=io.BytesIO(stdin), stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


def invoke_wait(pipeline: LocalPipeline, *options: str) -> tuple[int, str, str]:
    """`inference-client --url <the pipeline's API> invoke --wait <options>`: submit, wait, print."""
    return run_cli("--url", str(pipeline.api_url), "invoke", "--wait", *options)


def check_cli_prints_the_models_answer(pipeline: LocalPipeline, label: str) -> str:
    """`invoke --wait --text` must print what the model server itself answers to that text (whatever
    the API does in between); returns the CLI's progress output."""
    text = unique_text(label)
    direct = pipeline.container.invoke(text.encode(), content_type="text/plain").json()
    code, out, err = invoke_wait(pipeline, "--text", text)
    assert code == 0, err
    assert json.loads(out) == direct
    return err


# What `make local` runs once its prerequisites are installed.
LOCAL_STACK = [sys.executable, "-m", "local_stack"]


def local_stack_env(settings: Mapping[str, str], log_file: Path) -> dict[str, str]:
    """The environment of a `make local` run: every port free (tests run beside each other and a
    developer's own `make local`), the children's logs in ``log_file``, one OpenMP thread (the
    machine is shared), unbuffered output (the tests read the banner as it comes); ``settings`` last."""
    from local_stack.processes import free_port

    return {
        **os.environ,
        "LOCAL_API_PORT": str(free_port()),
        "LOCAL_AWS_PORT": str(free_port()),
        "LOCAL_CONTAINER_PORT": str(free_port()),
        "LOCAL_RUNTIME_PORT": str(free_port()),
        "LOCAL_LOG_FILE": str(log_file),
        "OMP_NUM_THREADS": "1",
        "PYTHONUNBUFFERED": "1",
        **settings,
    }


# Runs the command in the same process with SIGINT at its default, as in a job a terminal starts:
# a test run started in the background of a non-interactive shell (`nohup make test &`) has SIGINT
# ignored, every child inherits that, and a make that ignores SIGINT never stops on one (the signal
# tests would hang instead of testing anything). exec keeps the pid: the test signals make itself.
SIGINT_AS_FROM_A_TERMINAL = [
    sys.executable,
    "-c",
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execvp(sys.argv[1], sys.argv[1:])",
]


class LocalRun:
    """A `make local` (or `python -m local_stack`) process with its output collected line by line;
    ``ready`` is set once the banner says the model is ready."""

    def __init__(self, argv: list[str], env: Mapping[str, str], *, own_group: bool = False) -> None:
        from local_stack.container import REPO_ROOT

        self.process = subprocess.Popen(
            [*SIGINT_AS_FROM_A_TERMINAL, *argv],
            cwd=REPO_ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=own_group,  # its own process group, as a terminal's foreground job has
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)
            if "model ready" in line:
                self.ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    @property
    def url(self) -> str:
        """The API's URL, as the banner prints it."""
        found = re.search(r"API \(no auth\)\s+(http://127\.0\.0\.1:\d+)", self.output)
        assert found, self.output
        return found.group(1)

    def stop(self) -> None:
        """Kill the process if it is still running (a failed test must not leave it behind)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=10)


@contextlib.contextmanager
def local_stack_run(settings: dict[str, str], log_file: Path) -> Iterator[LocalRun]:
    """`python -m local_stack` (what `make local` runs) with `settings` on free ports, until its banner
    says the model is ready; killed on the way out if still running."""
    run = LocalRun(LOCAL_STACK, local_stack_env(settings, log_file))
    try:
        assert run.ready.wait(120), run.output
        yield run
    finally:
        run.stop()


@contextlib.contextmanager
def make_local_process(settings: dict[str, str], log_file: Path) -> Iterator[tuple[str, str]]:
    """local_stack_run, yielding (API URL, output so far); SIGINT must then stop it with status 0."""
    with local_stack_run(settings, log_file) as run:
        yield run.url, run.output
        run.process.send_signal(signal.SIGINT)
        assert run.process.wait(timeout=60) == 0, run.output
