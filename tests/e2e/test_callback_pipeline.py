"""Completion callbacks through the local pipeline (`make local`'s stack): the real API Lambda,
the SageMaker async runtime stand-in publishing to SNS, moto delivering to the callbacks
queue, the real notifier handler behind its event-source stand-in, and a local receiver
(inference_client.listen) verifying every signature. Done when each completion and each
failure reaches the receiver exactly once, verified, also when it fails the first attempts."""

from __future__ import annotations

import time

import pytest
import standardwebhooks

from inference_client.listen import CallbackReceiver
from local_stack.pipeline import LocalPipeline
from tests.e2e.conftest import MODEL_ERROR, Api, unique_text, wait_for

pytestmark = pytest.mark.timeout(300)
# After the accepted delivery, how long to watch for a second one (the local schedule's steps are
# 2-20 s; a stray duplicate would come within that).
QUIET_SECONDS = 6


@pytest.fixture
def receiver(healthy_pipeline: LocalPipeline):
    assert healthy_pipeline.callbacks is not None, "async hosting starts the callbacks"
    server = CallbackReceiver(secret=healthy_pipeline.callbacks.secret).start()
    yield server
    server.stop()


def _submit(api: Api, url: str, body, content_type: str = "application/json") -> str:
    return api.submit_ok(body, content_type=content_type, headers={"X-Callback-Url": url})


def test_completion_delivered_exactly_once_and_verified(
    api: Api, receiver: CallbackReceiver, healthy_pipeline: LocalPipeline
):
    inference_id = _submit(api, receiver.url, unique_text("callback").encode(), "text/plain")
    wait_for(lambda: len(receiver.accepted) == 1, timeout=90, what="the callback")
    time.sleep(QUIET_SECONDS)
    assert len(receiver.deliveries) == 1
    delivery = receiver.accepted[0]
    event = standardwebhooks.Webhook(healthy_pipeline.callbacks.secret).verify(delivery.body, delivery.headers)
    assert event["type"] == "inference.completed"
    assert event["data"]["inferenceId"] == inference_id and event["data"]["status"] == "Completed"
    status = api.status(inference_id).json()
    assert status["callback"] == {"status": "Delivered", "attempts": 1, "lastError": None}
    assert event["data"]["output"] == status["output"]
    assert event["data"]["statusUrl"].endswith(f"/invocations/{inference_id}")


def test_failure_delivered_exactly_once(api: Api, receiver: CallbackReceiver):
    inference_id = _submit(api, receiver.url, MODEL_ERROR)
    wait_for(lambda: len(receiver.accepted) == 1, timeout=90, what="the failure callback")
    time.sleep(QUIET_SECONDS)
    assert len(receiver.deliveries) == 1
    event = receiver.accepted[0].event
    assert event["type"] == "inference.failed"
    assert event["data"]["inferenceId"] == inference_id and event["data"]["status"] == "Failed"


def test_receiver_failing_the_first_attempts_gets_one_delivery_within_a_minute(
    api: Api, healthy_pipeline: LocalPipeline
):
    receiver = CallbackReceiver(secret=healthy_pipeline.callbacks.secret, fail_first=2).start()
    try:
        inference_id = _submit(api, receiver.url, unique_text("retry").encode(), "text/plain")
        api.wait(inference_id)
        done = time.monotonic()
        wait_for(lambda: len(receiver.accepted) == 1, timeout=60, what="the third attempt")
        assert time.monotonic() - done < 60  # the local schedule: three attempts within a minute
        time.sleep(QUIET_SECONDS)
    finally:
        receiver.stop()
    assert [d.answered for d in receiver.deliveries] == [503, 503, 204]
    assert len({d.webhook_id for d in receiver.deliveries}) == 1
    assert api.status(inference_id).json()["callback"] == {"status": "Delivered", "attempts": 3, "lastError": None}


def test_private_callback_refused_at_submit(api: Api):
    response = api.submit(b"hello", content_type="text/plain", headers={"X-Callback-Url": "https://10.0.0.8/hook"})
    assert response.status_code == 400
    assert "private" in response.json()["message"]


def test_cli_invoke_with_callback_and_listen_receiver(healthy_pipeline: LocalPipeline, receiver: CallbackReceiver):
    """`python -m inference_client invoke --callback URL --wait`: the result on stdout, and the
    event at the receiver."""
    import io
    import json

    from inference_client import cli

    out = io.StringIO()
    code = cli.main(
        [
            "--url",
            healthy_pipeline.api_url,
            "--no-sign",
            "invoke",
            "--text",
            unique_text("cli"),
            "--callback",
            receiver.url,
            "--wait",
            "--quiet",
        ],
        stdout=out,
        stderr=io.StringIO(),
    )
    assert code == 0
    wait_for(lambda: len(receiver.accepted) == 1, timeout=60, what="the CLI's callback")
    event = receiver.accepted[0].event
    assert event["status"] == "Completed"
    assert json.loads(out.getvalue()) == event["data"]["output"]  # the same result both ways
