"""Against the local pipeline: callers signing with different credentials cannot read,
replay or probe each other's inferences; uploads are bounded, single use and immutable
once submitted; custom attributes travel to the model.

Requests are signed by botocore's SigV4Auth for execute-api, as the CLI and `curl
--aws-sigv4` sign them; the local gateway names the caller by the access key id.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from local_stack.pipeline import LocalPipeline

from .conftest import MAX_UPLOAD_BYTES, Api, Notifications, receipt_of, unique_text

pytestmark = pytest.mark.slow


class Signed:
    """One caller: every request signed with its own credentials."""

    def __init__(self, api: Api, key_id: str | None) -> None:
        self.api, self.key_id = api, key_id

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> httpx.Response:
        url = f"{self.api.base_url}{path}"
        headers = dict(headers or {})
        if self.key_id is not None:
            signed = AWSRequest(method=method, url=url, data=body, headers=headers)
            SigV4Auth(Credentials(self.key_id, f"secret-of-{self.key_id}"), "execute-api", "us-east-1").add_auth(signed)
            headers = dict(signed.headers.items())
        return self.api.http.request(method, url, content=body, headers=headers)

    def submit(self, document: dict[str, Any], **headers: str) -> httpx.Response:
        return self.request(
            "POST", "/invocations", json.dumps(document).encode(), {"Content-Type": "application/json", **headers}
        )

    def status(self, inference_id: str) -> httpx.Response:
        return self.request("GET", f"/invocations/{inference_id}")

    def wait(self, inference_id: str, timeout: float = 60) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            response = self.status(inference_id)
            assert response.status_code in (200, 202), response.text
            if response.json()["status"] in ("Completed", "Failed"):
                return response.json()
            time.sleep(0.1)
        raise AssertionError(f"{inference_id} not finished after {timeout} s")

    def upload(self, content_type: str) -> dict[str, Any]:
        response = self.request(
            "POST", "/uploads", json.dumps({"contentType": content_type}).encode(), {"Content-Type": "application/json"}
        )
        assert response.status_code == 201, response.text
        return response.json()


def _post_form(upload: dict[str, Any], payload: bytes) -> httpx.Response:
    files = {upload["fileField"]: ("payload", payload, upload["fields"]["Content-Type"])}
    return httpx.post(upload["uploadUrl"], data=upload["fields"], files=files, timeout=30, trust_env=False)


@pytest.fixture
def alice(api: Api) -> Signed:
    return Signed(api, "AKIDALICE")


@pytest.fixture
def bob(api: Api) -> Signed:
    return Signed(api, "AKIDBOB")


def test_two_callers_cannot_read_replay_or_probe_each_other(
    healthy_pipeline: LocalPipeline, alice: Signed, bob: Signed, api: Api
) -> None:
    key = f"order-{time.time_ns()}"
    body = {"inputs": unique_text("alice's private text"), "parameters": {"max_new_tokens": 4}}
    mine = alice.submit(body, **{"Idempotency-Key": key})
    assert mine.status_code == 202, mine.text
    inference_id = mine.json()["inferenceId"]
    done = alice.wait(inference_id)
    assert done["status"] == "Completed"

    # GET: 404 for Bob and for unsigned callers, as for an id that never existed.
    for stranger in (bob, Signed(api, None)):
        answer = stranger.status(inference_id)
        assert answer.status_code == 404 and answer.json()["error"] == "NotFound"
        assert "output" not in answer.json()
    # Replay: Bob's request with Alice's key and exact body starts Bob's own inference.
    replay = bob.submit(body, **{"Idempotency-Key": key})
    assert replay.status_code == 202
    assert replay.json()["inferenceId"] != inference_id
    assert replay.headers.get("Idempotent-Replayed") is None
    # 422 probe: Bob's different body under Alice's key tells him nothing about Alice.
    probe = bob.submit({"inputs": "something else"}, **{"Idempotency-Key": key + "-x"})
    assert probe.status_code == 202
    probe_alice_key = bob.submit({"inputs": "something else"}, **{"Idempotency-Key": key})
    assert probe_alice_key.status_code == 422  # only against Bob's own earlier use of the key
    # Alice still has her result and her replay.
    assert alice.status(inference_id).json()["output"] == done["output"]
    again = alice.submit(body, **{"Idempotency-Key": key})
    assert again.json()["inferenceId"] == inference_id and again.headers["Idempotent-Replayed"] == "true"


def test_re_uploading_after_submit_does_not_change_what_the_model_receives(
    healthy_pipeline: LocalPipeline, alice: Signed, bob: Signed, s3: Any
) -> None:
    valid = json.dumps({"inputs": unique_text("uploaded, validated"), "parameters": {"max_new_tokens": 4}}).encode()
    direct = healthy_pipeline.container.invoke(valid)
    assert direct.status_code == 200
    upload = alice.upload("application/json")
    assert _post_form(upload, valid).status_code in (200, 201, 204)
    # Bob cannot start anything from Alice's upload id.
    assert bob.submit({"uploadId": upload["uploadId"]}).status_code == 400

    # Paused model server: the request waits in the queue while the form is posted again.
    healthy_pipeline.container.stop()
    try:
        accepted = alice.submit({"uploadId": upload["uploadId"]})
        assert accepted.status_code == 202, accepted.text
        inference_id = accepted.json()["inferenceId"]
        assert _post_form(
            upload, b'{"inputs": "swapped after submit", "parameters": {"max_new_tokens": 1}}'
        ).status_code in (200, 201, 204)
        assert _post_form(upload, b"not even json").status_code in (200, 201, 204)
    finally:
        healthy_pipeline.container.start()
    document = alice.wait(inference_id, timeout=120)
    assert document["status"] == "Completed", document
    assert document["output"] == direct.json()  # the model read the validated bytes
    receipt = receipt_of(s3, healthy_pipeline, inference_id)
    assert f"/requests/{inference_id}/" in receipt["inputLocation"]
    # One upload, one inference.
    assert alice.submit({"uploadId": upload["uploadId"]}).status_code == 409


def test_an_upload_over_the_limit_is_refused_at_submit(healthy_pipeline: LocalPipeline, alice: Signed) -> None:
    upload = alice.upload("text/plain")
    assert upload["maxBytes"] == MAX_UPLOAD_BYTES
    assert _post_form(upload, b"x" * (MAX_UPLOAD_BYTES + 1)).status_code in (200, 201, 204)  # moto accepts it
    refused = alice.submit({"uploadId": upload["uploadId"]})
    assert refused.status_code == 413 and refused.json()["error"] == "PayloadTooLarge"
    assert str(MAX_UPLOAD_BYTES) in refused.json()["message"]


def test_custom_attributes_travel_with_the_request(
    healthy_pipeline: LocalPipeline, alice: Signed, notifications: Notifications
) -> None:
    value = f"trace-id={time.time_ns()}; tenant=alice"
    accepted = alice.submit(
        {"inputs": unique_text("attributes"), "parameters": {"max_new_tokens": 2}},
        **{"X-Amzn-SageMaker-Custom-Attributes": value},
    )
    assert accepted.status_code == 202, accepted.text
    inference_id = accepted.json()["inferenceId"]
    assert alice.wait(inference_id)["status"] == "Completed"
    note = notifications.wait_for("success", inference_id)
    assert note["requestParameters"]["customAttributes"] == value  # what InvokeEndpointAsync was given
    refused = alice.submit({"inputs": "x"}, **{"X-Amzn-SageMaker-Custom-Attributes": "x" * 1025})
    assert refused.status_code == 400 and "Custom-Attributes" in refused.json()["message"]


def _client(url: str, key_id: str) -> Any:
    """The project's client, signing with its own credentials (the CLI's code path)."""
    import botocore.session

    from inference_client.client import InferenceClient

    session = botocore.session.Session()
    session.set_credentials(key_id, f"secret-of-{key_id}")
    return InferenceClient(url, sign=True, region="us-east-1", session=session, sleep=lambda _: None)


def test_the_client_uploads_through_the_presigned_form_and_only_its_caller_sees_the_result(
    healthy_pipeline: LocalPipeline,
) -> None:
    from inference_client.client import ApiError, ClientError

    url = str(healthy_pipeline.api_url)
    carol, dave = _client(url, "AKIDCAROL"), _client(url, "AKIDDAVE")
    payload = json.dumps({"inputs": unique_text("client upload"), "parameters": {"max_new_tokens": 3}}).encode()
    direct = healthy_pipeline.container.invoke(payload).json()
    accepted = carol.submit(payload, "application/json", force_upload=True)
    document = carol.wait(accepted["inferenceId"], timeout=60, initial_interval=0.1, max_interval=0.5)
    assert document["status"] == "Completed" and document["output"] == direct
    with pytest.raises(ApiError) as theirs:
        dave.status(accepted["inferenceId"])
    assert theirs.value.status == 404
    # Over the API's upload limit: refused before a byte goes to S3, naming both sizes.
    with pytest.raises(ClientError, match=f"{MAX_UPLOAD_BYTES + 1} bytes.*at most {MAX_UPLOAD_BYTES}"):
        carol.upload(b"x" * (MAX_UPLOAD_BYTES + 1), "text/plain")
