"""POST /invocations in hosting modes realtime and serverless: the handler runs the model with
InvokeEndpoint and answers 200 with the result, through botocore's real client, against the
local InvokeEndpoint stand-in (local_stack/realtime_runtime.py) in front of a small container.

Same auth, caller scoping, idempotency and error shapes as async mode (tests/api/test_handler.py).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, ClassVar

import botocore.session
import pytest

from api_handler.async_api import realtime
from local_stack.realtime_runtime import RealtimeRuntime
from tests.api.conftest import (
    ENDPOINT_NAME,
    OTHER_IDENTITY,
    OUTPUT_BUCKET,
    Api,
    configured_api,
)
from tests.http_stub import StubHandler, serving


class _Container(StubHandler):
    """A model container: echoes JSON with the headers it saw; {"fail": true} is a 400."""

    seen: ClassVar[list[dict[str, str]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = {k.lower(): v for k, v in self.headers.items()}
        type(self).seen.append(headers)
        document = json.loads(body)
        if document.get("fail"):
            self.send_json(400, {"error": "inputs is required"})
            return
        self.send_json(
            200,
            {
                "echo": document,
                "accept": headers.get("accept"),
                "attributes": headers.get("x-amzn-sagemaker-custom-attributes"),
                "pad": "x" * int(document.get("pad", 0)),
            },
        )


@pytest.fixture(scope="module")
def runtime() -> Iterator[RealtimeRuntime]:
    with serving(_Container) as container_url:
        stand_in = RealtimeRuntime(endpoint_name=ENDPOINT_NAME, container_url=container_url)
        stand_in.start()
        yield stand_in
        stand_in.stop()


@pytest.fixture(params=["realtime", "serverless"])
def sync_api(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, moto_url: str, s3: Any, runtime: RealtimeRuntime
) -> Iterator[Api]:
    yield from configured_api(
        monkeypatch, moto_url, s3, runtime_url=runtime.url, stub=None, extra={"HOSTING_MODE": request.param}
    )


def test_invoke_answers_200_with_the_models_result(sync_api: Api) -> None:
    answer = sync_api.submit(
        '{"inputs": "hello"}', accept="application/json", X_Amzn_SageMaker_Custom_Attributes="trace=1"
    )
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "Completed"
    assert answer.body["output"]["echo"] == {"inputs": "hello"}
    # The container saw the caller's Accept and custom attributes, as InvokeEndpoint forwards them.
    assert answer.body["output"]["accept"] == "application/json"
    assert answer.body["output"]["attributes"] == "trace=1"
    assert answer.headers["Location"].endswith(f"/invocations/{answer.body['inferenceId']}")
    # The same result is there for GET, and only for its caller.
    again = sync_api.status(answer.body["inferenceId"])
    assert again.status == 200 and again.body["output"] == answer.body["output"]
    assert sync_api.status(answer.body["inferenceId"], identity=OTHER_IDENTITY).status == 404


def test_large_result_comes_through_the_result_location(sync_api: Api) -> None:
    answer = sync_api.submit('{"inputs": "x", "pad": 5000}')
    assert answer.status == 200
    assert "output" not in answer.body and answer.body["outputUrl"].startswith("http")
    assert answer.body["outputBytes"] > 5000
    key = realtime.output_key(answer.body["inferenceId"])
    assert sync_api.s3.head_object(Bucket=OUTPUT_BUCKET, Key=key)["ContentLength"] == answer.body["outputBytes"]


def test_model_error_is_a_failed_inference_with_the_containers_message(sync_api: Api) -> None:
    answer = sync_api.submit('{"fail": true}')
    assert answer.status == 200, answer.body
    assert answer.body["status"] == "Failed"
    assert "400" in answer.body["failureReason"] and "inputs is required" in answer.body["failureReason"]


def test_idempotent_replay_does_not_run_the_model_twice(sync_api: Api, runtime: RealtimeRuntime) -> None:
    first = sync_api.submit('{"inputs": "once"}', Idempotency_Key="key-1")
    count = runtime.invocations
    second = sync_api.submit('{"inputs": "once"}', Idempotency_Key="key-1")
    assert (first.status, second.status) == (200, 200)
    assert second.body["inferenceId"] == first.body["inferenceId"] and second.body["output"] == first.body["output"]
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert runtime.invocations == count


def test_bad_input_is_refused_in_the_same_shape_as_async(sync_api: Api) -> None:
    answer = sync_api.submit("{}", content_type="application/x-unknown")
    assert answer.status == 415 and set(answer.body) == {"error", "message", "requestId"}


def test_unknown_endpoint_is_sagemakers_validation_error(sync_api: Api) -> None:
    sync_api.setenv("ENDPOINT_NAME", "no-such-endpoint")
    answer = sync_api.submit('{"inputs": "x"}')
    assert answer.status == 400 and answer.body["error"] == "ValidationError"
    assert "no-such-endpoint" in answer.body["message"]


def test_invoke_parameters_fit_botocores_model() -> None:
    """What the handler sends is a valid InvokeEndpoint request (required members, known names)."""
    from api_handler.async_api.logic import SubmitRequest
    from api_handler.async_api.settings import Settings

    settings = Settings(
        input_bucket="in-b", output_bucket="out-b", failure_bucket="fail-b", endpoint_name="ep", hosting_mode="realtime"
    )
    request = SubmitRequest(
        content_type="application/json",
        accept="application/json",
        idempotency_key=None,
        invocation_timeout_seconds=60,
        request_ttl_seconds=60,
        payload=b"{}",
        upload_id=None,
        custom_attributes="a=b",
    )
    params = realtime.invoke_params(settings, "r" + "0" * 32, "application/json", b"{}", request)
    shape = (
        botocore.session.get_session()
        .get_service_model("sagemaker-runtime")
        .operation_model("InvokeEndpoint")
        .input_shape
    )
    assert set(shape.required_members) <= set(params) and set(params) <= set(shape.members)


def test_serverless_takes_at_most_4_mb_and_realtime_6(sync_api: Api) -> None:
    # Inline bodies up to 4.5 MB reach the handler (Lambda's event limit); 4.3 MB is over serverless's 4 MiB.
    sync_api.setenv("MAX_REQUEST_BYTES", "4500000")
    body = json.dumps({"inputs": "x" * 4_300_000})
    answer = sync_api.submit(body)
    mode = sync_api.module.service().settings.hosting_mode
    if mode == "serverless":
        assert answer.status == 413 and "serverless endpoint takes at most 4194304" in answer.body["message"], (
            answer.body
        )
    else:
        assert answer.status == 200, answer.body
