"""Start and stop the whole local pipeline in the right order.

    moto (S3/SNS/SQS)  <--  API adapter + real Lambda  -->  async runtime stand-in  -->  model server
                                                               (queue, S3 in/out, SNS)

Start: model server first (it takes longest to load, and requests wait for it
anyway), then moto and the resources, the runtime, the API processes. Stop in
reverse: no new requests, drain the runtime, SIGTERM the model server, moto last.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from api_handler import contract
from local_stack.async_runtime import AsyncInferenceRuntime, Clock
from local_stack.aws import FAKE_CREDENTIALS_ENV, LocalResources, MotoService, aws_client, create_resources
from local_stack.callbacks import (
    LocalCallbacks,
    api_callback_environment,
    create_callback_resources,
    notifier_environment,
    start_notifier,
)
from local_stack.container import REPO_ROOT, ModelContainer
from local_stack.multi_model import MultiModelRuntime
from local_stack.processes import free_port, spawn, terminate
from local_stack.realtime_runtime import MAX_PAYLOAD_BYTES, SERVERLESS_MAX_PAYLOAD_BYTES, RealtimeRuntime

ENDPOINT_NAME = "local-async-endpoint"


@dataclass
class PipelineConfig:
    """Everything `make local` and the tests may choose. Ports 0 mean "any free port"."""

    model_dir: Path | None = None
    hf_model_id: str | None = None
    hf_task: str | None = None
    host: str = "127.0.0.1"
    api_port: int = 3000
    aws_port: int = 0
    runtime_port: int = 0
    container_port: int = 0
    max_concurrent_invocations: int = 4
    # app_config's hosting.mode: async (queue stand-in, 202) or realtime / serverless
    # (InvokeEndpoint stand-in: the handler calls the model server during the request, 200);
    # multimodel: model_dir holds one model per TargetModel (local_stack/multi_model.py).
    hosting_mode: str = "async"
    default_invocation_timeout_seconds: int = 900
    default_request_ttl_seconds: int = 21600
    # Concurrent Lambda execution environments (processes) behind the API.
    lambda_environments: int = 2
    # Retry-After on InProgress answers: seconds matter locally, not minutes.
    status_retry_after_seconds: int = 1
    container_env: dict[str, str] = field(default_factory=dict)
    # Extra / overriding environment of the API Lambda (e.g. INLINE_RESULT_MAX_BYTES).
    lambda_env: dict[str, str] = field(default_factory=dict)
    # Where the model server and Lambda processes write; None = inherit (the terminal).
    log_file: IO[Any] | None = None
    lambda_handler: str = contract.API_HANDLER


class RuntimeStandIn(Protocol):
    """What the pipeline needs of a SageMaker runtime stand-in, whatever the hosting mode."""

    @property
    def endpoint_url(self) -> str: ...

    @property
    def endpoint_name(self) -> str: ...

    def start(self) -> str: ...

    def stop(self) -> None: ...


class LocalPipeline:
    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.clock = Clock()
        self.moto = MotoService(host=config.host, port=config.aws_port)
        self.container = ModelContainer(
            port=config.container_port or free_port(config.host),
            model_dir=config.model_dir,
            hf_model_id=config.hf_model_id,
            hf_task=config.hf_task,
            # multimodel: SageMaker sets SAGEMAKER_MULTI_MODEL=true (the server starts with no model).
            extra_env={
                **config.container_env,
                **({"SAGEMAKER_MULTI_MODEL": "true"} if config.hosting_mode == "multimodel" else {}),
            },
            log_file=config.log_file,
            host=config.host,
        )
        self.aws_endpoint_url: str | None = None
        self.resources: LocalResources | None = None
        self.runtime: RuntimeStandIn | None = None
        self.api_processes: list[subprocess.Popen[bytes]] = []
        self.api_url: str | None = None
        # Completion callbacks (async hosting): queue, secret and the notifier process.
        self.callbacks: LocalCallbacks | None = None
        self.notifier_process: subprocess.Popen[bytes] | None = None

    # ------------------------------------------------------------------ lifecycle
    def start(self, *, wait_for_model: bool = False, model_timeout: float = 300.0) -> LocalPipeline:
        _bypass_proxies_for_loopback()
        try:
            self.container.start()
            self.aws_endpoint_url = self.moto.start()
            self.resources = create_resources(self.aws_endpoint_url)
            if self.config.hosting_mode == "async":  # as in the stack: callbacks need SageMaker's topics
                self.callbacks = create_callback_resources(self.aws_endpoint_url, self.resources)
            if self.config.hosting_mode == "multimodel":
                # model_dir is the endpoint's "S3 prefix": one model (folder or .tar.gz) per TargetModel.
                if self.config.model_dir is None:
                    raise ValueError("hosting mode multimodel needs model_dir: the directory of models")
                self.runtime = MultiModelRuntime(
                    models_dir=self.config.model_dir,
                    endpoint_name=ENDPOINT_NAME,
                    container_url=self.container.url,
                    host=self.config.host,
                    port=self.config.runtime_port,
                )
            elif self.config.hosting_mode != "async":
                self.runtime = RealtimeRuntime(
                    endpoint_name=ENDPOINT_NAME,
                    container_url=self.container.url,
                    host=self.config.host,
                    port=self.config.runtime_port,
                    max_payload_bytes=SERVERLESS_MAX_PAYLOAD_BYTES
                    if self.config.hosting_mode == "serverless"
                    else MAX_PAYLOAD_BYTES,
                )
            else:
                self.runtime = AsyncInferenceRuntime(
                    endpoint_name=ENDPOINT_NAME,
                    container_url=self.container.url,
                    s3=aws_client("s3", self.aws_endpoint_url),
                    sns=aws_client("sns", self.aws_endpoint_url),
                    s3_output_path=self.resources.s3_output_path,
                    s3_failure_path=self.resources.s3_failure_path,
                    success_topic_arn=self.resources.success_topic_arn,
                    error_topic_arn=self.resources.error_topic_arn,
                    max_concurrent_invocations=self.config.max_concurrent_invocations,
                    host=self.config.host,
                    port=self.config.runtime_port,
                    clock=self.clock,
                )
            self.runtime.start()
            self._start_api()
            if self.callbacks is not None:
                self._start_notifier()
            if wait_for_model:
                self.container.wait_healthy(timeout=model_timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def lambda_environment(self) -> dict[str, str]:
        """The API Lambda's environment variables, as the stack sets them (contract.handler_environment),
        pointed at the stand-ins. The limits are the handler's defaults; `PipelineConfig.lambda_env`
        overrides any of them."""
        assert self.resources is not None and self.runtime is not None and self.aws_endpoint_url is not None
        env = contract.Env
        return {
            **contract.handler_environment(
                input_bucket=self.resources.input_bucket,
                output_bucket=self.resources.output_bucket,
                failure_bucket=self.resources.failure_bucket,
                endpoint_name=ENDPOINT_NAME,
                hosting_mode=self.config.hosting_mode,
                default_invocation_timeout_seconds=self.config.default_invocation_timeout_seconds,
                default_request_ttl_seconds=self.config.default_request_ttl_seconds,
                status_retry_after_seconds=self.config.status_retry_after_seconds,
                service_name="async-inference-api",
                # Not the stack's namespace: local runs never mix with deployed metrics.
                metrics_namespace="AsyncInferenceLocal",
            ),
            # Local only: the stand-ins instead of AWS.
            env.SAGEMAKER_RUNTIME_ENDPOINT_URL: self.runtime.endpoint_url,
            env.S3_ENDPOINT_URL: self.aws_endpoint_url,
            # No X-Ray daemon here: tracing off, so nothing tries to send segments.
            contract.Env.POWERTOOLS_TRACE_DISABLED: "true",
            **(api_callback_environment() if self.callbacks is not None else {}),
        }

    def _start_api(self) -> None:
        port = self.config.api_port or free_port(self.config.host)
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(FAKE_CREDENTIALS_ENV)  # never a real credential in the local Lambda
        env.update(self.lambda_environment())
        env.update(self.config.lambda_env)
        reuse = self.config.lambda_environments > 1
        for _ in range(self.config.lambda_environments):
            argv = [
                sys.executable,
                "-m",
                "local_stack.api_gateway",
                "--host",
                self.config.host,
                "--port",
                str(port),
                "--handler",
                self.config.lambda_handler,
            ]
            if reuse:
                argv.append("--reuse-port")
            process = spawn(argv, env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=self.config.log_file)
            self.api_processes.append(process)
        for process in self.api_processes:
            ready = threading.Event()
            # Powertools logs to stdout: the pump keeps the pipe drained for the process's lifetime.
            threading.Thread(target=_pump, args=(process, self.config.log_file, ready), daemon=True).start()
            _wait_ready(process, ready, timeout=60)
        self.api_url = f"http://{self.config.host}:{port}"

    def _start_notifier(self) -> None:
        assert self.callbacks is not None and self.aws_endpoint_url is not None
        environment = notifier_environment(
            self.callbacks,
            aws_endpoint_url=self.aws_endpoint_url,
            api_url=self.api_url,
            api_environment=self.lambda_environment(),
        )
        self.notifier_process = start_notifier(self.callbacks, environment, log_file=self.config.log_file)

    def stop(self) -> None:
        for process in self.api_processes:  # all at once, then wait for each
            if process.poll() is None:
                process.terminate()
        for process in self.api_processes:
            terminate(process, grace_seconds=5)
        self.api_processes.clear()
        if self.runtime is not None:
            self.runtime.stop()
            self.runtime = None
        if self.notifier_process is not None:
            terminate(self.notifier_process, grace_seconds=5)
            self.notifier_process = None
        self.container.stop()
        self.moto.stop()

    def __enter__(self) -> LocalPipeline:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _bypass_proxies_for_loopback() -> None:
    """Keep 127.0.0.1 traffic direct even where HTTP(S)_PROXY is set (boto3 honours NO_PROXY).

    Set in this process's environment, so the children started afterwards inherit it.
    """
    for name in ("NO_PROXY", "no_proxy"):
        entries = [e for e in os.environ.get(name, "").split(",") if e.strip()]
        for host in ("127.0.0.1", "localhost"):
            if host not in entries:
                entries.append(host)
        os.environ[name] = ",".join(entries)


def _pump(process: subprocess.Popen[bytes], sink: IO[Any] | None, ready: threading.Event) -> None:
    """Forward a child's stdout to ``sink`` (None: our stdout), noticing its 'ready <port>' line."""
    assert process.stdout is not None
    for line in iter(process.stdout.readline, b""):
        if not ready.is_set() and line.startswith(b"ready "):
            ready.set()
            continue
        try:
            if sink is None:
                sys.stdout.buffer.write(line)
                sys.stdout.flush()
            elif "b" in getattr(sink, "mode", ""):
                sink.write(line)
                sink.flush()
            else:
                sink.write(line.decode(errors="replace"))
                sink.flush()
        except (OSError, ValueError):  # the sink was closed during shutdown
            return


def _wait_ready(process: subprocess.Popen[bytes], ready: threading.Event, *, timeout: float) -> None:
    """Until the API process has imported its handler and opened its port."""
    deadline = time.monotonic() + timeout
    while not ready.wait(0.1):
        if process.poll() is not None:
            raise RuntimeError(f"the local API process exited with status {process.returncode} during start")
        if time.monotonic() > deadline:
            raise TimeoutError(f"the local API process was not ready within {timeout:.0f} s")
