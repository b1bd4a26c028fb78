"""The client API handler end to end: moto S3 server + SageMaker runtime stub on 127.0.0.1."""

from __future__ import annotations

import base64
import json

import httpx
import pytest

from api_handler.async_api import logic
from api_handler.async_api.callers import caller_of
from tests.api.conftest import FAILURE_BUCKET, INPUT_BUCKET, OUTPUT_BUCKET, event


def inference_id_for_key(key: str) -> str:
    """The id the default test caller's Idempotency-Key names."""
    return logic.inference_id_for_key(caller_of(event("GET", "/")), key)


def _s3_key(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _complete(api, inference_id: str, body: bytes, content_type: str = "application/json") -> None:
    """Do what SageMaker does when the model answers: write the output object."""
    bucket, key = _s3_key(api.receipt(inference_id)["outputLocation"])
    api.s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType=content_type)


def _fail(api, inference_id: str, body: bytes) -> None:
    bucket, key = _s3_key(api.receipt(inference_id)["failureLocation"])
    api.s3.put_object(Bucket=bucket, Key=key, Body=body)


# ----------------------------------------------------------------------------- submit
def test_submit_stores_input_first_then_invokes_with_every_parameter(api):
    answer = api.submit('{"inputs": "a long text"}', Accept="application/json")

    assert answer.status == 202
    inference_id = answer.body["inferenceId"]
    assert answer.body == {
        "inferenceId": inference_id,
        "status": "InProgress",
        "statusUrl": f"https://abc123.execute-api.us-east-1.amazonaws.com/v1/invocations/{inference_id}",
    }
    assert answer.headers["Location"] == answer.body["statusUrl"]

    [call] = api.stub.calls
    assert call.path == "/endpoints/test-endpoint/async-invocations"
    assert call.input_present, "the payload must be in S3 before InvokeEndpointAsync is called"
    sent = call.headers
    assert sent["x-amzn-sagemaker-inference-id"] == inference_id
    assert sent["x-amzn-sagemaker-content-type"] == "application/json"
    assert sent["x-amzn-sagemaker-accept"] == "application/json"
    assert sent["x-amzn-sagemaker-requestttlseconds"] == "3600"  # DEFAULT_REQUEST_TTL_SECONDS
    assert sent["x-amzn-sagemaker-invocationtimeoutseconds"] == "600"  # DEFAULT_INVOCATION_TIMEOUT_SECONDS

    bucket, key = _s3_key(sent["x-amzn-sagemaker-inputlocation"])
    assert bucket == INPUT_BUCKET and key.startswith(f"requests/{inference_id}/")
    stored = api.s3.get_object(Bucket=bucket, Key=key)
    assert stored["Body"].read() == b'{"inputs": "a long text"}'
    assert stored["ContentType"] == "application/json"

    receipt = api.receipt(inference_id)
    assert receipt["outputLocation"].startswith(f"s3://{OUTPUT_BUCKET}/responses/")
    assert receipt["failureLocation"].startswith(f"s3://{FAILURE_BUCKET}/failures/")


def test_binary_payload_passes_through_byte_for_byte(api):
    payload = bytes(range(256)) * 4
    answer = api.submit(payload, content_type="application/octet-stream")

    assert answer.status == 202
    [call] = api.stub.calls
    assert call.headers["x-amzn-sagemaker-content-type"] == "application/octet-stream"
    assert "x-amzn-sagemaker-accept" not in call.headers  # no preference -> let the model choose
    bucket, key = _s3_key(call.headers["x-amzn-sagemaker-inputlocation"])
    assert api.s3.get_object(Bucket=bucket, Key=key)["Body"].read() == payload


def test_text_payload_and_per_request_overrides(api):
    answer = api.submit(
        "Summarize me.",
        content_type="text/plain; charset=utf-8",
        X_Invocation_Timeout_Seconds="3600",
        X_Request_TTL_Seconds="60",
    )
    assert answer.status == 202
    sent = api.stub.calls[0].headers
    assert sent["x-amzn-sagemaker-content-type"] == "text/plain; charset=utf-8"
    assert sent["x-amzn-sagemaker-invocationtimeoutseconds"] == "3600"
    assert sent["x-amzn-sagemaker-requestttlseconds"] == "60"


@pytest.mark.parametrize(
    ("header", "value"),
    [
        ("X-Invocation-Timeout-Seconds", "0"),
        ("X-Invocation-Timeout-Seconds", "3601"),
        ("X-Invocation-Timeout-Seconds", "ten"),
        ("X-Request-TTL-Seconds", "59"),
        ("X-Request-TTL-Seconds", "21601"),
        ("X-Request-TTL-Seconds", "-60"),
    ],
)
def test_overrides_outside_sagemaker_limits_are_400_naming_the_header(api, header, value):
    answer = api.call(
        event("POST", "/invocations", body=b"{}", headers={"Content-Type": "application/json", header: value})
    )
    assert answer.status == 400
    assert answer.body["error"] == "BadRequest"
    assert header in answer.body["message"]
    assert answer.body["requestId"].startswith("req-")
    assert api.stub.calls == []


# ----------------------------------------------------------------------------- client errors
def test_unsupported_content_type_is_415(api):
    answer = api.submit("<xml/>", content_type="application/xml")
    assert answer.status == 415
    assert answer.body["error"] == "UnsupportedMediaType"
    assert "application/xml" in answer.body["message"]
    assert api.stub.calls == []


def test_missing_content_type_is_415(api):
    answer = api.call(event("POST", "/invocations", body=b"hello", headers={}))
    assert answer.status == 415
    assert "Content-Type header is required" in answer.body["message"]


def test_too_large_is_413_and_nothing_is_stored(api):
    api.setenv("MAX_REQUEST_BYTES", "100")
    answer = api.submit("x" * 101, content_type="text/plain")
    assert answer.status == 413
    assert answer.body["error"] == "PayloadTooLarge"
    assert "/uploads" in answer.body["message"]
    assert api.stub.calls == []
    assert api.s3.list_objects_v2(Bucket=INPUT_BUCKET).get("KeyCount") == 0


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (event("POST", "/invocations", body=None, headers={"Content-Type": "text/plain"}), "empty"),
        (
            {
                **event("POST", "/invocations", headers={"Content-Type": "text/plain"}),
                "body": "%%%",
                "isBase64Encoded": True,
            },
            "base64",
        ),
        (
            event(
                "POST",
                "/invocations",
                body=b"x",
                headers={"Content-Type": "text/plain", "Idempotency-Key": "has space"},
            ),
            "Idempotency-Key",
        ),
        (
            event("POST", "/invocations", body=b'{"uploadId": "nope"}', headers={"Content-Type": "application/json"}),
            "uploadId",
        ),
    ],
    ids=["empty-body", "bad-base64", "bad-idempotency-key", "bad-upload-id"],
)
def test_malformed_requests_are_400_saying_what_is_wrong(api, raw, expected):
    answer = api.call(raw)
    assert answer.status == 400
    assert expected in answer.body["message"]
    assert set(answer.body) == {"error", "message", "requestId"}


def test_not_a_proxy_event_is_400(api):
    answer = api.call({"hello": "world"})
    assert answer.status == 400
    assert "httpMethod" in answer.body["message"]


# ----------------------------------------------------------------------------- SageMaker errors
def test_sagemaker_validation_error_is_400_without_retries(api):
    api.stub.fail(1, 400, "ValidationError", "Endpoint test-endpoint of account 123 not found.")
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 400
    assert answer.body["error"] == "ValidationError"
    assert "not found" in answer.body["message"]
    assert len(api.stub.calls) == 1


@pytest.mark.parametrize(("status", "error_type"), [(503, "ServiceUnavailable"), (500, "InternalFailure")])
def test_transient_failures_are_retried_then_succeed(api, status, error_type):
    api.stub.fail(2, status, error_type)
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 202
    assert len(api.stub.calls) == 3  # two failures, then success: botocore's retries really ran
    ids = {call.headers["x-amzn-sagemaker-inference-id"] for call in api.stub.calls}
    assert ids == {answer.body["inferenceId"]}


@pytest.mark.parametrize(("status", "error_type"), [(503, "ServiceUnavailable"), (500, "InternalFailure")])
def test_persistent_failures_are_503_with_retry_after_after_bounded_retries(api, status, error_type):
    api.stub.fail(10, status, error_type)
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 503
    assert answer.body["error"] == "ServiceUnavailable"
    assert int(answer.headers["Retry-After"]) > 0
    assert len(api.stub.calls) == 3  # total_max_attempts: bounded


def test_throttling_is_429_with_retry_after(api):
    api.stub.fail(10, 400, "ThrottlingException", "Rate exceeded")
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 429
    assert answer.body["error"] == "Throttled"
    assert int(answer.headers["Retry-After"]) > 0
    assert len(api.stub.calls) == 3


def test_unreachable_sagemaker_is_503(api):
    api.setenv("SAGEMAKER_RUNTIME_ENDPOINT_URL", "http://127.0.0.1:9")  # discard port: refused
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 503
    assert "Retry-After" in answer.headers


def test_unexpected_s3_errors_are_500_without_details(api):
    api.s3.delete_bucket(Bucket=INPUT_BUCKET)
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 500
    assert answer.body["error"] == "InternalError"
    assert INPUT_BUCKET not in answer.body["message"]
    assert api.stub.calls == []


def test_missing_environment_is_500_not_a_crash(api):
    api.monkeypatch.delenv("ENDPOINT_NAME")
    api.module.service.cache_clear()
    answer = api.submit('{"inputs": "x"}')
    assert answer.status == 500
    assert answer.body["error"] == "InternalError"


# ----------------------------------------------------------------------------- idempotency
def test_same_key_same_payload_is_the_same_inference_and_starts_nothing_new(api):
    first = api.submit('{"inputs": "x"}', Idempotency_Key="order-42")
    second = api.submit('{"inputs": "x"}', Idempotency_Key="order-42")

    assert first.status == second.status == 202
    assert first.body == second.body
    assert first.body["inferenceId"] == inference_id_for_key("order-42")
    assert second.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert len(api.stub.calls) == 1


def test_same_key_different_payload_is_422(api):
    api.submit('{"inputs": "x"}', Idempotency_Key="order-42")
    answer = api.submit('{"inputs": "y"}', Idempotency_Key="order-42")
    assert answer.status == 422
    assert answer.body["error"] == "IdempotencyKeyReused"
    assert len(api.stub.calls) == 1


def test_same_key_different_content_type_is_422(api):
    api.submit("same bytes", content_type="text/plain", Idempotency_Key="k1")
    answer = api.submit("same bytes", content_type="text/csv", Idempotency_Key="k1")
    assert answer.status == 422


def test_without_a_key_every_submit_is_new(api):
    first = api.submit('{"inputs": "x"}')
    second = api.submit('{"inputs": "x"}')
    assert first.body["inferenceId"] != second.body["inferenceId"]
    assert len(api.stub.calls) == 2


def test_input_that_failed_to_start_is_retried_safely_with_the_same_key(api):
    api.stub.fail(3, 503, "ServiceUnavailable")
    failed = api.submit('{"inputs": "x"}', Idempotency_Key="retry-me")
    assert failed.status == 503
    expected_id = inference_id_for_key("retry-me")
    stored = api.s3.list_objects_v2(Bucket=INPUT_BUCKET, Prefix=f"requests/{expected_id}/")
    assert next(o["Key"] for o in stored["Contents"]).startswith(f"requests/{expected_id}/input-")  # kept, no receipt

    retried = api.submit('{"inputs": "x"}', Idempotency_Key="retry-me")
    assert retried.status == 202
    assert retried.body["inferenceId"] == expected_id
    assert "Idempotent-Replayed" not in retried.headers
    assert len(api.stub.calls) == 4
    assert api.stub.calls[-1].input_present
    assert api.status(expected_id).status == 202


@pytest.mark.parametrize(("winner_payload", "expected"), [(b'{"inputs": "x"}', 202), (b'{"inputs": "other"}', 422)])
def test_concurrent_submit_with_the_same_key_loses_the_receipt_race_cleanly(api, winner_payload, expected):
    """While our invoke is in flight a concurrent request with the same key writes its receipt first."""
    key = "raced"

    def concurrent_winner(_headers):
        api.stub.on_invoke = None
        winner = api.module.handler(
            event(
                "POST",
                "/invocations",
                body=winner_payload,
                headers={"Content-Type": "application/json", "Idempotency-Key": key},
            ),
            __import__("tests.api.conftest", fromlist=["LambdaContext"]).LambdaContext(),
        )
        assert winner["statusCode"] == 202

    api.stub.on_invoke = concurrent_winner
    answer = api.submit('{"inputs": "x"}', Idempotency_Key=key)
    assert answer.status == expected
    if expected == 202:
        assert answer.headers["Idempotent-Replayed"] == "true"
        assert answer.body["inferenceId"] == inference_id_for_key(key)


# ----------------------------------------------------------------------------- status
def test_status_goes_from_in_progress_to_completed_with_inline_output(api):
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]

    pending = api.status(inference_id)
    assert pending.status == 202
    assert pending.body["status"] == "InProgress"
    assert pending.headers["Retry-After"] == "10"

    _complete(api, inference_id, b'{"summary_text": "short"}')
    done = api.status(inference_id)
    assert done.status == 200
    assert done.body["status"] == "Completed"
    assert done.body["output"] == {"summary_text": "short"}
    assert done.body["outputEncoding"] == "json"
    assert "Retry-After" not in done.headers


def test_large_output_comes_as_a_presigned_url_that_works(api):
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]
    big = b"y" * 5000  # INLINE_RESULT_MAX_BYTES is 1024 in the tests
    _complete(api, inference_id, big, content_type="text/plain")

    done = api.status(inference_id)
    assert done.status == 200
    assert done.body["status"] == "Completed"
    assert "output" not in done.body
    assert done.body["outputBytes"] == 5000
    assert httpx.get(done.body["outputUrl"], timeout=5).content == big


def test_binary_output_is_inlined_as_base64(api):
    inference_id = api.submit(b"\x00\x01", content_type="application/octet-stream").body["inferenceId"]
    _complete(api, inference_id, b"\xff\x00\xfe", content_type="application/octet-stream")
    done = api.status(inference_id)
    assert done.body["outputEncoding"] == "base64"
    assert base64.b64decode(done.body["output"]) == b"\xff\x00\xfe"


def test_failed_inference_reports_the_failure_body(api):
    inference_id = api.submit('{"inputs": "x"}').body["inferenceId"]
    _fail(api, inference_id, b"CUDA out of memory")

    failed = api.status(inference_id)
    assert failed.status == 200
    assert failed.body["status"] == "Failed"
    assert failed.body["failureReason"] == "CUDA out of memory"
    assert failed.body["failureTruncated"] is False


@pytest.mark.parametrize("inference_id", ["r" + "0" * 32, "k" + "f" * 32, "not-an-id", "r" + "0" * 31])
def test_unknown_inference_is_404(api, inference_id):
    answer = api.status(inference_id)
    assert answer.status == 404
    assert answer.body["error"] == "NotFound"


def test_unknown_route_is_404_json(api):
    answer = api.call(event("DELETE", "/invocations/r" + "0" * 32))
    assert answer.status == 404
    assert set(answer.body) == {"error", "message", "requestId"}


# ----------------------------------------------------------------------------- uploads
# The upload flow (presigned POST, copy, single use) is in test_uploads.py.
@pytest.mark.parametrize(
    ("body", "content_type", "status"),
    [
        (b'{"contentType": "application/xml"}', "application/json", 415),
        (b'{"contentType": "text/plain"}', "text/plain", 415),
        (b'{"contentType": 7}', "application/json", 400),
        (b'{"contentType": "text/plain", "extra": 1}', "application/json", 400),
        (b"{not json", "application/json", 400),
        (b"", "application/json", 400),
    ],
)
def test_upload_request_validation(api, body, content_type, status):
    answer = api.call(event("POST", "/uploads", body=body, headers={"Content-Type": content_type}))
    assert answer.status == status
    assert set(answer.body) == {"error", "message", "requestId"}


def test_json_that_only_resembles_an_upload_reference_is_a_model_input(api):
    answer = api.submit(json.dumps({"uploadId": "u" + "0" * 32, "inputs": "x"}))
    assert answer.status == 202
    assert "/uploads/" not in api.stub.calls[0].headers["x-amzn-sagemaker-inputlocation"]


def test_too_little_time_left_is_503_before_any_call(api):
    from tests.api.conftest import LambdaContext

    class AlmostOutOfTime(LambdaContext):
        def get_remaining_time_in_millis(self) -> int:
            return 5_000  # less than one S3 call's worst case

    raw = event("POST", "/invocations", body=b'{"inputs": "x"}', headers={"Content-Type": "application/json"})
    answer = api.module.handler(raw, AlmostOutOfTime())
    assert answer["statusCode"] == 503
    assert "Retry-After" in answer["multiValueHeaders"]  # REST proxy answers from Powertools use multiValueHeaders
    assert api.stub.calls == []
    assert api.s3.list_objects_v2(Bucket=INPUT_BUCKET).get("KeyCount") == 0
