"""Completion callbacks end to end inside one process: the API handler (submit, GET), moto's
S3/SQS/Secrets Manager, the real notifier Lambda handler fed by the local stand-in of its
SQS event source mapping, and a local receiver that verifies every signature.

SageMaker's part is played by the test: it writes the result where the receipt says and
puts SageMaker's notification document on the callbacks queue, as SNS with raw message
delivery would (https://docs.aws.amazon.com/sagemaker/latest/dg/async-inference-check-predictions.html).
"""

from __future__ import annotations

import base64
import json
import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import boto3
import pytest
import standardwebhooks

from inference_client.listen import CallbackReceiver
from local_stack.notifier import poll_once
from tests.api.conftest import OTHER_IDENTITY, REGION, Api

pytestmark = pytest.mark.timeout(120)


@dataclass
class Callbacks:
    api: Api
    sqs: Any
    queue_url: str
    queue_arn: str
    dlq_url: str
    secret: str
    notifier: Any
    handler: Callable[..., Any]
    clock_offset: list[float] = field(default_factory=lambda: [0.0])

    def submit(self, callback: str, text: str = "hello", **kwargs: Any) -> str:
        answer = self.api.submit(text, "text/plain", X_Callback_Url=callback, **kwargs)
        assert answer.status == 202, answer.body
        return answer.body["inferenceId"]

    def complete(self, inference_id: str, *, ok: bool = True, body: bytes = b'{"label": "POSITIVE"}') -> None:
        """SageMaker's part: the result object, then the notification on the queue."""
        receipt = self.api.receipt(inference_id)
        location = receipt["outputLocation"] if ok else receipt["failureLocation"]
        bucket, _, key = location[5:].partition("/")
        self.api.s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=body if ok else b"model error: CUDA out of memory",
            ContentType="application/json" if ok else "text/plain",
        )
        self.sqs.send_message(QueueUrl=self.queue_url, MessageBody=json.dumps(notification(inference_id, location, ok)))

    def poll(self, until: Callable[[], bool], timeout: float = 20) -> None:
        deadline = time.monotonic() + timeout
        while not until():
            assert time.monotonic() < deadline, "the condition did not come true in time"
            poll_once(self.sqs, self.queue_url, self.queue_arn, self.handler, wait_seconds=1)

    def drain(self, rounds: int = 3) -> None:
        for _ in range(rounds):
            poll_once(self.sqs, self.queue_url, self.queue_arn, self.handler, wait_seconds=1)

    def queued(self, url: str) -> int:
        attributes = self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        return int(attributes["ApproximateNumberOfMessages"]) + int(attributes["ApproximateNumberOfMessagesNotVisible"])


def notification(inference_id: str, location: str, ok: bool) -> dict[str, Any]:
    document: dict[str, Any] = {
        "awsRegion": REGION,
        "eventTime": "2026-12-01T10:00:00.000Z",
        "receivedTime": "2026-12-01T09:59:00.000Z",
        "invocationStatus": "Completed" if ok else "Failed",
        "requestParameters": {"endpointName": "test-endpoint", "inputLocation": "s3://x/y"},
        "responseParameters": {
            "contentType": "application/json",
            ("outputLocation" if ok else "failureLocation"): location,
        },
        "inferenceId": inference_id,
        "eventVersion": "1.0",
        "eventSource": "aws:sagemaker",
        "eventName": "InferenceResult",
    }
    if not ok:
        document["failureReason"] = "ClientError: model error"
    return document


@pytest.fixture
def callbacks(api: Api, moto_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callbacks]:
    api.setenv("CALLBACKS_ENABLED", "true")
    api.setenv("CALLBACK_ALLOW_LOOPBACK_HTTP", "true")
    credentials = {"region_name": REGION, "aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
    sqs = boto3.client("sqs", endpoint_url=moto_url, **credentials)
    secrets = boto3.client("secretsmanager", endpoint_url=moto_url, **credentials)
    suffix = uuid.uuid4().hex[:8]
    dlq_url = sqs.create_queue(QueueName=f"callbacks-dlq-{suffix}")["QueueUrl"]
    queue_url = sqs.create_queue(QueueName=f"callbacks-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    secret = base64.b64encode(os.urandom(32)).decode()
    secret_arn = secrets.create_secret(Name=f"callbacks-{suffix}", SecretString=secret)["ARN"]
    for name, value in {
        "CALLBACK_SECRET_ARN": secret_arn,
        "CALLBACK_QUEUE_URL": queue_url,
        "CALLBACK_DEAD_LETTER_QUEUE_URL": dlq_url,
        "CALLBACK_ALLOW_LOOPBACK_HTTP": "true",
        "CALLBACK_RETRY_BASE_SECONDS": "1",
        "CALLBACK_RETRY_MAX_DELAY_SECONDS": "2",
        "SQS_ENDPOINT_URL": moto_url,
        "SECRETS_MANAGER_ENDPOINT_URL": moto_url,
    }.items():
        monkeypatch.setenv(name, value)
    from api_handler.notifier import handler as module

    module.notifier.cache_clear()
    notifier = module.notifier()  # built from the environment, as in Lambda
    offset = [0.0]
    notifier.clock = lambda: time.time() + offset[0]
    yield Callbacks(api, sqs, queue_url, queue_arn, dlq_url, secret, notifier, module.handler, offset)
    module.notifier.cache_clear()


@pytest.fixture
def receiver(callbacks: Callbacks) -> Iterator[CallbackReceiver]:
    server = CallbackReceiver(secret=callbacks.secret).start()
    yield server
    server.stop()


class _AlwaysUnavailable(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []
    status: ClassVar[int] = 503

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        type(self).hits.append(self.headers.get("webhook-id", ""))
        self.send_response(type(self).status)
        self.send_header("Content-Length", "0")
        self.end_headers()


# ----------------------------------------------------------------------------- delivery
def test_completion_is_delivered_once_signed_and_shown_in_status(
    callbacks: Callbacks, receiver: CallbackReceiver, capsys: pytest.CaptureFixture[str]
):
    inference_id = callbacks.submit(receiver.url)
    assert callbacks.api.receipt(inference_id)["callbackUrl"] == receiver.url
    pending = callbacks.api.status(inference_id).body
    assert pending["callback"] == {"status": "Pending", "attempts": 0, "lastError": None}

    callbacks.complete(inference_id)
    callbacks.poll(lambda: len(receiver.accepted) == 1)
    callbacks.drain()

    assert len(receiver.deliveries) == 1
    delivery = receiver.accepted[0]
    # An independent Standard Webhooks implementation accepts the signature.
    verified = standardwebhooks.Webhook(callbacks.secret).verify(delivery.body, delivery.headers)
    assert verified["type"] == "inference.completed"
    assert verified["inferenceId"] == inference_id and verified["status"] == "Completed"
    assert verified["timestamp"] == "2026-12-01T10:00:00.000Z"  # SageMaker's eventTime
    assert verified["data"]["inferenceId"] == inference_id
    assert verified["data"]["status"] == "Completed"
    assert verified["data"]["output"] == {"label": "POSITIVE"}
    assert delivery.headers["User-Agent"].startswith("async-inference-callbacks/")
    # The event's data is the document GET /invocations/{id} answers (minus the callback state).
    status = callbacks.api.status(inference_id).body
    assert {k: v for k, v in status.items() if k != "callback"}["output"] == verified["data"]["output"]
    assert status["callback"] == {"status": "Delivered", "attempts": 1, "lastError": None}
    assert callbacks.queued(callbacks.queue_url) == 0
    # Powertools' embedded metric format on stdout: the delivery was counted.
    emitted = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get("CallbacksDelivered") == [1.0] or m.get("CallbacksDelivered") == 1.0 for m in emitted), emitted


def test_failure_is_delivered_as_a_failed_event(callbacks: Callbacks, receiver: CallbackReceiver):
    inference_id = callbacks.submit(receiver.url)
    callbacks.complete(inference_id, ok=False)
    callbacks.poll(lambda: len(receiver.accepted) == 1)
    event = receiver.accepted[0].event
    assert event["type"] == "inference.failed" and event["status"] == "Failed"
    assert event["data"]["status"] == "Failed"
    assert "CUDA out of memory" in event["data"]["failureReason"]


def test_retries_until_the_receiver_recovers_with_one_stable_webhook_id(callbacks: Callbacks):
    receiver = CallbackReceiver(secret=callbacks.secret, fail_first=2, fail_status=503).start()
    try:
        inference_id = callbacks.submit(receiver.url)
        callbacks.complete(inference_id)
        callbacks.poll(lambda: len(receiver.accepted) == 1, timeout=30)
        callbacks.drain()
    finally:
        receiver.stop()
    answered = [d.answered for d in receiver.deliveries]
    assert answered == [503, 503, 204]
    assert len({d.webhook_id for d in receiver.deliveries}) == 1
    assert all(d.verified for d in receiver.deliveries)  # every retry signed afresh, and valid
    assert callbacks.api.status(inference_id).body["callback"] == {
        "status": "Delivered",
        "attempts": 3,
        "lastError": None,
    }


def test_429_is_retried_and_other_4xx_is_final(callbacks: Callbacks):
    throttled = CallbackReceiver(secret=callbacks.secret, fail_first=1, fail_status=429).start()
    refused = CallbackReceiver(secret=callbacks.secret, fail_first=1, fail_status=410).start()
    try:
        retried = callbacks.submit(throttled.url)
        final = callbacks.submit(refused.url)
        callbacks.complete(retried)
        callbacks.complete(final)
        callbacks.poll(lambda: len(throttled.accepted) == 1, timeout=30)
        callbacks.drain()
    finally:
        throttled.stop()
        refused.stop()
    assert [d.answered for d in refused.deliveries] == [410]  # never tried again
    state = callbacks.api.status(final).body["callback"]
    assert state["status"] == "Failed" and state["attempts"] == 1 and "HTTP 410" in state["lastError"]
    assert callbacks.queued(callbacks.dlq_url) == 0  # a refusal is the receiver's answer, not an outage


def test_duplicate_notifications_deliver_once(callbacks: Callbacks, receiver: CallbackReceiver):
    inference_id = callbacks.submit(receiver.url)
    callbacks.complete(inference_id)
    # SNS delivers at least once: the same notification twice on the queue.
    location = callbacks.api.receipt(inference_id)["outputLocation"]
    callbacks.sqs.send_message(
        QueueUrl=callbacks.queue_url, MessageBody=json.dumps(notification(inference_id, location, True))
    )
    callbacks.poll(lambda: callbacks.queued(callbacks.queue_url) == 0)
    assert len(receiver.deliveries) == 1


def test_dead_letter_after_the_retry_window_and_redrive(callbacks: Callbacks):
    _AlwaysUnavailable.hits, _AlwaysUnavailable.status = [], 503
    server = ThreadingHTTPServer(("127.0.0.1", 0), _AlwaysUnavailable)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        inference_id = callbacks.submit(url)
        callbacks.complete(inference_id)
        callbacks.poll(lambda: len(_AlwaysUnavailable.hits) >= 2)
        retrying = callbacks.api.status(inference_id).body["callback"]
        assert retrying["status"] == "Retrying" and "HTTP 503" in retrying["lastError"]
        callbacks.clock_offset[0] = 25 * 3600  # a day later: the next attempt is outside the window
        callbacks.poll(lambda: callbacks.queued(callbacks.dlq_url) == 1)
        callbacks.drain()
        assert callbacks.queued(callbacks.queue_url) == 0
        dead = callbacks.sqs.receive_message(QueueUrl=callbacks.dlq_url, MessageAttributeNames=["All"])["Messages"][0]
        assert json.loads(dead["Body"])["inferenceId"] == inference_id
        assert dead["MessageAttributes"]["inferenceId"]["StringValue"] == inference_id
        state = callbacks.api.status(inference_id).body["callback"]
        assert state["status"] == "Failed" and "gave up after" in state["lastError"]
        attempts = len(_AlwaysUnavailable.hits)
        assert state["attempts"] == attempts
        callbacks.drain()
        assert len(_AlwaysUnavailable.hits) == attempts  # nothing after the dead-letter

        # The receiver is back; an operator moves the event back to the queue: delivered, same id.
        _AlwaysUnavailable.status = 204
        callbacks.clock_offset[0] = 0
        callbacks.sqs.send_message(QueueUrl=callbacks.queue_url, MessageBody=dead["Body"])
        callbacks.sqs.delete_message(QueueUrl=callbacks.dlq_url, ReceiptHandle=dead["ReceiptHandle"])
        callbacks.poll(lambda: callbacks.queued(callbacks.queue_url) == 0)
    finally:
        server.shutdown()
        server.server_close()
    assert len(_AlwaysUnavailable.hits) == attempts + 1 and len(set(_AlwaysUnavailable.hits)) == 1
    assert callbacks.api.status(inference_id).body["callback"] == {
        "status": "Delivered",
        "attempts": attempts + 1,
        "lastError": None,
    }


# ----------------------------------------------------------------------------- callers
def test_no_delivery_for_another_callers_inference(callbacks: Callbacks):
    mine = CallbackReceiver(secret=callbacks.secret).start()
    theirs = CallbackReceiver(secret=callbacks.secret).start()
    try:
        my_id = callbacks.submit(mine.url)
        their_id = callbacks.submit(theirs.url, identity=OTHER_IDENTITY)
        callbacks.complete(my_id)
        callbacks.poll(lambda: len(mine.accepted) == 1)
        callbacks.drain()
        assert theirs.deliveries == []  # my completion goes to my URL only
        # The other caller cannot read my inference, nor its callback state.
        assert callbacks.api.status(my_id, identity=OTHER_IDENTITY).status == 404
        assert callbacks.api.status(their_id, identity=OTHER_IDENTITY).body["callback"]["status"] == "Pending"
    finally:
        mine.stop()
        theirs.stop()


def test_receipt_without_a_caller_gets_no_delivery(callbacks: Callbacks, receiver: CallbackReceiver):
    inference_id = callbacks.submit(receiver.url)
    key = f"requests/{inference_id}/receipt.json"
    receipt = callbacks.api.receipt(inference_id)
    receipt.pop("caller")  # a version-1 receipt: it answers to nobody
    callbacks.api.s3.put_object(Bucket="test-input-bucket", Key=key, Body=json.dumps(receipt).encode())
    callbacks.complete(inference_id)
    callbacks.poll(lambda: callbacks.queued(callbacks.queue_url) == 0)
    assert receiver.deliveries == []


def test_test_notification_and_foreign_ids_are_acknowledged(callbacks: Callbacks, receiver: CallbackReceiver):
    # SageMaker's TestNotification on endpoint creation, and a result of an inference this API
    # never started (old enough that its receipt will not appear): removed, nothing delivered.
    callbacks.sqs.send_message(
        QueueUrl=callbacks.queue_url,
        MessageBody=json.dumps({"eventName": "TestNotification", "eventSource": "aws:sagemaker"}),
    )
    callbacks.clock_offset[0] = 3600
    callbacks.sqs.send_message(
        QueueUrl=callbacks.queue_url,
        MessageBody=json.dumps(notification("r" + "0" * 32, "s3://test-output-bucket/responses/x.out", True)),
    )
    callbacks.poll(lambda: callbacks.queued(callbacks.queue_url) == 0)
    assert receiver.deliveries == []


def test_a_result_over_the_payload_cap_goes_as_a_presigned_url(
    callbacks: Callbacks, receiver: CallbackReceiver, monkeypatch: pytest.MonkeyPatch
):
    callbacks.api.setenv("INLINE_RESULT_MAX_BYTES", str(1024 * 1024))  # GET would inline it...
    callbacks.notifier.service = callbacks.api.module.service()
    object.__setattr__(
        callbacks.notifier, "settings", callbacks.notifier.settings.model_copy(update={"max_payload_bytes": 16_384})
    )
    inference_id = callbacks.submit(receiver.url)
    big = json.dumps({"embedding": [0.123456789] * 5000}).encode()  # about 60 KB
    callbacks.complete(inference_id, body=big)
    callbacks.poll(lambda: len(receiver.accepted) == 1)
    delivery = receiver.accepted[0]
    assert len(delivery.body) <= 16_384  # ...the event may not
    data = delivery.event["data"]
    assert "output" not in data and data["outputUrl"].startswith("http")
    assert data["outputBytes"] == len(big)
