"""The SageMaker async runtime stand-in on its own: its wire protocol through boto3, and the
rules that need a model server whose timing the test controls (a stub on 127.0.0.1)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local_stack import aws as local_aws
from local_stack.async_runtime import AsyncInferenceRuntime
from local_stack.aws import FAKE_CREDENTIALS, REGION, aws_client
from local_stack.pipeline import ENDPOINT_NAME, LocalPipeline
from tests.http_stub import StubHandler, serving

from .conftest import Notifications, wait_for

pytestmark = pytest.mark.slow


class StubModel(StubHandler):
    """/ping answers ``ping_status``; /invocations sleeps ``{"sleep": s}`` then echoes the body."""

    ping_status = 200
    active = 0
    max_active = 0
    calls = 0
    lock = threading.Lock()
    seen_attributes: ClassVar[list[str | None]] = []  # X-Amzn-SageMaker-Custom-Attributes of each call
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        self._answer(type(self).ping_status, b"{}")

    def do_POST(self) -> None:
        cls = type(self)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with cls.lock:
            cls.calls += 1
            cls.seen_attributes.append(self.headers.get("X-Amzn-SageMaker-Custom-Attributes"))
            cls.active += 1
            cls.max_active = max(cls.max_active, cls.active)
        try:
            time.sleep(float(json.loads(body).get("sleep", 0)))
        finally:
            with cls.lock:
                cls.active -= 1
        self._answer(200, body, self.headers.get("X-Amzn-SageMaker-Custom-Attributes"))

    def _answer(self, status: int, body: bytes, attributes: str | None = None) -> None:
        with contextlib.suppress(OSError):  # the runtime gave up on this call (timeout)
            self.send_json(status, body, {"X-Seen-Custom-Attributes": attributes} if attributes else None)


@pytest.fixture
def stub_runtime(pipeline: LocalPipeline) -> Iterator[tuple[AsyncInferenceRuntime, type[StubModel]]]:
    """A second runtime on the pipeline's moto, in front of a stub model server, 2 slots."""
    model = type(
        "Stub",
        (StubModel,),
        {"ping_status": 200, "active": 0, "max_active": 0, "calls": 0, "lock": threading.Lock(), "seen_attributes": []},
    )
    resources = pipeline.resources
    assert resources is not None and pipeline.aws_endpoint_url is not None
    with serving(model) as container_url:
        runtime = AsyncInferenceRuntime(
            endpoint_name="stub-endpoint",
            container_url=container_url,
            s3=aws_client("s3", pipeline.aws_endpoint_url),
            sns=aws_client("sns", pipeline.aws_endpoint_url),
            s3_output_path=resources.s3_output_path,
            s3_failure_path=resources.s3_failure_path,
            success_topic_arn=resources.success_topic_arn,
            error_topic_arn=resources.error_topic_arn,
            max_concurrent_invocations=2,
            health_interval_s=0.1,
        )
        runtime.start()
        # Healthy first: a test that then makes /ping fail sees the runtime change its mind.
        wait_for(lambda: runtime.healthy, timeout=10, what="the stub runtime to see /ping 200")
        yield runtime, model
        runtime.stop(drain_seconds=1)


def _sagemaker(endpoint_url: str) -> Any:
    """The same client the API Lambda uses, pointed at the stand-in."""
    return boto3.client(
        "sagemaker-runtime",
        endpoint_url=endpoint_url,
        region_name=REGION,
        config=Config(retries={"max_attempts": 1}),
        **FAKE_CREDENTIALS,
    )


def _put_input(pipeline: LocalPipeline, document: dict[str, Any]) -> str:
    assert pipeline.resources is not None and pipeline.aws_endpoint_url is not None
    key = f"{local_aws.INPUT_PREFIX}runtime-test/{uuid.uuid4().hex}"
    aws_client("s3", pipeline.aws_endpoint_url).put_object(
        Bucket=pipeline.resources.input_bucket, Key=key, Body=json.dumps(document).encode()
    )
    return f"s3://{pipeline.resources.input_bucket}/{key}"


def _read(pipeline: LocalPipeline, uri: str) -> bytes | None:
    assert pipeline.aws_endpoint_url is not None
    bucket, key = uri[len("s3://") :].split("/", 1)
    try:
        return aws_client("s3", pipeline.aws_endpoint_url).get_object(Bucket=bucket, Key=key)["Body"].read()
    except ClientError:
        return None


def test_invoke_endpoint_async_wire_protocol(pipeline: LocalPipeline, stub_runtime: Any) -> None:
    runtime, model = stub_runtime
    sagemaker = _sagemaker(runtime.endpoint_url)
    input_location = _put_input(pipeline, {"inputs": "echo me"})
    answer = sagemaker.invoke_endpoint_async(
        EndpointName="stub-endpoint",
        InputLocation=input_location,
        ContentType="application/json",
        Accept="application/json",
        CustomAttributes="trace=abc",
        InferenceId="my-id-1",
        RequestTTLSeconds=120,
        InvocationTimeoutSeconds=30,
    )
    assert answer["ResponseMetadata"]["HTTPStatusCode"] == 202
    assert answer["InferenceId"] == "my-id-1"
    resources = pipeline.resources
    assert resources is not None
    assert answer["OutputLocation"].startswith(f"s3://{resources.output_bucket}/responses/")
    assert answer["OutputLocation"].endswith(".out")
    assert answer["FailureLocation"].startswith(f"s3://{resources.failure_bucket}/failures/")
    assert answer["FailureLocation"].endswith("-error.out")
    wait_for(lambda: _read(pipeline, answer["OutputLocation"]) is not None, timeout=10, what="the output")
    assert json.loads(_read(pipeline, answer["OutputLocation"]) or b"") == {"inputs": "echo me"}
    # CustomAttributes reach the container verbatim as the header SageMaker documents.
    assert model.seen_attributes == ["trace=abc"]

    with pytest.raises(ClientError) as unknown:
        sagemaker.invoke_endpoint_async(EndpointName="no-such-endpoint", InputLocation=input_location)
    assert unknown.value.response["Error"]["Code"] == "ValidationError"
    assert "no-such-endpoint" in unknown.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as too_long:
        sagemaker.invoke_endpoint_async(
            EndpointName="stub-endpoint", InputLocation=input_location, RequestTTLSeconds=99999
        )
    assert too_long.value.response["Error"]["Code"] == "ValidationError"
    assert "RequestTTLSeconds" in too_long.value.response["Error"]["Message"]
    # CustomAttributesHeader: max 1024 (botocore checks only minimums client-side; the service refuses more).
    with pytest.raises(ClientError) as attributes:
        sagemaker.invoke_endpoint_async(
            EndpointName="stub-endpoint", InputLocation=input_location, CustomAttributes="a" * 1025
        )
    assert attributes.value.response["Error"]["Code"] == "ValidationError"
    assert "customAttributes" in attributes.value.response["Error"]["Message"]


def test_the_pipeline_runtime_serves_the_configured_endpoint_name(pipeline: LocalPipeline) -> None:
    assert pipeline.runtime is not None
    assert pipeline.lambda_environment()["ENDPOINT_NAME"] == ENDPOINT_NAME == pipeline.runtime.endpoint_name


def test_a_missing_input_is_a_request_download_failure(
    pipeline: LocalPipeline, stub_runtime: Any, notifications: Notifications
) -> None:
    runtime, _ = stub_runtime
    assert pipeline.resources is not None
    answer = _sagemaker(runtime.endpoint_url).invoke_endpoint_async(
        EndpointName="stub-endpoint", InputLocation=f"s3://{pipeline.resources.input_bucket}/requests/missing"
    )
    note = notifications.wait_for("error", answer["InferenceId"])
    assert note["failureReason"].startswith("RequestDownloadFailure")
    assert b"RequestDownloadFailure" in (_read(pipeline, answer["FailureLocation"]) or b"")


def test_invocation_timeout_fails_the_request(
    pipeline: LocalPipeline, stub_runtime: Any, notifications: Notifications
) -> None:
    runtime, _ = stub_runtime
    answer = _sagemaker(runtime.endpoint_url).invoke_endpoint_async(
        EndpointName="stub-endpoint", InputLocation=_put_input(pipeline, {"sleep": 3}), InvocationTimeoutSeconds=1
    )
    note = notifications.wait_for("error", answer["InferenceId"], timeout=10)
    assert "InvocationTimeoutSeconds=1" in note["failureReason"]
    assert runtime.stats.timed_out == 1
    assert _read(pipeline, answer["OutputLocation"]) is None


def test_concurrency_never_exceeds_max_concurrent_invocations(pipeline: LocalPipeline, stub_runtime: Any) -> None:
    runtime, model = stub_runtime
    sagemaker = _sagemaker(runtime.endpoint_url)
    answers = [
        sagemaker.invoke_endpoint_async(
            EndpointName="stub-endpoint", InputLocation=_put_input(pipeline, {"sleep": 0.3})
        )
        for _ in range(6)
    ]
    wait_for(lambda: runtime.stats.completed == 6, timeout=15, what="six invocations")
    assert model.max_active == 2  # both slots used, never a third
    assert all(_read(pipeline, a["OutputLocation"]) is not None for a in answers)


def test_requests_wait_while_ping_fails_and_run_when_it_passes(pipeline: LocalPipeline, stub_runtime: Any) -> None:
    runtime, model = stub_runtime
    model.ping_status = 503  # loading
    wait_for(lambda: not runtime.healthy, timeout=5, what="the runtime to see 503")
    answer = _sagemaker(runtime.endpoint_url).invoke_endpoint_async(
        EndpointName="stub-endpoint", InputLocation=_put_input(pipeline, {"inputs": "later"})
    )
    time.sleep(0.5)
    assert model.calls == 0 and runtime.backlog() == 1
    model.ping_status = 200
    wait_for(lambda: _read(pipeline, answer["OutputLocation"]) is not None, timeout=10, what="the output")
    assert model.calls == 1
