"""End to end over HTTP: API Gateway adapter -> real Lambda -> S3 (moto) -> async runtime
stand-in -> real model server -> S3 / SNS -> the Lambda's status answer."""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from local_stack.aws import FAILURE_PREFIX, INPUT_PREFIX, OUTPUT_PREFIX
from local_stack.pipeline import LocalPipeline

from .conftest import MAX_CONCURRENCY, MODEL_ERROR, Api, Notifications, unique_text, wait_for
from .conftest import receipt_of as _receipt
from .conftest import s3_uri as _s3_uri

pytestmark = pytest.mark.slow

# Slow enough (about 0.2-0.3 s per batch on 2 CPU cores) to be caught in flight.
SLOW = {"max_new_tokens": 240, "min_new_tokens": 240}


def test_submit_completes_with_the_model_servers_answer(
    healthy_pipeline: LocalPipeline, api: Api, notifications: Notifications, s3: Any
) -> None:
    body = {"inputs": "The quick brown fox jumps over the lazy dog.", "parameters": {"max_new_tokens": 6}}
    direct = healthy_pipeline.container.invoke(json.dumps(body).encode())
    assert direct.status_code == 200, direct.text

    response = api.submit(body)
    assert response.status_code == 202, response.text
    accepted = response.json()
    inference_id = accepted["inferenceId"]
    assert accepted["status"] == "InProgress"
    assert accepted["statusUrl"] == f"{api.base_url}/invocations/{inference_id}"

    document = api.wait(inference_id)
    assert document["status"] == "Completed", document
    assert document["outputEncoding"] == "json"
    assert document["output"] == direct.json()

    # Every hop left its trace where the stack's layout says.
    resources = healthy_pipeline.resources
    assert resources is not None
    receipt = _receipt(s3, healthy_pipeline, inference_id)
    in_bucket, in_key = _s3_uri(receipt["inputLocation"])
    assert (in_bucket, in_key.startswith(INPUT_PREFIX)) == (resources.input_bucket, True)
    assert json.loads(s3.get_object(Bucket=in_bucket, Key=in_key)["Body"].read()) == body
    out_bucket, out_key = _s3_uri(receipt["outputLocation"])
    assert (out_bucket, out_key.startswith(OUTPUT_PREFIX)) == (resources.output_bucket, True)
    assert json.loads(s3.get_object(Bucket=out_bucket, Key=out_key)["Body"].read()) == direct.json()

    note = notifications.wait_for("success", inference_id)
    assert note["invocationStatus"] == "Completed"
    assert note["eventSource"] == "aws:sagemaker" and note["eventName"] == "InferenceResult"
    assert note["responseParameters"]["outputLocation"] == receipt["outputLocation"]
    assert note["requestParameters"]["inputLocation"] == receipt["inputLocation"]
    assert not notifications.for_id("error", inference_id)


def test_plain_text_input_reaches_the_model_unchanged(healthy_pipeline: LocalPipeline, api: Api) -> None:
    text = "Translation turns a sentence in one language into another language."
    direct = healthy_pipeline.container.invoke(text.encode(), content_type="text/plain")
    assert direct.status_code == 200, direct.text
    document = api.wait(api.submit_ok(text.encode(), content_type="text/plain"))
    assert document["status"] == "Completed"
    assert document["output"] == direct.json()


def test_a_model_error_ends_failed_with_the_error_body_and_an_error_notification(
    healthy_pipeline: LocalPipeline, api: Api, notifications: Notifications, s3: Any
) -> None:
    direct = healthy_pipeline.container.invoke(json.dumps(MODEL_ERROR).encode())
    assert direct.status_code >= 500, f"expected a model error, the model server said {direct.status_code}"

    inference_id = api.submit_ok(MODEL_ERROR)
    document = api.wait(inference_id)
    assert document["status"] == "Failed", document
    assert json.loads(document["failureReason"]) == direct.json()  # the model server's own error body

    note = notifications.wait_for("error", inference_id)
    assert note["invocationStatus"] == "Failed"
    assert f"({direct.status_code})" in note["failureReason"]
    receipt = _receipt(s3, healthy_pipeline, inference_id)
    assert note["responseParameters"]["failureLocation"] == receipt["failureLocation"]
    fail_bucket, fail_key = _s3_uri(receipt["failureLocation"])
    assert healthy_pipeline.resources is not None
    assert fail_bucket == healthy_pipeline.resources.failure_bucket and fail_key.startswith(FAILURE_PREFIX)
    assert not notifications.for_id("success", inference_id)
    out_bucket, out_key = _s3_uri(receipt["outputLocation"])
    assert s3.list_objects_v2(Bucket=out_bucket, Prefix=out_key)["KeyCount"] == 0


def test_requests_survive_the_model_server_dying_mid_run(healthy_pipeline: LocalPipeline, api: Api, s3: Any) -> None:
    runtime = healthy_pipeline.runtime
    assert runtime is not None
    before = runtime.stats.snapshot()
    ids = [api.submit_ok({"inputs": unique_text("crash"), "parameters": SLOW}) for _ in range(12)]

    # Kill (SIGKILL: no drain) while the model server holds requests.
    wait_for(lambda: runtime.stats.in_flight > 0, timeout=20, what="an invocation in flight")
    healthy_pipeline.container.kill()
    wait_for(lambda: not runtime.healthy, timeout=5, what="the runtime to notice")
    time.sleep(0.5)  # requests keep waiting while it is down
    pending = [i for i in ids if api.status(i).json()["status"] == "InProgress"]
    assert pending, "every request finished before the kill: the test proved nothing"
    assert runtime.stats.requeued_container_down > before["requeued_container_down"]

    healthy_pipeline.container.start()
    documents = [api.wait(i, timeout=90) for i in ids]
    assert [d["status"] for d in documents] == ["Completed"] * len(ids)
    # Exactly one output object per request, none in the failure bucket.
    for inference_id in ids:
        receipt = _receipt(s3, healthy_pipeline, inference_id)
        out_bucket, out_key = _s3_uri(receipt["outputLocation"])
        assert s3.list_objects_v2(Bucket=out_bucket, Prefix=out_key)["KeyCount"] == 1
        fail_bucket, fail_key = _s3_uri(receipt["failureLocation"])
        assert s3.list_objects_v2(Bucket=fail_bucket, Prefix=fail_key)["KeyCount"] == 0


def test_ttl_expiry_while_the_model_server_is_down_and_waiting_requests_run_when_it_is_back(
    healthy_pipeline: LocalPipeline, api: Api, notifications: Notifications
) -> None:
    runtime = healthy_pipeline.runtime
    assert runtime is not None
    healthy_pipeline.container.stop()
    wait_for(lambda: not runtime.healthy, timeout=5, what="the runtime to notice")

    short = api.submit_ok({"inputs": unique_text("short ttl")}, headers={"X-Request-TTL-Seconds": "60"})
    patient = api.submit_ok({"inputs": unique_text("default ttl")})
    wait_for(lambda: runtime.backlog() >= 2, timeout=5, what="both requests queued")
    # 61 s pass for the runtime (RequestTTLSeconds cannot go below 60).
    runtime.clock.advance(61)

    expired = api.wait(short, timeout=10)
    assert expired["status"] == "Failed"
    assert "RequestExpired" in expired["failureReason"] and "RequestTTLSeconds=60" in expired["failureReason"]
    note = notifications.wait_for("error", short)
    assert "RequestExpired" in note["failureReason"]
    assert api.status(patient).json()["status"] == "InProgress"

    healthy_pipeline.container.start()
    assert api.wait(patient, timeout=90)["status"] == "Completed"


def test_200_concurrent_submissions_each_complete_exactly_once(
    healthy_pipeline: LocalPipeline, api: Api, notifications: Notifications, s3: Any
) -> None:
    runtime = healthy_pipeline.runtime
    resources = healthy_pipeline.resources
    assert runtime is not None and resources is not None
    notifications.collect()  # forget earlier tests' notifications
    before = {o["Key"] for o in _list(s3, resources.output_bucket, OUTPUT_PREFIX)}
    runtime.stats.max_in_flight = 0
    completed_before = runtime.stats.completed + runtime.stats.failed

    def submit(n: int) -> str:
        body = {"inputs": f"request number {n}", "parameters": {"max_new_tokens": 4}}
        key = f"e2e-200-{n}-{time.time_ns()}"
        for _ in range(5):  # retry transient answers with the same key: never a second job
            response = api.submit(body, headers={"Idempotency-Key": key})
            if response.status_code == 202:
                return str(response.json()["inferenceId"])
            assert response.status_code in (429, 502, 503, 504), response.text
            time.sleep(0.5)
        raise AssertionError(f"submit {n} kept failing")

    with ThreadPoolExecutor(max_workers=32) as pool:
        ids = list(pool.map(submit, range(200)))
    assert len(set(ids)) == 200

    # Wait on the runtime's counter (cheap), not by polling 200 statuses in a loop,
    # which would load the 2-core machine more than the work itself; then check
    # every status once through the API.
    target = completed_before + 200
    wait_for(
        lambda: runtime.stats.completed + runtime.stats.failed >= target,
        timeout=120,
        what="200 invocations finished",
        interval=0.1,
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        states = list(pool.map(lambda i: api.status(i).json()["status"], ids))
    assert states == ["Completed"] * 200

    after = {o["Key"] for o in _list(s3, resources.output_bucket, OUTPUT_PREFIX)}
    expected = {_s3_uri(_receipt(s3, healthy_pipeline, i)["outputLocation"])[1] for i in ids}
    assert after - before == expected  # one object per request: none lost, none extra
    wait_for(lambda: len(_success_ids(notifications, ids)) >= 200, timeout=20, what="200 success notifications")
    counts = _success_ids(notifications, ids)
    assert sorted(counts.values()) == [1] * 200  # each notified exactly once
    assert 1 <= runtime.stats.max_in_flight <= MAX_CONCURRENCY


def _list(s3: Any, bucket: str, prefix: str) -> list[dict[str, Any]]:
    objects: list[dict[str, Any]] = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        objects += page.get("Contents", [])
    return objects


def _success_ids(notifications: Notifications, ids: list[str]) -> dict[str, int]:
    wanted = set(ids)
    counts: dict[str, int] = {}
    for note in notifications.collect()["success"]:
        if note["inferenceId"] in wanted:
            counts[note["inferenceId"]] = counts.get(note["inferenceId"], 0) + 1
    return counts


# ------------------------------------------------------------------------ bad inputs
BIG = b"x" * (4 * 1024 * 1024 + 1)  # over the API's default inline limit (4 MiB)


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status", "error"),
    [
        ("POST", "/invocations", b"", {"Content-Type": "application/json"}, 400, "BadRequest"),
        ("POST", "/invocations", b"{}", {"Content-Type": "application/x-unknown"}, 415, "UnsupportedMediaType"),
        (
            "POST",
            "/invocations",
            b"{}",
            {"Content-Type": "application/json", "X-Request-TTL-Seconds": "30"},
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/invocations",
            b"{}",
            {"Content-Type": "application/json", "X-Invocation-Timeout-Seconds": "0"},
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/invocations",
            b"{}",
            {"Content-Type": "application/json", "Idempotency-Key": "has space"},
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/invocations",
            b'{"uploadId": "u' + b"0" * 32 + b'"}',
            {"Content-Type": "application/json"},
            400,
            "BadRequest",
        ),
        ("POST", "/invocations", BIG, {"Content-Type": "text/plain"}, 413, "PayloadTooLarge"),
        ("POST", "/uploads", b"not json", {"Content-Type": "application/json"}, 400, "BadRequest"),
        (
            "POST",
            "/uploads",
            b'{"contentType": "text/plain"}',
            {"Content-Type": "text/plain"},
            415,
            "UnsupportedMediaType",
        ),
        ("POST", "/uploads", b'{"contentType": "nope"}', {"Content-Type": "application/json"}, 400, "BadRequest"),
        ("GET", "/invocations/r" + "0" * 32, b"", {}, 404, "NotFound"),
        ("GET", "/invocations/not-an-id", b"", {}, 404, "NotFound"),
        # Regressions: each of these was a 500 (or a 202 that failed later, on the GPU).
        (
            "POST",
            "/invocations",
            b"{}",
            {"Content-Type": "application/json", "X-Request-TTL-Seconds": "²".encode()},
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/uploads",
            b'{"contentType": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            {"Content-Type": "application/json"},
            400,
            "BadRequest",
        ),
        (
            "POST",
            "/invocations",
            b'{"inputs": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
            {"Content-Type": "application/json"},
            400,
            "BadRequest",
        ),
        ("POST", "/invocations", b'{"inputs": "unterminated', {"Content-Type": "application/json"}, 400, "BadRequest"),
        ("GET", "/invocations/r" + "0" * 32 + "%0A", b"", {}, 404, "NotFound"),
        (
            "POST",
            "/invocations",
            b"{}",
            {"Content-Type": "application/json", "X-Amzn-SageMaker-Custom-Attributes": "x" * 1025},
            400,
            "BadRequest",
        ),
    ],
    ids=[
        "empty-body",
        "unsupported-type",
        "ttl-below-60",
        "timeout-zero",
        "bad-idempotency-key",
        "upload-never-put",
        "inline-too-large",
        "upload-bad-json",
        "upload-not-json",
        "upload-bad-type",
        "unknown-id",
        "malformed-id",
        "non-ascii-digit-ttl",
        "deep-json-upload-request",
        "deep-json-input",
        "malformed-json-input",
        "id-with-trailing-newline",
        "custom-attributes-too-long",
    ],
)
def test_bad_inputs_get_their_4xx(
    api: Api, method: str, path: str, body: bytes, headers: dict[str, str], status: int, error: str
) -> None:
    response = api.http.request(method, path, content=body, headers=headers)
    assert response.status_code == status, response.text
    document = response.json()
    assert document["error"] == error
    assert document["message"]  # says what was wrong
    assert set(document) == {"error", "message", "requestId"}


def test_the_gateway_answers_what_never_reaches_the_lambda(api: Api) -> None:
    unknown = api.http.get("/nothing-here")
    assert unknown.status_code == 403
    assert unknown.json()["error"] == "MISSING_AUTHENTICATION_TOKEN"
    assert unknown.json()["message"] == "Missing Authentication Token"
    too_big = api.submit(b"x" * (10 * 1024 * 1024 + 1), content_type="text/plain")
    assert (too_big.status_code, too_big.json()["error"]) == (413, "REQUEST_TOO_LARGE")


def test_a_reused_idempotency_key_replays_or_conflicts(healthy_pipeline: LocalPipeline, api: Api) -> None:
    key = f"e2e-replay-{time.time_ns()}"
    body = {"inputs": unique_text("replay")}
    first = api.submit(body, headers={"Idempotency-Key": key})
    again = api.submit(body, headers={"Idempotency-Key": key})
    assert first.status_code == again.status_code == 202
    assert again.json()["inferenceId"] == first.json()["inferenceId"]
    assert again.headers.get("Idempotent-Replayed") == "true"
    other = api.submit({"inputs": "a different payload"}, headers={"Idempotency-Key": key})
    assert other.status_code == 422 and other.json()["error"] == "IdempotencyKeyReused"
    assert api.wait(first.json()["inferenceId"])["status"] == "Completed"
